"""Speed of gainkit.meanfield.theory: ``python3 -m pytest tests/bench_theory.py``.

Stated on a shared 2-core x86 CPU, Python 3.11, numpy 2.4, scipy 1.17 (means):
analyse() of every gain in the data file < 50 ms; one analyse() < 10 ms; the critical gain
of tanh < 50 ms.
"""

from __future__ import annotations

import pytest

from gainkit.meanfield import theory
from gainkit.suite.expectations import GAINS, REFERENCES

pytest.importorskip("pytest_benchmark")

CASES = [(theory.activation(case.activation, case.slope), case.value) for case in GAINS] + [
    (theory.activation(case.activation, case.slope), case.gain) for case in REFERENCES]


def test_bench_analyse_every_gain(benchmark):
    fields = benchmark(lambda: [theory.analyse(act, gain) for act, gain in CASES])
    assert len(fields) == len(CASES)


@pytest.mark.parametrize("name, gain", [("tanh", 5 / 3), ("selu", 0.75), ("relu", 2**0.5)])
def test_bench_analyse_one(benchmark, name, gain):
    act = theory.activation(name)
    assert benchmark(theory.analyse, act, gain).activation == name


def test_bench_critical_gain_tanh(benchmark):
    assert benchmark(theory.critical_gain, "tanh")[0] == 1.0
