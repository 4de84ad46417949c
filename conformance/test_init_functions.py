"""xavier_* and kaiming_* draw weights with the variance their gain implies.

Each test draws n i.i.d. weights and judges their second moment, kurtosis and (uniform) max|w|
against their sampling distribution under the correct implementation
(``gainkit.suite.variance``).

Bands are z standard deviations wide, z chosen so that the whole file raises a false alarm
with probability at most FALSE_ALARM_RATE (Bonferroni over every statistical assertion of
every parametrisation, CUDA ones included). n is chosen so that a gain off by 5% (variance
off by 9.75% or 10.25%) falls outside the band with probability at least 1 - MISS_RATE, and
each test asserts that sharpness before it measures.

Half precision: ``test_reduced_precision_variance`` draws the same checks in float16 and
bfloat16 (gains.toml-independent: the dtype matters to the draw, not to the gain's value),
for kaiming with a non-zero ``a`` in both modes and xavier, on every layer. Their bands add the
bound on what rounding to the dtype does to each statistic (``variance.rounding_terms``:
at most eps^2 / 12 of the second moment, 5.1e-6 for bfloat16's 8 significant bits), which is
negligible next to the sampling band; the max|w| check allows the eps / 2 rounding of the
largest weight.

Known kernel faults (gains.toml's [[kernel_deviation]]: torch 1.8-2.11's CPU bfloat16 normal_
clips the tails): there the kurtosis is recorded with the deviation instead of failing; the
variance, what the gain sets, is judged as everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import pytest
import torch

from gainkit.suite import designs, torchinfo, variance
from gainkit.suite.expectations import (
    DEVICE_DTYPES,
    GAINS,
    REDUCED_PRECISION,
    first_per_value,
    kernel_deviations,
)

FALSE_ALARM_RATE = 1e-4
MISS_RATE = 1e-4
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


# xavier takes the gain as a number: one case per distinct documented value is enough.
XAVIER_CASES = first_per_value(GAINS)

# Half precision: leaky_relu at slope 0.2 (a != 0 reaches calculate_gain) for kaiming, tanh's
# 5/3 for xavier; each init on every layer.
REDUCED_CASE = next(case for case in GAINS if case.id == "leaky_relu-0.2")
REDUCED_XAVIER_CASE = next(case for case in GAINS if case.id == "tanh")
REDUCED_INITS = tuple(f"kaiming_{family}_{mode}" for family in FAMILIES for mode in MODES) + tuple(
    f"xavier_{family}" for family in FAMILIES)
REDUCED_DEVICES = len(dict.fromkeys(device for device, _ in DEVICE_DTYPES))

TESTS_IN_FILE = len(LAYERS) * len(FAMILIES) * (len(MODES) * len(GAINS) + len(XAVIER_CASES))
REDUCED_TESTS = len(LAYERS) * len(REDUCED_INITS) * REDUCED_DEVICES * len(REDUCED_PRECISION)
ASSERTIONS_IN_FILE = (TESTS_IN_FILE * len(DEVICE_DTYPES) + REDUCED_TESTS) * CHECKS_PER_TEST
Z_ALARM = designs.bonferroni_z(ASSERTIONS_IN_FILE, FALSE_ALARM_RATE)
Z_POWER = designs.upper_z(MISS_RATE)


def draws_needed(family: str) -> int:
    return variance.draws_needed(family, Z_ALARM, Z_POWER)


def judged(weights, expected_variance, family, dtype, results, case_id, **setting) -> None:
    known = kernel_deviations(f"{family}_", setting["device"], torchinfo.dtype_name(dtype),
                              torchinfo.installed_version())
    problems, fields = variance.judge_draws(weights, expected_variance, family, dtype, Z_ALARM,
                                            Z_POWER, unasserted=known)
    results.record("init", case_id, dtype=torchinfo.dtype_name(dtype), **setting, **fields)
    assert not problems, "\n".join(problems)


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

    weights = variance.draw(kaiming, layer.shape, draws_needed(family), device, dtype, node_seed)
    judged(weights, case.value ** 2 / fan(layer, mode), family, dtype, results, case.id,
           init=f"kaiming_{family}_", mode=mode, layer=layer.id, device=device)


@pytest.mark.parametrize("layer", LAYERS, ids=[layer.id for layer in LAYERS])
@pytest.mark.parametrize("case", XAVIER_CASES, ids=[case.id for case in XAVIER_CASES])
@pytest.mark.parametrize("family", FAMILIES)
def test_xavier_variance(family, case, layer, device, dtype, node_seed, results):
    initialise = getattr(torch.nn.init, f"xavier_{family}_")
    weights = variance.draw(lambda weight: initialise(weight, gain=case.value), layer.shape,
                            draws_needed(family), device, dtype, node_seed)
    expected = case.value ** 2 * 2 / (layer.fan_in + layer.fan_out)
    judged(weights, expected, family, dtype, results, case.id, init=f"xavier_{family}_",
           mode="fan_avg", layer=layer.id, device=device)


def require_random_kernels(device: str, dtype) -> None:
    """Skip, saying why, where this torch cannot draw normal or uniform values in ``dtype`` on
    ``device`` at all (tensor methods, not torch.nn.init: a fault there cannot cause a skip)."""
    for method in ("normal_", "uniform_"):
        try:
            getattr(torch.empty(8, device=device, dtype=dtype), method)()
        except RuntimeError as error:
            pytest.skip(f"torch {torch.__version__} has no {device} {torchinfo.dtype_name(dtype)}"
                        f" {method} kernel: {str(error).splitlines()[0]}")


@pytest.mark.parametrize("layer", LAYERS, ids=[layer.id for layer in LAYERS])
@pytest.mark.parametrize("init", REDUCED_INITS)
def test_reduced_precision_variance(init, layer, device, reduced_dtype, node_seed, results,
                                    require_gain):
    dtype = reduced_dtype
    require_random_kernels(device, dtype)
    family = "normal" if "normal" in init else "uniform"
    if init.startswith("kaiming"):
        case = REDUCED_CASE
        mode = "fan_" + init.rpartition("_fan_")[2]
        value = require_gain(case)
        initialise = getattr(torch.nn.init, f"kaiming_{family}_")

        def fill(weight):
            initialise(weight, a=case.slope, mode=mode, nonlinearity=case.nonlinearity)

        expected = value ** 2 / fan(layer, mode)
    else:
        case, mode = REDUCED_XAVIER_CASE, "fan_avg"
        initialise = getattr(torch.nn.init, f"xavier_{family}_")

        def fill(weight):
            initialise(weight, gain=case.value)

        expected = case.value ** 2 * 2 / (layer.fan_in + layer.fan_out)
    weights = variance.draw(fill, layer.shape, draws_needed(family), device, dtype, node_seed)
    judged(weights, expected, family, dtype, results, case.id, init=f"{init.split('_fan')[0]}_",
           mode=mode, layer=layer.id, device=device)
