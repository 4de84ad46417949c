"""Options, device x dtype parametrisation, seeds and the JSON results of the conformance suite.

The library under test is whatever ``torch`` this interpreter imports; the expected
behaviour comes from ``gainkit.suite.expectations`` (``src/gainkit/data/gains.toml``).
"""

from __future__ import annotations

import json
import os
import zlib

import pytest
import torch

from gainkit.suite import expectations, torchinfo
from gainkit.suite.expectations import DEVICE_DTYPES, GAINS, REFERENCES

CUDA_MISSING = "CUDA not available: torch.cuda.is_available() is False"
RESULTS_PLUGIN = "gainkit-results"


def pytest_addoption(parser):
    group = parser.getgroup("gainkit", "gainkit conformance suite")
    group.addoption("--device", choices=("cpu", "cuda", "all"), default="all",
                    help="devices to test on (default all: cpu, and cuda where available; "
                         "cuda cases are skipped with the reason when it is not)")
    group.addoption("--seed", type=int, default=0, help="base seed of every random draw")
    group.addoption("--gainkit-json", metavar="PATH", default=None,
                    help="write the measured results as JSON to PATH at the end of the run")
    group.addoption("--width", type=int, default=None,
                    help="stability probe width (default: chosen from theory)")
    group.addoption("--depth", type=int, default=None,
                    help="stability probe depth (default: chosen from theory)")
    group.addoption("--draws", type=int, default=None,
                    help="stability probe weight draws (default: chosen from theory)")


def selected_devices(config) -> tuple:
    choice = config.getoption("device")
    return ("cpu", "cuda") if choice == "all" else (choice,)


class ResultsRecorder:
    """Collects measured numbers during the run; written as one JSON file at the end."""

    def __init__(self, config) -> None:
        self.seed = config.getoption("seed")
        self.path = config.getoption("gainkit_json")
        self.devices = list(selected_devices(config))
        self.determinism = torchinfo.make_deterministic()
        self.records = []
        self.outcomes = []

    def record(self, kind: str, case_id: str, **fields) -> None:
        entry = dict(fields, kind=kind, case_id=case_id)
        # Fail in the recording test, not at session end, when a field is not JSON.
        json.dumps(entry, allow_nan=True)
        self.records.append(entry)

    def as_json(self) -> dict:
        return {
            "torch": torchinfo.describe(),
            "seed": self.seed,
            "devices": self.devices,
            "determinism": self.determinism,
            "expectations": {"path": expectations.data_path(), "gains": len(GAINS),
                             "references": len(REFERENCES)},
            "records": self.records,
            "outcomes": self.outcomes,
        }

    def pytest_runtest_logreport(self, report) -> None:
        if report.when == "call" or report.outcome != "passed":
            self.outcomes.append({"nodeid": report.nodeid, "when": report.when,
                                  "outcome": report.outcome, "duration": report.duration})

    def pytest_sessionfinish(self, session) -> None:
        if self.path:
            folder = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(folder):  # like --junitxml, create the folder it names
                os.makedirs(folder)
            with open(self.path, "w", encoding="utf-8") as handle:
                json.dump(self.as_json(), handle, indent=1, sort_keys=True)


def pytest_configure(config):
    for marker in ("cuda: needs a CUDA device", "slow: needs a torch wheel download"):
        config.addinivalue_line("markers", marker)
    config.pluginmanager.register(ResultsRecorder(config), RESULTS_PLUGIN)


def pytest_report_header(config):
    info = torchinfo.describe()
    recorder = config.pluginmanager.get_plugin(RESULTS_PLUGIN)
    devices = ", ".join(selected_devices(config))
    if "cuda" in selected_devices(config) and not info["cuda_available"]:
        devices += f" (cuda cases skipped: {CUDA_MISSING})"
    elif info["cuda_device"]:
        devices += " (cuda: {})".format(info["cuda_device"])
    return [
        "library under test: torch {} (git {}) at {}".format(
            info["version"], info["git_version"] or "unknown", os.path.dirname(info["file"])),
        f"devices: {devices}",
        "CUDA build: {}, cuDNN: {}, TF32 matmul/cudnn: {}/{}".format(
            info["cuda"], info["cudnn"], info["tf32"]["matmul_allow_tf32"],
            info["tf32"]["cudnn_allow_tf32"]),
        "determinism set for this run: {}".format("; ".join(recorder.determinism)),
        "seed: {}".format(config.getoption("seed")),
        f"expectations: {expectations.data_path()} "
        f"({len(GAINS)} gain cases, {len(REFERENCES)} references)",
    ]


def device_dtype_params(config, with_dtype: bool) -> list:
    params = []
    seen = set()
    for device, dtype_label in DEVICE_DTYPES:
        dtype = getattr(torch, dtype_label)
        if device not in selected_devices(config):
            continue
        marks = [pytest.mark.cuda] if device == "cuda" else []
        if device == "cuda" and not torch.cuda.is_available():
            marks.append(pytest.mark.skip(reason=CUDA_MISSING))
        if with_dtype:
            params.append(pytest.param(device, dtype, marks=marks,
                                       id=f"{device}-{dtype_label}"))
        elif device not in seen:
            seen.add(device)
            params.append(pytest.param(device, marks=marks, id=device))
    return params


def pytest_generate_tests(metafunc):
    names = metafunc.fixturenames
    if "device" in names and "dtype" in names:
        metafunc.parametrize(("device", "dtype"), device_dtype_params(metafunc.config, True))
    elif "device" in names:
        metafunc.parametrize("device", device_dtype_params(metafunc.config, False))


@pytest.fixture(scope="session")
def seed(request) -> int:
    return request.config.getoption("seed")


@pytest.fixture
def node_seed(request, seed) -> int:
    """A seed for this test instance: stable across runs, processes and file moves."""
    return seed * 1000 + zlib.crc32(request.node.name.encode("utf-8")) % 1000


@pytest.fixture(scope="session")
def results(request) -> ResultsRecorder:
    return request.config.pluginmanager.get_plugin(RESULTS_PLUGIN)


@pytest.fixture(scope="session")
def probe_overrides(request) -> dict:
    """--width/--depth/--draws; None where the probe should choose from theory."""
    return {name: request.config.getoption(name) for name in ("width", "depth", "draws")}


@pytest.fixture(scope="session")
def require_gain():
    """``require_gain(case, *arguments)`` -> ``calculate_gain(*arguments)``.

    ``arguments`` default to ``case.call_args()``. Where the installed torch predates
    ``case.since`` and lacks the value, the test fails (it is not skipped) with the message
    naming the patch to apply.
    """

    def require(case, *arguments):
        try:
            return torch.nn.init.calculate_gain(*(arguments or case.call_args()))
        except ValueError:
            if not torchinfo.predates(case):
                raise
        # Outside the except block, so the report shows the hint, not a chained traceback.
        pytest.fail(torchinfo.missing_gain_message(case), pytrace=False)

    return require
