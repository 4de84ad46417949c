"""Deep-network stability of every calculate_gain value, measured through torch's own inits.

For each gain (gains.toml cases with ``stability = true``, plus the SNN paper's SELU gain 1) and
each of xavier_normal/uniform and kaiming_normal/uniform (fan_in, fan_out), the probe
(``gainkit.probe.mlp``) runs deep bias-free square MLPs initialised by the real torch function and
compares them with mean-field theory corrected for finite width (``gainkit.meanfield.finitewidth``):

- forward: per-layer second moment of the pre-activations against the predicted profile,
  and its converged value (or, for critical gains, the endpoint of a preserved signal);
- backward: the per-layer growth of the squared gradient against chi, the measured chi_1 and
  regime (with the depth at which gradients change 10x) against theory;
- claims: the forum's statements (tanh 5/3, selu 3/4, selu gain 1) in the forum's network.

Every test also runs a negative control -- the same draws with the weights scaled by 1.05 and
0.95 -- and asserts that it lands outside the band, so each band provably resolves a 5% gain
error. Bands are z standard errors of the finite-width model, z from a Bonferroni bound that
keeps the whole file's false-alarm probability under ``coverage.FAMILY_ALPHA``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from gainkit.meanfield import theory
from gainkit.probe import mlp
from gainkit.suite import coverage, designs, torchinfo

SUBJECTS = coverage.subjects()
CLAIMED = tuple(subject for subject in SUBJECTS if subject.claim)


@pytest.fixture(scope="module")
def z_score(probe_overrides) -> float:
    """Bonferroni z over every comparison the file makes on every device and dtype."""
    return coverage.suite_z(SUBJECTS, probe_overrides["depth"])


_RUNS = {}


def _run(subject, init, device, dtype, seed, z, overrides, require_gain, claim=False):
    """The design and the observed statistics (cached: forward and backward share a run)."""
    dtype_name = torchinfo.dtype_name(dtype)
    key = (subject.id, init, device, dtype_name, seed, claim, tuple(sorted(overrides.items())))
    if key not in _RUNS:
        if subject.case is not None:
            require_gain(subject.case)  # fails with the patch to apply when torch lacks it
        torch_init = mlp.torch_init(init, *subject.init_arguments(init))
        design = coverage.suite_design(subject, init, z, overrides["width"],
                                       overrides["depth"], overrides["draws"], claim)
        measurement = mlp.measure_design(
            design, torch_init, coverage.scales(), device, dtype,
            coverage.suite_seed(seed, subject, init, device, dtype_name, claim))
        _RUNS[key] = design, [designs.observe(design, measurement, k) for k in range(3)]
    return _RUNS[key]


def _judge(label: str, value: float, band, describe) -> list:
    """One failure line when ``value`` is outside ``band``: measured vs predicted, the band."""
    if band.contains(value):
        return []
    return [f"{label}: measured {describe(value)}, predicted {describe(band.centre)}, "
            f"band {_interval(band, describe)}"]


def _controls_outside(design, observed, name, describe) -> list:
    """Failure lines for negative controls that land inside the band of ``name``."""
    band = design.band(design.statistic(name))
    problems = []
    for factor, control in zip(designs.CONTROL_FACTORS, observed[1:]):
        value = getattr(control, name)
        if band.contains(value):
            problems.append(
                f"negative control not rejected: weights x{factor:.2f} give {describe(value)} "
                f"inside the band {_interval(band, describe)}: "
                "this check cannot tell a 5% gain error")
    return problems


def _interval(band, describe) -> str:
    return f"[{describe(band.low)}, {describe(band.high)}]"


def _setting(subject, init, design) -> str:
    return (f"{subject.id} gain {subject.gain:.6g} with {init} (width {design.width}, "
            f"depth {design.depth}, {design.draws} draws, z {design.z:.2f})")


def _regime_problems(subject, field, rate, half_width) -> list:
    """The measured ln chi_1 band must fit the expected regime (only it, when ordered or
    chaotic), and theory must agree with gains.toml."""
    problems = []
    if field.regime != subject.regime:
        problems.append(f"theory puts gain {subject.gain:.6g} in the {field.regime} regime, "
                        f"gains.toml says {subject.regime}")
    regimes = designs.compatible_regimes(rate - half_width, rate + half_width)
    exclusive = subject.regime in ("ordered", "chaotic")
    if subject.regime not in regimes or (exclusive and regimes != (subject.regime,)):
        problems.append("regime: the measured chi_1 band [{:.4f}, {:.4f}] fits {}, expected "
                        "{}".format(math.exp(rate - half_width), math.exp(rate + half_width),
                                    " or ".join(regimes) or "no regime", subject.regime))
    return problems


def _record(results, subject, init, device, dtype, design, observed, check, verdict):
    nominal = observed[0]
    mean_q, half_q = design.layer_bands()
    ratio_mean, _ = design.model(1).per_layer("ratio")
    grad_end = design.model(1).means["q"][0] - design.model(1).mean_field["q"][0]
    predicted_grad = np.cumsum(ratio_mean[:-1][::-1])[::-1]  # E[ln g_l] - E[ln g_depth]
    chi_measured = math.exp(nominal.slope - design.slope_bias())
    results.record(
        "stability", subject.id, check=check, init=init, device=device,
        dtype=str(dtype).replace("torch.", ""), width=design.width, depth=design.depth,
        draws=design.draws, z=design.z,
        # per layer l = 0..depth: geometric means over draws (forward column, q0 = 1)
        measured_q=np.exp(nominal.log_q).tolist(), predicted_q=np.exp(mean_q).tolist(),
        mean_field_q=np.exp(design.model(0).mean_field["q"]).tolist(),
        band_lo=np.exp(mean_q - half_q).tolist(), band_hi=np.exp(mean_q + half_q).tolist(),
        # squared gradient per layer (backward column, q0 = q*), geometric mean over draws
        measured_grad=np.exp(nominal.log_grad).tolist(),
        predicted_grad=np.exp(np.append(predicted_grad, 0.0) + grad_end).tolist(),
        chi_1_measured=chi_measured, chi_1_predicted=design.mean_field.chi_1,
        regime=design.mean_field.regime, depth_10x=design.mean_field.depth_10x,
        q_star=design.mean_field.q_star, verdict=verdict,
        controls={str(f): {"forward": c.forward, "residual": c.residual, "post": c.post}
                  for f, c in zip(designs.CONTROL_FACTORS, observed[1:])})


def _q(log_value: float) -> str:
    return f"q={math.exp(log_value):.4g}"


def _chi(log_value: float) -> str:
    return f"{math.exp(log_value):.4f}"


def _rms(log_post: float) -> str:
    return f"RMS={math.exp(0.5 * log_post):.4f}"


SUBJECT_IDS = [subject.id for subject in SUBJECTS]
parametrise_subject = pytest.mark.parametrize("subject", SUBJECTS, ids=SUBJECT_IDS)
parametrise_init = pytest.mark.parametrize("init", coverage.INITS)


@parametrise_subject
@parametrise_init
def test_forward_second_moment_follows_profile(subject, init, device, dtype, seed, z_score,
                                               probe_overrides, require_gain, results):
    design, observed = _run(subject, init, device, dtype, seed, z_score, probe_overrides,
                            require_gain)
    nominal = observed[0]
    mean, half = design.layer_bands()
    mean_field = design.model(0).mean_field["q"]
    problems = []
    for layer in range(1, design.depth + 1):
        band = designs.Band(mean[layer], half[layer])
        label = f"layer {layer} (mean field q={math.exp(mean_field[layer]):.4g})"
        problems += _judge(label, nominal.log_q[layer], band, _q)
    homogeneous = theory.activation(subject.activation, subject.slope).homogeneous
    target = ("preserved at q0 = 1 (critical)" if homogeneous
              else f"converges to q* = {design.mean_field.q_star:.6g}")
    layers = f"{design.forward_layers[0]}..{design.forward_layers[-1]}"
    problems += _judge(f"layers {layers}: mean second moment", nominal.forward,
                       design.band(design.forward_statistic()), _q)
    problems += _controls_outside(design, observed, "forward", _q)
    _record(results, subject, init, device, dtype, design, observed, "forward",
            "fail" if problems else "pass")
    assert not problems, "forward pass of {}: {}; second moments are geometric means over " \
        "draws, predictions include the finite-width bias\n{}".format(
            _setting(subject, init, design), target, "\n".join(problems))


@parametrise_subject
@parametrise_init
def test_backward_gradient_growth_matches_chi(subject, init, device, dtype, seed, z_score,
                                              probe_overrides, require_gain, results):
    design, observed = _run(subject, init, device, dtype, seed, z_score, probe_overrides,
                            require_gain)
    nominal = observed[0]
    field = design.mean_field
    problems = _judge("per-layer squared-gradient ratio / chi(measured q)", nominal.residual,
                      design.band(design.residual_statistic()), _chi)
    slope = design.band(design.slope_statistic())
    bias = design.slope_bias()  # measured slope - bias estimates ln chi_1
    problems += _judge("chi_1 (finite-width corrected)", nominal.slope - bias,
                       designs.Band(slope.centre - bias, slope.half_width), _chi)
    problems += _regime_problems(subject, field, nominal.slope - bias, slope.half_width)
    problems += _controls_outside(design, observed, "residual", _chi)
    _record(results, subject, init, device, dtype, design, observed, "backward",
            "fail" if problems else "pass")
    assert not problems, (
        "backward pass of {}: theory chi_1 = {:.6f}, {} regime, the squared gradient changes "
        "10x every {:.4g} layers; measured chi_1 = {:.4f}\n{}".format(
            _setting(subject, init, design), field.chi_1, field.regime, field.depth_10x,
            math.exp(nominal.slope - bias), "\n".join(problems)))


@pytest.mark.parametrize("subject", CLAIMED, ids=[subject.id for subject in CLAIMED])
def test_forum_claim(subject, device, dtype, seed, z_score, probe_overrides, require_gain,
                     results):
    """The forum's network (xavier_normal, unit input) run deep enough to settle at q*."""
    init = coverage.CLAIM_INIT
    design, observed = _run(subject, init, device, dtype, seed, z_score, probe_overrides,
                            require_gain, claim=True)
    nominal = observed[0]
    field = design.mean_field
    layers = f"{design.forward_layers[0]}..{design.forward_layers[-1]}"
    label = f"post-activation RMS over layers {layers} (mean field {field.post_rms:.6f})"
    problems = _judge(label, nominal.post, design.band(design.post_statistic()), _rms)
    growth = design.band(design.growth_statistic())
    bias = growth.centre - float(design.growth_weights() @ design.model(0).mean_field["ratio"])
    problems += _judge(f"squared-gradient growth a layer over layers {layers} (finite-width "
                       "corrected)", nominal.growth - bias,
                       designs.Band(growth.centre - bias, growth.half_width), _chi)
    problems += _regime_problems(subject, field, nominal.growth - bias, growth.half_width)
    problems += _controls_outside(design, observed, "post", _rms)
    _record(results, subject, init, device, dtype, design, observed, "claim",
            "fail" if problems else "pass")
    assert not problems, (
        "forum claim for {}: '{}'; theory: post-activation RMS {:.6f} at q* = {:.6g}, squared "
        "gradient x{:.4f} a layer ({} regime); measured RMS {:.4f}, x{:.4f}\n{}".format(
            _setting(subject, init, design), subject.claim, field.post_rms, field.q_star,
            field.chi_1, field.regime, math.exp(0.5 * nominal.post),
            math.exp(nominal.growth - bias), "\n".join(problems)))
