"""The patch tool (gainkit.patching, gainkit patch) on targets built from real torch
releases."""

from __future__ import annotations

import ast
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
from packaging.version import Version

from gainkit.patching import journal, write
from gainkit.patching.errors import PatchError
from gainkit.patching.plan import APPLIED, APPLIES, CONFLICT, NOT_APPLICABLE, UPSTREAM, make_plan
from gainkit.patching.run import apply, exclusive
from gainkit.patching.series import load_series
from gainkit.patching.targets import python_target, tree_target
from gainkit.tools import patch as cli

SELU_UPSTREAM, WARNING_UPSTREAM = Version("1.8.0"), Version("1.9.0")


def plan_for(tree, series, working_tree=False):
    return make_plan(series, tree_target(str(tree), working_tree))


def statuses(plan):
    return {verdict.patch.name: verdict.status for verdict in plan.verdicts}


def role(verdict):
    if all(rel.startswith("test/") for rel in verdict.files):
        return "test"
    return {SELU_UPSTREAM: "selu", WARNING_UPSTREAM: "warning"}.get(verdict.patch.upstream)


def gain(init_py, nonlinearity):
    """calculate_gain(nonlinearity) of that init.py, run on its own (no torch import)."""
    module = ast.parse(init_py.read_text())
    function = [node for node in module.body
                if isinstance(node, ast.FunctionDef) and node.name == "calculate_gain"]
    namespace = {"math": math}
    exec(compile(ast.Module(body=function, type_ignores=[]), str(init_py), "exec"), namespace)
    return namespace["calculate_gain"](nonlinearity)


# -- the series ---------------------------------------------------------------------------

def test_fields_are_read_from_the_patch_files(series):
    assert series
    selu = [patch for patch in series if patch.upstream == SELU_UPSTREAM]
    assert len(selu) == 1
    assert "e9b369c25f33af51b163db87ef0b76dc50697c1e" in selu[0].fields["Origin"]
    assert Version("1.7.1") in selu[0].torch_versions
    assert Version("1.8.0") not in selu[0].torch_versions
    for patch in series:
        assert patch.subject and not patch.subject.startswith("[PATCH")


def test_a_patch_without_torch_versions_is_refused(tmp_path, series):
    broken = tmp_path / series[0].name
    broken.write_text(series[0].path.read_text().replace("Torch-Versions:", "Torch-Range:"))
    (tmp_path / "series").write_text("# comment\n\n" + broken.name + "\n")
    with pytest.raises(PatchError, match=re.escape(f"{broken}: no Torch-Versions")):
        load_series(tmp_path)


# -- statuses -----------------------------------------------------------------------------

def test_everything_in_range_applies_to_a_1_7_1_tree(make_tree, series):
    plan = plan_for(make_tree("1.7.1"), series)
    for verdict in plan.verdicts:
        in_range = Version("1.7.1") in verdict.patch.torch_versions
        if in_range:
            assert (verdict.status, verdict.reason) == (
                APPLIES, "the change is absent; applies cleanly")
        elif all((verdict.patch.path.parent / "series").is_file() and
                 (plan.target.root / rel).exists() for rel in verdict.files):
            # the 1.0.x docstring patch and the 1.8 test patch do not fit 1.7.1's files
            assert (verdict.status, verdict.reason) == (
                NOT_APPLICABLE, "version.txt says 1.7.1, outside Torch-Versions "
                + verdict.patch.fields["Torch-Versions"])
        else:
            assert (verdict.status, verdict.reason) == (
                NOT_APPLICABLE, "absent here: " + ", ".join(verdict.files))
    assert {role(verdict) for verdict in plan.having(APPLIES)} == {
        "selu", "warning", "test"}


@pytest.mark.parametrize("version, upstream_roles", [
    ("1.8.0", {"selu"}), ("1.9.0", {"selu", "warning"}), ("2.13.0", {"selu", "warning"})])
def test_backports_are_upstream_and_the_test_fix_still_applies(make_tree, series, version,
                                                               upstream_roles):
    tree = make_tree(version)
    plan = plan_for(tree, series)
    assert {role(verdict) for verdict in plan.having(UPSTREAM)} == upstream_roles
    assert "test" in {role(verdict) for verdict in plan.having(APPLIES)}
    assert not plan.having(CONFLICT)
    assert not [verdict.reason for verdict in plan.verdicts if "yet it applies" in verdict.reason]
    with exclusive(plan.target) as hold:
        apply(plan, hold)
    after = plan_for(tree, series)
    assert statuses(after) == {name: APPLIED if status == APPLIES else status
                               for name, status in statuses(plan).items()}


def test_apply_then_status_says_applied_and_selu_gain_is_three_quarters(make_tree, series):
    tree = make_tree("1.7.1")
    with pytest.raises(ValueError, match="Unsupported nonlinearity selu"):
        gain(tree / "torch/nn/init.py", "selu")
    plan = plan_for(tree, series)
    with exclusive(plan.target) as hold:
        applied = apply(plan, hold)
    plan = plan_for(tree, series)
    assert {verdict.patch.name for verdict in plan.having(APPLIED)} == {
        verdict.patch.name for verdict in applied}
    assert {verdict.reason for verdict in plan.having(APPLIED)} == {
        "the change is present (reverse-applies)"}
    assert gain(tree / "torch/nn/init.py", "selu") == 0.75
    assert gain(tree / "torch/nn/init.py", "tanh") == 5.0 / 3


def test_a_hand_edited_hunk_is_a_conflict_and_nothing_is_written(make_tree, series, run_cli,
                                                                 digest):
    tree = make_tree("1.7.1")
    init_py = tree / "torch/nn/init.py"
    init_py.write_text(init_py.read_text().replace("Leaky Relu ", "LeakyReLU  ", 1))
    plan = plan_for(tree, series)
    selu = [verdict for verdict in plan.verdicts if role(verdict) == "selu"][0]
    assert selu.status == CONFLICT
    assert re.fullmatch(re.escape(str(init_py)) + r": hunk at line \d+ does not apply",
                        selu.reason)
    before = digest(tree)
    for command, code in (("status", 1), ("check", 1), ("apply", 1)):
        result = run_cli(command, "--tree", str(tree))
        assert result.returncode == code and "Traceback" not in result.stderr
        assert digest(tree) == before
    errors = result.stderr.splitlines()
    assert len(errors) == len(plan.having(CONFLICT))
    assert f"gainkit patch: error: {selu.reason} ({selu.patch.name})" in errors


def test_a_version_outside_every_range_is_patched_when_the_content_says_so(
        make_tree, run_cli, digest):
    """version.txt says 0.4.1 but the files are 1.0.0's: content wins, and each line says so."""
    tree = make_tree("1.0.0", version_txt="0.4.1")
    result = run_cli("status", "--tree", str(tree))
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == f"target: source tree {tree} (torch 0.4.1, from version.txt)"
    applies = [line for line in lines[1:-1] if " APPLIES " in line]
    assert applies and all("version.txt says 0.4.1, outside Torch-Versions" in line
                           and "the content decides" in line for line in applies)
    assert run_cli("apply", "--tree", str(tree)).returncode == 0
    assert gain(tree / "torch/nn/init.py", "selu") == 0.75
    assert run_cli("apply", "--tree", str(tree)).stdout.splitlines()[-1] == "nothing to apply"


def test_a_prerelease_checkout_without_the_change_takes_the_backport(make_tree, series, run_cli,
                                                                    git):
    """A master checkout from before SELU landed: version.txt 1.8.0a0, 1.7.1's files."""
    tree = make_tree("1.7.1", version_txt="1.8.0a0", checkout=True)
    plan = plan_for(tree, series)
    assert plan.target.version == Version("1.8.0a0")
    selu = [verdict for verdict in plan.verdicts if role(verdict) == "selu"][0]
    assert (selu.status, selu.reason) == (
        APPLIES, "version.txt says 1.8.0a0, a pre-release; the change is absent; applies cleanly")
    result = run_cli("apply", "--tree", str(tree))
    assert result.returncode == 0, result.stdout + result.stderr
    assert gain(tree / "torch/nn/init.py", "selu") == 0.75
    assert set(statuses(plan_for(tree, series)).values()) <= {APPLIED, NOT_APPLICABLE}
    assert run_cli("revert", "--tree", str(tree)).returncode == 0
    with pytest.raises(ValueError, match="Unsupported nonlinearity selu"):
        gain(tree / "torch/nn/init.py", "selu")


def test_a_prerelease_tree_with_the_change_gets_only_what_is_missing(make_tree, series, run_cli):
    """version.txt 1.8.0a0 with 1.8.1's files: SELU is there (upstream), the warnings and the
    test fix are not; the 1.8 test patch is out of range by version but fits by content."""
    tree = make_tree("1.8.1", version_txt="1.8.0a0")
    original = (tree / "torch/nn/init.py").read_text()
    plan = plan_for(tree, series)
    by_role = {}
    for verdict in plan.verdicts:
        by_role.setdefault(role(verdict), []).append(verdict)
    selu = by_role["selu"][0]  # in range by order: read as ours, so revert undoes apply
    assert (selu.status, selu.reason) == (
        APPLIED, "version.txt says 1.8.0a0, a pre-release; the change is present (reverse-applies)")
    assert [verdict.status for verdict in by_role["warning"]].count(APPLIES) == 2
    chosen = [verdict for verdict in plan.having(APPLIES) if role(verdict) == "test"]
    assert len(chosen) == 1 and chosen[0].reason.endswith("applies: the content decides")
    assert not plan.having(CONFLICT)
    result = run_cli("apply", "--tree", str(tree))
    assert result.returncode == 0, result.stdout + result.stderr
    patched = (tree / "torch/nn/init.py").read_text()
    assert patched.count("elif nonlinearity == 'selu':") == 1
    assert len(patched.splitlines()) > len(original.splitlines())  # the warning
    assert gain(tree / "torch/nn/init.py", "selu") == 0.75
    assert run_cli("apply", "--tree", str(tree)).stdout.splitlines()[-1] == "nothing to apply"


@pytest.mark.parametrize("source", ["torch/version.py", "dist-info"])
def test_a_tree_without_version_txt_takes_its_version_from_torch_or_its_metadata(
        make_tree, series, source):
    tree = make_tree("1.7.1")
    (tree / "version.txt").unlink()
    if source == "torch/version.py":
        (tree / "torch/version.py").write_text(
            "__version__ = '1.7.1+cu101'\ndebug = False\ncuda = '10.1'\n")
        said = "torch/version.py"
    else:
        (tree / "torch-1.7.1.dist-info").mkdir()
        (tree / "torch-1.7.1.dist-info/METADATA").write_text(
            "Metadata-Version: 2.1\nName: torch\nVersion: 1.7.1\n")
        said = "torch-1.7.1.dist-info"
    plan = plan_for(tree, series)
    assert (plan.target.version, plan.target.version_source) == (Version("1.7.1"), said)
    assert "selu" in {role(verdict) for verdict in plan.having(APPLIES)}


def test_a_tree_without_any_version_is_decided_by_its_content(make_tree, series, run_cli):
    tree = make_tree("1.7.1")
    (tree / "version.txt").unlink()
    result = run_cli("apply", "--tree", str(tree))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        f"target: source tree {tree} (torch version unknown: no version.txt, torch/version.py "
        "or torch-*.dist-info)")
    assert "no torch version found; the change is absent; applies cleanly" in result.stdout
    assert gain(tree / "torch/nn/init.py", "selu") == 0.75


def test_a_tree_without_a_version_whose_content_matches_no_patch_is_refused(
        make_tree, run_cli, digest, one_error):
    tree = make_tree("1.7.1")
    (tree / "version.txt").unlink()
    init_py = tree / "torch/nn/init.py"
    init_py.write_text("def calculate_gain(nonlinearity, param=None):\n    return 1\n")
    activation = tree / "torch/nn/modules/activation.py"
    activation.write_text(activation.read_text().replace("More details can", "Details can"))
    (tree / "test/test_nn.py").write_text("# not upstream's test\n")
    before = digest(tree)
    line = one_error(run_cli("apply", "--tree", str(tree)), 2)
    assert line == (f"gainkit patch: error: {tree}: no version.txt, torch/version.py or "
                    "torch-*.dist-info, and the content matches no patch of the series (none "
                    "applies or is applied)")
    assert digest(tree) == before


def test_a_patch_whose_files_are_absent_is_not_applicable(make_tree, series):
    plan = plan_for(make_tree("1.7.1", with_test=False), series)
    tests = [verdict for verdict in plan.verdicts
             if role(verdict) == "test" and Version("1.7.1") in verdict.patch.torch_versions]
    assert tests
    for verdict in tests:
        assert verdict.status == NOT_APPLICABLE
        assert verdict.reason == "absent here: " + ", ".join(verdict.files)


# -- plain trees --------------------------------------------------------------------------

def test_status_prints_the_equivalent_git_command_and_it_does_what_apply_does(
        make_tree, run_cli, digest, tmp_path):
    by_tool = make_tree("1.7.1")
    by_git = make_tree("1.7.1", where=tmp_path / "by-git")
    result = run_cli("status", "--tree", str(by_git))
    assert result.returncode == 0 and result.stderr == ""
    command = result.stdout.splitlines()[-1]
    assert command.startswith(f"with git alone: cd {by_git} && ")
    subprocess.run(command[len("with git alone: "):], shell=True, check=True)
    assert run_cli("apply", "--tree", str(by_tool)).returncode == 0
    shutil.move(str(by_tool), str(tmp_path / "by-tool"))
    shutil.move(str(by_git), str(by_tool))
    after_git = digest(by_tool)
    shutil.rmtree(str(by_tool))
    shutil.move(str(tmp_path / "by-tool"), str(by_tool))
    assert digest(by_tool) == after_git


def test_apply_twice_is_a_no_op_and_revert_restores_every_byte(make_tree, run_cli, digest):
    tree = make_tree("1.7.1")
    (tree / "torch/nn/init.py").chmod(0o640)  # an unusual mode must survive too
    original = digest(tree)
    first = run_cli("apply", "--tree", str(tree))
    assert first.returncode == 0 and first.stdout.splitlines()[-1].startswith("applied ")
    patched = digest(tree)
    assert patched != original
    second = run_cli("apply", "--tree", str(tree))
    assert second.returncode == 0 and second.stdout.splitlines()[-1] == "nothing to apply"
    assert run_cli("check", "--tree", str(tree)).returncode == 0
    assert digest(tree) == patched
    reverted = run_cli("revert", "--tree", str(tree))
    assert reverted.returncode == 0 and reverted.stdout.splitlines()[-1].startswith("reverted ")
    assert digest(tree) == original
    again = run_cli("revert", "--tree", str(tree))
    assert again.returncode == 0 and again.stdout.splitlines()[-1] == "nothing to revert"


def test_a_tree_inside_another_repository_is_patched_as_a_plain_tree(make_tree, git, tmp_path,
                                                                     run_cli, digest):
    outer = tmp_path / "project"
    outer.mkdir()
    git(outer, "init", "-q")
    git(outer, "commit", "-q", "--allow-empty", "-m", "outer")
    tree = make_tree("1.7.1", where=outer / "vendor" / "pytorch")
    original = digest(tree)
    result = run_cli("apply", "--tree", str(tree))
    assert result.returncode == 0, result.stderr
    assert gain(tree / "torch/nn/init.py", "selu") == 0.75
    assert git(outer, "rev-list", "--count", "HEAD").strip() == "1"
    assert run_cli("revert", "--tree", str(tree)).returncode == 0
    assert digest(tree) == original


def test_planning_in_a_temporary_directory_inside_a_repository(make_tree, series, git,
                                                               tmp_path, monkeypatch):
    enclosing = tmp_path / "repo"
    (enclosing / "tmp").mkdir(parents=True)
    git(enclosing, "init", "-q")
    monkeypatch.setattr(tempfile, "tempdir", str(enclosing / "tmp"))
    plan = plan_for(make_tree("1.7.1"), series)
    assert "selu" in {role(verdict) for verdict in plan.having(APPLIES)}


# -- git checkouts ------------------------------------------------------------------------

def test_apply_commits_with_git_am_keeping_authors_and_revert_drops_the_commits(
        make_tree, series, git, run_cli, digest):
    tree = make_tree("1.7.1", checkout=True)
    original, head = digest(tree), git(tree, "rev-parse", "HEAD")
    todo = plan_for(tree, series).having(APPLIES)
    result = run_cli("apply", "--tree", str(tree))
    assert result.returncode == 0, result.stderr
    log = git(tree, "log", "--reverse", "--format=%an <%ae>%n%B%x00", f"{head.strip()}..HEAD")
    commits = [entry.strip() for entry in log.split("\0") if entry.strip()]
    assert len(commits) == len(todo)
    for verdict, commit in zip(todo, commits):
        assert commit.splitlines()[0] == str(verdict.patch.path.read_text().split("\nFrom: ")[1]
                                             .splitlines()[0])
        assert verdict.patch.subject in commit
        assert "Torch-Versions: " + verdict.patch.fields["Torch-Versions"] in commit
    assert git(tree, "status", "--porcelain") == ""
    assert set(statuses(plan_for(tree, series)).values()) <= {APPLIED, NOT_APPLICABLE}
    assert run_cli("revert", "--tree", str(tree)).returncode == 0
    assert digest(tree) == original


def test_revert_refuses_when_other_commits_sit_on_top_of_the_series(make_tree, git, run_cli,
                                                                    digest, one_error):
    tree = make_tree("1.7.1", checkout=True)
    assert run_cli("apply", "--tree", str(tree)).returncode == 0
    (tree / "NOTES").write_text("later work\n")
    git(tree, "add", "NOTES")
    git(tree, "commit", "-q", "-m", "later work")
    before = digest(tree)
    line = one_error(run_cli("revert", "--tree", str(tree)), 1)
    assert line.startswith(f"gainkit patch: error: {tree}: the topmost commits of HEAD are not")
    assert digest(tree) == before


def test_working_tree_mode_makes_no_commits(make_tree, series, git, run_cli, digest, one_error):
    tree = make_tree("1.7.1", checkout=True)
    original, head = digest(tree), git(tree, "rev-parse", "HEAD")
    status = run_cli("status", "--tree", str(tree), "--working-tree")
    assert f"with git alone: cd {tree} && " in status.stdout
    assert run_cli("apply", "--tree", str(tree), "--working-tree").returncode == 0
    assert git(tree, "rev-parse", "HEAD") == head
    assert " M torch/nn/init.py" in git(tree, "status", "--porcelain").splitlines()
    assert APPLIED in statuses(plan_for(tree, series)).values()
    line = one_error(run_cli("revert", "--tree", str(tree)), 2)
    assert line.endswith("has local changes; commit or stash them, or use --working-tree")
    assert run_cli("revert", "--tree", str(tree), "--working-tree").returncode == 0
    assert digest(tree) == original


def test_a_failing_git_am_rolls_back_the_patches_already_committed(make_tree, git, run_cli,
                                                                   digest, one_error):
    tree = make_tree("1.7.1", checkout=True)
    hook = tree / ".git" / "hooks" / "pre-applypatch"
    hook.write_text("#!/bin/sh\n[ -e .git/second ] && exit 1\ntouch .git/second\n")
    hook.chmod(0o755)
    original = digest(tree)
    line = one_error(run_cli("apply", "--tree", str(tree)), 3)
    assert "git am failed" in line
    assert digest(tree) == original
    assert not (tree / ".git" / "rebase-apply").exists()


@pytest.mark.parametrize("change, cause", [
    ("local", "torch/nn/init.py: has local changes"),
    ("staged", ": the index has staged changes")])
def test_a_dirty_checkout_is_refused(make_tree, git, run_cli, digest, change, cause, one_error):
    tree = make_tree("1.7.1", checkout=True)
    if change == "local":
        with (tree / "torch/nn/init.py").open("a") as stream:
            stream.write("# local experiment\n")
    else:
        (tree / "NOTES").write_text("staged, not committed\n")
        git(tree, "add", "NOTES")
    before = digest(tree)
    assert cause in one_error(run_cli("apply", "--tree", str(tree)), 2)
    assert digest(tree) == before


# -- installed torch ----------------------------------------------------------------------

def test_site_packages_get_only_the_torch_parts(fake_site, series, run_cli, digest, tmp_path,
                                                monkeypatch):
    site = fake_site("1.7.1", "+cu101")
    original = digest(site)
    (tmp_path / "cwd" / "torch").mkdir(parents=True)  # a torch/ in the cwd is not the installed one
    (tmp_path / "cwd" / "torch" / "__init__.py").write_text("")
    monkeypatch.chdir(tmp_path / "cwd")
    target = python_target(sys.executable)
    assert (target.root, target.version) == (site, Version("1.7.1"))
    plan = make_plan(series, target)
    for verdict in plan.verdicts:
        if role(verdict) == "test" and Version("1.7.1") in verdict.patch.torch_versions:
            assert (verdict.status, verdict.reason) == (NOT_APPLICABLE,
                                                        "changes nothing under torch/*")
    result = run_cli("apply", "--python", sys.executable)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        f"target: site-packages {site} (torch 1.7.1, from torch-1.7.1+cu101.dist-info)\n")
    assert gain(site / "torch/nn/init.py", "selu") == 0.75
    assert run_cli("revert", "--python", sys.executable).returncode == 0
    assert digest(site) == original


def _immutable(*paths):
    try:
        subprocess.run(["chattr", "+i"] + [str(path) for path in paths], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"chattr +i is not available here: {error}")


@pytest.mark.parametrize("what", ["file", "directory"])
def test_a_read_only_site_packages_is_refused_before_writing(fake_site, run_cli, digest, what,
                                                             one_error):
    site = fake_site("1.7.1")
    init_py = site / "torch/nn/init.py"
    locked = init_py if what == "file" else init_py.parent
    before = digest(site)
    _immutable(locked)
    try:
        line = one_error(run_cli("apply", "--python", sys.executable), 2)
        assert digest(site) == before
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=True)
    assert line.startswith(f"gainkit patch: error: {locked}: cannot ")
    assert line.endswith("Operation not permitted")


# -- errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["missing", "empty", "bad-version-py", "bad-version"])
def test_a_directory_that_is_not_a_torch_tree_is_named(make_tree, run_cli, tmp_path, case,
                                                       one_error):
    tree = tmp_path / "not-torch"
    if case != "missing":
        tree.mkdir()
    if case in ("bad-version-py", "bad-version"):
        tree = make_tree("1.7.1", where=tree)
        (tree / "version.txt").write_text("main\n")
        if case == "bad-version-py":
            (tree / "version.txt").unlink()
            (tree / "torch/version.py").write_text("git_version = 'abc'\n")
    line = one_error(run_cli("apply", "--tree", str(tree)), 2)
    assert line == "gainkit patch: error: " + {
        "missing": f"{tree}: no such directory",
        "empty": f"{tree}: not a torch source tree (no torch/nn/init.py)",
        "bad-version-py": f"{tree}/torch/version.py: no __version__ = '...' in it",
        "bad-version": f"{tree}/version.txt: 'main' is not a version"}[case]


def test_an_interpreter_without_torch_or_no_interpreter_is_named(run_cli, tmp_path, one_error):
    bare = tmp_path / "python-without-site"
    bare.write_text(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")
    bare.chmod(0o755)
    line = one_error(run_cli("status", "--python", str(bare)), 2)
    assert line == f"gainkit patch: error: {bare}: torch is not installed there"
    line = one_error(run_cli("status", "--python", str(tmp_path / "nope")), 2)
    assert line == f"gainkit patch: error: {tmp_path / 'nope'}: no such interpreter"


@pytest.mark.parametrize("args", [
    ["apply", "--working-tree"], ["frobnicate"], ["status", "--tree", "x", "--python", "y"]])
def test_usage_errors_are_one_line(run_cli, args, one_error):
    one_error(run_cli(*args), 2)


def test_help_documents_the_exit_codes(run_cli):
    result = run_cli("--help")
    assert result.returncode == 0
    for code in ("0 ", "1 ", "2 ", "3 ", "130 "):
        assert "\n    " + code in result.stdout


def test_a_write_failing_half_way_is_rolled_back(make_tree, series_dir, digest, monkeypatch,
                                                 capsys):
    tree = make_tree("1.7.1")
    original, real_replace, calls = digest(tree), write._replace, []

    def replace_then_fail(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device", str(path))
        real_replace(path, data)

    monkeypatch.setattr(write, "_replace", replace_then_fail)
    code = cli.main(["apply", "--tree", str(tree), "--patches", str(series_dir)])
    errors = capsys.readouterr().err.splitlines()
    assert code == 3 and len(calls) > 2  # the failure, then the rollback
    assert errors == [f"gainkit patch: error: {calls[1]}: No space left on device; "
                      "nothing changed"]
    assert digest(tree) == original


@pytest.mark.parametrize("checkout", [False, True], ids=["tree", "checkout"])
def test_sigint_half_way_through_apply_leaves_the_target_as_it_was(make_tree, series_dir,
                                                                   digest, checkout):
    tree = make_tree("1.7.1", checkout=checkout)
    original = digest(tree)
    process = subprocess.Popen(
        [sys.executable, "-m", "gainkit.tools.patch", "apply", "--tree", str(tree),
         "--patches", str(series_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=dict(os.environ, **{journal.PAUSE_ENV: "60"}),
        # SIGINT at its default whatever the runner's (see start_cli)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while digest(tree) == original and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert digest(tree) != original, "the first write never happened"
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in stderr
    assert stderr.splitlines() == [f"gainkit patch: interrupted; {tree} is as it was"]
    assert digest(tree) == original


def test_sigint_is_ignored_throughout_when_the_tool_starts_with_it_ignored(make_tree, start_cli,
                                                                           digest):
    tree = make_tree("1.7.1")
    original = digest(tree)
    # start_cli fails the test unless the tool reports its pause at file-1
    process = start_cli("apply", "--tree", str(tree), step="file-1", sigint=signal.SIG_IGN)
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)  # a held SIGINT would end the pause at once; an ignored one does nothing
    assert process.poll() is None
    process.send_signal(signal.SIGUSR1)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert digest(tree) != original
    assert "elif nonlinearity == 'selu':" in (tree / "torch" / "nn" / "init.py").read_text()
