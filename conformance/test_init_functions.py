"""xavier_* and kaiming_* draw weights with the variance their gain implies.

Each test draws n i.i.d. weights and compares three statistics with their sampling
distribution under the correct implementation:

- the second moment m2 = mean(w^2) (the mean is known to be 0): relative standard deviation
  sqrt((mu4 - 1) / n), mu4 the standardised 4th moment (3 normal, 9/5 uniform);
- the kurtosis m4 / m2^2 (tells normal draws from uniform ones), standard deviation by the
  delta method from the 2nd to 8th moments;
- for uniform draws, max|w|: never above the bound sqrt(3) * std, and below
  bound * (1 - delta) with probability (1 - delta)^n only.

Bands are z standard deviations wide, z chosen so that the whole file raises a false alarm
with probability at most FALSE_ALARM_RATE (Bonferroni over every statistical assertion of
every parametrisation, CUDA ones included). n is chosen so that a gain off by 5% (variance
off by 9.75% or 10.25%) falls outside the band with probability at least 1 - MISS_RATE, and
each test asserts that sharpness before it measures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple

import pytest
import torch
from scipy.stats import norm

from gainkit.suite.expectations import DEVICE_DTYPES, GAINS

FALSE_ALARM_RATE = 1e-4
MISS_RATE = 1e-4
GAIN_ERROR = 0.05
# A 5% gain error moves the variance by 1.05^2 - 1 or 1 - 0.95^2; the smaller must show.
VARIANCE_EFFECT = min((1 + GAIN_ERROR) ** 2 - 1, 1 - (1 - GAIN_ERROR) ** 2)
CHECKS_PER_TEST = 3  # second moment, kurtosis, max|w| (uniform only; counted for all)


@dataclass(frozen=True)
class Layer:
    """A weight shape and the fans PyTorch documents for it."""

    id: str
    shape: Tuple[int, ...]
    fan_in: int
    fan_out: int

    @property
    def numel(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return count


# Rectangular on purpose, so that a swapped fan changes the variance. The weights of
# nn.Linear(700, 300), nn.Conv1d(96, 48, 5) and nn.Conv2d(32, 64, 3): fan_in is
# in_features or in_channels * kernel numel, fan_out the same with the outputs.
LAYERS = [
    Layer("linear-700to300", (300, 700), fan_in=700, fan_out=300),
    Layer("conv1d-96to48-k5", (48, 96, 5), fan_in=96 * 5, fan_out=48 * 5),
    Layer("conv2d-32to64-k3", (64, 32, 3, 3), fan_in=32 * 9, fan_out=64 * 9),
]
FAMILIES = ("normal", "uniform")
MODES = ("fan_in", "fan_out")
def first_per_value(cases) -> list:
    chosen = {}
    for case in cases:
        chosen.setdefault(case.value, case)
    return list(chosen.values())


# xavier takes the gain as a number: one case per distinct documented value is enough.
XAVIER_CASES = first_per_value(GAINS)

TESTS_IN_FILE = len(LAYERS) * len(FAMILIES) * (len(MODES) * len(GAINS) + len(XAVIER_CASES))
ASSERTIONS_IN_FILE = TESTS_IN_FILE * len(DEVICE_DTYPES) * CHECKS_PER_TEST
ALARM_RATE_EACH = FALSE_ALARM_RATE / ASSERTIONS_IN_FILE
Z_ALARM = float(norm.isf(ALARM_RATE_EACH / 2))  # two-sided bands
Z_POWER = float(norm.isf(MISS_RATE))


def standard_moment(family: str, order: int) -> float:
    """E[x^order] for x of that family with mean 0 and variance 1 (even orders)."""
    if family == "normal":
        return double_factorial(order - 1)
    # x ~ U(-sqrt(3), sqrt(3))
    return 3.0 ** (order // 2) / (order + 1)


def double_factorial(value: int) -> float:
    result = 1.0
    while value > 1:
        result *= value
        value -= 2
    return result


def second_moment_rel_sd(family: str, draws: int) -> float:
    return math.sqrt((standard_moment(family, 4) - 1) / draws)


def kurtosis_sd(family: str, draws: int) -> float:
    """Delta-method standard deviation of mean(x^4) / mean(x^2)^2 (mean known to be 0)."""
    m4, m6, m8 = (standard_moment(family, order) for order in (4, 6, 8))
    unit = (m8 - m4 ** 2) - 4 * m4 * (m6 - m4) + 4 * m4 ** 2 * (m4 - 1)
    return math.sqrt(unit / draws)


def draws_needed(family: str) -> int:
    """Fewest draws whose band still excludes a 5% gain error with the required power."""
    return math.ceil(((Z_ALARM + Z_POWER) / VARIANCE_EFFECT) ** 2
                     * (standard_moment(family, 4) - 1))


def other(family: str) -> str:
    return "uniform" if family == "normal" else "normal"


def assert_sharp(family: str, draws: int) -> None:
    sd = second_moment_rel_sd(family, draws)
    assert Z_ALARM * sd + Z_POWER * sd <= VARIANCE_EFFECT, "band too wide to see a 5% gain error"
    kurtosis_gap = abs(standard_moment(family, 4) - standard_moment(other(family), 4))
    assert (Z_ALARM * kurtosis_sd(family, draws)
            + Z_POWER * kurtosis_sd(other(family), draws)) <= kurtosis_gap


def draw(initialise, layer: Layer, family: str, device: str, dtype, seed: int) -> torch.Tensor:
    """Enough freshly initialised weight tensors, flattened to one float64 CPU vector."""
    tensors = math.ceil(draws_needed(family) / layer.numel)
    torch.manual_seed(seed)
    weights = []
    for _ in range(tensors):
        weight = torch.empty(layer.shape, device=device, dtype=dtype)
        initialise(weight)
        weights.append(weight.detach().to("cpu", torch.float64).reshape(-1))
    return torch.cat(weights)


def check_draws(weights, expected_variance: float, family: str, dtype, record) -> None:
    draws = weights.numel()
    assert_sharp(family, draws)
    second = (weights ** 2).mean().item()
    ratio = second / expected_variance
    ratio_half_width = Z_ALARM * second_moment_rel_sd(family, draws)
    kurtosis = (weights ** 4).mean().item() / second ** 2
    kurtosis_half_width = Z_ALARM * kurtosis_sd(family, draws)
    fields = dict(family=family, draws=draws, expected_variance=expected_variance,
                  measured_variance=second, ratio=ratio, band_lo=1 - ratio_half_width,
                  band_hi=1 + ratio_half_width, kurtosis=kurtosis,
                  kurtosis_expected=standard_moment(family, 4),
                  kurtosis_half_width=kurtosis_half_width, z=Z_ALARM)
    bound_ok = True
    if family == "uniform":
        bound = math.sqrt(3 * expected_variance)
        largest = weights.abs().max().item()
        # P(max|w| < bound (1 - slack)) = (1 - slack)^n <= exp(-n slack) = ALARM_RATE_EACH
        slack = -math.log(ALARM_RATE_EACH) / draws
        rounding = 4 * torch.finfo(dtype).eps
        fields.update(max_abs=largest, bound=bound, bound_lo=bound * (1 - slack))
        bound_ok = bound * (1 - slack) <= largest <= bound * (1 + rounding)
    passed = (abs(ratio - 1) <= ratio_half_width and bound_ok
              and abs(kurtosis - standard_moment(family, 4)) <= kurtosis_half_width)
    record(verdict="pass" if passed else "fail", **fields)
    assert abs(ratio - 1) <= ratio_half_width, (
        f"variance {second:.6g} is {ratio:.4f} x the expected {expected_variance:.6g}; "
        f"band 1 +- {ratio_half_width:.4f} (n={draws}, z={Z_ALARM:.2f})")
    assert abs(kurtosis - standard_moment(family, 4)) <= kurtosis_half_width, (
        f"kurtosis {kurtosis:.3f}, a {family} has {standard_moment(family, 4):.3f} "
        f"+- {kurtosis_half_width:.3f}")
    if family == "uniform":
        assert largest <= bound * (1 + rounding), f"max|w| {largest:.6g} exceeds bound {bound:.6g}"
        assert largest >= bound * (1 - slack), (
            f"max|w| {largest:.6g} stays below the bound {bound:.6g} by more than chance allows")


def fan(layer: Layer, mode: str) -> int:
    return layer.fan_in if mode == "fan_in" else layer.fan_out


@pytest.mark.parametrize("layer", LAYERS, ids=[layer.id for layer in LAYERS])
@pytest.mark.parametrize("case", GAINS, ids=[case.id for case in GAINS])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("family", FAMILIES)
def test_kaiming_variance(family, mode, case, layer, device, dtype, node_seed, results,
                          require_gain):
    require_gain(case)  # a gain missing in this torch fails here with the patch hint
    initialise = getattr(torch.nn.init, f"kaiming_{family}_")
    slope = case.slope if case.slope is not None else 0

    def kaiming(weight):
        initialise(weight, a=slope, mode=mode, nonlinearity=case.nonlinearity)

    weights = draw(kaiming, layer, family, device, dtype, node_seed)

    def record(**fields):
        results.record("init", case.id, init=f"kaiming_{family}_", mode=mode, layer=layer.id,
                       device=device, dtype=str(dtype), **fields)

    check_draws(weights, case.value ** 2 / fan(layer, mode), family, dtype, record)


@pytest.mark.parametrize("layer", LAYERS, ids=[layer.id for layer in LAYERS])
@pytest.mark.parametrize("case", XAVIER_CASES, ids=[case.id for case in XAVIER_CASES])
@pytest.mark.parametrize("family", FAMILIES)
def test_xavier_variance(family, case, layer, device, dtype, node_seed, results):
    initialise = getattr(torch.nn.init, f"xavier_{family}_")
    weights = draw(lambda weight: initialise(weight, gain=case.value), layer, family, device,
                   dtype, node_seed)

    def record(**fields):
        results.record("init", case.id, init=f"xavier_{family}_", mode="fan_avg",
                       layer=layer.id, device=device, dtype=str(dtype), **fields)

    expected = case.value ** 2 * 2 / (layer.fan_in + layer.fan_out)
    check_draws(weights, expected, family, dtype, record)
