"""Verdicts on stability runs: one function judges a run and builds its JSON record.

A run (:func:`run`) is one design (``gainkit.suite.designs``) measured by the MLP probe at the
nominal weight scale and at each negative control. :func:`judge` compares it with the
finite-width bands of its design and returns a :class:`Verdict`: the failure lines (empty when
it passes), the sentence that explains them, and the record the suite writes to its JSON
results. The conformance files parametrise, call these and assert; the benchmark runs the same
:func:`run`, so what is timed is what is judged.

Checks:

- ``forward``: every layer's mean ``ln q`` against its band, the converged (or, for a neutral
  map, endpoint) summary against its band, and the negative controls outside it;
- ``backward``: the squared-gradient ratio against ``chi`` at the measured q, the measured
  ``chi_1`` (finite-width corrected) against its band, which must fit the expected regime, the
  controls;
- ``claim``: the forum's network (xavier_normal, unit input, deep enough to settle): the
  post-activation RMS and the squared-gradient growth a layer (fitting the regime), the
  controls;
- ``regime`` (:func:`judge_regime`, on the runs of every init of one gain, device and dtype):
  their slopes pooled, the measured chi_1 band, which must fit the expected regime and, when
  ordered or chaotic, only it (``designs.pool_for_regime`` sizes the draws for that); the
  controls on the pooled residual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

from gainkit.meanfield import theory
from gainkit.probe import mlp
from gainkit.suite import coverage, designs, torchinfo

CHECKS = ("forward", "backward", "claim")  # per run; and "regime" on a gain's runs pooled
POOLED_INIT = "pooled"  # the init of a regime record: every init of the gain


@dataclass(frozen=True)
class Run:
    """A design and what the probe observed: ``observed[0]`` nominal, then the controls in the
    order of ``designs.CONTROL_FACTORS``."""

    subject: coverage.Subject
    init: str
    device: str
    dtype: str  # torchinfo.dtype_name spelling, as in every record
    design: designs.Design
    observed: Tuple[designs.Observed, ...]


@dataclass(frozen=True)
class Verdict:
    check: str
    problems: Tuple[str, ...]
    explanation: str  # what was checked and what theory predicts, for the failure message
    record: Dict[str, object]

    @property
    def passed(self) -> bool:
        return not self.problems

    def message(self) -> str:
        return "\n".join((self.explanation,) + self.problems)


def run(subject: coverage.Subject, init: str, device: str, dtype, seed: int, z: float,
        sizes: Dict[str, int | None] | None = None, claim: bool = False) -> Run:
    """Measure ``subject`` initialised by ``init`` (one of ``mlp.INITS``) on device and dtype.

    ``sizes``: width/depth/draws overrides (None entries: chosen from theory).
    """
    sizes = sizes or {}
    dtype_name = torchinfo.dtype_name(dtype)
    torch_init = mlp.torch_init(init, *subject.init_arguments(init))
    design = coverage.suite_design(subject, init, z, sizes.get("width"), sizes.get("depth"),
                                   sizes.get("draws"), claim)
    measurement = mlp.measure_design(
        design, torch_init, coverage.scales(), device, dtype,
        coverage.suite_seed(seed, subject, init, device, dtype_name, claim))
    observed = tuple(designs.observe(design, measurement, k)
                     for k in range(len(coverage.scales())))
    return Run(subject, init, device, dtype_name, design, observed)


def judge(check: str, result: Run) -> Verdict:
    """The verdict of ``check`` (one of CHECKS) on ``result``."""
    if check not in _JUDGES:
        raise ValueError(f"unknown check {check!r}; expected one of {CHECKS}")
    problems, explanation = _JUDGES[check](result)
    return Verdict(check, tuple(problems), explanation,
                   _record(result, check, "fail" if problems else "pass"))


def judge_regime(runs: Sequence[Run]) -> Verdict:
    """The regime of one gain on one device and dtype, judged on the runs of all its inits
    (``coverage.suite_designs``' designs, ``INITS`` order): their slopes at q* pooled with
    inverse-variance weights (``designs.pooled_statistic``)."""
    runs = tuple(runs)
    if not runs or len({(r.subject.id, r.device, r.dtype) for r in runs}) != 1:
        raise ValueError("judge_regime takes the runs of one gain, device and dtype")
    first, pooled = runs[0], tuple(r.design for r in runs)
    weights = designs.pooled_weights(pooled)
    field, bias = first.design.mean_field, designs.pooled_bias(pooled)
    corrected = float(weights @ np.array([r.observed[0].slope for r in runs])) - bias
    band = designs.pooled_band(pooled)
    problems = _outside("chi_1 of every init pooled (finite-width corrected)", corrected,
                        _shifted(band, bias), _chi)
    half_width = band.half_width
    problems += _regime_problems(first.subject, field, corrected, half_width, exclusive=True)
    residual_band = designs.pooled_band(pooled, "residual")
    controls = {}
    for k, factor in enumerate(designs.CONTROL_FACTORS, start=1):
        value = float(weights @ np.array([r.observed[k].residual for r in runs]))
        controls[str(factor)] = {"residual": value}
        if residual_band.contains(value):
            problems.append(
                f"negative control not rejected: weights x{factor:.2f} give a pooled residual "
                f"{_chi(value)} inside the band {_interval(residual_band, _chi)}: this check "
                "cannot tell a 5% gain error")
    draws = sum(r.design.draws for r in runs)
    explanation = (
        f"regime of {first.subject.id} gain {first.subject.gain:.6g} on {first.device} "
        f"{first.dtype}, the slopes of {len(runs)} inits pooled ({draws} draws, z "
        f"{first.design.z:.2f}): theory chi_1 = {field.chi_1:.6f}, {field.regime} regime; "
        f"measured chi_1 = {math.exp(corrected):.4f}, band "
        f"[{math.exp(corrected - half_width):.4f}, {math.exp(corrected + half_width):.4f}]"
        f"; near-critical: chi_1 within 10^(+-1/{theory.NEAR_CRITICAL_DEPTH:g})")
    record = dict(
        kind="stability", case_id=first.subject.id, check="regime", init=POOLED_INIT,
        device=first.device, dtype=first.dtype, width=first.design.width,
        depth=first.design.depth, draws=draws, z=first.design.z,
        inits=[r.init for r in runs], weights=_list(weights),
        chi_1_measured=math.exp(corrected), chi_1_predicted=field.chi_1,
        chi_1_band=[math.exp(corrected - half_width), math.exp(corrected + half_width)],
        regime=field.regime, depth_10x=field.depth_10x, q_star=field.q_star,
        verdict="fail" if problems else "pass", controls=controls)
    return Verdict("regime", tuple(problems), explanation, record)


# --- the three checks ------------------------------------------------------------------------

def _forward(result: Run) -> Tuple[List[str], str]:
    design, nominal = result.design, result.observed[0]
    mean, half = design.layer_bands()
    mean_field = design.model(0).mean_field["q"]
    problems = []
    for layer in range(1, design.depth + 1):
        label = f"layer {layer} (mean field q={math.exp(mean_field[layer]):.4g})"
        problems += _outside(label, nominal.log_q[layer], designs.Band(mean[layer], half[layer]),
                             _q)
    subject = result.subject
    homogeneous = theory.activation(subject.activation, subject.slope).homogeneous
    target = ("preserved at q0 = 1 (critical)" if homogeneous
              else f"converges to q* = {design.mean_field.q_star:.6g}")
    problems += _outside(f"layers {_window(design)}: mean second moment", nominal.forward,
                         design.band(design.forward_statistic()), _q)
    problems += _controls_inside(result, "forward", _q)
    explanation = (f"forward pass of {_setting(result)}: {target}; second moments are geometric "
                   "means over draws, predictions include the finite-width bias")
    return problems, explanation


def _backward(result: Run) -> Tuple[List[str], str]:
    design, nominal = result.design, result.observed[0]
    field = design.mean_field
    problems = _outside("per-layer squared-gradient ratio / chi(measured q)", nominal.residual,
                        design.band(design.residual_statistic()), _chi)
    bias = design.slope_bias()  # measured slope - bias estimates ln chi_1
    problems += _rate_problems("chi_1 (finite-width corrected)", nominal.slope,
                               design.band(design.slope_statistic()), bias, result)
    problems += _controls_inside(result, "residual", _chi)
    explanation = (
        f"backward pass of {_setting(result)}: theory chi_1 = {field.chi_1:.6f}, {field.regime} "
        f"regime, the squared gradient changes 10x every {field.depth_10x:.4g} layers; measured "
        f"chi_1 = {math.exp(nominal.slope - bias):.4f}")
    return problems, explanation


def _claim(result: Run) -> Tuple[List[str], str]:
    design, nominal = result.design, result.observed[0]
    field = design.mean_field
    label = (f"post-activation RMS over layers {_window(design)} "
             f"(mean field {field.post_rms:.6f})")
    problems = _outside(label, nominal.post, design.band(design.post_statistic()), _rms)
    growth = design.band(design.growth_statistic())
    bias = growth.centre - float(design.growth_weights() @ design.model(0).mean_field["ratio"])
    problems += _rate_problems(f"squared-gradient growth a layer over layers {_window(design)} "
                               "(finite-width corrected)", nominal.growth, growth, bias, result)
    problems += _controls_inside(result, "post", _rms)
    explanation = (
        f"forum claim for {_setting(result)}: '{result.subject.claim}'; theory: post-activation "
        f"RMS {field.post_rms:.6f} at q* = {field.q_star:.6g}, squared gradient "
        f"x{field.chi_1:.4f} a layer ({field.regime} regime); measured RMS "
        f"{math.exp(0.5 * nominal.post):.4f}, x{math.exp(nominal.growth - bias):.4f}")
    return problems, explanation


_JUDGES: Dict[str, Callable[[Run], Tuple[List[str], str]]] = {
    "forward": _forward, "backward": _backward, "claim": _claim}


# --- comparisons -----------------------------------------------------------------------------

def _outside(label: str, value: float, band: designs.Band, describe) -> List[str]:
    """One failure line when ``value`` is outside ``band``: measured vs predicted, the band."""
    if band.contains(value):
        return []
    return [f"{label}: measured {describe(value)}, predicted {describe(band.centre)}, "
            f"band {_interval(band, describe)}"]


def _controls_inside(result: Run, name: str, describe) -> List[str]:
    """Failure lines for negative controls that land inside the band of statistic ``name``:
    such a band could not tell a 5% gain error, so the check itself is broken."""
    band = result.design.band(result.design.statistic(name))
    problems = []
    for factor, control in zip(designs.CONTROL_FACTORS, result.observed[1:]):
        value = getattr(control, name)
        if band.contains(value):
            problems.append(
                f"negative control not rejected: weights x{factor:.2f} give {describe(value)} "
                f"inside the band {_interval(band, describe)}: "
                "this check cannot tell a 5% gain error")
    return problems


def _rate_problems(label: str, measured: float, band: designs.Band, bias: float,
                   result: Run) -> List[str]:
    """A measured ln rate of the squared gradient, less its finite-width ``bias``, against
    ``band`` shifted alike, and the regime that the corrected rate's band fits."""
    corrected = measured - bias
    problems = _outside(label, corrected, _shifted(band, bias), _chi)
    return problems + _regime_problems(result.subject, result.design.mean_field, corrected,
                                       band.half_width, exclusive=False)


def _shifted(band: designs.Band, bias: float) -> designs.Band:
    """``band`` of a measured rate, moved as the rate is when its finite-width bias is taken
    off."""
    return designs.Band(band.centre - bias, band.half_width)


def _regime_problems(subject: coverage.Subject, field: theory.MeanField, rate: float,
                     half_width: float, exclusive: bool) -> List[str]:
    """The measured ln chi_1 band must fit the expected regime (``exclusive``: only it, when
    ordered or chaotic), and theory must agree with gains.toml."""
    problems = []
    if field.regime != subject.regime:
        problems.append(f"theory puts gain {subject.gain:.6g} in the {field.regime} regime, "
                        f"gains.toml says {subject.regime}")
    regimes = designs.compatible_regimes(rate - half_width, rate + half_width)
    exclusive = exclusive and subject.regime in ("ordered", "chaotic")
    if subject.regime not in regimes or (exclusive and regimes != (subject.regime,)):
        problems.append("regime: the measured chi_1 band [{:.4f}, {:.4f}] fits {}, expected "
                        "{}".format(math.exp(rate - half_width), math.exp(rate + half_width),
                                    " or ".join(regimes) or "no regime", subject.regime))
    return problems


# --- the record ------------------------------------------------------------------------------

def _record(result: Run, check: str, verdict: str) -> Dict[str, object]:
    """The JSON record of one verdict: measured and predicted per-layer curves, bands, chi_1."""
    design, nominal = result.design, result.observed[0]
    mean_q, half_q = design.layer_bands()
    ratio_mean, _ = design.model(1).per_layer("ratio")
    grad_end = design.model(1).means["q"][0] - design.model(1).mean_field["q"][0]
    predicted_grad = np.cumsum(ratio_mean[:-1][::-1])[::-1]  # E[ln g_l] - E[ln g_depth]
    return dict(
        kind="stability", case_id=result.subject.id, check=check, init=result.init,
        device=result.device, dtype=result.dtype, width=design.width, depth=design.depth,
        draws=design.draws, z=design.z,
        # per layer l = 0..depth: geometric means over draws (forward column, q0 = 1)
        measured_q=_list(np.exp(nominal.log_q)), predicted_q=_list(np.exp(mean_q)),
        mean_field_q=_list(np.exp(design.model(0).mean_field["q"])),
        band_lo=_list(np.exp(mean_q - half_q)), band_hi=_list(np.exp(mean_q + half_q)),
        # squared gradient per layer (backward column, q0 = q*), geometric mean over draws
        measured_grad=_list(np.exp(nominal.log_grad)),
        predicted_grad=_list(np.exp(np.append(predicted_grad, 0.0) + grad_end)),
        chi_1_measured=math.exp(nominal.slope - design.slope_bias()),
        chi_1_predicted=design.mean_field.chi_1, regime=design.mean_field.regime,
        depth_10x=design.mean_field.depth_10x, q_star=design.mean_field.q_star,
        verdict=verdict,
        controls={str(f): {"forward": c.forward, "residual": c.residual, "post": c.post}
                  for f, c in zip(designs.CONTROL_FACTORS, result.observed[1:])})


def _list(values: Sequence[float]) -> List[float]:
    return [float(v) for v in values]


# --- wording ---------------------------------------------------------------------------------

def _setting(result: Run) -> str:
    design = result.design
    return (f"{result.subject.id} gain {result.subject.gain:.6g} with {result.init} (width "
            f"{design.width}, depth {design.depth}, {design.draws} draws, z {design.z:.2f})")


def _window(design: designs.Design) -> str:
    return f"{design.forward_layers[0]}..{design.forward_layers[-1]}"


def _interval(band: designs.Band, describe) -> str:
    return f"[{describe(band.low)}, {describe(band.high)}]"


def _q(log_value: float) -> str:
    return f"q={math.exp(log_value):.4g}"


def _chi(log_value: float) -> str:
    return f"{math.exp(log_value):.4f}"


def _rms(log_post: float) -> str:
    return f"RMS={math.exp(0.5 * log_post):.4f}"
