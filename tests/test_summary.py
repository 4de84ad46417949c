"""gainkit.suite.summary: the verdict line's counts and status, from the plugin's outcomes."""

from __future__ import annotations

import pytest

from gainkit.suite import summary

TORCH = {"version": "1.7.1", "git_version": "57bffc3a8e4fee0cce31e1ff1f662ccf7b16db57",
         "file": "/env/site-packages/torch/__init__.py"}
CUDA = "CUDA not available: torch.cuda.is_available() is False"


def entry(nodeid, outcome, when="call", **extra):
    return dict(nodeid=nodeid, outcome=outcome, when=when, duration=0.0, **extra)


def test_each_test_counts_once_by_its_worst_phase():
    counts = summary.tally([
        entry("a", "passed"),
        entry("b", "passed"), entry("b", "failed", when="teardown"),  # an error, not a pass
        entry("c", "failed"),
        entry("d", "failed", when="setup"),
        entry("e", "skipped", when="setup", reason=CUDA),
        entry("f", "skipped", when="setup", reason=CUDA),
        entry("g", "skipped", when="setup", reason="needs two GPUs"),
        entry("h", "skipped", xfail=True),
        entry("i", "passed", xfail=True),
    ])
    assert counts == {"passed": 1, "failed": 1, "errors": 2, "skipped": 3, "xfailed": 1,
                      "xpassed": 1, "skip_reasons": {CUDA: 2, "needs two GPUs": 1}}


@pytest.mark.parametrize("outcomes, exit_status, status, line", [
    ([entry("a", "passed"), entry("b", "skipped", when="setup", reason=CUDA)], 0, "conforms",
     f"conforms: 1 passed, 1 skipped (1: {CUDA})"),
    ([entry("a", "passed"), entry("b", "failed")], 1, "deviates", "DEVIATES: 1 failed, 1 passed"),
    ([entry("b", "skipped", when="setup", reason=CUDA)], 0, "nothing checked",
     f"nothing checked: 0 passed, 1 skipped (1: {CUDA})"),
    ([entry("a", "passed")], 2, "no verdict", "no verdict: pytest exited 2 (interrupted): "
                                              "1 passed"),
    ([entry("a", "skipped", xfail=True)], 0, "conforms",
     "conforms: 0 passed, 1 expected deviation (xfailed)"),
])
def test_the_verdict_line_names_the_torch_status_and_counts(outcomes, exit_status, status,
                                                           line):
    result = summary.verdict(TORCH, outcomes, exit_status)
    assert result["status"] == status
    assert result["conforms"] is ({"conforms": True, "no verdict": None}.get(status, False))
    assert result["line"] == "torch 1.7.1 (git 57bffc3a8e4f) at /env/site-packages/torch " + line
