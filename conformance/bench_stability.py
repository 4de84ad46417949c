"""What the stability suite costs, as pytest-benchmark benchmarks.

Not collected with the suite (the name does not match ``test_*.py``); run it
explicitly: ``pytest conformance/bench_stability.py``.

Targets:
- the whole conformance suite of one release (every file, the default options, a fresh
  process) costs at most twice one forum experiment, timed side by side in the same run
  (``test_bench_whole_suite_against_the_forum``: ``ratio`` and ``target_ratio`` in extra_info);
- the suite's full CPU coverage (every stability gain x 7 inits x float32 and float64, plus the
  forum claims): under 30 s on a 2-core CPU;
- the conv stacks (every conv gain x 7 inits x float32 and float64, both checks): at most
  1.5 s on a 2-core CPU (``test_bench_conv_stacks``), their share of the whole-suite budget;
- not a target but the floor under the first one (``test_bench_floor_against_the_forum``): what
  the whole suite would cost if its tests did nothing but draw the stability tests' weights,
  timed side by side with the forum;
- for comparison, the forum's method (docs/theory.md, "The forum's claims"): one 1000x1000,
  100-layer network with batch 1000 per configuration, 6-10 s each on a 2-core CPU.
  ``projected_coverage_s`` in its extra_info is that time multiplied by the number of
  configurations the suite covers.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time

import pytest
import torch

from gainkit.meanfield import finitewidth
from gainkit.probe import conv, determinism, mlp
from gainkit.suite import conv_stacks, coverage, designs, plugin, verdicts

pytest.importorskip("pytest_benchmark")

DTYPES = (torch.float32, torch.float64)
FORUM_WIDTH = 1000
FORUM_DEPTH = 100
FORUM_BATCH = 1000


def _run(subject, init, dtype, z, claim=False) -> None:
    # What the suite does per configuration: the run and the verdicts of its checks.
    run = verdicts.run(subject, init, "cpu", dtype, 0, z, claim=claim)
    for check in ("claim",) if claim else ("forward", "backward"):
        verdicts.judge(check, run)


def _configurations():
    subjects = coverage.subjects()
    for dtype in DTYPES:
        for subject in subjects:
            for init in mlp.INITS:
                yield subject, init, dtype, False
            if subject.claim:
                yield subject, coverage.CLAIM_INIT, dtype, True


def _full_coverage() -> int:
    # Fresh theory caches: a suite run starts without them.
    finitewidth.finite_width.cache_clear()
    designs.clear_plans()
    z = coverage.suite_z(coverage.subjects())
    count = 0
    for subject, init, dtype, claim in _configurations():
        _run(subject, init, dtype, z, claim)
        count += 1
    return count


def test_bench_full_coverage_cpu(benchmark):
    """Target: every gain x init on CPU (float32 and float64) plus the claims, < 30 s."""
    count = benchmark.pedantic(_full_coverage, rounds=1, iterations=1)
    benchmark.extra_info["configurations"] = count
    benchmark.extra_info["target_s"] = 30


def test_bench_one_configuration(benchmark):
    """One representative configuration: relu (kappa 5, the widest noise), xavier_normal."""
    subject = next(s for s in coverage.subjects() if s.id == "relu")
    z = coverage.suite_z(coverage.subjects())
    coverage.suite_design(subject, "xavier_normal", z)  # theory outside the timing
    benchmark.pedantic(_run, args=(subject, "xavier_normal", torch.float32, z), rounds=5,
                       iterations=1)


def _conv_configurations():
    for dtype in DTYPES:
        for case in conv_stacks.CASES:
            for init in conv.INITS:
                yield case, init, dtype


def _conv_coverage() -> int:
    # What test_conv_stability.py does on CPU: every run and both verdicts.
    z = coverage.suite_z(coverage.subjects())
    count = 0
    for case, init, dtype in _conv_configurations():
        run = conv_stacks.run(case, init, "cpu", dtype, 0, z)
        for check in conv_stacks.CHECKS:
            conv_stacks.judge(check, run)
        count += 1
    return count


def test_bench_conv_stacks(benchmark):
    """Target: the conv stacks' CPU coverage (84 runs) in at most 1.5 s."""
    count = benchmark.pedantic(_conv_coverage, rounds=1, iterations=1)
    benchmark.extra_info["configurations"] = count
    benchmark.extra_info["target_s"] = 1.5


def _forum_network(gain: float = 5.0 / 3.0) -> tuple:
    """The forum's experiment: tanh at 5/3, xavier_normal_, forward and autograd backward."""
    torch.manual_seed(0)
    x = torch.randn(FORUM_BATCH, FORUM_WIDTH, requires_grad=True)
    h = x
    for _ in range(FORUM_DEPTH):
        weight = torch.nn.init.xavier_normal_(torch.empty(FORUM_WIDTH, FORUM_WIDTH), gain=gain)
        h = torch.tanh(h @ weight.t())
    h.sum().backward()
    return float(h.detach().std()), float(x.grad.abs().mean())


def test_bench_forum_method(benchmark):
    """The forum's experiment (docs/theory.md): about 6-10 s for one configuration on 2 cores."""
    benchmark.pedantic(_forum_network, rounds=1, iterations=1)
    count = sum(1 for _ in _configurations())
    benchmark.extra_info["configurations"] = count
    if not benchmark.disabled:  # --benchmark-disable runs the body once and keeps no stats
        benchmark.extra_info["projected_coverage_s"] = benchmark.stats.stats.mean * count


SUITE_COMMAND = [sys.executable, "-m", "pytest", "-c", plugin.suite_config(), "--pyargs",
                 "gainkit.conformance", "-q", "-p", "no:cacheprovider"]
NO_TESTS_COLLECTED = 5  # pytest's exit code when a selection leaves no test to run


def _whole_suite() -> None:
    # As `gainkit check` and the tox envs run it: a fresh process, the installed suite, its own
    # settings (-c: conformance/pytest.ini) and default options, which use every core up to
    # plugin.MAX_WORKERS.
    subprocess.run(SUITE_COMMAND, check=True, stdout=subprocess.DEVNULL)


def _timed_forum() -> float:
    started = time.perf_counter()
    _forum_network()
    return time.perf_counter() - started


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def test_bench_whole_suite_against_the_forum(benchmark):
    """Target: the whole suite costs at most 2x one forum experiment, measured here, now.

    Both use every core: the forum's products run on torch's threads, the suite on xdist
    workers. The forum runs before and after the suite and the ratio takes the faster of the
    two, so that one contended forum run cannot flatter the ratio. ``suite_cpu_s`` (user +
    system time of the suite's processes, workers included) and ``load_average`` let a reader
    tell a contended run.
    """
    forum_runs = [_timed_forum()]
    load = os.getloadavg()
    cpu_before = _children_cpu_s()
    benchmark.pedantic(_whole_suite, rounds=1, iterations=1)
    suite_cpu_s = _children_cpu_s() - cpu_before
    forum_runs.append(_timed_forum())
    forum_s = min(forum_runs)
    benchmark.extra_info["forum_s"] = forum_s
    benchmark.extra_info["forum_runs_s"] = forum_runs
    benchmark.extra_info["suite_cpu_s"] = suite_cpu_s
    benchmark.extra_info["load_average"] = [load[0], os.getloadavg()[0]]
    benchmark.extra_info["cores"] = os.cpu_count()
    benchmark.extra_info["target_ratio"] = 2.0
    if not benchmark.disabled:
        benchmark.extra_info["ratio"] = benchmark.stats.stats.mean / forum_s


def _suite_without_tests() -> None:
    # The whole-suite command with every test deselected: the controller, the workers' start
    # (torch's import in each), collection and shutdown, and no test.
    completed = subprocess.run(SUITE_COMMAND + ["-k", "gainkit_bench_selects_no_test"],
                               stdout=subprocess.DEVNULL)
    assert completed.returncode == NO_TESTS_COLLECTED, completed.returncode


def _stability_draws() -> float:
    """Seconds to draw every weight that test_stability.py (the claims included) and
    test_conv_stability.py draw on CPU, in the configurations the coverage benchmarks run,
    through the probes' own ``draw_weights`` and init callables, in one thread: the draws
    alone, without products, verdicts or pytest. The designs are planned before the clock
    starts, as the suite's theory is not a draw."""
    z = coverage.suite_z(coverage.subjects())
    mlp_draws = [(mlp.torch_init(init, *subject.init_arguments(init)),
                  coverage.suite_design(subject, init, z, claim=claim), dtype)
                 for subject, init, dtype, claim in _configurations()]
    conv_draws = [(conv_stacks.plan(case, init, z), dtype)
                  for case, init, dtype in _conv_configurations()]
    with determinism.torch_cpu_threads(1):  # as the probes draw
        started = time.perf_counter()
        for torch_init, design, dtype in mlp_draws:
            mlp.draw_weights(torch_init, design.width, design.depth, design.draws, dtype, "cpu")
        for design, dtype in conv_draws:
            conv.draw_weights(conv.initialiser(design.init, design.geometry), design.geometry,
                              design.depth, design.draws, dtype, "cpu")
        return time.perf_counter() - started


def test_bench_floor_against_the_forum(benchmark):
    """Not a target: the least the whole suite can cost with its designs, against the forum.

    The floor is the suite's command with no test selected (processes, torch's import in each
    worker, collection) plus the stability tests' weight draws shared among the workers. The
    draws are set by the bands (every +-5% control outside with the family's confidence), so
    no faster test code gets under the floor; ``floor_ratio`` is its ratio to the forum, and
    ``left_for_the_rest_s`` what the 2x target leaves for everything else the suite does.
    """
    forum_runs = [_timed_forum()]
    benchmark.pedantic(_suite_without_tests, rounds=1, iterations=1)
    draws_s = _stability_draws()
    forum_runs.append(_timed_forum())
    forum_s = min(forum_runs)
    workers = min(os.cpu_count() or 1, plugin.MAX_WORKERS)
    benchmark.extra_info["forum_s"] = forum_s
    benchmark.extra_info["forum_runs_s"] = forum_runs
    benchmark.extra_info["stability_draws_s"] = draws_s
    benchmark.extra_info["workers"] = workers
    benchmark.extra_info["target_ratio"] = 2.0
    if not benchmark.disabled:
        floor_s = benchmark.stats.stats.mean + draws_s / workers
        benchmark.extra_info["no_tests_s"] = benchmark.stats.stats.mean
        benchmark.extra_info["floor_s"] = floor_s
        benchmark.extra_info["floor_ratio"] = floor_s / forum_s
        benchmark.extra_info["left_for_the_rest_s"] = 2.0 * forum_s - floor_s
