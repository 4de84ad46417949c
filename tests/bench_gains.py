"""Speed of `gainkit gains` against an empirical LSUV-style search for the same gain.

    python3 -m pytest tests/bench_gains.py

LSUV (Mishkin & Matas 2016) finds the forward-preserving gain g_f empirically: layer by layer
it rescales the weights of a deep random network until the layer's output variance is 1. The
tool computes g_f = 1 / sqrt(E[phi(z)^2]) by quadrature. Both are benchmarked for GELU (group
"forward gain"): ``cold`` includes resolving the torch function (checks, kinks, tabulation),
``warm`` is the quadrature on a resolved activation. LSUV's answer carries finite-width noise
(checked against a band from theory's kappa); the tool's is exact to ~1e-12.

Stated on a shared 2-core x86 CPU (means; runs vary by ~30% with the load):
                       torch 2.13, Py 3.11     torch 1.7.1, Py 3.8
    LSUV search        0.87 - 1.36 s           1.08 s      (within ~1% of g_f)
    g_f cold           109 - 122 ms            160 ms      LSUV / cold  7 - 11x
    g_f warm           0.9 - 1.0 ms            1.6 ms      LSUV / warm  ~700 - 1400x
    resolve            85 - 105 ms             118 - 140 ms
    full analysis      relu 4-5 ms, tanh 27-32 ms, selu 29-54 ms, gelu 70-84 ms
                       (torch 1.7.1, before theory found chi_1's jump directly: 28 ms,
                       126 ms, 96 ms, 3.2 s; not re-measured)
gelu's full analysis was 1.7-1.9 s while theory.critical_gain refined the gain where chi_1
jumps over 1 by brentq; it now tries the one gain where q* can switch from 0 to inf first.
"""

from __future__ import annotations

import math

import pytest
import torch

from gainkit.gains import gainsheet
from gainkit.gains import torch_activations as acts
from gainkit.meanfield import theory

pytest.importorskip("pytest_benchmark")

WIDTH, DEPTH, BATCH = 512, 10, 512
LSUV_TOLERANCE = 0.01  # |output variance - 1| at which LSUV stops rescaling a layer
LSUV_MAX_STEPS = 10


def lsuv_forward_gain(function, width=WIDTH, depth=DEPTH, batch=BATCH, seed=0) -> float:
    """The gain LSUV settles on: sqrt(width) * rms(W), averaged over the layers."""
    generator = torch.Generator().manual_seed(seed)
    h = torch.randn(batch, width, generator=generator)
    found = []
    with torch.no_grad():
        for _ in range(depth):
            weight = torch.randn(width, width, generator=generator) / math.sqrt(width)
            post = function(h)
            for _ in range(LSUV_MAX_STEPS):
                h = post @ weight.t()
                variance = float(h.var())
                if abs(variance - 1.0) < LSUV_TOLERANCE:
                    break
                weight /= math.sqrt(variance)
            found.append(float(weight.pow(2).mean().sqrt()) * math.sqrt(width))
    return sum(found) / len(found)


def lsuv_band(act: theory.Activation) -> float:
    # Var[ln q] of one layer ~ kappa / N (docs/theory.md), g ~ q^(-1/2): 4 sigma of the mean over
    # the layers, plus the stopping tolerance.
    kappa = theory.kappa_forward(act, 1.0)
    return 4.0 * 0.5 * math.sqrt(kappa / (WIDTH * DEPTH)) + LSUV_TOLERANCE


@pytest.fixture(scope="module")
def gelu():
    return acts.resolve("gelu")


@pytest.mark.benchmark(group="forward gain")
def test_bench_lsuv_forward_gain(benchmark, gelu):
    exact = theory.gain_forward(gelu.theory)
    found = benchmark.pedantic(lsuv_forward_gain, args=(torch.nn.functional.gelu,),
                               rounds=5, iterations=1)
    assert found == pytest.approx(exact, rel=lsuv_band(gelu.theory))


@pytest.mark.benchmark(group="forward gain")
def test_bench_forward_gain_cold(benchmark):
    def cold():
        return theory.gain_forward(acts.resolve("gelu").theory)
    assert benchmark(cold) == pytest.approx(theory.gain_forward("gelu"), rel=1e-12)


@pytest.mark.benchmark(group="forward gain")
def test_bench_forward_gain_warm(benchmark, gelu):
    found = benchmark(theory.gain_forward, gelu.theory)
    assert found == pytest.approx(theory.gain_forward("gelu"), rel=1e-12)


@pytest.mark.benchmark(group="resolve")
@pytest.mark.parametrize("spec", ["relu", "gelu", "hardswish"])
def test_bench_resolve(benchmark, spec):
    assert benchmark(acts.resolve, spec).name == spec


@pytest.mark.benchmark(group="analysis")
@pytest.mark.parametrize("spec", ["relu", "tanh", "selu", "gelu"])
def test_bench_full_analysis(benchmark, spec):
    act = acts.resolve(spec)
    report = benchmark.pedantic(gainsheet.analyse, args=(act, ["forward"], 1.0, True), rounds=3,
                                iterations=1)
    assert report["gains"]["forward"] == pytest.approx(
        theory.gain_forward(theory.activation(spec)), rel=1e-9)
