"""The installed suite as a user meets it: ``python -m pytest --pyargs gainkit.conformance``.

Run from a directory of the user's own, whose conftest.py defines ``--device`` and ``--seed``
(common names gainkit must not take), with the plugin's ``--gainkit-*`` options, the report
header naming the library under test, and the expected-deviations file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

USER_CONFTEST = '''
def pytest_addoption(parser):
    parser.addoption("--device", default="meta")
    parser.addoption("--seed", type=int, default=99)
'''
VALUES = "gainkit.conformance.test_values"


@pytest.fixture
def user_repo(tmp_path) -> Path:
    (tmp_path / "conftest.py").write_text(USER_CONFTEST)
    (tmp_path / "test_own.py").write_text("def test_own(request):\n"
                                          "    assert request.config.getoption('seed') == 99\n")
    return tmp_path


def assert_follows_the_schema(results: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="schema tests need jsonschema")
    from gainkit import schemas

    jsonschema.validate(results, schemas.load("results"))


def pytest_in(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=str(folder), capture_output=True, text=True, timeout=600)


def test_suite_runs_beside_a_conftest_with_device_and_seed(user_repo):
    done = pytest_in(user_repo, "--pyargs", VALUES, "--gainkit-seed", "3",
                     "--gainkit-device", "cpu", "--gainkit-json", "r.json", "--seed", "5")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "library under test: torch " in done.stdout
    results = json.loads((user_repo / "r.json").read_text())
    assert (results["seed"], results["devices"]) == (3, ["cpu"])
    assert results["outcomes"] and all(o["outcome"] == "passed" for o in results["outcomes"])


def test_plugin_is_inert_in_the_users_own_runs(user_repo):
    done = pytest_in(user_repo, "test_own.py")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "library under test" not in done.stdout
    assert "1 passed" in done.stdout


# The plugin builds its results from test reports (gainkit/suite/plugin.py, "Workers"): each
# behaviour below holds in one process and with xdist workers, where the controller that writes
# the results collected nothing.
MODES = pytest.mark.parametrize("mode", [("-n", "0"), ("-n", "2")], ids=["one-process",
                                                                         "two-workers"])


@MODES
def test_a_listed_deviation_lets_a_fork_gate_on_the_rest(user_repo, mode):
    """tanh 5% off (a mutant): failing without the list, passing with tanh's test listed."""
    mutant = ("-p", "gainkit.mutation.catalogue", "--gainkit-mutant", "gain-tanh-x1.05")
    select = ("-k", "test_documented_value_and_type")
    failing = pytest_in(user_repo, "--pyargs", VALUES, *mutant, *select, *mode)
    assert failing.returncode == 1, failing.stdout[-3000:]
    (user_repo / "deviations.txt").write_text(
        "# our fork's tanh gain\n"
        "test_values.py::test_documented_value_and_type[tanh]   # 1.75, on purpose\n")
    gated = pytest_in(user_repo, "--pyargs", VALUES, *mutant, *select, "--gainkit-deviations",
                      "deviations.txt", "--gainkit-json", "r.json", *mode)
    assert gated.returncode == 0, gated.stdout[-3000:]
    assert "1 xfailed" in gated.stdout
    results = json.loads((user_repo / "r.json").read_text())
    assert_follows_the_schema(results)
    record = results["deviations"]
    assert record["selected"] == {"test_values.py::test_documented_value_and_type[tanh]": 1}
    assert record["no_longer_deviating"] == [] and record["unmatched"] == []


@MODES
def test_stale_and_unmatched_deviations_are_reported(user_repo, mode):
    (user_repo / "deviations.txt").write_text(
        "test_documented_value_and_type[tanh]\n"
        "test_no_such_test\n")
    done = pytest_in(user_repo, "--pyargs", VALUES, "--gainkit-deviations", "deviations.txt",
                     "--gainkit-json", "r.json", "-k", "test_documented_value_and_type", *mode)
    assert done.returncode == 0, done.stdout[-3000:]
    assert ("deviations.txt: 'test_documented_value_and_type[tanh]' no longer deviates"
            in done.stdout)
    assert "deviations.txt: 'test_no_such_test' selects no test" in done.stdout
    record = json.loads((user_repo / "r.json").read_text())["deviations"]
    assert record["no_longer_deviating"] == ["test_documented_value_and_type[tanh]"]
    assert record["unmatched"] == ["test_no_such_test"]


def test_the_suite_runs_on_workers_by_default_and_in_one_process_with_n_0(user_repo):
    default = pytest_in(user_repo, "--pyargs", VALUES, "-k", "tanh")
    assert default.returncode == 0, default.stdout[-3000:]
    assert "created: " in default.stdout and " workers" in default.stdout
    serial = pytest_in(user_repo, "--pyargs", VALUES, "-k", "tanh", "-n", "0")
    assert serial.returncode == 0 and "created: " not in serial.stdout
    own = pytest_in(user_repo, "test_own.py")  # the user's own runs are theirs to distribute
    assert own.returncode == 0 and "created: " not in own.stdout


def test_workers_measure_what_one_process_does(user_repo):
    """Same records, outcomes and verdict from two workers as from one process, on the files
    whose tests share cached runs (gainkit/suite/scheduling.py)."""
    files = ("gainkit.conformance.test_stability", "gainkit.conformance.test_conv_stability",
             "gainkit.conformance.test_module_defaults")
    select = ("-k", "(linear or conv1d) and not leaky")
    results = {}
    for label, mode in (("one", ("-n", "0")), ("two", ("-n", "2"))):
        done = pytest_in(user_repo, "--pyargs", *files, *select, *mode,
                         "--gainkit-json", label + ".json")
        assert done.returncode == 0, done.stdout[-3000:]
        results[label] = json.loads((user_repo / (label + ".json")).read_text())
    one, two = results["one"], results["two"]
    assert len(one["records"]) > 20
    def canonical(entries):
        return sorted(json.dumps(entry, sort_keys=True) for entry in entries)
    assert canonical(two["records"]) == canonical(one["records"])
    assert (sorted((o["nodeid"], o["outcome"]) for o in two["outcomes"])
            == sorted((o["nodeid"], o["outcome"]) for o in one["outcomes"]))
    assert two["verdict"] == one["verdict"]
    assert_follows_the_schema(two)


def test_missing_deviations_file_is_a_usage_error(user_repo):
    done = pytest_in(user_repo, "--pyargs", VALUES, "--gainkit-deviations", "nope.txt")
    assert done.returncode == 4  # pytest's usage-error code, before any test runs
    assert "--gainkit-deviations nope.txt: No such file or directory" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize("option", ["--gainkit-json", "--junitxml"])
def test_an_output_that_cannot_be_written_stops_the_run_before_any_test(user_repo, unwritable,
                                                                        option):
    folder, reason = unwritable
    bad = folder / "out" / "results.file"
    done = pytest_in(user_repo, "--pyargs", VALUES, option, str(bad))
    assert done.returncode == 4, done.stdout[-3000:]  # pytest's usage error, as for any option
    assert "passed" not in done.stdout and "Traceback" not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert errors == [f"ERROR: {option} {bad}: " + errors[0].split(": ", 2)[-1]]
    assert errors[0].endswith(reason)


FULL_DISK_PLUGIN = '''
import errno, os

def pytest_sessionstart(session):
    def disk_full(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    os.fsync = disk_full
'''


def test_a_results_write_that_fails_at_the_end_exits_3_and_leaves_no_half_file(user_repo):
    (user_repo / "full_disk.py").write_text(FULL_DISK_PLUGIN)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "full_disk",
         "--pyargs", VALUES, "--gainkit-json", "out/r.json", "-k", "tanh"],
        cwd=str(user_repo), capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=str(user_repo)))
    assert done.returncode == 3, done.stdout[-3000:] + done.stderr[-3000:]
    assert "ERROR: --gainkit-json out/r.json: writing failed: No space left on device" in \
        done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert os.listdir(user_repo / "out") == []


def test_the_summary_ends_with_the_verdict_line(user_repo):
    conforming = pytest_in(user_repo, "--pyargs", "gainkit.conformance.test_init_functions",
                           "-k", "xavier and linear-700to300", "--gainkit-json", "r.json")
    assert conforming.returncode == 0, conforming.stdout[-3000:]
    results = json.loads((user_repo / "r.json").read_text())
    assert_follows_the_schema(results)
    verdict = results["verdict"]
    line = next(line for line in conforming.stdout.splitlines() if line.startswith("gainkit: "))
    assert line == "gainkit: " + verdict["line"]
    counts = verdict["counts"]
    assert verdict["status"] == "conforms" and counts["passed"] > 0 and counts["failed"] == 0
    assert line.startswith("gainkit: torch ") and f" conforms: {counts['passed']} passed" in line
    import torch

    if not torch.cuda.is_available():  # the cuda cases are skipped, and the line says why
        assert counts["skipped"] > 0
        assert (f"{counts['skipped']} skipped ({counts['skipped']}: CUDA not available: "
                "torch.cuda.is_available() is False)") in line

    mutant = ("-p", "gainkit.mutation.catalogue", "--gainkit-mutant", "gain-tanh-x1.05")
    deviating = pytest_in(user_repo, "--pyargs", VALUES, *mutant, "-k",
                          "test_documented_value_and_type")
    assert deviating.returncode == 1
    line = next(line for line in deviating.stdout.splitlines() if line.startswith("gainkit: "))
    assert " DEVIATES: 1 failed, " in line, line
