"""gainkit.meanfield.theory against docs/theory.md's reference numbers, the gain data file, and
properties.

Numbers quoted from docs/theory.md are written as the strings printed there and must match to
half a unit of their last digit; values that are exact by theory use rel=1e-6.
"""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy import special

from gainkit import activations
from gainkit.meanfield import theory
from gainkit.suite.expectations import GAINS, REFERENCES

SELU = activations.get("selu").constants
SQRT2 = math.sqrt(2.0)
LEAKY_GAIN = math.sqrt(2.0 / (1.0 + 0.01**2))


def stated(value):
    """A number as docs/theory.md prints it (str: to its last digit) or an exact value (float)."""
    if isinstance(value, str):
        decimals = len(value.partition(".")[2])
        return pytest.approx(float(value), abs=0.5 * 10.0**-decimals)
    return pytest.approx(value, rel=1e-6)


# --- docs/theory.md: "What each calculate_gain value does" -------------------------------------

@pytest.mark.parametrize("name, gain, q_star, post_rms, chi_1, regime", [
    ("sigmoid", 1.0, "0.264687", "0.514477", "0.055721", "ordered"),
    ("tanh", 5 / 3, "1.178480", "0.651347", "1.209831", "chaotic"),
    ("selu", 3 / 4, "0.023034", "0.202358", "1.003670", "near-critical"),
    ("selu", 1.0, 1.0, 1.0, "1.071575", "chaotic"),
])
def test_calculate_gain_table(name, gain, q_star, post_rms, chi_1, regime):
    field = theory.analyse(name, gain)
    assert (field.q_star, field.post_rms, field.chi_1, field.regime) == (
        stated(q_star), stated(post_rms), stated(chi_1), regime)


@pytest.mark.parametrize("name, slope, gain, rms_per_sqrt_q", [
    ("linear", None, 1.0, 1.0),  # "= input"
    ("relu", None, SQRT2, math.sqrt(0.5)),  # "sqrt(q/2)"
    ("leaky_relu", 0.01, LEAKY_GAIN, 1.0 / LEAKY_GAIN),
])
@pytest.mark.parametrize("q0", [0.05, 1.0, 7.0])
def test_homogeneous_rows_preserve_any_q(name, slope, gain, rms_per_sqrt_q, q0):
    field = theory.analyse(theory.activation(name, slope), gain, q0)
    assert field.q_star == stated(q0)
    assert field.post_rms == stated(rms_per_sqrt_q * math.sqrt(q0))
    assert (field.chi_1, field.regime) == (stated(1.0), "critical")


@pytest.mark.parametrize("name, slope, gain", [
    ("linear", None, 1.0), ("relu", None, SQRT2), ("leaky_relu", 0.01, LEAKY_GAIN),
    ("leaky_relu", 0.2, math.sqrt(2.0 / (1.0 + 0.2**2))),
])
@pytest.mark.parametrize("q0", [0.05, 1.0, 7.0])
def test_homogeneous_critical_rows_have_infinite_depth_scales(name, slope, gain, q0):
    # V is the identity there: slope 1 exactly, not 1 +- rounding with xi_q ~ 1e16.
    field = theory.analyse(theory.activation(name, slope), gain, q0)
    assert field.slope == 1.0
    assert (field.xi_q, field.xi_grad, field.depth_10x) == (math.inf, math.inf, math.inf)


@pytest.mark.parametrize("name, gain, rounded, how", [
    ("sigmoid", 1.0, 18, lambda chi_1: 1.0 / chi_1),  # "gradients shrink ~18x a layer"
    ("tanh", 5 / 3, 21, lambda chi_1: 100.0 * (chi_1 - 1.0)),  # "grows ~21% a layer"
    ("selu", 1.0, 7, lambda chi_1: 100.0 * (chi_1 - 1.0)),  # "grow ~7% a layer"
])
def test_per_layer_gradient_claims(name, gain, rounded, how):
    assert round(how(theory.analyse(name, gain).chi_1)) == rounded


def test_selu_three_quarters_forward_depth_scale():
    assert theory.analyse("selu", 0.75).xi_q == stated("12.6")


@pytest.mark.parametrize("name, gain, rate", [("selu", 1.0, "1.07"), ("tanh", 5 / 3, "1.21")])
def test_gradient_scale_coefficient_rate(name, gain, rate):
    assert theory.analyse(name, gain).chi_1 == stated(rate)


# --- docs/theory.md: "Gain definitions for any activation" -------------------------------------

@pytest.mark.parametrize("name, slope, forward, backward, centred", [
    ("sigmoid", None, "1.846229", "4.722646", "4.801313"),
    ("tanh", None, "1.592537", "1.467414", "1.592537"),
    ("relu", None, "1.414214", "1.414214", "1.712859"),
    ("leaky_relu", 0.01, "1.414143", "1.414143", "1.704832"),
    ("selu", None, 1.0, "0.966026", 1.0),
])
def test_gain_definitions_table(name, slope, forward, backward, centred):
    gains = theory.gain_definitions(theory.activation(name, slope))
    assert (gains["forward"], gains["backward"], gains["centred"]) == (
        stated(forward), stated(backward), stated(centred))


@pytest.mark.parametrize("name", ["tanh", "gelu", "relu"])
def test_gain_definitions_carry_the_critical_gains_reason(name):
    definitions = theory.gain_definitions(name)
    assert (definitions["critical"], definitions.critical_reason) == theory.critical_gain(name)
    assert list(definitions) == ["forward", "backward", "centred", "critical"]
    assert dict(definitions) == {key: getattr(definitions, key) for key in definitions}


def test_tanh_critical_gain_is_one_in_the_limit_of_a_vanishing_signal():
    gain, reason = theory.critical_gain("tanh")
    assert gain == stated(1.0)
    assert "q* -> 0" in reason


def test_sigmoid_reaches_chi_one_only_near_gain_ten():
    gain, _ = theory.critical_gain("sigmoid")
    assert gain == stated("10.1")
    assert theory.analyse("sigmoid", gain).chi_1 == pytest.approx(1.0, abs=1e-9)


def test_kumar_sigmoid_gain_is_still_ordered():
    gain = math.sqrt(12.8)
    assert gain == stated("3.578")
    field = theory.analyse("sigmoid", gain)
    assert (field.chi_1, field.regime) == (stated("0.35"), "ordered")


def test_lecun_tanh_is_plain_tanh_at_gain_1_1439():
    lecun = theory.Activation.from_callables(
        "lecun_tanh", lambda x: 1.7159 * np.tanh(2.0 * x / 3.0),
        lambda x: 1.7159 * 2.0 / 3.0 * (1.0 - np.tanh(2.0 * x / 3.0) ** 2))
    equivalent_gain = 1.7159 * 2.0 / 3.0
    assert equivalent_gain == stated("1.1439")
    scaled, plain = theory.analyse(lecun, 1.0), theory.analyse("tanh", equivalent_gain)
    assert scaled.chi_1 == pytest.approx(plain.chi_1, rel=1e-9)
    assert scaled.q_star == pytest.approx(1.5**2 * plain.q_star, rel=1e-9)


def test_selu_constants_self_normalise():
    selu = theory.activation("selu")
    assert theory.expect(selu.phi, 1.0, selu.kinks) == pytest.approx(0.0, abs=1e-12)
    assert theory.expect(lambda x: selu.phi(x) ** 2, 1.0, selu.kinks) == pytest.approx(
        1.0, rel=1e-12)


@pytest.mark.parametrize("name", ["relu", "linear"])
@pytest.mark.parametrize("q", [0.3, 1.0, 4.0])
def test_kappa(name, q):
    expected = {"relu": 5.0, "linear": 2.0}[name]
    assert theory.kappa_backward(name, q) == pytest.approx(expected, rel=1e-9)
    assert theory.kappa_forward(name, q) == pytest.approx(expected, rel=1e-9)


# --- the data file: every case's regime --------------------------------------------------

@pytest.mark.parametrize("case", GAINS + REFERENCES, ids=lambda case: case.id)
def test_regime_in_data_file_matches_theory(case):
    gain = case.value if hasattr(case, "value") else case.gain
    field = theory.analyse(theory.activation(case.activation, case.slope), gain)
    assert field.regime == case.regime


@pytest.mark.parametrize(
    "case", [case for case in GAINS if theory.activation(case.activation).homogeneous],
    ids=lambda case: case.id)
def test_pytorch_gain_of_homogeneous_activation_is_forward_and_critical(case):
    gains = theory.gain_definitions(theory.activation(case.activation, case.slope))
    assert gains["forward"] == pytest.approx(case.value, rel=1e-9)
    assert gains["backward"] == pytest.approx(case.value, rel=1e-9)
    assert gains["critical"] == pytest.approx(case.value, rel=1e-9)


# --- properties --------------------------------------------------------------------------

@pytest.mark.parametrize("q0", [0.1, 1.0, 10.0])
def test_relu_profile_at_sqrt2_is_flat(q0):
    q, chi = theory.profile("relu", SQRT2, q0, depth=20)
    assert q == pytest.approx(np.full(21, q0), rel=1e-12)
    assert chi == pytest.approx(np.ones(21), rel=1e-12)


@pytest.mark.parametrize("name, gain", [("tanh", 5 / 3), ("sigmoid", 1.0), ("selu", 1.0)])
def test_profile_converges_to_the_fixed_point(name, gain):
    field = theory.analyse(name, gain, q0=3.0)
    q, chi = theory.profile(name, gain, 3.0, depth=150)
    assert q[0] == 3.0
    assert q[-1] == pytest.approx(field.q_star, rel=1e-9)
    assert chi[-1] == pytest.approx(field.chi_1, rel=1e-9)


@pytest.mark.parametrize("name, gain", [
    ("sigmoid", 1.0), ("tanh", 5 / 3), ("selu", 0.75), ("selu", 1.0), ("softplus", 1.0),
    ("elu", 1.2), ("hardtanh", 1.5), ("softsign", 3.0),
])
def test_fixed_point_is_a_stable_root_of_the_length_map(name, gain):
    q_star = theory.fixed_point(name, gain)
    assert 0.0 < q_star < math.inf
    assert theory.length_map(name, gain, q_star) == pytest.approx(q_star, rel=1e-10)
    assert theory.length_map_slope(name, gain, q_star) < 1.0


@pytest.mark.parametrize("excess_gain", [1e-2, 1e-4, 1e-6])
def test_small_tanh_fixed_point_is_resolved(excess_gain):
    # V(q) = g^2 (q - 2 q^2 + O(q^3)), so q* = (1 - 1/g^2) / 2 to first order.
    gain = 1.0 + excess_gain
    q_star = theory.fixed_point("tanh", gain)
    assert q_star == pytest.approx((1.0 - gain**-2) / 2.0, rel=5 * excess_gain)
    assert theory.length_map("tanh", gain, q_star) == pytest.approx(q_star, rel=1e-10)


@pytest.mark.parametrize("name, gain, q0, expected", [
    ("tanh", 0.9, 1.0, 0.0),
    ("relu", 1.3, 1.0, 0.0),
    ("relu", 1.5, 1.0, math.inf),
    ("relu", SQRT2, 3.7, 3.7),
    ("linear", 1.0, 0.2, 0.2),
    ("selu", 1.5, 1.0, math.inf),
    ("hardtanh", 0.8, 1.0, 0.0),
])
def test_fixed_point_dies_blows_up_or_is_the_start(name, gain, q0, expected):
    assert theory.fixed_point(name, gain, q0) == expected


@pytest.mark.parametrize("name", ["gelu", "silu", "mish", "hardswish"])
def test_forward_gain_makes_the_start_an_unstable_fixed_point(name):
    # g_f makes V(1) = 1, and V'(1) > 1 for these: q* = 1 repels, not 0 or inf by rounding.
    gain = theory.gain_forward(name)
    assert theory.fixed_point(name, gain, 1.0) == 1.0
    field = theory.analyse(name, gain)
    assert field.q_star == 1.0 and field.slope > 1.0 and field.xi_q < 0.0
    assert field.xi_q == pytest.approx(-1.0 / math.log(field.slope), rel=1e-12)
    assert field.chi_1 == pytest.approx(theory.chi(name, gain, 1.0), rel=1e-12)


@pytest.mark.parametrize("name", theory.ACTIVATIONS)
@pytest.mark.parametrize("q", [0.3, 1.0, 2.5])
def test_length_map_slope_is_the_derivative_of_the_length_map(name, q):
    step = 1e-4 * q
    difference = (theory.length_map(name, 1.3, q + step)
                  - theory.length_map(name, 1.3, q - step)) / (2.0 * step)
    assert theory.length_map_slope(name, 1.3, q) == pytest.approx(difference, rel=1e-6)


def hardshrink(lambd: float) -> theory.Activation:
    return theory.Activation.from_callables(
        "hardshrink", lambda x: x * (abs(x) > lambd), lambda x: 1.0 * (abs(x) > lambd),
        jumps=(-lambd, lambd))


@pytest.mark.parametrize("gain", [1.0, 1.7])
@pytest.mark.parametrize("q", [0.3, 1.0, 2.5])
def test_length_map_slope_includes_the_jumps_of_phi(gain, q):
    # V(q) = g^2 E[u^2; |u| > l]: dV/dq = V(q) / q + g^2 l^3 pdf_q(l) / q, the last term from
    # the edges of the dead zone moving with q (Stein's lemma alone gives only the first).
    lambd = 0.5
    act = hardshrink(lambd)
    pdf = math.exp(-0.5 * lambd**2 / q) / math.sqrt(2.0 * math.pi * q)
    expected = theory.length_map(act, gain, q) / q + gain**2 * lambd**3 * pdf / q
    assert theory.length_map_slope(act, gain, q) == pytest.approx(expected, rel=1e-9)
    step = 1e-4 * q
    difference = (theory.length_map(act, gain, q + step)
                  - theory.length_map(act, gain, q - step)) / (2.0 * step)
    assert theory.length_map_slope(act, gain, q) == pytest.approx(difference, rel=1e-6)


def test_kappa_of_a_dead_signal_is_a_value_error():
    # hardshrink maps |u| < 0.5 to 0: at q = 1e-10 nothing passes, E[phi^2] = E[phi'^2] = 0.
    act = hardshrink(0.5)
    for kappa in (theory.kappa_forward, theory.kappa_backward):
        with pytest.raises(ValueError, match=r"hardshrink: E\[phi'?\(u\)\^2\] = 0 .*dead signal"):
            kappa(act, theory.Q_TINY)
    with pytest.raises(ValueError, match="dead signal"):
        theory.analyse(act, 1.01)  # q* = 0


def test_jumps_are_kinks():
    assert hardshrink(0.5).kinks == (-0.5, 0.5)


@pytest.mark.parametrize("name", theory.ACTIVATIONS)
def test_derivative_matches_central_difference(name):
    act = theory.activation(name)
    x = np.linspace(-6.3, 6.1, 997)
    x = x[np.min(np.abs(x[:, None] - np.array(act.kinks + (99.0,))), axis=1) > 1e-3]
    step = 1e-6
    difference = (act.phi(x + step) - act.phi(x - step)) / (2.0 * step)
    assert np.asarray(act.dphi(x)) * np.ones_like(x) == pytest.approx(difference, abs=1e-8)


@pytest.mark.parametrize("name, x, expected", [
    ("gelu", 1.0, 0.5 * (1.0 + math.erf(1.0 / SQRT2))),
    ("silu", 1.0, 1.0 / (1.0 + math.exp(-1.0))),
    ("softplus", 0.0, math.log(2.0)),
    ("mish", 1.0, math.tanh(math.log1p(math.e))),
    ("hardswish", 1.0, 4.0 / 6.0),
    ("hardtanh", -2.0, -1.0),
    ("softsign", 1.0, 0.5),
    ("elu", -1.0, math.exp(-1.0) - 1.0),
    ("leaky_relu", -2.0, -0.02),
    ("selu", -1.0, SELU["scale"] * SELU["alpha"] * (math.exp(-1.0) - 1.0)),
    ("sigmoid", 0.0, 0.5),
])
def test_activation_values(name, x, expected):
    assert float(theory.activation(name).phi(x)) == pytest.approx(expected, rel=1e-12)


def test_slope_parameter_reaches_leaky_relu_and_elu():
    assert float(theory.activation("leaky_relu", 0.2).phi(-1.0)) == -0.2
    assert float(theory.activation("elu", 2.0).phi(-1.0)) == pytest.approx(2 * math.expm1(-1))


def test_unknown_activation():
    with pytest.raises(ValueError, match="^unknown mean-field activation 'nope'; known: linear, "):
        theory.activation("nope")


def double_factorial(n: int) -> int:
    return 1 if n <= 0 else n * double_factorial(n - 2)


@pytest.mark.parametrize("power", range(9))
@pytest.mark.parametrize("q", [0.04, 1.0, 9.0])
@pytest.mark.parametrize("kinks", [(), (0.5, -1.7)])
def test_expect_gaussian_moments(power, q, kinks):
    exact = q ** (power / 2) * double_factorial(power - 1) if power % 2 == 0 else 0.0
    scale = q ** (power / 2) * double_factorial(power + power % 2 - 1)
    assert theory.expect(lambda x: x**power, q, kinks) == pytest.approx(
        exact, rel=1e-10, abs=1e-12 * scale)


@pytest.mark.parametrize("threshold", [-2.0, 0.0, 0.7, 3.0])
@pytest.mark.parametrize("q", [0.01, 1.0, 100.0])
def test_expect_splits_at_kinks(threshold, q):
    expected = special.ndtr(-threshold / math.sqrt(q))
    assert theory.expect(lambda x: 1.0 * (x > threshold), q, (threshold,)) == pytest.approx(
        expected, rel=1e-10)


@pytest.mark.parametrize("q", [1e-6, 1.0, 100.0])
@pytest.mark.parametrize("name", ["linear", "relu", "selu", "tanh"])
def test_expect_of_a_cancelling_integrand_is_quiet_and_accurate(name, q):
    # E[phi(u)^2 He_4(z)] vanishes for phi^2 a polynomial of degree < 4 in u (linear, relu:
    # quad cannot reach a relative tolerance on 0) and must not warn for any phi.
    act = theory.activation(name)
    exact = {"linear": 0.0, "relu": 0.0}.get(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = theory.expect(lambda u: act.phi(u) ** 2 * ((u * u / q) ** 2 - 6 * u * u / q + 3),
                              q, act.kinks)
    if exact is not None:
        assert found == pytest.approx(exact, abs=1e-12 * q)


def test_expect_limits():
    assert theory.expect(lambda x: 1.0 * (x > 0), 0.0) == 0.5  # one-sided values at 0
    assert theory.expect(lambda x: np.tanh(x) ** 2, math.inf) == 1.0
    with pytest.raises(ValueError):
        theory.expect(np.tanh, -1.0)


@pytest.mark.parametrize("chi_1, expected", [
    (1.0, "critical"),
    (1.0 + 5e-10, "critical"),
    (10 ** (1 / 150), "near-critical"),
    (10 ** (-1 / 150), "near-critical"),
    (10 ** (1 / 50), "chaotic"),
    (10 ** (-1 / 50), "ordered"),
    (0.0, "ordered"),
])
def test_regime(chi_1, expected):
    assert theory.regime(chi_1) == expected


@pytest.mark.parametrize("name, gain", [("sigmoid", 1.0), ("tanh", 5 / 3), ("selu", 0.75)])
def test_analyse_is_consistent(name, gain):
    act = theory.activation(name)
    field = theory.analyse(act, gain)
    mean_square = theory.expect(lambda x: act.phi(x) ** 2, field.q_star, act.kinks)
    assert field.post_rms == pytest.approx(math.sqrt(mean_square), rel=1e-10)
    assert field.chi_1 == pytest.approx(theory.chi(act, gain, field.q_star), rel=1e-12)
    assert field.xi_grad == pytest.approx(1.0 / abs(math.log(field.chi_1)), rel=1e-12)
    assert field.depth_10x == pytest.approx(math.log(10.0) * field.xi_grad, rel=1e-12)
    assert field.xi_q == pytest.approx(-1.0 / math.log(field.slope), rel=1e-12)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "selu", "softplus", "hardtanh"])
def test_chi_crosses_one_at_the_critical_gain(name):
    gain, reason = theory.critical_gain(name)
    assert gain is not None, reason
    below, above = (theory.analyse(name, gain * factor).chi_1 for factor in (0.999, 1.001))
    assert below < 1.0 < above


def test_selu_critical_gain_is_where_the_zero_fixed_point_turns_unstable():
    slope_at_zero = SELU["scale"] ** 2 * (1.0 + SELU["alpha"] ** 2) / 2.0
    assert theory.critical_gain("selu")[0] == pytest.approx(slope_at_zero**-0.5, rel=1e-9)


def test_softplus_critical_gain_is_the_relu_limit():
    gain, reason = theory.critical_gain("softplus")
    assert gain == pytest.approx(SQRT2, rel=1e-9)
    assert "q* -> inf" in reason


@pytest.mark.parametrize("name", ["gelu", "silu"])
def test_no_critical_gain_where_chi_jumps(name):
    gain, reason = theory.critical_gain(name)
    assert gain is None
    assert "jumps" in reason and "0.0 to inf" in reason


@pytest.mark.parametrize("name", ["gelu", "silu", "mish", "hardswish"])
def test_jump_of_chi_is_found_where_q0_is_a_fixed_point_without_refining(name, monkeypatch):
    # The 0 -> inf switch of q* is where V(q0) = q0; bisecting towards it took ~20 searches.
    searches = []
    search = theory.fixed_point
    monkeypatch.setattr(theory, "fixed_point", lambda *a: searches.append(a) or search(*a))
    gain, reason = theory.critical_gain(name)
    assert gain is None
    assert f"at gain {theory.gain_forward(name):.6g}: " in reason
    assert len(searches) <= 6


def test_numeric_derivative_fallback_matches_analytic():
    numeric = theory.Activation.from_callables("tanh", np.tanh)
    assert theory.chi(numeric, 1.2, 0.7) == pytest.approx(theory.chi("tanh", 1.2, 0.7), rel=1e-8)


def test_theory_does_not_import_torch():
    code = "import sys, gainkit.meanfield.theory; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("name", ["tanh", "selu", "sigmoid"])
def test_interpolated_layer_noise_matches_quadrature(name):
    # On a lattice node, cubic interpolation is exact: every field comes back from the flat
    # vector under its own name. Between nodes it stays within the lattice's error.
    from dataclasses import fields

    from gainkit.meanfield import finitewidth

    for s, tolerance in [(math.exp(3 * finitewidth.LATTICE), 1e-9), (0.737, 1e-4)]:
        interpolated = finitewidth.layer_noise(name, None, s)
        direct = finitewidth._layer_noise(name, None, s)
        for field in fields(finitewidth.LayerNoise):
            assert np.allclose(np.ravel(getattr(interpolated, field.name)),
                               np.ravel(getattr(direct, field.name)),
                               rtol=tolerance, atol=tolerance), (name, s, field.name)


def _quad_only(monkeypatch):
    # theory.expect with its Gauss-Legendre path switched off: every side by quad.
    monkeypatch.setattr(theory, "_fixed_rule", lambda f, scale, sides: [None] * len(sides))


@pytest.fixture
def quad_sides(monkeypatch) -> list:
    """The (lower, upper) of every side expect() hands to quad, in order."""
    sides = []
    integrate = theory._integrate
    monkeypatch.setattr(theory, "_integrate",
                        lambda *args: sides.append(args[1:3]) or integrate(*args))
    return sides


@pytest.mark.parametrize("name", theory.ACTIVATIONS)
def test_gauss_legendre_path_agrees_with_quad(name, monkeypatch):
    act = theory.activation(name, 0.2 if name in ("leaky_relu", "elu") else None)
    integrands = {"phi^2": lambda x: act.phi(x) ** 2, "phi'^4": lambda x: act.dphi(x) ** 4,
                  "u phi phi'": lambda x: x * act.phi(x) * act.dphi(x)}
    grid = (1e-6, 0.02, 0.7, 1.0, 3.0, 50.0, 1e4)
    fast = {(label, q): theory.expect(f, q, act.kinks) for label, f in integrands.items()
            for q in grid}
    _quad_only(monkeypatch)
    for (label, q), value in fast.items():
        reference = theory.expect(integrands[label], q, act.kinks)
        assert value == pytest.approx(reference, rel=1e-10, abs=1e-14), (label, q)


def test_scalar_only_integrand_goes_to_quad():
    # math.tanh takes one float: the vectorised rule cannot call it, quad can.
    value = theory.expect(lambda x: math.tanh(x) ** 2, 0.8)
    assert value == pytest.approx(theory.expect(lambda x: np.tanh(x) ** 2, 0.8), rel=1e-11)


def test_undeclared_kink_goes_to_quad(quad_sides):
    # |u - 0.3| has a kink expect() was not told of: the two rules disagree on the piece that
    # holds it, so that side goes to quad, which meets the tolerance there; the other does not.
    value = theory.expect(lambda u: np.abs(u - 0.3), 1.0)
    exact = 2 * math.exp(-0.045) / math.sqrt(2 * math.pi) + 0.3 * (2 * special.ndtr(0.3) - 1)
    assert value == pytest.approx(exact, rel=1e-10)
    assert quad_sides == [(0.0, 12.0)]


def test_non_finite_integrand_goes_to_quad(quad_sides):
    # nan on arrays only: the rule sees a non-finite value and hands both sides to quad,
    # which calls f one float at a time and integrates 1.
    value = theory.expect(lambda u: np.full(np.shape(u), np.nan if np.ndim(u) else 1.0), 1.0)
    assert quad_sides == [(-12.0, 0.0), (0.0, 12.0)]
    assert value == pytest.approx(1.0, rel=1e-10)
