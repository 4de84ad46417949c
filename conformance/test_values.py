"""calculate_gain returns the documented value, of the documented type, and rejects the rest."""

from __future__ import annotations

import math

import numpy
import pytest
import torch
from torch.nn.init import calculate_gain

from gainkit import activations
from gainkit.suite.expectations import GAINS

DEFAULT_SLOPE = activations.get("leaky_relu").defaults["negative_slope"]
LEAKY_RELU = next(case for case in GAINS if case.id == "leaky_relu")
NAMES = sorted({case.nonlinearity for case in GAINS})
OTHER_CASES = [case for case in GAINS if case.nonlinearity != "leaky_relu"]
# Names users try that calculate_gain has never supported (no upstream issue adds them).
UNSUPPORTED_NAMES = ["gelu", "silu", "elu", "mish", "softplus", "hardswish", "softsign",
                     "identity", ""]


def leaky_relu_gain(slope) -> float:
    return math.sqrt(2.0 / (1 + slope ** 2))


def assert_raises_message(expected: str, *arguments) -> None:
    with pytest.raises(ValueError) as raised:
        calculate_gain(*arguments)
    assert str(raised.value) == expected


@pytest.mark.parametrize("case", GAINS, ids=[case.id for case in GAINS])
def test_documented_value_and_type(case, require_gain, results):
    measured = None
    try:
        measured = require_gain(case)
    finally:
        results.record("value", case.id, nonlinearity=case.nonlinearity,
                       param=case.param if case.has_param else None,
                       expected=case.value, expected_type=case.type,
                       measured=measured, measured_type=type(measured).__name__,
                       verdict="pass" if (measured == case.value
                                          and type(measured).__name__ == case.type)
                       else "missing" if measured is None else "fail")
    assert measured == case.value
    assert type(measured).__name__ == case.type


@pytest.mark.parametrize("slope", [0, 10, -3, 0.2, 1e-3, numpy.float64(0.2)],
                         ids=["int-0", "int-10", "int-negative", "float", "float-small",
                              "numpy-float64"])
def test_leaky_relu_accepts_ints_and_floats(slope):
    gain = calculate_gain("leaky_relu", slope)
    assert gain == leaky_relu_gain(slope)
    assert type(gain) is float


def test_leaky_relu_none_means_default_slope():
    assert calculate_gain("leaky_relu", None) == leaky_relu_gain(DEFAULT_SLOPE)
    assert calculate_gain("leaky_relu", None) == calculate_gain("leaky_relu") == LEAKY_RELU.value


# bool is an int subclass, numpy.float32 is not a float subclass and a 0-d tensor is neither:
# upstream rejects all of them (the bool check comes before the int check).
@pytest.mark.parametrize("slope", [True, False, numpy.float32(0.2), torch.tensor(0.2), "0.2",
                                   [0.2]],
                         ids=["bool-true", "bool-false", "numpy-float32", "tensor-0d", "str",
                              "list"])
def test_leaky_relu_rejects_non_numbers(slope):
    assert_raises_message(f"negative_slope {slope} not a valid number",
                          "leaky_relu", slope)


@pytest.mark.parametrize("param", [0.2, 3, True, "0.2", numpy.float32(0.2), torch.tensor(0.2)],
                         ids=["float", "int", "bool", "str", "numpy-float32", "tensor-0d"])
@pytest.mark.parametrize("case", OTHER_CASES, ids=[case.id for case in OTHER_CASES])
def test_param_is_ignored_by_other_nonlinearities(case, param, require_gain):
    gain = require_gain(case, case.nonlinearity, param)
    assert gain == case.value
    assert type(gain).__name__ == case.type


@pytest.mark.parametrize("name", [variant for name in NAMES
                                  for variant in sorted({name.upper(), name.title()})])
def test_names_are_case_sensitive(name):
    assert_raises_message(f"Unsupported nonlinearity {name}", name)


@pytest.mark.parametrize("name", UNSUPPORTED_NAMES)
def test_unsupported_nonlinearity_message(name):
    assert_raises_message(f"Unsupported nonlinearity {name}", name)
