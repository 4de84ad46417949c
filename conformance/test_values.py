"""calculate_gain returns the documented value, of the documented type, and rejects the rest."""

from __future__ import annotations

import math

import pytest
from torch.nn.init import calculate_gain

from gainkit.suite.expectations import CALLING, GAINS

LEAKY_RELU = next(case for case in GAINS if case.id == "leaky_relu")
NAMES = sorted({case.nonlinearity for case in GAINS})
OTHER_CASES = [case for case in GAINS if case.nonlinearity != "leaky_relu"]


def examples(rows) -> list:
    return [pytest.param(row.evaluate(), id=row.id) for row in rows]


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


@pytest.mark.parametrize("slope", examples(CALLING.accepted_slopes))
def test_leaky_relu_accepts_ints_and_floats(slope):
    gain = calculate_gain("leaky_relu", slope)
    assert gain == leaky_relu_gain(slope)
    assert type(gain) is float


def test_leaky_relu_none_means_default_slope():
    assert calculate_gain("leaky_relu", None) == leaky_relu_gain(CALLING.default_slope)
    assert calculate_gain("leaky_relu", None) == calculate_gain("leaky_relu") == LEAKY_RELU.value


@pytest.mark.parametrize("slope", examples(CALLING.rejected_slopes))
def test_leaky_relu_rejects_non_numbers(slope):
    assert_raises_message(CALLING.invalid_slope_message.format(slope=slope), "leaky_relu", slope)


@pytest.mark.parametrize("param", examples(CALLING.ignored_params))
@pytest.mark.parametrize("case", OTHER_CASES, ids=[case.id for case in OTHER_CASES])
def test_param_is_ignored_by_other_nonlinearities(case, param, require_gain):
    gain = require_gain(case, case.nonlinearity, param)
    assert gain == case.value
    assert type(gain).__name__ == case.type


@pytest.mark.parametrize("name", [variant for name in NAMES
                                  for variant in sorted({name.upper(), name.title()})])
def test_names_are_case_sensitive(name):
    assert_raises_message(CALLING.unsupported_message.format(name=name), name)


@pytest.mark.parametrize("name", CALLING.unsupported_names)
def test_unsupported_nonlinearity_message(name):
    assert_raises_message(CALLING.unsupported_message.format(name=name), name)
