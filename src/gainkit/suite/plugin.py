"""The conformance suite's pytest plugin: options, report header, JSON results, deviations.

Registered as the ``gainkit`` pytest11 entry point, so that ``python -m pytest --pyargs
gainkit.conformance --gainkit-...`` knows its options before collection (a conftest.py inside
a package collected through ``--pyargs`` is loaded too late to add options). Being loaded into
every pytest run of the environment, it stays inert unless the run collects gainkit's suite:
its options are all ``--gainkit-*`` (a user's conftest.py may well define ``--device`` and
``--seed``), it imports no torch until it is active, and it then sets torch's determinism
flags, names the library under test in the header, ends the terminal summary with the run's
verdict line (gainkit.suite.summary) and writes the results. Its outputs (``--gainkit-json``,
``--junitxml``) are checked before the first test (gainkit.outputs): an unwritable path is
pytest's usage error, one line; the results file is written whole or not at all (exit 3).

Workers. The suite's tests are small and single-threaded, so a run of the suite uses the
machine's cores through pytest-xdist (a dependency): when the run selects the suite and the
command line says nothing of ``-n``/``--numprocesses``, the plugin asks for ``-n auto``, at most
MAX_WORKERS workers; unless the command line names a ``--dist``, the plugin's scheduler
(gainkit.suite.scheduling) sends the tests that share a cached run to one worker, so that each
run is measured once. ``-n 0`` runs the suite in one process; ``--pdb`` does too (xdist's
rule). Everything the plugin reports is built from test reports, which workers send to the
controller with the records and the deviation ids attached, so the header, the verdict line,
the JSON results and the deviations are the same in both modes.

Expected deviations (``--gainkit-deviations FILE``, after array-api-tests' ``--xfails-file``):
one entry a line, ``#`` comments; an entry selects every test whose id, from the file name on
(``test_values.py::test_documented_value_and_type[tanh]``), contains it. Those tests are marked
xfail, so a fork that deliberately changes one gain still gates on the rest; an entry whose
tests all pass again, or that selects nothing, is reported at the end and in the results.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from typing import Dict, List

import pytest

from gainkit import outputs
from gainkit.suite import summary

RESULTS_PLUGIN = "gainkit-results"
SUITE_PACKAGE = "gainkit.conformance"
SUITE_CONFIG = "pytest.ini"  # shipped beside the suite: its own settings (conformance/pytest.ini)
CUDA_MISSING = "CUDA not available: torch.cuda.is_available() is False"
# Every worker imports torch and scipy and collects the suite (about 4 s of CPU) before its
# first test; the suite's own CPU work is about 15 s, so workers beyond 8 add start-up, not speed.
MAX_WORKERS = 8
RECORDS_ATTRIBUTE = "gainkit_records"  # a JSON list of the test's records, on its report
TEST_ID_ATTRIBUTE = "gainkit_test_id"  # Deviations.test_id of the report's test


def pytest_addoption(parser) -> None:
    group = parser.getgroup("gainkit", "gainkit conformance suite (gainkit.conformance)")
    group.addoption("--gainkit-device", choices=("cpu", "cuda", "all"), default="all",
                    help="devices to test on (default all: cpu, and cuda where available; "
                         "cuda cases are skipped with the reason when it is not)")
    group.addoption("--gainkit-seed", type=int, default=0,
                    help="base seed of every random draw (default 0)")
    group.addoption("--gainkit-json", metavar="PATH", default=None,
                    help="write the measured results as JSON to PATH at the end of the run")
    group.addoption("--gainkit-deviations", metavar="FILE", default=None,
                    help="tests expected to deviate (one id substring a line, # comments): "
                         "marked xfail; entries that no longer deviate are reported")
    group.addoption("--gainkit-width", type=int, default=None,
                    help="stability probe width (default: chosen from theory)")
    group.addoption("--gainkit-depth", type=int, default=None,
                    help="stability probe depth (default: chosen from theory)")
    group.addoption("--gainkit-draws", type=int, default=None,
                    help="stability probe weight draws (default: chosen from theory)")


def suite_dir() -> str | None:
    """The folder of the installed gainkit.conformance package."""
    spec = importlib.util.find_spec(SUITE_PACKAGE)
    if spec is None or not spec.origin:
        return None
    return os.path.dirname(os.path.realpath(spec.origin))


def _suite_targets(config) -> List[str]:
    """The real paths inside the suite that the arguments of this run name, as a path or
    (--pyargs) a module."""
    folder = suite_dir()
    if folder is None:
        return []
    targets = []
    for arg in config.args:
        target = str(arg).split("::")[0]
        if config.option.pyargs and not os.path.exists(target):
            try:
                spec = importlib.util.find_spec(target)
            except (ImportError, ValueError):
                continue
            if spec is None or not spec.origin:
                continue
            target = spec.origin
        path = os.path.realpath(os.path.join(str(config.invocation_params.dir), target))
        if path == folder or path.startswith(folder + os.sep):
            targets.append(path)
    return targets


def _selects_suite(config) -> bool:
    """Whether any argument of this run names the suite."""
    return bool(_suite_targets(config))


@pytest.hookimpl(hookwrapper=True)
def pytest_cmdline_main(config):
    # A wrapper runs before every plain implementation, xdist's (tryfirst) among them, which
    # turns -n into workers: the defaults have to be in place by then.
    option = config.option
    if _distributable(config):
        if option.numprocesses is None:
            option.numprocesses = "auto"
            option.maxprocesses = min(option.maxprocesses or MAX_WORKERS, MAX_WORKERS)
        if option.dist == "no":  # no --dist of the user's: tests sharing a run stay together
            option.dist = "loadscope"
            config._gainkit_shared_scopes = True
    yield


def _distributable(config) -> bool:
    option = config.option
    if not hasattr(option, "numprocesses"):  # xdist's option: it is not installed, or blocked
        return False
    if is_worker(config) or getattr(option, "collectonly", False):
        return False
    if getattr(option, "usepdb", False) or option.numprocesses == 0:
        return False
    # The benchmarks (bench_*.py) time the suite and the forum themselves; pytest-benchmark
    # switches itself off under xdist.
    return any(not os.path.basename(path).startswith("bench_")
               for path in _suite_targets(config))


@pytest.hookimpl(optionalhook=True)  # xdist's hook: not known when xdist is blocked (-p no:xdist)
def pytest_xdist_make_scheduler(config, log):
    """Our scheduler where the plugin chose the distribution (see "Workers"), else xdist's."""
    if not getattr(config, "_gainkit_shared_scopes", False):
        return None
    from gainkit.suite.scheduling import SharedRunScheduling

    return SharedRunScheduling(config, log)


def distributing(config) -> bool:
    """Whether this process hands the tests to xdist workers and runs none itself."""
    option = config.option
    return (not is_worker(config) and bool(getattr(option, "numprocesses", None))
            and getattr(option, "dist", "no") != "no")


def is_worker(config) -> bool:
    """Whether this process is an xdist worker (the controller writes the outputs)."""
    return hasattr(config, "workerinput")


def selected_devices(config) -> tuple:
    choice = config.getoption("gainkit_device")
    return ("cpu", "cuda") if choice == "all" else (choice,)


@pytest.hookimpl(tryfirst=True)  # before the suite's conftest.py, which checks for the session
def pytest_configure(config) -> None:
    for marker in ("cuda: needs a CUDA device", "slow: needs a torch wheel download"):
        config.addinivalue_line("markers", marker)
    if config.pluginmanager.get_plugin(RESULTS_PLUGIN) is None and _selects_suite(config):
        config.pluginmanager.register(SuiteSession(config), RESULTS_PLUGIN)


class Deviations:
    """The entries of a --gainkit-deviations file and which tests they selected."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.entries: Dict[str, str] = {}  # entry -> reason
        try:
            with open(path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except OSError as error:
            raise pytest.UsageError(
                f"--gainkit-deviations {path}: {error.strerror or error}") from None
        for line in lines:
            entry, _, reason = line.partition("#")
            if entry.strip():
                self.entries[entry.strip()] = reason.strip()
        self.selected: Dict[str, List[str]] = {entry: [] for entry in self.entries}
        self.passed: Dict[str, List[str]] = {entry: [] for entry in self.entries}

    @staticmethod
    def test_id(item) -> str:
        # From the file name on: the same id whether the suite runs from site-packages, a
        # checkout or --pyargs under some other rootdir (where the node id has no path).
        path = str(getattr(item, "path", None) or item.fspath)
        _, sep, rest = item.nodeid.partition("::")
        return os.path.basename(path) + sep + rest

    def mark(self, item) -> None:
        """Mark the collected ``item`` xfail if an entry selects it (where it runs)."""
        test_id = self.test_id(item)
        for entry, reason in self.entries.items():
            if entry in test_id:
                item.add_marker(pytest.mark.xfail(
                    reason=f"listed in {self.path}: {entry}" + (f" ({reason})" if reason else ""),
                    strict=False))

    def observe(self, report, test_id: str) -> None:
        """Count what the entries selected and which of those passed, from the test's reports:
        the process that writes the results may not be the one that collected the tests."""
        if report.when == "setup":
            for entry in self.entries:
                if entry in test_id:
                    self.selected[entry].append(test_id)
        elif report.when == "call" and report.passed and hasattr(report, "wasxfail"):
            for entry, tests in self.selected.items():
                if test_id in tests:
                    self.passed[entry].append(test_id)

    def unmatched(self) -> List[str]:
        return [entry for entry, tests in self.selected.items() if not tests]

    def no_longer_deviating(self) -> List[str]:
        """Entries whose every selected test passed (xpassed): the deviation is gone."""
        return [entry for entry, tests in self.selected.items()
                if tests and sorted(set(self.passed[entry])) == sorted(set(tests))]

    def as_json(self) -> dict:
        return {"path": os.path.abspath(self.path), "entries": self.entries,
                "selected": {entry: len(tests) for entry, tests in self.selected.items()},
                "unmatched": self.unmatched(), "no_longer_deviating": self.no_longer_deviating()}


class SuiteSession:
    """What the plugin does in a run of gainkit's suite: results, header, deviations."""

    def __init__(self, config) -> None:
        self.config = config
        self.worker = is_worker(config)
        self.seed = config.getoption("gainkit_seed")
        self.path = config.getoption("gainkit_json")
        self.devices = list(selected_devices(config))
        # Every output is checked before the first test runs, so that an unwritable path is
        # one line (pytest's usage error) instead of a traceback after the whole run.
        try:
            if self.path and not self.worker:
                outputs.check_file(self.path, "--gainkit-json")
            if getattr(config.option, "xmlpath", None) and not self.worker:
                outputs.check_file(config.option.xmlpath, "--junitxml")
        except outputs.OutputError as error:
            raise pytest.UsageError(str(error)) from None
        deviations = config.getoption("gainkit_deviations")
        self.deviations = Deviations(deviations) if deviations else None
        self._determinism: List[str] | None = None
        self._torch: dict | None = None  # torchinfo.describe(), from a worker where there are
        if not distributing(config):
            self._set_determinism()  # before the first test of this process
        self.records: List[dict] = []
        self.outcomes: List[dict] = []
        self._unreported: List[dict] = []  # recorded since the last report was made

    @property
    def determinism(self) -> List[str]:
        """torch's determinism flags, set in this process on first use. A controller that
        hands every test to workers imports torch only for the header, which it writes while
        its workers start (and they set the flags for themselves)."""
        return self._set_determinism()

    def torch_info(self) -> dict:
        """The library under test (torchinfo.describe()): a worker's where workers ran the
        tests, so that a controller writing a -q run's verdict needs no torch of its own."""
        if self._torch is None:
            from gainkit.suite import torchinfo

            self._torch = torchinfo.describe()
        return self._torch

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        output = getattr(node, "workeroutput", None) or {}
        if "gainkit_torch" in output:
            self._torch = output["gainkit_torch"]
            self._determinism = output["gainkit_determinism"]

    def _set_determinism(self) -> List[str]:
        if self._determinism is None:
            from gainkit.suite import torchinfo

            self._determinism = torchinfo.make_deterministic()
        return self._determinism

    def record(self, kind: str, case_id: str, **fields) -> None:
        """Keep a measured result: it travels on the test's next report (from an xdist worker
        to the controller too) and reaches the JSON results from there."""
        entry = dict(fields, kind=kind, case_id=case_id)
        # Fail in the recording test, not at session end, when a field is not JSON.
        json.dumps(entry, allow_nan=True)
        self._unreported.append(entry)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        setattr(report, TEST_ID_ATTRIBUTE, Deviations.test_id(item))
        if self._unreported:
            setattr(report, RECORDS_ATTRIBUTE, json.dumps(self._unreported, allow_nan=True))
            self._unreported = []

    def as_json(self, exit_status: int) -> dict:
        from gainkit.suite import expectations

        return {
            "verdict": summary.verdict(self.torch_info(), self.outcomes, exit_status),
            "torch": self.torch_info(),
            "seed": self.seed,
            "devices": self.devices,
            "determinism": self.determinism,
            "expectations": {"path": expectations.data_path(),
                             "gains": len(expectations.GAINS),
                             "references": len(expectations.REFERENCES)},
            "deviations": self.deviations.as_json() if self.deviations else None,
            "records": self.records,
            "outcomes": self.outcomes,
        }

    def pytest_report_header(self, config) -> List[str]:
        from gainkit.suite import expectations

        info = self.torch_info()
        devices = ", ".join(self.devices)
        if "cuda" in self.devices and not info["cuda_available"]:
            devices += f" (cuda cases skipped: {CUDA_MISSING})"
        elif info["cuda_device"]:
            devices += " (cuda: {})".format(info["cuda_device"])
        lines = [
            "library under test: torch {} (git {}) at {}".format(
                info["version"], info["git_version"] or "unknown",
                os.path.dirname(info["file"])),
            f"devices: {devices}",
            "CUDA build: {}, cuDNN: {}, TF32 matmul/cudnn: {}/{}".format(
                info["cuda"], info["cudnn"], info["tf32"]["matmul_allow_tf32"],
                info["tf32"]["cudnn_allow_tf32"]),
            "determinism set for this run: {}".format("; ".join(self.determinism)),
            f"seed: {self.seed}",
            "expectations: {} ({}, {})".format(
                expectations.data_path(), _plural(len(expectations.GAINS), "gain case"),
                _plural(len(expectations.REFERENCES), "reference")),
        ]
        if self.deviations:
            lines.append("expected deviations: {} ({})".format(
                self.deviations.path, _plural(len(self.deviations.entries), "entry", "entries")))
        return lines

    def pytest_collection_modifyitems(self, items) -> None:
        if self.deviations:
            for item in items:
                self.deviations.mark(item)

    def pytest_runtest_logreport(self, report) -> None:
        # On the controller of an xdist run, every report comes from a worker.
        if report.when == "call" or report.outcome != "passed":
            entry = {"nodeid": report.nodeid, "when": report.when, "outcome": report.outcome,
                     "duration": report.duration}
            if hasattr(report, "wasxfail"):
                entry["xfail"] = True
            elif report.skipped and isinstance(report.longrepr, tuple):
                # (path, line, "Skipped: reason")
                entry["reason"] = str(report.longrepr[2]).replace("Skipped: ", "", 1)
            self.outcomes.append(entry)
        self.records.extend(json.loads(getattr(report, RECORDS_ATTRIBUTE, None) or "[]"))
        if self.deviations:
            self.deviations.observe(report, getattr(report, TEST_ID_ATTRIBUTE, ""))

    @pytest.hookimpl(trylast=True)  # the verdict is the last line before pytest's own
    def pytest_terminal_summary(self, terminalreporter, exitstatus) -> None:
        if self.worker:
            return
        self._deviations_summary(terminalreporter)
        result = summary.verdict(self.torch_info(), self.outcomes, exitstatus)
        terminalreporter.write_sep("-", "gainkit verdict")
        terminalreporter.line("gainkit: " + result["line"], bold=True,
                              red=result["status"] == summary.DEVIATES,
                              green=result["status"] == summary.CONFORMS)

    def _deviations_summary(self, terminalreporter) -> None:
        if not self.deviations:
            return
        stale = self.deviations.no_longer_deviating()
        unmatched = self.deviations.unmatched()
        if stale or unmatched:
            terminalreporter.section("gainkit expected deviations")
        for entry in stale:
            terminalreporter.line(f"{self.deviations.path}: {entry!r} no longer deviates "
                                  "(every test it selects passed): remove it")
        for entry in unmatched:
            terminalreporter.line(f"{self.deviations.path}: {entry!r} selects no test")

    def pytest_sessionfinish(self, session, exitstatus) -> None:
        if self.worker:  # the controller writes the results, with this worker's torch
            from gainkit.suite import torchinfo

            # through JSON: execnet sends plain types only (torch.__version__ is a TorchVersion)
            session.config.workeroutput["gainkit_torch"] = json.loads(
                json.dumps(torchinfo.describe()))
            session.config.workeroutput["gainkit_determinism"] = self.determinism
            return
        if not self.path:
            return
        # like --junitxml's, the folders it names are created
        text = json.dumps(self.as_json(int(exitstatus)), indent=1, sort_keys=True)
        try:
            outputs.write_text(self.path, text, "--gainkit-json")
        except outputs.OutputError as error:
            sys.stderr.write(f"ERROR: {error}\n")
            session.exitstatus = outputs.EXIT_WRITE


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def suite_config() -> str:
    """The path of the installed suite's own pytest configuration, for ``pytest -c``."""
    spec = importlib.util.find_spec(SUITE_PACKAGE)
    return os.path.join(list(spec.submodule_search_locations)[0], SUITE_CONFIG)
