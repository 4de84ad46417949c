"""Stability of the six convolution gains in deep conv stacks: coverage, designs, runs, verdicts.

A subject is a gains.toml case with ``stability = true`` and ``network = "conv"`` (conv1d ...
conv_transpose3d, all value 1). Its stack is ``DEPTH`` square layers of its own module type
(``CHANNELS`` channels, kernel ``KERNELS[dims]``, groups 1) on inputs of the kernel's spatial
size, run by ``gainkit.probe.conv`` for every init of ``probe.conv.INITS``; the model is
``gainkit.meanfield.conv.ConvStack`` (docs/theory.md, "Convolutions").

Expected per-layer factors come from what the init draws, computed from torch's fans and the
data file, never measured: ``Var(w) = gain^2 * 2 / (fan_in + fan_out)`` (xavier_*),
``gain^2 / fan(mode)`` (kaiming_*), gain the case's gains.toml value; the module default's
``Var(w) * fan_in`` read from module_defaults.toml's entry of the same id (1/3: kaiming_uniform_
with a = sqrt(5)). The factor is then ``terms * Var(w)``: terms the exact count of products
(``forward_terms``, ``backward_terms``), so where torch's fan and the count part, the prediction
follows the count.

Checks (each with its band of z standard errors, z shared with the MLP suite,
``coverage.suite_z``, which counts ``comparisons()``):

- ``forward``: every layer's mean ln q_l over draws against its band; the weights x1.05 and
  x0.95 (the same draws) must land outside the band of ln q_depth;
- ``backward``: every layer's mean ln g_l (squared gradient) against its band; the controls
  outside the band of ln g_0.

Sizes (docs/theory.md, "Convolutions: sizes"): at a fixed resolution of a 5% gain error the
products a run computes grow like the channel count C while its init calls grow like 1/C, and
the model holds while depth <= C / 2 (the modes' spread): 24 channels, 8 layers. Draws are the
fewest for which both negative controls clear the band with the same z (``sharpness_draws``).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np
import torch

from gainkit.meanfield import theory
from gainkit.meanfield.conv import ConvGeometry, ConvStack
from gainkit.probe import conv as probe
from gainkit.suite import designs, torchinfo
from gainkit.suite.expectations import DEVICE_DTYPES, GAINS, MODULE_DEFAULTS
from gainkit.suite.verdicts import Verdict

CHANNELS = 24
DEPTH = 8
# One kernel per dimensionality, the spatial size equal to it (ConvStack's exact mode picture),
# 8 or 9 positions each, so that every stack averages as many modes: a 1-D kernel of 3 would
# give 2 modes and need ~3x the draws, a 3x3x3 one costs 11x the products of 2x2x2.
KERNELS = {1: (8,), 2: (3, 3), 3: (2, 2, 2)}
CHECKS = ("forward", "backward")
PER_DESIGN = 2 * DEPTH + 4  # per-layer bands of both checks, and 2 controls each
CASES = tuple(case for case in GAINS if case.stability and case.network == "conv")


def geometry(case) -> ConvGeometry:
    """The square layer of ``case`` (its nonlinearity names the layer: conv_transpose2d ...)."""
    name = case.nonlinearity
    dims = int(name[-2])
    return ConvGeometry(CHANNELS, CHANNELS, KERNELS[dims],
                        transposed=name.startswith("conv_transpose"))


def comparisons() -> int:
    """The conv checks' share of the stability suite's Bonferroni family."""
    return len(CASES) * len(probe.INITS) * len(DEVICE_DTYPES) * PER_DESIGN


def module_default_gain_squared(case) -> float:
    """Var(w) * torch's fan_in of the module default whose module_defaults.toml id is the case's
    (nn.Conv2d for conv2d ...), from that entry's own sizes."""
    module = next(entry for entry in MODULE_DEFAULTS if entry.id == case.id)
    sizes = dict(module.sizes)
    dims = geometry(case).dims
    entry = ConvGeometry(sizes["in_channels"], sizes["out_channels"], (sizes["kernel"],) * dims,
                         sizes.get("groups", 1), case.nonlinearity.startswith("conv_transpose"))
    return module.parameter("weight").variance * entry.torch_fan("fan_in")


def weight_variance(case, init: str, layer: ConvGeometry) -> float:
    """What ``init`` draws for ``layer``'s weight, by torch's fans (module doc)."""
    if init == probe.MODULE_DEFAULT:
        return module_default_gain_squared(case) / layer.torch_fan("fan_in")
    gain = float(case.value)
    if init.startswith("xavier_"):
        return gain ** 2 * 2.0 / (layer.torch_fan("fan_in") + layer.torch_fan("fan_out"))
    if init.startswith("kaiming_"):
        return gain ** 2 / layer.torch_fan("fan_" + init.rpartition("_fan_")[2])
    raise ValueError(f"unknown init {init!r}; expected one of {probe.INITS}")


def weight_kurtosis(init: str) -> float:
    """Excess kurtosis of the weights: the module default is kaiming_uniform_."""
    return -1.2 if "uniform" in init or init == probe.MODULE_DEFAULT else 0.0


@dataclass(frozen=True)
class ConvDesign:
    case: object
    init: str
    geometry: ConvGeometry
    depth: int
    draws: int
    z: float

    @property
    def model(self) -> ConvStack:
        return ConvStack(self.geometry, self.depth,
                         weight_variance(self.case, self.init, self.geometry),
                         weight_kurtosis(self.init))

    @property
    def rounding(self) -> float:
        """Bound on a log statistic's rounding: each output sums forward_terms products
        (~terms eps of itself), compounding over the depth (float32's eps)."""
        return 2.0 * self.depth * self.geometry.forward_terms * designs.ROUNDING_EPS

    def bands(self, check: str, factor: float = 1.0) -> Tuple[np.ndarray, np.ndarray,
                                                              np.ndarray]:
        """(mean field, centre, half-width) of the mean over draws of ln q_l or ln g_l."""
        mean_field, mean, variance = getattr(self.model, check)(factor)
        return mean_field, mean, self.z * np.sqrt(variance / self.draws) + self.rounding

    def control_layer(self, check: str) -> int:
        """The layer whose band the negative controls must leave: where a gain error has
        compounded most (the output for forward, the input for backward)."""
        return self.depth if check == "forward" else 0


def sharpness_draws(design: ConvDesign) -> int:
    """Fewest draws for which every control clears the nominal band with the same z:
    ``|E_c - E_1| >= z (sd_1 + sd_c) / sqrt(S)`` at the control layer of each check."""
    requirements = []
    model = design.model
    for check in CHECKS:
        layer = design.control_layer(check)
        _, mean, variance = getattr(model, check)()
        for factor in designs.CONTROL_FACTORS:
            _, other, other_variance = getattr(model, check)(factor)
            gap = abs(other[layer] - mean[layer]) - 2 * design.rounding
            spread = math.sqrt(variance[layer]) + math.sqrt(other_variance[layer])
            requirements.append((design.z * spread / gap) ** 2)
    return max(2, int(math.ceil(max(requirements))))


def plan(case, init: str, z: float, draws: int | None = None) -> ConvDesign:
    design = ConvDesign(case, init, geometry(case), DEPTH, 2, float(z))
    chosen = sharpness_draws(design) if draws is None else int(draws)
    return ConvDesign(case, init, design.geometry, DEPTH, chosen, float(z))


def seed_of(seed: int, case, init: str, device: str, dtype_name: str) -> int:
    key = "/".join((case.id, init, device, dtype_name, "conv-stack"))
    return seed * 1000003 + zlib.crc32(key.encode("utf-8")) % 1000003


@dataclass(frozen=True)
class ConvRun:
    """A design and what the probe measured: ``log_q``, ``log_grad`` shaped (scales, depth + 1),
    means over draws of ln q_l and ln g_l; scale 0 nominal, then ``designs.CONTROL_FACTORS``."""

    design: ConvDesign
    device: str
    dtype: str
    log_q: np.ndarray
    log_grad: np.ndarray

    def observed(self, check: str) -> np.ndarray:
        return self.log_q if check == "forward" else self.log_grad


def run(case, init: str, device: str, dtype, seed: int, z: float,
        draws: int | None = None) -> ConvRun:
    dtype_name = torchinfo.dtype_name(dtype)
    design = plan(case, init, z, draws)
    measurement = probe.measure(design.geometry, init, design.depth, design.draws,
                                scales=(1.0,) + designs.CONTROL_FACTORS, device=device,
                                dtype=dtype, seed=seed_of(seed, case, init, device, dtype_name))
    return ConvRun(design, device, dtype_name, np.log(measurement.q).mean(axis=1),
                   np.log(measurement.grad).mean(axis=1))


def judge(check: str, result: ConvRun):
    """The ``verdicts.Verdict`` of ``check`` (forward or backward) on ``result``."""
    if check not in CHECKS:
        raise ValueError(f"unknown check {check!r}; expected one of {CHECKS}")
    design = result.design
    _, centre, half = design.bands(check)
    measured = result.observed(check)
    what = "ln q_l" if check == "forward" else "ln g_l"
    problems: List[str] = []
    layers = range(1, design.depth + 1) if check == "forward" else range(design.depth)
    for layer in layers:
        if abs(measured[0, layer] - centre[layer]) > half[layer]:
            problems.append(f"layer {layer}: mean {what} {measured[0, layer]:.4f}, predicted "
                            f"{centre[layer]:.4f} +- {half[layer]:.4f}")
    at = design.control_layer(check)
    for index, factor in enumerate(designs.CONTROL_FACTORS, start=1):
        if abs(measured[index, at] - centre[at]) <= half[at]:
            problems.append(
                f"negative control not rejected: weights x{factor:.2f} give {what} "
                f"{measured[index, at]:.4f} at layer {at}, inside {centre[at]:.4f} +- "
                f"{half[at]:.4f}: this check cannot tell a 5% gain error")
    model = design.model
    factor = model.forward_factor if check == "forward" else model.backward_factor
    layer = design.geometry
    explanation = (
        f"{check} pass of a {design.depth}-layer circular {probe.module_class(layer).__name__}"
        f"({layer.in_channels}, {layer.out_channels}, {layer.kernel}) stack, {design.init}, "
        f"{design.draws} draws, z {design.z:.2f}: predicted factor {factor:.6g} a layer "
        f"({'forward' if check == 'forward' else 'backward'}_terms x Var(w))")
    verdict = "fail" if problems else "pass"
    return Verdict(check, tuple(problems), explanation, _record(result, check, verdict))


def _record(result: ConvRun, check: str, verdict: str) -> Dict[str, object]:
    """A stability record the report reads as any other: per-layer curves and bands of both
    passes (geometric means over draws), and the measured per-layer gradient factor."""
    design = result.design
    model = design.model
    field_q, mean_q, half_q = design.bands("forward")
    field_g, mean_g, half_g = design.bands("backward")
    # The measured per-layer gradient factor, less the finite-width bias of the log means
    bias = (mean_g[0] - mean_g[-1]) - (field_g[0] - field_g[-1])
    measured_rate = math.exp((result.log_grad[0, 0] - result.log_grad[0, -1] - bias)
                             / design.depth)
    # chi_1 is the gain's: the module default never calls calculate_gain, so its measured
    # factor (1/3 a layer) is recorded as what it is, not as the gain's chi_1.
    gain_rate = {} if design.init == probe.MODULE_DEFAULT else dict(
        chi_1_measured=measured_rate, chi_1_predicted=model.backward_factor)
    return dict(
        kind="stability", case_id=design.case.id, check=check, init=design.init,
        device=result.device, dtype=result.dtype, network="conv",
        layer=probe.module_class(design.geometry).__name__, width=design.geometry.in_channels,
        kernel=list(design.geometry.kernel), depth=design.depth, draws=design.draws, z=design.z,
        measured_q=_exp(result.log_q[0]), predicted_q=_exp(mean_q), mean_field_q=_exp(field_q),
        band_lo=_exp(mean_q - half_q), band_hi=_exp(mean_q + half_q),
        measured_grad=_exp(result.log_grad[0]), predicted_grad=_exp(mean_g),
        mean_field_grad=_exp(field_g), band_grad_lo=_exp(mean_g - half_g),
        band_grad_hi=_exp(mean_g + half_g),
        forward_factor=model.forward_factor, backward_factor=model.backward_factor,
        backward_factor_measured=measured_rate, **gain_rate,
        regime=theory.regime(model.backward_factor), q_star=1.0, verdict=verdict,
        controls={str(factor): {"forward": float(result.log_q[index, -1]),
                                "backward": float(result.log_grad[index, 0])}
                  for index, factor in enumerate(designs.CONTROL_FACTORS, start=1)})


def _exp(values) -> List[float]:
    return [float(v) for v in np.exp(values)]


@dataclass(frozen=True)
class Calibration:
    """Measured against predicted single-draw statistics of one design over ``seeds`` seeds
    (``seeds * draws`` independent stacks): per check, the ratio of the measured variance of
    ln q_l (ln g_l) to the model's at the control layer and its range over all layers, and
    the mean's offset from the prediction in standard errors of the pooled mean."""

    case_id: str
    init: str
    stacks: int
    variance_ratio: Dict[str, float]
    variance_ratio_range: Dict[str, Tuple[float, float]]
    mean_offset_z: Dict[str, float]


def calibrate(case, init: str, seeds: int, dtype=None, draws: int | None = None) -> Calibration:
    """Run the suite's design of ``case`` and ``init`` under ``seeds`` seeds (float64 unless
    ``dtype``) and compare every layer's spread over all draws with ``ConvStack``."""
    design = plan(case, init, 1.0, draws)
    per_draw = {"forward": [], "backward": []}
    for seed in range(seeds):
        measurement = probe.measure(design.geometry, init, design.depth, design.draws,
                                    dtype=dtype or torch.float64, seed=seed)
        per_draw["forward"].append(np.log(measurement.q[0]))
        per_draw["backward"].append(np.log(measurement.grad[0]))
    ratios, ranges, offsets = {}, {}, {}
    for check in CHECKS:
        values = np.concatenate(per_draw[check])  # (stacks, depth + 1)
        _, mean, variance = getattr(design.model, check)()
        layers = list(range(1, design.depth + 1)) if check == "forward" else list(
            range(design.depth))
        ratio = values.var(axis=0, ddof=1) / variance
        at = design.control_layer(check)
        ratios[check] = float(ratio[at])
        ranges[check] = (float(ratio[layers].min()), float(ratio[layers].max()))
        offsets[check] = float((values[:, at].mean() - mean[at])
                               / math.sqrt(variance[at] / len(values)))
    return Calibration(case.id, init, seeds * design.draws, ratios, ranges, offsets)
