"""gainkit: patch kit and conformance suite for ``torch.nn.init.calculate_gain``."""

__version__ = "0.1.0"
