"""Deep-network stability of every calculate_gain value, measured through torch's own inits.

For each gain (gains.toml cases with ``stability = true``, plus the SNN paper's SELU gain 1) and
each of xavier_normal/uniform and kaiming_normal/uniform (fan_in, fan_out), the probe
(``gainkit.probe.mlp``) runs deep bias-free square MLPs initialised by the real torch function and
compares them with mean-field theory corrected for finite width (``gainkit.meanfield.finitewidth``):

- forward: per-layer second moment of the pre-activations against the predicted profile,
  and its converged value (or, for critical gains, the endpoint of a preserved signal);
- backward: the per-layer growth of the squared gradient against chi, the measured chi_1
  (with the depth at which gradients change 10x) against theory;
- regime: once per gain, device and dtype, on the slopes of all its inits pooled: the measured
  chi_1 band fits the regime theory and gains.toml give, and only it when ordered or chaotic;
- claims: the forum's statements (tanh 5/3, selu 3/4, selu gain 1) in the forum's network.

Every test also runs a negative control -- the same draws with the weights scaled by 1.05 and
0.95 -- and asserts that it lands outside the band, so each band provably resolves a 5% gain
error. Bands are z standard errors of the finite-width model, z from a Bonferroni bound that
keeps the whole file's false-alarm probability under ``coverage.FAMILY_ALPHA``. The runs and
verdicts are ``gainkit.suite.verdicts``'; this file parametrises them and asserts.
"""

from __future__ import annotations

import pytest

from gainkit.probe import mlp
from gainkit.suite import coverage, verdicts

SUBJECTS = coverage.subjects()
CLAIMED = tuple(subject for subject in SUBJECTS if subject.claim)


@pytest.fixture(scope="module")
def z_score(probe_overrides) -> float:
    """Bonferroni z over every comparison the file makes on every device and dtype."""
    return coverage.suite_z(SUBJECTS, probe_overrides["depth"])


_RUNS = {}


def _run(subject, init, device, dtype, seed, z, overrides, require_gain, claim=False):
    """The run of one configuration (cached: its forward and backward checks share it)."""
    key = (subject.id, init, device, str(dtype), seed, claim, tuple(sorted(overrides.items())))
    if key not in _RUNS:
        if subject.case is not None:
            require_gain(subject.case)  # fails with the patch to apply when torch lacks it
        _RUNS[key] = verdicts.run(subject, init, device, dtype, seed, z, overrides, claim)
    return _RUNS[key]


def _judged(check, run, results):
    verdict = verdicts.judge(check, run)
    results.record(**verdict.record)
    assert verdict.passed, verdict.message()


SUBJECT_IDS = [subject.id for subject in SUBJECTS]
parametrise_subject = pytest.mark.parametrize("subject", SUBJECTS, ids=SUBJECT_IDS)
parametrise_init = pytest.mark.parametrize("init", mlp.INITS)


@parametrise_subject
@parametrise_init
def test_forward_second_moment_follows_profile(subject, init, device, dtype, seed, z_score,
                                               probe_overrides, require_gain, results):
    run = _run(subject, init, device, dtype, seed, z_score, probe_overrides, require_gain)
    _judged("forward", run, results)


@parametrise_subject
@parametrise_init
def test_backward_gradient_growth_matches_chi(subject, init, device, dtype, seed, z_score,
                                              probe_overrides, require_gain, results):
    run = _run(subject, init, device, dtype, seed, z_score, probe_overrides, require_gain)
    _judged("backward", run, results)


@parametrise_subject
def test_measured_regime_pools_every_init(subject, device, dtype, seed, z_score, probe_overrides,
                                          require_gain, results):
    """The runs of the two tests above (the same cache: one scheduling unit), judged together."""
    runs = [_run(subject, init, device, dtype, seed, z_score, probe_overrides, require_gain)
            for init in mlp.INITS]
    verdict = verdicts.judge_regime(runs)
    results.record(**verdict.record)
    assert verdict.passed, verdict.message()


@pytest.mark.parametrize("subject", CLAIMED, ids=[subject.id for subject in CLAIMED])
def test_forum_claim(subject, device, dtype, seed, z_score, probe_overrides, require_gain,
                     results):
    """The forum's network (xavier_normal, unit input) run deep enough to settle at q*."""
    run = _run(subject, coverage.CLAIM_INIT, device, dtype, seed, z_score, probe_overrides,
               require_gain, claim=True)
    _judged("claim", run, results)
