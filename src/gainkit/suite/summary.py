"""The verdict of one run of the suite: which torch, whether it conforms, counts, why skipped.

The plugin prints :func:`verdict_line` at the end of the terminal summary and stores
:func:`verdict` in the JSON results (``verdict``), where ``gainkit check`` reads it to end with
the same line. Both are built from the outcomes the plugin records, one entry per test phase
that ran its body or did not pass (``nodeid``, ``when``, ``outcome``, and ``reason`` of a skip,
``xfail`` for a test listed as an expected deviation).

Runs in old environments (Python 3.7): standard library only.
"""

from __future__ import annotations

import os
from typing import Dict, List

CONFORMS, DEVIATES, NOTHING_CHECKED, NO_VERDICT = (
    "conforms", "deviates", "nothing checked", "no verdict")
# pytest's exit codes other than 0 (all passed) and 1 (tests failed), for the no-verdict line
PYTEST_EXITS = {2: "interrupted", 3: "internal error", 4: "usage error",
                5: "no tests collected"}


def tally(outcomes: List[dict]) -> dict:
    """Per test (node id): passed, failed, errors (setup or teardown failed), skipped (with
    the reasons), xfailed (expected deviations), xpassed."""
    per_test: Dict[str, str] = {}
    reasons: Dict[str, str] = {}
    for entry in outcomes:
        nodeid, outcome, when = entry["nodeid"], entry["outcome"], entry.get("when", "call")
        if outcome == "failed":
            state = "failed" if when == "call" else "errors"
        elif outcome == "skipped":
            state = "xfailed" if entry.get("xfail") else "skipped"
            if state == "skipped":
                reasons[nodeid] = entry.get("reason") or "no reason given"
        else:
            state = "xpassed" if entry.get("xfail") else "passed"
        # a failing teardown after a passing call counts as the error it is
        if per_test.get(nodeid) not in ("failed", "errors"):
            per_test[nodeid] = state
    counts = {state: 0 for state in ("passed", "failed", "errors", "skipped", "xfailed",
                                     "xpassed")}
    for state in per_test.values():
        counts[state] += 1
    skip_reasons: Dict[str, int] = {}
    for nodeid, reason in reasons.items():
        if per_test[nodeid] == "skipped":
            skip_reasons[reason] = skip_reasons.get(reason, 0) + 1
    counts["skip_reasons"] = skip_reasons
    return counts


def verdict(torch_info: dict, outcomes: List[dict], exit_status: int) -> dict:
    """The run's verdict as the JSON results store it, ``line`` included."""
    counts = tally(outcomes)
    if exit_status not in (0, 1):
        status = NO_VERDICT
    elif counts["failed"] or counts["errors"]:
        status = DEVIATES
    elif not (counts["passed"] or counts["xfailed"] or counts["xpassed"]):
        status = NOTHING_CHECKED
    else:
        status = CONFORMS
    result = {"status": status, "conforms": status == CONFORMS if status != NO_VERDICT
              else None, "exit_status": int(exit_status), "counts": counts}
    result["line"] = verdict_line(torch_info, result)
    return result


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def verdict_line(torch_info: dict, result: dict) -> str:
    """``torch 2.13.0 (git ...) at .../torch conforms: 769 passed, 12 skipped (12: CUDA not
    available: ...)``."""
    counts = result["counts"]
    parts = [f"{counts['failed']} failed"] if counts["failed"] else []
    if counts["errors"]:
        parts.append(_plural(counts["errors"], "error", "errors"))
    parts.append(f"{counts['passed']} passed")
    if counts["skipped"]:
        why = "; ".join(f"{count}: {reason}" for reason, count in
                        sorted(counts["skip_reasons"].items(), key=lambda item: -item[1]))
        parts.append(f"{counts['skipped']} skipped ({why})")
    if counts["xfailed"]:
        parts.append(_plural(counts["xfailed"], "expected deviation (xfailed)",
                             "expected deviations (xfailed)"))
    if counts["xpassed"]:
        parts.append(_plural(counts["xpassed"], "listed deviation that passed (xpassed)",
                             "listed deviations that passed (xpassed)"))
    status = result["status"]
    if status == NO_VERDICT:
        code = result["exit_status"]
        status = "no verdict: pytest exited {} ({})".format(code, PYTEST_EXITS.get(code, "?"))
    elif status == DEVIATES:
        status = "DEVIATES"
    torch_name = "torch {} (git {}) at {}".format(
        torch_info.get("version"), (torch_info.get("git_version") or "unknown")[:12],
        os.path.dirname(torch_info.get("file") or "?"))
    return f"{torch_name} {status}: " + ", ".join(parts)
