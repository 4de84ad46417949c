"""Evidence that the conformance suite is worth gating on: its misses and its false alarms.

- :func:`kill` runs the suite against one mutant of ``gainkit.mutation.catalogue.CATALOGUE`` (the
fault   installed by the ``gainkit.mutation.catalogue`` pytest plugin in a fresh interpreter) and
reads   which tests failed. A mutant no test fails is a miss: a bug in the suite.
- :func:`sweep` runs the unmodified suite under one seed; any failure is a false alarm,
  reproducible with ``pytest --pyargs gainkit.conformance --gainkit-seed SEED`` and the same
  options.

Each run is ``python -m pytest SUITE ... --gainkit-json FILE`` in a subprocess; the outcomes
come from the suite's own JSON results, not from parsing pytest's output.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple

from gainkit.mutation.catalogue import Mutant

PYTEST_TESTS_FAILED = 1
TIMED_OUT = -1  # exit_code of a run stopped by its timeout
NOT_APPLICABLE = -2  # exit_code of a mutant this torch has nothing to mutate for (no run)


@dataclass(frozen=True)
class SuiteRun:
    """One conformance run: how pytest exited, what each test did, how long it took."""

    command: Tuple[str, ...]
    exit_code: int
    seconds: float
    outcomes: Tuple[dict, ...] = ()
    output_tail: str = ""

    @property
    def failed(self) -> List[str]:
        """Node ids of the tests that failed or errored, in run order, each once."""
        seen = {}
        for entry in self.outcomes:
            if entry["outcome"] == "failed":
                seen.setdefault(entry["nodeid"], None)
        return list(seen)

    @property
    def passed(self) -> int:
        return sum(1 for entry in self.outcomes
                   if entry["when"] == "call" and entry["outcome"] == "passed")

    @property
    def tests_failed(self) -> bool:
        """pytest ran and some tests failed (not a crash, a usage error or a timeout)."""
        return self.exit_code == PYTEST_TESTS_FAILED and bool(self.failed)


def short_id(nodeid: str) -> str:
    """``conformance/test_values.py::test_x[a]`` -> ``test_values.py::test_x[a]``."""
    path, _, rest = nodeid.partition("::")
    return f"{path.rsplit('/', 1)[-1]}::{rest}" if rest else nodeid


def file_of(nodeid: str) -> str:
    return short_id(nodeid).split("::", 1)[0]


def pytest_command(suite: Path, json_path: str, *, python: str = sys.executable,
                   mutant: Mutant | None = None, seed: int = 0, device: str = "cpu",
                   focused: bool = False) -> List[str]:
    """The pytest command line of one run; ``focused`` runs only the mutant's files and tests."""
    paths = [str(suite)]
    if focused and mutant is not None:
        paths = [str(suite / name) for name in mutant.caught_by]
    # -n 0: one process per run; the runner spreads its runs over the cores itself (--jobs),
    # and a focused run is too short to pay for workers' start-up.
    command = [python, "-m", "pytest", *paths, "-q", "-p", "no:cacheprovider", "-n", "0",
               "--gainkit-device", device, "--gainkit-seed", str(seed), "--gainkit-json",
               json_path]
    if mutant is not None:
        command += ["-p", "gainkit.mutation.catalogue", "--gainkit-mutant", mutant.name]
        if focused and mutant.select:
            command += ["-k", mutant.select]
    return command


def run_suite(suite: Path, *, python: str = sys.executable, mutant: Mutant | None = None,
              seed: int = 0, device: str = "cpu", focused: bool = False,
              timeout: float | None = None) -> SuiteRun:
    """Run the conformance suite in a fresh interpreter and read its JSON results."""
    with tempfile.TemporaryDirectory(prefix="gainkit-mutate-") as scratch:
        json_path = os.path.join(scratch, "results.json")
        command = pytest_command(suite, json_path, python=python, mutant=mutant, seed=seed,
                                 device=device, focused=focused)
        started = time.monotonic()
        try:
            completed = subprocess.run(command, cwd=scratch, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True,
                                       timeout=timeout)
            exit_code, output = completed.returncode, completed.stdout
        except subprocess.TimeoutExpired as expired:
            exit_code = TIMED_OUT
            output = expired.output or ""
            if isinstance(output, bytes):
                output = output.decode("utf-8", "replace")
        seconds = time.monotonic() - started
        outcomes = ()
        if os.path.exists(json_path):
            with open(json_path, encoding="utf-8") as handle:
                outcomes = tuple(json.load(handle)["outcomes"])
    return SuiteRun(tuple(command), exit_code, seconds, outcomes, output[-4000:])


@dataclass(frozen=True)
class MutantResult:
    mutant: Mutant
    run: SuiteRun

    @property
    def applies(self) -> bool:
        return self.run.exit_code != NOT_APPLICABLE

    @property
    def killed(self) -> bool:
        return self.run.tests_failed

    @property
    def missed_by(self) -> List[str]:
        """Files the catalogue says must catch the mutant but did not fail under it."""
        failing = {file_of(nodeid) for nodeid in self.run.failed}
        return [name for name in self.mutant.caught_by if name not in failing]

    @property
    def as_declared(self) -> bool:
        """Killed by every file it names; a mutant that does not apply here asks for nothing."""
        return not self.applies or (self.killed and not self.missed_by)

    @property
    def reason(self) -> str:
        """Why the mutant was not run here ("" for one that applies)."""
        return "" if self.applies else self.run.output_tail

    @property
    def verdict(self) -> str:
        if not self.applies:
            return "n/a"
        if self.run.exit_code == TIMED_OUT:
            return "timed out"
        if not self.killed:
            return "SURVIVED" if self.run.exit_code == 0 else f"error (exit {self.run.exit_code})"
        if self.missed_by:
            return "killed, not by " + ", ".join(self.missed_by)
        return "killed"


@dataclass(frozen=True)
class SeedResult:
    seed: int
    run: SuiteRun

    @property
    def clean(self) -> bool:
        return self.run.exit_code == 0

    @property
    def verdict(self) -> str:
        if self.clean:
            return "passed"
        if self.run.exit_code == TIMED_OUT:
            return "timed out"
        if self.run.tests_failed:
            return "FALSE ALARM"
        return f"error (exit {self.run.exit_code})"


@dataclass(frozen=True)
class Options:
    """What every run of a :func:`kill` or :func:`sweep` shares."""

    suite: Path
    python: str = sys.executable
    device: str = "cpu"
    seed: int = 0  # the seed of the mutant runs
    focused: bool = False
    timeout: float | None = None


def not_applicable(mutant: Mutant) -> str:
    """Why ``mutant`` has nothing to mutate in this process's torch ("" if it applies).

    Asked here, not in the suite's process, so that a fault of a newer torch (generator=
    arrived in 2.2) is reported as such instead of as the suite's usage error."""
    from torch.nn import init

    from gainkit.mutation.catalogue import NotApplicable, restore

    try:
        installed = mutant.apply(init)
    except NotApplicable as error:
        return str(error)
    restore(init, installed)
    return ""


def kill(mutant: Mutant, options: Options) -> MutantResult:
    """The suite against ``mutant``: which tests it fails (no run if it does not apply)."""
    if options.python == sys.executable:  # the suite's torch is this process's
        reason = not_applicable(mutant)
        if reason:
            return MutantResult(mutant, SuiteRun((), NOT_APPLICABLE, 0.0, (), reason))
    return MutantResult(mutant, run_suite(
        options.suite, python=options.python, mutant=mutant, seed=options.seed,
        device=options.device, focused=options.focused, timeout=options.timeout))


def sweep(seed: int, options: Options) -> SeedResult:
    """The unmodified suite under ``seed``: it must pass."""
    return SeedResult(seed, run_suite(options.suite, python=options.python, seed=seed,
                                      device=options.device, timeout=options.timeout))


def reproduce(run: SuiteRun) -> str:
    """The command that repeats ``run``, minus the scratch JSON file."""
    command = list(run.command)
    if "--gainkit-json" in command:
        index = command.index("--gainkit-json")
        del command[index:index + 2]
    return " ".join(shlex.quote(part) for part in command)


def kill_rate(results: Sequence[MutantResult]) -> float:
    """Killed among the mutants that apply to this torch."""
    applying = [result for result in results if result.applies]
    return sum(result.killed for result in applying) / len(applying) if applying else 1.0
