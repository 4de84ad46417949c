"""Deep-network stability of the six convolution gains, measured through torch's own conv layers.

For each conv case of gains.toml (conv1d ... conv_transpose3d, ``network = "conv"``) and each of
xavier_normal/uniform, kaiming_normal/uniform (fan_in, fan_out) and the module's own
``reset_parameters``, the probe (``gainkit.probe.conv``) runs deep, bias-free, linear, circular
stacks of that layer type through torch.nn.functional's conv ops and compares the per-layer
second moments and squared gradients with the mean field of the exact term counts and its
finite-width bands (``gainkit.meanfield.conv.ConvStack``, docs/theory.md "Convolutions").

Every test also runs the same draws with the weights x1.05 and x0.95 and asserts that they land
outside the band: each band provably resolves a 5% gain error. z is the stability suite's one
Bonferroni z (``coverage.suite_z`` counts these checks too). The runs and verdicts are
``gainkit.suite.conv_stacks``'; this file parametrises them and asserts. The MLP probe's
--gainkit-width/-depth/-draws do not apply: the conv sizes are chosen from theory.
"""

from __future__ import annotations

import pytest

from gainkit.probe import conv
from gainkit.suite import conv_stacks, coverage

CASES = conv_stacks.CASES


@pytest.fixture(scope="module")
def z_score(probe_overrides) -> float:
    """The stability suite's z (the MLP file computes the same)."""
    return coverage.suite_z(coverage.subjects(), probe_overrides["depth"])


_RUNS = {}


def _run(case, init, device, dtype, seed, z, require_gain):
    """The run of one configuration (cached: its forward and backward checks share it)."""
    key = (case.id, init, device, str(dtype), seed, z)
    if key not in _RUNS:
        require_gain(case)  # fails with the patch to apply when torch lacks the gain
        _RUNS[key] = conv_stacks.run(case, init, device, dtype, seed, z)
    return _RUNS[key]


def _judged(check, run, results):
    verdict = conv_stacks.judge(check, run)
    results.record(**verdict.record)
    assert verdict.passed, verdict.message()


parametrise_case = pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
parametrise_init = pytest.mark.parametrize("init", conv.INITS)


@parametrise_case
@parametrise_init
def test_conv_forward_second_moment(case, init, device, dtype, seed, z_score, require_gain,
                                    results):
    run = _run(case, init, device, dtype, seed, z_score, require_gain)
    _judged("forward", run, results)


@parametrise_case
@parametrise_init
def test_conv_backward_squared_gradient(case, init, device, dtype, seed, z_score, require_gain,
                                        results):
    run = _run(case, init, device, dtype, seed, z_score, require_gain)
    _judged("backward", run, results)
