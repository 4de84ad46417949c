"""What a convolution really sums, against the fans torch's init functions compute for it.

For a stride-1 convolution with circular padding, every output sums the same number of products
and every input feeds the same number of outputs, so the mean-field length map of a conv layer
is the dense one with that count in place of the fan (docs/theory.md, "Convolutions"):

    E[y^2] = forward_terms * Var(w) * E[x^2]          (forward pass)
    E[dx^2] = backward_terms * Var(w) * E[dy^2]       (backward pass)

torch's ``_calculate_fan_in_and_fan_out`` reads the weight's shape instead:
fan_in = size(1) * k, fan_out = size(0) * k (k the kernel's number of elements). The two agree
only for a plain (groups = 1) Conv. With groups, Conv's fan_out over-counts each input's outputs
by ``groups``; for ConvTranspose, whose weight is (C_in, C_out/groups, k...), fan_in counts the
backward pass and fan_out the forward one (times ``groups``) -- the reverse of Conv.

A dense layer is the case of an empty kernel (receptive field 1), so the same arithmetic serves
``nn.Linear`` as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

MODES = ("fan_in", "fan_out")
# The fans an init can divide by: kaiming_*'s modes, and xavier_*'s average of the two.
FAN_RULES = MODES + ("fan_avg",)


@dataclass(frozen=True)
class ConvGeometry:
    """One conv layer's channel counts, kernel and groups; ``transposed`` for ConvTranspose."""

    in_channels: int
    out_channels: int
    kernel: Tuple[int, ...]
    groups: int = 1
    transposed: bool = False

    def __post_init__(self):
        for channels in (self.in_channels, self.out_channels):
            if channels % self.groups:
                raise ValueError(f"{channels} channels do not split into {self.groups} groups")
        if any(k < 1 for k in self.kernel):
            raise ValueError(f"kernel {self.kernel}: every size must be at least 1")

    @property
    def dims(self) -> int:
        return len(self.kernel)

    @property
    def receptive_field(self) -> int:
        field = 1
        for k in self.kernel:
            field *= k
        return field

    @property
    def weight_shape(self) -> Tuple[int, ...]:
        """torch's weight shape: (out, in/g, k...), or (in, out/g, k...) when transposed."""
        if self.transposed:
            return (self.in_channels, self.out_channels // self.groups) + tuple(self.kernel)
        return (self.out_channels, self.in_channels // self.groups) + tuple(self.kernel)

    @property
    def forward_terms(self) -> int:
        """Products each output sums: (C_in / groups) x k, for Conv and stride-1 ConvTranspose."""
        return self.in_channels // self.groups * self.receptive_field

    @property
    def backward_terms(self) -> int:
        """Outputs each input feeds: (C_out / groups) x k."""
        return self.out_channels // self.groups * self.receptive_field

    def torch_fan(self, mode: str) -> float:
        """What ``_calculate_fan_in_and_fan_out`` returns for the weight's shape; for
        ``fan_avg`` the mean of its two fans (xavier_*'s variance is 1 / fan_avg)."""
        if mode == "fan_avg":
            return (self.torch_fan("fan_in") + self.torch_fan("fan_out")) / 2
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: expected one of {', '.join(FAN_RULES)}")
        shape = self.weight_shape
        return (shape[1] if mode == "fan_in" else shape[0]) * self.receptive_field

    def true_fan(self, mode: str) -> float:
        """What the fan's name promises: fan_in the products each output sums
        (``forward_terms``), fan_out the outputs each input feeds (``backward_terms``),
        fan_avg their mean."""
        if mode == "fan_avg":
            return (self.forward_terms + self.backward_terms) / 2
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: expected one of {', '.join(FAN_RULES)}")
        return self.forward_terms if mode == "fan_in" else self.backward_terms

    def fan_deviates(self, mode: str) -> bool:
        """Whether torch's fan for ``mode`` is not the count its name promises (groups'
        over-count, ConvTranspose's exchanged fans)."""
        return self.torch_fan(mode) != self.true_fan(mode)

    def pass_factors(self, mode: str) -> Tuple[float, float]:
        """(forward, backward) second-moment factors of a linear layer initialised with
        Var(w) = 1 / torch_fan(mode) (``mode`` one of FAN_RULES): 1 is a preserved pass."""
        fan = self.torch_fan(mode)
        return self.forward_terms / fan, self.backward_terms / fan

    def preserves(self, mode: str) -> Tuple[str, ...]:
        """Which passes ``mode`` keeps at factor 1 ("forward", "backward", both or neither)."""
        forward, backward = self.pass_factors(mode)
        return tuple(name for name, factor in (("forward", forward), ("backward", backward))
                     if factor == 1.0)
