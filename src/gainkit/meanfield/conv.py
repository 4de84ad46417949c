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

import math
from dataclasses import dataclass
from typing import Tuple

import numpy as np

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


# --- deep stacks -----------------------------------------------------------------------------

def frequency_modes(spatial: Tuple[int, ...]) -> Tuple[int, int]:
    """(real modes, conjugate pairs) of the DFT of a real signal on a periodic grid ``spatial``.

    A frequency f is real when 2f = 0 modulo the size in every dimension (f = 0, and f = n/2
    for even n); the others pair with -f."""
    real = 1
    positions = 1
    for size in spatial:
        real *= 2 if size % 2 == 0 else 1
        positions *= size
    return real, (positions - real) // 2


@dataclass(frozen=True)
class ConvStack:
    """Mean field and finite-width noise of a deep linear stack of one square layer ``geometry``
    (in = out channels, groups = 1), stride 1, circular, on inputs of size ``spatial`` = the
    kernel's, weights i.i.d. of variance ``weight_variance`` and excess kurtosis
    ``weight_kurtosis``; input and output gradient i.i.d. N(0, 1) (docs/theory.md,
    "Convolutions").

    Per layer the second moment is multiplied by ``forward_factor = forward_terms * Var(w)``
    and the squared gradient by ``backward_factor = backward_terms * Var(w)``: exactly, in
    expectation, at any width -- the count of terms, not torch's fan, is what enters.

    Noise. With the spatial size equal to the kernel, the DFT turns the layer into independent
    C x C channel matrices W(f), one per frequency mode (the kernel's taps are a unitary change
    of basis of the modes): real Gaussian for real modes, circular complex Gaussian for the
    others. A mode's power after n layers is then its input power times n independent
    chi-square gains, chi2_C / C (real) or chi2_2C / 2C (complex), so its relative variance is
    exactly ``(1 + 2/C)^(n+1) - 1`` or ``(1 + 1/C)^(n+1) - 1`` (the input counts as one more).
    q_l is the mean of the modes' powers; ``log_variance`` matches a log-normal to its exact
    variance (Fenton-Wilkinson), which overstates Var[ln q] slightly where the modes have
    spread far apart (docs/theory.md: calibration). Uniform weights add, to first order, the
    fourth cumulant of the taps: ``n * kurtosis / (C^2 P)`` to the relative variance.
    """

    geometry: ConvGeometry
    depth: int
    weight_variance: float
    weight_kurtosis: float = 0.0

    def __post_init__(self):
        g = self.geometry
        if g.in_channels != g.out_channels or g.groups != 1:
            raise ValueError("the stack model is for square layers with groups = 1")

    @property
    def spatial(self) -> Tuple[int, ...]:
        return tuple(self.geometry.kernel)

    @property
    def forward_factor(self) -> float:
        return self.geometry.forward_terms * self.weight_variance

    @property
    def backward_factor(self) -> float:
        return self.geometry.backward_terms * self.weight_variance

    def relative_variance(self, layers: int) -> float:
        """Var[q_n] / E[q_n]^2 of one draw after ``layers`` layers from a N(0, 1) input."""
        channels = self.geometry.in_channels
        positions = self.geometry.receptive_field
        real, pairs = frequency_modes(self.spatial)
        modes = (real * ((1 + 2.0 / channels) ** (layers + 1) - 1)
                 + 4 * pairs * ((1 + 1.0 / channels) ** (layers + 1) - 1)) / positions ** 2
        cumulant = layers * self.weight_kurtosis / (channels ** 2 * positions)
        return modes + cumulant

    def log_variance(self, layers: int) -> float:
        """Var[ln q_n] of one draw (log-normal matched to ``relative_variance``)."""
        return math.log1p(self.relative_variance(layers))

    def forward(self, factor: float = 1.0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean-field ln q_l, and E / Var of one draw's ln q_l, l = 0..depth, with the weights
        scaled by ``factor`` (a negative control): (mean field, mean, variance)."""
        rate = math.log(self.forward_factor * factor ** 2)
        mean_field = rate * np.arange(self.depth + 1)
        variance = np.array([self.log_variance(layer) for layer in range(self.depth + 1)])
        return mean_field, mean_field - variance / 2, variance

    def backward(self, factor: float = 1.0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As ``forward`` for ln g_l, the squared gradient at layer l's output (g_depth: the
        unit output gradient's), l = 0..depth."""
        rate = math.log(self.backward_factor * factor ** 2)
        above = self.depth - np.arange(self.depth + 1)
        mean_field = rate * above
        variance = np.array([self.log_variance(int(n)) for n in above])
        return mean_field, mean_field - variance / 2, variance
