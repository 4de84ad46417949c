"""The conv stack's mean field and finite-width model: counts, modes, factors, and calibration
against the probe over many seeds (docs/theory.md, "Convolutions")."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gainkit.meanfield.conv import ConvGeometry, ConvStack, frequency_modes
from gainkit.suite import conv_stacks
from gainkit.suite.expectations import GAINS

CONV = {case.id: case for case in GAINS if case.network == "conv"}


@pytest.mark.parametrize("spatial, modes", [((3,), (1, 1)), ((8,), (2, 3)), ((3, 3), (1, 4)),
                                            ((2, 2, 2), (8, 0)), ((4, 3), (2, 5))])
def test_frequency_modes(spatial, modes):
    real, pairs = frequency_modes(spatial)
    assert (real, pairs) == modes
    assert real + 2 * pairs == int(np.prod(spatial))


def test_factors_follow_the_counts_not_the_fans():
    layer = ConvGeometry(8, 8, (3, 3), transposed=True)
    stack = ConvStack(layer, 4, weight_variance=1.0 / layer.torch_fan("fan_in"))
    assert stack.forward_factor == pytest.approx(layer.forward_terms / layer.torch_fan("fan_in"))
    mean_field, mean, variance = stack.backward(1.05)
    assert mean_field[0] == pytest.approx(4 * math.log(1.05 ** 2 * stack.backward_factor))
    assert mean_field[-1] == 0.0 and np.all(mean < mean_field) and np.all(variance > 0)


def test_single_mode_limit_is_a_chi_square_product():
    # Kernel 1 on one position: a C x C Gaussian chain, ln q_n a sum of n + 1 ln(chi2_C / C)
    # whose relative variance is (1 + 2/C)^(n+1) - 1 exactly.
    stack = ConvStack(ConvGeometry(10, 10, (1,)), 3, weight_variance=0.1)
    assert stack.relative_variance(3) == pytest.approx(1.2 ** 4 - 1)


def test_model_refuses_what_it_does_not_cover():
    with pytest.raises(ValueError, match="square"):
        ConvStack(ConvGeometry(8, 4, (3,)), 4, 0.1)
    with pytest.raises(ValueError, match="square"):
        ConvStack(ConvGeometry(8, 8, (3,), groups=2), 4, 0.1)


@pytest.mark.parametrize("case_id", sorted(CONV))
def test_expected_variances_are_torch_fans(case_id):
    case = CONV[case_id]
    layer = conv_stacks.geometry(case)
    fan = layer.torch_fan("fan_in")  # square: fan_in = fan_out = forward_terms
    for init in ("xavier_normal", "kaiming_uniform_fan_out"):
        assert conv_stacks.weight_variance(case, init, layer) == pytest.approx(1.0 / fan)
    assert conv_stacks.weight_variance(case, "module_default", layer) == pytest.approx(
        1.0 / (3 * fan))


def test_negative_controls_leave_every_design_band():
    # At the suite's z and draws, a 5% gain error moves the control layer's centre by more
    # than both half-widths: the margin the suite's controls are measured against.
    z = 5.3
    for case in CONV.values():
        for init in conv_stacks.probe.INITS:
            design = conv_stacks.plan(case, init, z)
            for check in conv_stacks.CHECKS:
                at = design.control_layer(check)
                _, centre, half = design.bands(check)
                for factor in (1.05, 0.95):
                    _, other, other_half = design.bands(check, factor)
                    assert abs(other[at] - centre[at]) >= half[at] + other_half[at]


def _calibrated(case_id, init, seeds, draws=20):
    return conv_stacks.calibrate(CONV[case_id], init, seeds, draws=draws)


@pytest.mark.parametrize("init", ["kaiming_normal_fan_in", "xavier_uniform"])
def test_calibration_quick(init):
    # 800 stacks: a variance ratio's sd is sqrt(2 / 800) = 5%; 16 layer checks get 4 sd.
    found = _calibrated("conv_transpose2d", init, 40)
    for check in conv_stacks.CHECKS:
        low, high = found.variance_ratio_range[check]
        assert 0.8 < low and high < 1.2, (check, low, high)
        assert abs(found.mean_offset_z[check]) < 4.0


@pytest.mark.slow
@pytest.mark.parametrize("case_id", sorted(CONV))
@pytest.mark.parametrize("init", ["kaiming_normal_fan_in", "xavier_uniform", "module_default"])
def test_calibration_over_100_seeds(case_id, init):
    # 2000 stacks a design: sd of a variance ratio 3.2%; the model may overstate the variance
    # (Fenton-Wilkinson, conservative) but must not understate it.
    found = _calibrated(case_id, init, 100)
    for check in conv_stacks.CHECKS:
        low, high = found.variance_ratio_range[check]
        assert 0.85 < low and high < 1.13, (check, low, high)
        assert abs(found.mean_offset_z[check]) < 3.5
