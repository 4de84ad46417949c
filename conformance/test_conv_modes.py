"""Which pass each fan rule of torch's inits preserves in a conv layer, and by what factor the
other pass changes, for every conv name of calculate_gain, plain, grouped and depthwise.

For each row of ``data/conv_modes.toml`` (layer kind x groups x fan rule) and each of its inits
(kaiming_normal_/kaiming_uniform_ in the row's mode, or xavier_normal_/xavier_uniform_), the
real init fills the weight of torch's own nn.Conv{1,2,3}d / nn.ConvTranspose{1,2,3}d (bias-free,
the row's groups) over independent draws; one stride-1 layer with circular padding measures
E[y^2]/E[x^2] and E[dx^2]/E[dy^2], judged against the row's formulas
(``gainkit.suite.conv_modes``: bands from the single-layer model, negative controls x1.05 and
x0.95 outside them, z a Bonferroni bound over every comparison of the file on every device).
The rows are torch's facts, ConvTranspose's exchanged fans and groups' over-counted fan_out
included (their ``deviation``): a torch whose fans changed fails here.
"""

from __future__ import annotations

import zlib

import pytest
import torch

from gainkit.suite import conv_modes
from gainkit.suite.expectations import DEVICE_DTYPES

CASES = conv_modes.CASES
DEVICES = sorted({device for device, _ in DEVICE_DTYPES})
Z = conv_modes.suite_z(len(DEVICES))


def case_seed(seed: int, case_id: str, device: str) -> int:
    key = "/".join(("conv-mode", case_id, device))
    return seed * 1000003 + zlib.crc32(key.encode("utf-8")) % 1000003


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_conv_mode_factors(case, device, seed, results):
    design = conv_modes.plan(case, Z)
    measurement = conv_modes.measure(case, design, device, torch.float32,
                                     case_seed(seed, case.id, device))
    verdict = conv_modes.judge(case, design, measurement)
    results.record(conv_modes.RECORD_KIND, case.layer, device=device, dtype="float32",
                   **verdict.record)
    assert not verdict.problems, (f"{case.module_text}, {case.init}:\n"
                                  + "\n".join(verdict.problems))
