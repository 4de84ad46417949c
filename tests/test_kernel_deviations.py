"""gains.toml's [[kernel_deviation]]: a kernel's known fault is reported, the gain still judged."""

from __future__ import annotations

import math

import pytest
import torch

from gainkit.suite import expectations, variance
from gainkit.suite.expectations import KernelDeviation, kernel_deviations

Z_ALARM, Z_POWER = 5.0, 3.7
LINEAR_DRAWS = 300 * 700  # one weight of the suite's linear layer, where 1.8.1-2.0.1 failed
BF16_NORMAL = KernelDeviation("normal_", "cpu", "bfloat16", "1.8.0", "kurtosis", "issue #1",
                              "tails clipped", until="2.13.0")


def clipped_normal(draws: int, clip: float = 3.5) -> torch.Tensor:
    # what a Box-Muller in bfloat16 draws: a normal without its tails beyond +-clip
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(2 * draws, generator=generator, dtype=torch.float64)
    z = z[z.abs() < clip][:draws]
    return z / z.pow(2).mean().sqrt()  # unit second moment, as the gain sets it


@pytest.mark.parametrize("version, applies", [
    ((1, 7, 1), False), ((1, 8, 0), True), ((2, 0, 1), True), ((2, 12, 1), True),
    ((2, 13, 0), False), ((2, 14, 1), False)])
def test_the_range_is_since_to_until(version, applies):
    assert BF16_NORMAL.applies("normal_", "cpu", "bfloat16", version) is applies


def test_only_its_kernel_device_and_dtype():
    version = (2, 0, 1)
    assert BF16_NORMAL.applies("normal_", "cpu", "bfloat16", version)
    assert not BF16_NORMAL.applies("uniform_", "cpu", "bfloat16", version)
    assert not BF16_NORMAL.applies("normal_", "cuda", "bfloat16", version)
    assert not BF16_NORMAL.applies("normal_", "cpu", "float16", version)


def test_the_data_names_the_bfloat16_cpu_normal():
    (deviation,) = expectations.KERNEL_DEVIATIONS
    assert deviation.statistic == "kurtosis" and "#166853" in deviation.reference
    assert kernel_deviations("normal_", "cpu", "bfloat16", (2, 0, 1)) == {
        "kurtosis": deviation.describe()}
    assert kernel_deviations("normal_", "cpu", "bfloat16", (1, 7, 1)) == {}


def test_a_clipped_normal_fails_the_kurtosis_check_unless_the_deviation_is_known():
    weights = clipped_normal(LINEAR_DRAWS)
    problems, _ = variance.judge_draws(weights, 1.0, "normal", torch.float64, Z_ALARM, Z_POWER)
    assert len(problems) == 1 and problems[0].startswith("kurtosis")
    known = {"kurtosis": BF16_NORMAL.describe()}
    problems, fields = variance.judge_draws(weights, 1.0, "normal", torch.float64, Z_ALARM,
                                            Z_POWER, unasserted=known)
    assert problems == [] and "tails clipped" in fields["deviation"]


def test_a_known_deviation_still_judges_the_gain():
    # negative control: the same clipped draws with a gain 5% off still fail on the variance
    weights = clipped_normal(LINEAR_DRAWS) * 1.05
    problems, fields = variance.judge_draws(
        weights, 1.0, "normal", torch.float64, Z_ALARM, Z_POWER,
        unasserted={"kurtosis": BF16_NORMAL.describe()})
    assert len(problems) == 1 and problems[0].startswith("variance")
    assert math.isclose(fields["ratio"], 1.05 ** 2, rel_tol=0.01)
