"""`gainkit mutate`: verdicts, tables, exit codes, bad input; one real focused run."""

from __future__ import annotations

import json

import pytest

from gainkit.mutation import runner
from gainkit.mutation.catalogue import MUTANTS
from gainkit.tools import mutate

VALUES_ONLY = "leaky_relu-bool-accepted"
ALL_FILES = "gain-tanh-x1.05"


def fake_run(exit_code: int, failed=(), passed: int = 5) -> runner.SuiteRun:
    outcomes = [{"nodeid": f"conformance/{nodeid}", "when": "call", "outcome": "failed"}
                for nodeid in failed]
    outcomes += [{"nodeid": f"conformance/test_values.py::test_ok[{index}]", "when": "call",
                  "outcome": "passed"} for index in range(passed)]
    return runner.SuiteRun(("python", "-m", "pytest", "conformance", "--gainkit-json", "x"),
                             exit_code, 1.5, tuple(outcomes), "output")


@pytest.mark.parametrize("exit_code, failed, verdict, killed, declared", [
    (1, ["test_values.py::test_a", "test_docstring.py::test_b", "test_init_functions.py::t",
         "test_stability.py::t"], "killed", True, True),
    (1, ["test_values.py::test_a"],
     "killed, not by test_docstring.py, test_init_functions.py, test_stability.py", True, False),
    (0, [], "SURVIVED", False, False),
    (2, [], "error (exit 2)", False, False),
    (1, [], "error (exit 1)", False, False),  # exit 1 without a failing test: not a kill
    (runner.TIMED_OUT, [], "timed out", False, False),
])
def test_mutant_verdict(exit_code, failed, verdict, killed, declared):
    result = runner.MutantResult(MUTANTS[ALL_FILES], fake_run(exit_code, failed))
    assert (result.verdict, result.killed, result.as_declared) == (verdict, killed, declared)


@pytest.mark.parametrize("exit_code, failed, verdict", [
    (0, [], "passed"), (1, ["test_values.py::test_a"], "FALSE ALARM"),
    (4, [], "error (exit 4)"), (runner.TIMED_OUT, [], "timed out")])
def test_seed_verdict(exit_code, failed, verdict):
    result = runner.SeedResult(7, fake_run(exit_code, failed))
    assert result.verdict == verdict
    assert result.clean == (exit_code == 0)


def test_failed_ids_are_unique_and_include_setup_errors():
    run = runner.SuiteRun((), 1, 0.0, (
        {"nodeid": "conformance/test_values.py::a", "when": "setup", "outcome": "failed"},
        {"nodeid": "conformance/test_values.py::b", "when": "call", "outcome": "failed"},
        {"nodeid": "conformance/test_values.py::b", "when": "teardown", "outcome": "failed"},
        {"nodeid": "conformance/test_values.py::c", "when": "call", "outcome": "passed"}))
    assert run.failed == ["conformance/test_values.py::a", "conformance/test_values.py::b"]
    assert run.passed == 1


def test_reproduce_drops_the_scratch_json():
    assert runner.reproduce(fake_run(1)) == "python -m pytest conformance"


@pytest.fixture
def faked(monkeypatch):
    """Make run_suite return scripted runs: {mutant name or seed: SuiteRun}."""
    script = {}

    def run_suite(suite, *, mutant=None, seed=0, **options):
        return script[mutant.name if mutant is not None else seed]

    monkeypatch.setattr(runner, "run_suite", run_suite)
    return script


def test_all_killed_and_no_false_alarm_exits_0(faked, capsys, tmp_path):
    faked[VALUES_ONLY] = fake_run(1, ["test_values.py::test_rejects[bool-true]"])
    faked[1] = faked[2] = fake_run(0)
    out_json = tmp_path / "out.json"
    code = mutate.main(["--mutants", VALUES_ONLY, "--seeds", "2", "--json", str(out_json)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "seed 0" in out and "seeds 1..2 (2 runs)" in out
    assert "kill rate: 1/1 mutants killed (100%)" in out
    assert "false alarms: 0 of 2 seeds" in out
    assert "test_values.py::test_rejects[bool-true]" in out
    written = json.loads(out_json.read_text(encoding="utf-8"))
    assert written["kill_rate"] == 1.0 and written["false_alarms"] == 0
    assert [entry["seed"] for entry in written["sweep"]] == [1, 2]
    assert written["mutants"][0]["failed"] == [
        "conformance/test_values.py::test_rejects[bool-true]"]


@pytest.mark.parametrize("mutant_run, seed_run, shown", [
    (fake_run(0), fake_run(0), "SURVIVED"),
    (fake_run(1, ["test_values.py::test_a"]), fake_run(1, ["test_stability.py::t"]),
     "FALSE ALARM"),
])
def test_a_survivor_or_a_false_alarm_exits_1_with_the_command_to_repeat_it(
        faked, capsys, mutant_run, seed_run, shown):
    faked[VALUES_ONLY], faked[5] = mutant_run, seed_run
    code = mutate.main(["--mutants", VALUES_ONLY, "--seeds", "1", "--first-seed", "5",
                        "--markdown"])
    out = capsys.readouterr().out
    assert code == 1
    assert shown in out
    assert "reproduce: python -m pytest conformance" in out
    assert "| mutant | verdict |" in out


def test_a_mutant_missed_by_a_file_it_names_exits_1(faked, capsys):
    faked[ALL_FILES] = fake_run(1, ["test_values.py::test_a"])
    assert mutate.main(["--mutants", ALL_FILES, "--seeds", "0"]) == 1
    assert "killed, not by test_docstring.py" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--mutants", "no-such-mutant"], "unknown mutant no-such-mutant"),
    (["--seeds", "-1"], "argument --seeds: -1 is negative"),
    (["--seeds", "many"], "'many' is not a whole number"),
    (["--jobs", "0"], "argument --jobs: 0 is not a positive number"),
    (["--timeout", "0"], "argument --timeout"),
    (["--mutants", "", "--seeds", "0"], "nothing to run"),
    (["--all", "--mutants", VALUES_ONLY], "not allowed with argument"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, faked, capsys):
    with pytest.raises(SystemExit) as exited:
        code = mutate.main(argv)
        raise SystemExit(code)
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err.startswith("gainkit mutate: error: ") and message in err
    assert err.count("\n") == 1


def test_unwritable_json_path_exits_2_before_running(faked, capsys, unwritable, monkeypatch):
    folder, reason = unwritable
    target = folder / "out.json"
    monkeypatch.setattr(runner, "kill", lambda *a: pytest.fail("ran before checking --json"))
    assert mutate.main(["--mutants", VALUES_ONLY, "--json", str(target)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"gainkit mutate: error: --json {target}: ")
    assert captured.err.endswith(reason + "\n") and captured.err.count("\n") == 1


def test_missing_folders_of_the_json_path_are_created(faked, capsys, tmp_path):
    faked[VALUES_ONLY] = fake_run(1, ["test_values.py::test_rejects[bool-true]"])
    target = tmp_path / "new" / "out.json"
    assert mutate.main(["--mutants", VALUES_ONLY, "--seeds", "0", "--json", str(target)]) == 0
    assert json.loads(target.read_text())["kill_rate"] == 1.0


def test_a_json_write_that_fails_after_the_runs_exits_3_with_no_half_file(
        faked, capsys, tmp_path, monkeypatch):
    import errno
    import os

    from gainkit import outputs

    def disk_full(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    faked[VALUES_ONLY] = fake_run(1, ["test_values.py::test_rejects[bool-true]"])
    monkeypatch.setattr(outputs.os, "fsync", disk_full)
    target = tmp_path / "out.json"
    assert mutate.main(["--mutants", VALUES_ONLY, "--seeds", "0", "--json", str(target)]) == 3
    assert "writing failed: No space left on device" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_list_describes_every_mutant(capsys):
    assert mutate.main(["--list"]) == 0
    out = capsys.readouterr().out
    for name, mutant in MUTANTS.items():
        assert name in out and mutant.description in out


@pytest.mark.mutation
def test_real_focused_run(tmp_path, capsys):
    out_json = tmp_path / "out.json"
    code = mutate.main(["--mutants", VALUES_ONLY, "--focused", "--seeds", "0", "--json",
                        str(out_json)])
    out = capsys.readouterr().out
    assert code == 0, out
    (entry,) = json.loads(out_json.read_text(encoding="utf-8"))["mutants"]
    assert entry["killed"] and entry["missed_by"] == []
    assert all("test_leaky_relu_rejects_non_numbers" in nodeid for nodeid in entry["failed"])
    assert "--gainkit-mutant leaky_relu-bool-accepted" in entry["command"]


def test_a_mutant_this_torch_lacks_is_not_applicable_not_an_error(tmp_path):
    # e.g. generator= faults on torch < 2.2: reported n/a with the reason, never run, and
    # left out of the kill rate (they used to read as the suite's usage error, exit 4).
    from gainkit.mutation.catalogue import Mutant, NotApplicable

    def builder(init, original):
        raise NotApplicable("kaiming_normal_ takes no generator= in this torch")

    lacking = Mutant("test-lacking", "a fault of a newer torch", ("generator-ignored",),
                     {"kaiming_normal_": builder}, ("test_init_arguments.py",), "")
    options = runner.Options(suite=tmp_path / "no-suite-here")  # a run would find no tests
    result = runner.kill(lacking, options)
    assert not result.applies and result.as_declared and not result.killed
    assert result.verdict == "n/a"
    assert result.reason == "kaiming_normal_ takes no generator= in this torch"
    assert result.run.command == ()  # nothing was run
    killed = runner.kill(MUTANTS["gain-tanh-x1.05"], runner.Options(
        suite=tmp_path / "no-suite-here"))
    assert killed.applies and not killed.killed  # an applying mutant is run (and, here, fails)
    assert runner.kill_rate([result, killed]) == 0.0
    assert runner.kill_rate([result]) == 1.0
