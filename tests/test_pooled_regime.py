"""The regime judged once per gain, device and dtype on the pooled slopes of all its inits
(``designs.pool_for_regime``, ``verdicts.judge_regime``): the draws it needs, the guarantee it
gives, and a verdict that fails on a real measurement of a gain in the wrong regime.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from gainkit.probe.mlp import INITS
from gainkit.suite import coverage, designs

SUBJECTS = {subject.id: subject for subject in coverage.subjects()}
Z = coverage.suite_z(tuple(SUBJECTS.values()))
TELLS_APART = [s for s in SUBJECTS.values() if s.regime in ("ordered", "chaotic")]


def per_init_regime_draws(subject) -> list:
    """Draws each init would need to tell the regime alone (the rule pooling replaces)."""
    return [designs.plan(subject.activation, subject.slope, subject.gain, Z,
                         weight_kurtosis=coverage.weight_kurtosis(init),
                         weights=coverage.weight_ensemble(init)).draws
            for init in INITS]


def test_selu_at_gain_1_needs_under_a_fifth_of_the_draws_once_pooled():
    subject = SUBJECTS["selu-lecun"]
    alone = per_init_regime_draws(subject)
    pooled = [design.draws for design in coverage.suite_designs(subject, Z)]
    # 140 an init (36 orthogonal) alone, 24 (8) pooled at z = 5.29: what its controls need
    assert all(a >= 4 * p for a, p in zip(alone, pooled))
    assert sum(pooled) < sum(alone) / 5


@pytest.mark.parametrize("subject", TELLS_APART, ids=[s.id for s in TELLS_APART])
def test_pooled_band_cannot_reach_the_near_critical_boundary(subject):
    pooled = coverage.suite_designs(subject, Z)
    margin = designs.regime_margin(pooled[0].mean_field)
    _, sd = designs.pooled_statistic(pooled)
    band = designs.pooled_band(pooled)
    # a measurement z sd off the prediction still has its whole band beyond the boundary
    assert Z * sd + band.half_width <= margin


def test_pooling_raises_every_init_by_one_factor_when_the_controls_ask_too_few():
    planned = coverage.suite_designs(SUBJECTS["selu-lecun"], Z)
    assert designs._pooling_shortfall(planned) <= 1.0  # the controls' draws suffice today
    few = tuple(replace(d, draws=4) for d in planned)
    assert designs._pooling_shortfall(few) > 1.0
    raised = designs.pool_for_regime(few)
    assert designs._pooling_shortfall(raised) <= 1.0
    assert len({d.draws for d in raised}) == 1  # one factor: the weights are kept
    fewer = tuple(replace(d, draws=d.draws - 2) for d in raised)
    assert designs._pooling_shortfall(fewer) > 1.0  # and no more than needed


@pytest.mark.parametrize("subject", list(SUBJECTS.values()), ids=list(SUBJECTS))
def test_pooled_controls_leave_the_residual_band(subject):
    pooled = coverage.suite_designs(subject, Z)
    band = designs.pooled_band(pooled, "residual")
    for factor in designs.CONTROL_FACTORS:
        mean, sd = designs.pooled_statistic(pooled, "residual", factor)
        assert not band.contains(mean + math.copysign(Z * sd, band.centre - mean))


def test_weights_are_inverse_variance_with_a_rounding_floor():
    pooled = coverage.suite_designs(SUBJECTS["relu"], Z)
    weights = designs.pooled_weights(pooled)
    precision = np.array([d.draws / d.slope_statistic()[1] for d in pooled])
    assert weights.sum() == pytest.approx(1.0)
    assert weights == pytest.approx(precision / precision.sum(), rel=1e-3)
    # linear orthogonal nets keep norms: a model variance of 0, weighted by the rounding floor
    linear = coverage.suite_designs(SUBJECTS["linear"], Z)
    assert linear[INITS.index("orthogonal")].slope_statistic()[1] == 0.0
    assert np.isfinite(designs.pooled_weights(linear)).all()


def test_the_suite_z_counts_the_pooled_comparisons():
    subjects = tuple(SUBJECTS.values())
    with_pool = coverage.suite_z(subjects)
    saved = coverage.PER_POOL
    try:
        coverage.PER_POOL = 0
        assert coverage.suite_z(subjects) < with_pool
    finally:
        coverage.PER_POOL = saved


# --- the verdict on real runs ---------------------------------------------------------------

torch = pytest.importorskip("torch")
from gainkit.suite import verdicts  # noqa: E402 - needs torch


@pytest.fixture(scope="module")
def selu_lecun_runs():
    subject = SUBJECTS["selu-lecun"]
    return [verdicts.run(subject, init, "cpu", torch.float32, 0, Z) for init in INITS]


def test_selu_at_gain_1_is_measured_chaotic_and_only_chaotic(selu_lecun_runs):
    verdict = verdicts.judge_regime(selu_lecun_runs)
    assert verdict.passed, verdict.message()
    low, high = verdict.record["chi_1_band"]
    assert low > 10 ** (1 / 100)  # beyond the near-critical boundary
    assert verdict.record["init"] == "pooled" and verdict.record["inits"] == list(INITS)


def test_a_gain_5_percent_low_is_caught(selu_lecun_runs):
    """Negative control: the same draws at 0.95x the gain, judged as if they were the nominal
    runs (chi_1 1.04, its band reaching the near-critical 1.02), fail the regime and the chi_1
    band."""
    low = designs.CONTROL_FACTORS.index(0.95) + 1
    shifted = [replace(r, observed=(r.observed[low],) + r.observed[1:]) for r in selu_lecun_runs]
    verdict = verdicts.judge_regime(shifted)
    assert not verdict.passed
    assert any(line.startswith("regime: the measured chi_1 band") for line in verdict.problems)
    assert any(line.startswith("chi_1 of every init pooled") for line in verdict.problems)


def test_runs_of_different_gains_are_not_pooled(selu_lecun_runs):
    other = verdicts.run(SUBJECTS["tanh"], "orthogonal", "cpu", torch.float32, 0, Z)
    with pytest.raises(ValueError, match="one gain, device and dtype"):
        verdicts.judge_regime(selu_lecun_runs[:-1] + [other])
