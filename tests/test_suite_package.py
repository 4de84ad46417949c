"""The installed suite as a user meets it: ``python -m pytest --pyargs gainkit.conformance``.

Run from a directory of the user's own, whose conftest.py defines ``--device`` and ``--seed``
(common names gainkit must not take), with the plugin's ``--gainkit-*`` options, the report
header naming the library under test, and the expected-deviations file.
"""

from __future__ import annotations

import json
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


def test_a_listed_deviation_lets_a_fork_gate_on_the_rest(user_repo):
    """tanh 5% off (a mutant): failing without the list, passing with tanh's test listed."""
    mutant = ("-p", "gainkit.mutation.catalogue", "--gainkit-mutant", "gain-tanh-x1.05")
    select = ("-k", "test_documented_value_and_type")
    failing = pytest_in(user_repo, "--pyargs", VALUES, *mutant, *select)
    assert failing.returncode == 1, failing.stdout[-3000:]
    (user_repo / "deviations.txt").write_text(
        "# our fork's tanh gain\n"
        "test_values.py::test_documented_value_and_type[tanh]   # 1.75, on purpose\n")
    gated = pytest_in(user_repo, "--pyargs", VALUES, *mutant, *select, "--gainkit-deviations",
                      "deviations.txt", "--gainkit-json", "r.json")
    assert gated.returncode == 0, gated.stdout[-3000:]
    assert "1 xfailed" in gated.stdout
    record = json.loads((user_repo / "r.json").read_text())["deviations"]
    assert record["selected"] == {"test_values.py::test_documented_value_and_type[tanh]": 1}
    assert record["no_longer_deviating"] == [] and record["unmatched"] == []


def test_stale_and_unmatched_deviations_are_reported(user_repo):
    (user_repo / "deviations.txt").write_text(
        "test_documented_value_and_type[tanh]\n"
        "test_no_such_test\n")
    done = pytest_in(user_repo, "--pyargs", VALUES, "--gainkit-deviations", "deviations.txt",
                     "--gainkit-json", "r.json", "-k", "test_documented_value_and_type")
    assert done.returncode == 0, done.stdout[-3000:]
    assert ("deviations.txt: 'test_documented_value_and_type[tanh]' no longer deviates"
            in done.stdout)
    assert "deviations.txt: 'test_no_such_test' selects no test" in done.stdout
    record = json.loads((user_repo / "r.json").read_text())["deviations"]
    assert record["no_longer_deviating"] == ["test_documented_value_and_type[tanh]"]
    assert record["unmatched"] == ["test_no_such_test"]


def test_missing_deviations_file_is_a_usage_error(user_repo):
    done = pytest_in(user_repo, "--pyargs", VALUES, "--gainkit-deviations", "nope.txt")
    assert done.returncode == 4  # pytest's usage-error code, before any test runs
    assert "--gainkit-deviations nope.txt: No such file or directory" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
