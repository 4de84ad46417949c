"""What the modules' defaults do to a deep network: stacks of default-initialised nn.Linear
layers, one per activation of calculate_gain's list, against mean field with the biases'
variance in the length map (``gainkit.suite.default_stacks``, which says how each statistic is
judged and why its centre is exact for homogeneous activations).

Each stack is width 64, depth 6, 400 independent draws, weights and biases drawn by nn.Linear's
own reset_parameters. Checked: the mean second moment of every layer where mean field is exact
(all for linear, relu, leaky_relu; layer 1 for the others) against the profile from q0 = 1 (it
shrinks to the floor the biases hold it at), the measured chi_1 against theory, and the regime
(ordered for all but leaky_relu at slope 5). Negative controls: the same draws with the weights
x1.05 and x0.95 must leave the forward bands and the chi_1 band. z: a Bonferroni bound over
every comparison of the file on every device, at the stability suite's family-wise rate.
"""

from __future__ import annotations

import zlib

import pytest
import torch

from gainkit.suite import coverage, default_stacks, designs
from gainkit.suite.expectations import DEVICE_DTYPES

CASES = default_stacks.CASES
DEVICES = sorted({device for device, _ in DEVICE_DTYPES})
Z = designs.bonferroni_z(len(CASES) * default_stacks.comparisons() * len(DEVICES),
                         coverage.FAMILY_ALPHA)


def stack_seed(seed: int, case_id: str, device: str) -> int:
    key = "/".join(("default-stack", default_stacks.MODULE_ID, case_id, device))
    return seed * 1000003 + zlib.crc32(key.encode("utf-8")) % 1000003


@pytest.mark.parametrize("case", CASES, ids=[default_stacks.record_id(case) for case in CASES])
def test_default_linear_stack(case, device, seed, results):
    measurement = default_stacks.measure(case, device, torch.float32,
                                         stack_seed(seed, case.id, device))
    verdict = default_stacks.judge(case, measurement, Z)
    record = dict(verdict.record)
    del record["case_id"]
    results.record("default_stack", default_stacks.record_id(case), device=device,
                   dtype="float32", **record)
    assert not verdict.problems, (default_stacks.summary(case).sentence() + "\n"
                                  + "\n".join(verdict.problems))
