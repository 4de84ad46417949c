"""The installed torch's calculate_gain agrees with its documented behaviour on any input.

The documented behaviour is written once, in `documented_gain`: the values, types and
first releases of gains.toml (gainkit.suite.expectations), and the rules of
src/gainkit/data/gains.toml's [calling] table: leaky_relu's gain is sqrt(2 / (1 + slope^2)), slope
0.01 when param is None; its param must be an int but not a bool, or a float (subclasses such as
numpy.float64 included; numpy.float32, numpy integers and 0-d tensors are rejected); param is
ignored for every other name; names are case-sensitive; anything else raises ValueError with
upstream's message. Hypothesis draws names and params; derandomized, with no example
database, so every run tries the same inputs.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gainkit.suite.expectations import GAINS, version_tuple

torch = pytest.importorskip("torch")
numpy = pytest.importorskip("numpy")
calculate_gain = torch.nn.init.calculate_gain

INSTALLED = version_tuple(torch.__version__)
LEAKY_RELU = next(case for case in GAINS if case.id == "leaky_relu")
SIMPLE = {case.nonlinearity: case for case in GAINS
          if case.nonlinearity != "leaky_relu" and not case.has_param}
NAMES = sorted({case.nonlinearity for case in GAINS})


def documented_gain(nonlinearity, param=None):
    """What calculate_gain(nonlinearity, param) should return, or raise, on this torch."""
    if isinstance(nonlinearity, str) and nonlinearity == "leaky_relu":
        if param is None:
            slope = LEAKY_RELU.slope
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    case = SIMPLE.get(nonlinearity) if isinstance(nonlinearity, str) else None
    if case is None or INSTALLED < case.since_tuple:
        raise ValueError(f"Unsupported nonlinearity {nonlinearity}")
    return {"int": int, "float": float}[case.type](case.value)


def outcome(function, *arguments):
    """('value', type, value) or ('error', type, message), comparable across the two."""
    try:
        value = function(*arguments)
    except Exception as error:  # the type and message are what is compared
        return ("error", type(error), str(error))
    return ("value", type(value), "nan" if value != value else value)


def case_variants(name: str):
    return st.sampled_from(sorted({name, name.upper(), name.title(), name.capitalize(),
                                   " " + name, name + " ", name.replace("_", "-"),
                                   name.replace("_", "")}))


nonlinearities = st.one_of(
    st.sampled_from(NAMES),
    st.sampled_from(NAMES).flatmap(case_variants),
    st.sampled_from(["gelu", "silu", "elu", "mish", "softplus", "hardswish", "softsign",
                     "identity", "Linear", "Identity", "LeakyReLU", "prelu", "selu6", ""]),
    st.text(max_size=12),
    st.sampled_from([None, 0, 1.0, b"relu", ("relu",)]),
)

params = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-10 ** 6, max_value=10 ** 6),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e3, max_value=1e3).map(numpy.float64),
    st.floats(min_value=-1e3, max_value=1e3, width=32).map(numpy.float32),
    st.integers(min_value=-100, max_value=100).map(numpy.int64),
    st.floats(min_value=-1e3, max_value=1e3).map(torch.tensor),
    st.text(max_size=6),
    st.sampled_from([[0.2], (0.2,), {"slope": 0.2}, complex(0.2, 0)]),
)

PROPERTY = settings(derandomize=True, database=None, max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(nonlinearity=nonlinearities, param=params)
@example(nonlinearity="leaky_relu", param=True)
@example(nonlinearity="leaky_relu", param=10 ** 400)
@example(nonlinearity="leaky_relu", param=float("nan"))
@example(nonlinearity="leaky_relu", param=1e300)
@example(nonlinearity="selu", param=None)
@example(nonlinearity="SELU", param=None)
def test_calculate_gain_with_a_param_does_what_is_documented(nonlinearity, param):
    assert outcome(calculate_gain, nonlinearity, param) == \
        outcome(documented_gain, nonlinearity, param)


@PROPERTY
@given(nonlinearity=nonlinearities)
def test_calculate_gain_without_a_param_does_what_is_documented(nonlinearity):
    assert outcome(calculate_gain, nonlinearity) == outcome(documented_gain, nonlinearity)


@pytest.mark.parametrize("case", GAINS, ids=[case.id for case in GAINS])
def test_the_oracle_returns_each_documented_value(case):
    """documented_gain itself against gains.toml, so a wrong oracle cannot agree with torch."""
    if INSTALLED < case.since_tuple:
        with pytest.raises(ValueError, match=f"Unsupported nonlinearity {case.nonlinearity}$"):
            documented_gain(*case.call_args())
        return
    value = documented_gain(*case.call_args())
    assert value == case.value and type(value).__name__ == case.type
