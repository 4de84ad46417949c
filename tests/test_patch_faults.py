"""Faults during a patch run: each leaves the target as it was, or fully patched, and says so.

A run killed outright at each step of its write, two runs at once, a disk that fills up or a
file made read-only half-way, symlinked site-packages, CRLF files and hand-edited hunks, all on
targets built from real torch release files.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gainkit.patching import journal, lock
from gainkit.patching.plan import APPLIES, make_plan
from gainkit.patching.run import apply, exclusive
from gainkit.patching.series import default_patch_dir, load_series
from gainkit.patching.targets import tree_target

RELEASE = "1.7.1"
INTERRUPTED = r"{root}: found an interrupted {command} from \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d " \
              r"\(pid {pid}\); "


def plan_for(tree):
    return make_plan(load_series(default_patch_dir()), tree_target(str(tree)))


def worktree_digest(tree: Path) -> str:
    """sha256 of every path, mode and byte under tree, but .git."""
    sha = hashlib.sha256()
    for path in sorted(tree.rglob("*")):
        rel = path.relative_to(tree)
        if rel.parts[0] != ".git":
            sha.update(f"{rel} {oct(path.lstat().st_mode)}\n".encode())
            if path.is_file():
                sha.update(path.read_bytes())
    return sha.hexdigest()


def leftovers(root: Path):
    """What a run may leave in a target: journals, the lock, temporary and probe files."""
    names = (journal.JOURNAL_PREFIX + "*", lock.LOCK_NAME,
             journal.NEW_PREFIX + "*", journal.PROBE)
    return sorted(str(path) for name in names for path in root.rglob(name))


def journals(root: Path):
    return sorted(root.glob(journal.JOURNAL_PREFIX + "*"))


def kill(process):
    process.kill()
    process.communicate()


def resume(process):
    """End a test pause early; returns (exit code, stdout, stderr) of the finished run."""
    process.send_signal(signal.SIGUSR1)
    stdout, stderr = process.communicate(timeout=300)
    return process.returncode, stdout, stderr


@pytest.fixture
def patched_digest(make_tree, tmp_path):
    """worktree_digest of a tree of that release after an uninterrupted apply."""
    def of(version: str = RELEASE, **options) -> str:
        tree = make_tree(version, where=tmp_path / f"reference-{version}", **options)
        plan = plan_for(tree)
        with exclusive(plan.target) as hold:
            apply(plan, hold)
        return worktree_digest(tree)
    return of


def _recovers(run_cli, tree, process, command, done, *target):
    """`status` after the kill rolls back and says so in one line; nothing is left behind."""
    status = run_cli("status", *target)
    assert status.returncode == 0 and status.stderr == "", status.stderr
    first = status.stdout.splitlines()[0]
    assert re.fullmatch(INTERRUPTED.format(root=re.escape(str(tree)), command=command,
                                           pid=process.pid) + done, first), first
    assert status.stdout.splitlines()[1].startswith("target: ")
    assert leftovers(tree) == []
    return status


# -- SIGKILL at each step -----------------------------------------------------------------

@pytest.mark.parametrize("step, written", [
    ("prepared", 0), ("journal", 0), ("file-1", 1), ("file-2", 2), ("file-3", 3)])
def test_a_tree_apply_killed_at_each_step_is_rolled_back_by_the_next_run(
        make_tree, run_cli, start_cli, digest, patched_digest, step, written):
    tree = make_tree(RELEASE)
    plan = plan_for(tree)
    original, changes = digest(tree), list(plan.changes(plan.after_apply))
    assert len(changes) == 3
    process = start_cli("apply", "--tree", str(tree), step=step)
    kill(process)
    assert len(journals(tree)) == 1
    assert [rel for rel in changes if (tree / rel).read_bytes() != plan.before[rel]] == \
        changes[:written]  # the kill really left it mixed
    _recovers(run_cli, tree, process, "apply", f"restored {written} files?", "--tree", str(tree))
    assert digest(tree) == original
    assert run_cli("apply", "--tree", str(tree)).returncode == 0
    assert worktree_digest(tree) == patched_digest()


@pytest.mark.parametrize("step, committed", [
    ("journal", 0), ("patch-1", 1), ("patch-2", 2), ("patch-3", 3), ("patch-4", 4)])
def test_a_checkout_apply_killed_at_each_step_drops_its_commits_in_the_next_run(
        make_tree, git, run_cli, start_cli, digest, patched_digest, step, committed):
    tree = make_tree(RELEASE, checkout=True)
    original, head = digest(tree), git(tree, "rev-parse", "HEAD").strip()
    todo = plan_for(tree).having(APPLIES)
    assert len(todo) == 4
    process = start_cli("apply", "--tree", str(tree), step=step)
    kill(process)
    assert git(tree, "rev-list", "--count", f"{head}..HEAD").strip() == str(committed)
    _recovers(run_cli, tree, process, "apply",
              f"dropped {committed} commits?; HEAD is {head[:12]} again", "--tree", str(tree))
    assert digest(tree) == original
    assert run_cli("apply", "--tree", str(tree)).returncode == 0
    assert worktree_digest(tree) == patched_digest()
    assert git(tree, "log", "--reverse", "--format=%s", f"{head}..HEAD").splitlines() == [
        verdict.patch.subject for verdict in todo]
    assert git(tree, "status", "--porcelain") == ""


KILL_ALL = """#!/bin/sh
# a power cut in the middle of git am: the patch tool and git am die here, mid-patch
kill -KILL "$(cat .git/patch-tool.pid)"
kill -KILL 0
"""


def test_a_checkout_killed_inside_git_am_is_aborted_and_reset_by_the_next_run(
        make_tree, git, run_cli, start_cli, digest, patched_digest):
    tree = make_tree(RELEASE, checkout=True)
    original, head = digest(tree), git(tree, "rev-parse", "HEAD").strip()
    hook = tree / ".git" / "hooks" / "pre-applypatch"
    process = start_cli("apply", "--tree", str(tree), step="journal")
    (tree / ".git" / "patch-tool.pid").write_text(f"{process.pid}\n")
    hook.write_text(KILL_ALL)
    hook.chmod(0o755)
    returncode, _, _ = resume(process)
    assert returncode == -signal.SIGKILL
    assert (tree / ".git" / "rebase-apply").is_dir()  # cut off inside git am
    hook.unlink()
    (tree / ".git" / "patch-tool.pid").unlink()
    _recovers(run_cli, tree, process, "apply", f"dropped 0 commits; HEAD is {head[:12]} again",
              "--tree", str(tree))
    assert not (tree / ".git" / "rebase-apply").exists()
    assert digest(tree) == original
    assert run_cli("apply", "--tree", str(tree)).returncode == 0
    assert worktree_digest(tree) == patched_digest()


@pytest.mark.parametrize("step, written", [("journal", 0), ("file-1", 1), ("file-2", 2)])
def test_a_site_packages_apply_killed_at_each_step_is_rolled_back(
        fake_site, run_cli, start_cli, digest, step, written):
    site = fake_site(RELEASE)
    original = digest(site)
    process = start_cli("apply", "--python", sys.executable, step=step)
    kill(process)
    assert len(journals(site)) == 1
    _recovers(run_cli, site, process, "apply", f"restored {written} files?",
              "--python", sys.executable)
    assert digest(site) == original


@pytest.mark.parametrize("step, written", [("file-1", 1), ("file-2", 2)])
def test_a_revert_killed_half_way_is_rolled_back_to_the_patched_tree(
        make_tree, run_cli, start_cli, digest, step, written):
    tree = make_tree(RELEASE)
    assert run_cli("apply", "--tree", str(tree)).returncode == 0
    patched = digest(tree)
    process = start_cli("revert", "--tree", str(tree), step=step)
    kill(process)
    assert digest(tree) != patched
    _recovers(run_cli, tree, process, "revert", f"restored {written} files?",
              "--tree", str(tree))
    assert digest(tree) == patched


def test_a_working_tree_apply_killed_half_way_is_rolled_back(make_tree, git, run_cli,
                                                             start_cli, digest):
    tree = make_tree(RELEASE, checkout=True)
    original = digest(tree)
    process = start_cli("apply", "--tree", str(tree), "--working-tree", step="file-2")
    kill(process)
    assert git(tree, "status", "--porcelain", "--", "test", "torch").strip()
    _recovers(run_cli, tree, process, "apply", "restored 2 files", "--tree", str(tree))
    assert digest(tree) == original


def test_a_rollback_killed_half_way_is_finished_by_the_run_after(make_tree, run_cli,
                                                                 start_cli, digest):
    tree = make_tree(RELEASE)
    original = digest(tree)
    applying = start_cli("apply", "--tree", str(tree), step="file-3")
    kill(applying)
    recovering = start_cli("status", "--tree", str(tree), step="restore-2")
    kill(recovering)
    assert len(journals(tree)) == 1 and digest(tree) != original
    _recovers(run_cli, tree, applying, "apply", "restored 1 file", "--tree", str(tree))
    assert digest(tree) == original


def test_every_command_recovers_first(make_tree, run_cli, start_cli, digest):
    tree = make_tree(RELEASE)
    original = digest(tree)
    for command in ("check", "apply", "revert"):
        process = start_cli("apply", "--tree", str(tree), step="file-2")
        kill(process)
        result = run_cli(command, "--tree", str(tree))
        assert result.returncode == 0, result.stderr
        assert re.match(INTERRUPTED.format(root=re.escape(str(tree)), command="apply",
                                           pid=process.pid) + "restored 2 files\n",
                        result.stdout), result.stdout
        if command == "apply":
            assert result.stdout.splitlines()[-1].startswith("applied ")
            assert run_cli("revert", "--tree", str(tree)).returncode == 0
        assert digest(tree) == original


def test_a_journal_that_was_never_completed_is_just_removed(make_tree, run_cli, digest):
    tree = make_tree(RELEASE)
    original = digest(tree)
    (tree / (journal.JOURNAL_PREFIX + "cut-short")).mkdir()  # killed inside mkdtemp
    status = run_cli("status", "--tree", str(tree))
    assert status.returncode == 0 and status.stdout.startswith("target: ")
    assert digest(tree) == original


def test_a_rollback_that_cannot_be_done_is_one_line_and_keeps_the_journal(
        make_tree, run_cli, start_cli, one_error):
    tree = make_tree(RELEASE)
    process = start_cli("apply", "--tree", str(tree), step="file-1")
    kill(process)
    [journal] = journals(tree)
    backups = journal / "files"
    shutil.rmtree(str(backups))
    line = one_error(run_cli("status", "--tree", str(tree)), 3)
    assert line.startswith(f"gainkit patch: error: {tree}: found an interrupted apply from ")
    assert f"; cannot roll it back: {backups}/" in line
    assert line.endswith(f"; its journal is {journal}")
    assert journals(tree) == [journal]


# -- two runs at once ---------------------------------------------------------------------

def test_a_second_run_is_refused_while_the_first_writes(make_tree, run_cli, start_cli, digest,
                                                        patched_digest, one_error):
    tree = make_tree(RELEASE)
    todo = plan_for(tree).having(APPLIES)
    first = start_cli("apply", "--tree", str(tree), step="file-1")
    mixed = digest(tree)
    for command in ("apply", "revert", "status", "check"):
        line = one_error(run_cli(command, "--tree", str(tree)), 2)
        assert line == (f"gainkit patch: error: {tree}: another gainkit patch is running "
                        f"(pid {first.pid})")
        assert digest(tree) == mixed
    returncode, stdout, stderr = resume(first)
    assert returncode == 0 and stdout.splitlines()[-1] == f"applied {len(todo)} patches", stderr
    assert worktree_digest(tree) == patched_digest()
    assert leftovers(tree) == []


@pytest.mark.parametrize("checkout", [False, True], ids=["tree", "checkout"])
def test_two_applies_started_together_patch_once(make_tree, series_dir, git, patched_digest,
                                                 checkout):
    tree = make_tree(RELEASE, checkout=checkout)
    todo = plan_for(tree).having(APPLIES)
    command = [sys.executable, "-m", "gainkit.tools.patch", "apply", "--tree", str(tree),
               "--patches", str(series_dir)]
    env = dict(os.environ, GIT_AUTHOR_NAME="T", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="T", GIT_COMMITTER_EMAIL="t@example.com")
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env) for _ in range(2)]
    outcomes = []
    for run in runs:
        stdout, stderr = run.communicate(timeout=300)
        assert "Traceback" not in stderr
        last = (stderr or stdout).splitlines()[-1]
        outcomes.append((run.returncode, re.sub(r"\(pid \d+\)", "(pid N)", last)))
    assert sorted(outcomes)[0] == (0, f"applied {len(todo)} patches")
    assert sorted(outcomes)[1] in [
        (0, "nothing to apply"),
        (2, f"gainkit patch: error: {tree}: another gainkit patch is running (pid N)")]
    assert worktree_digest(tree) == patched_digest()
    if checkout:
        assert git(tree, "rev-list", "--count", "HEAD").strip() == str(1 + len(todo))


# -- a full disk, a file made read-only ---------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs (needs root and mount)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "gainkit-test",
                              str(disk)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(disk: Path) -> None:
    with open(str(disk / "filler"), "wb", buffering=0) as stream:
        for size in (1 << 20, 4096, 1):
            try:
                while stream.write(b"\0" * size):
                    pass
            except OSError as error:
                assert error.errno == errno.ENOSPC


def test_a_disk_that_fills_up_half_way_is_rolled_back(small_disk, make_tree, start_cli,
                                                      run_cli, digest, patched_digest):
    tree = make_tree(RELEASE, where=small_disk / "pytorch")
    plan = plan_for(tree)
    original, second = digest(tree), list(plan.changes(plan.after_apply))[1]
    process = start_cli("apply", "--tree", str(tree), step="file-1")
    fill(small_disk)
    returncode, _, stderr = resume(process)
    assert returncode == 3 and "Traceback" not in stderr
    assert stderr.splitlines() == [
        f"gainkit patch: error: {tree / second}: No space left on device; nothing changed"]
    assert digest(tree) == original and leftovers(tree) == []
    (small_disk / "filler").unlink()
    assert run_cli("apply", "--tree", str(tree)).returncode == 0
    assert worktree_digest(tree) == patched_digest()


def test_a_full_disk_is_refused_before_writing(small_disk, make_tree, run_cli, digest, one_error):
    tree = make_tree(RELEASE, where=small_disk / "pytorch")
    original = digest(tree)
    fill(small_disk)
    line = one_error(run_cli("apply", "--tree", str(tree)), 2)
    assert line == f"gainkit patch: error: {tree}: cannot create files in it: " \
                   "No space left on device"
    assert digest(tree) == original and leftovers(tree) == []


def test_a_disk_too_full_for_the_backups_is_refused_before_writing(small_disk, make_tree,
                                                                   run_cli, digest, one_error):
    tree = make_tree(RELEASE, where=small_disk / "pytorch")
    original = digest(tree)
    fill(small_disk)
    filler = small_disk / "filler"
    os.truncate(str(filler), filler.stat().st_size - 4 * 4096)  # room for the journal only
    line = one_error(run_cli("apply", "--tree", str(tree)), 2)
    assert re.fullmatch(re.escape(f"gainkit patch: error: {tree}/{journal.JOURNAL_PREFIX}")
                        + r"\S+: cannot keep a copy of the files to replace: No space left on "
                        r"device", line), line
    assert digest(tree) == original and leftovers(tree) == []


def _chattr(flag, path):
    try:
        subprocess.run(["chattr", flag, str(path)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"chattr is not available here: {error}")


@pytest.mark.parametrize("what", ["file", "directory"])
def test_a_file_made_read_only_half_way_is_rolled_back(make_tree, start_cli, run_cli, digest,
                                                       what):
    tree = make_tree(RELEASE)
    plan = plan_for(tree)
    original, changes = digest(tree), list(plan.changes(plan.after_apply))
    blocked = tree / changes[2]
    locked = blocked if what == "file" else blocked.parent
    process = start_cli("apply", "--tree", str(tree), step="file-1")
    _chattr("+i", locked)
    try:
        returncode, _, stderr = resume(process)
    finally:
        _chattr("-i", locked)
    assert returncode == 3 and "Traceback" not in stderr
    assert stderr.splitlines() == [
        f"gainkit patch: error: {blocked}: Operation not permitted; nothing changed"]
    assert digest(tree) == original and leftovers(tree) == []


# -- symlinks -----------------------------------------------------------------------------

@pytest.mark.parametrize("linked", ["site-packages", "torch", "init.py"])
def test_a_symlinked_site_packages_is_patched_through_its_links(fake_site, run_cli, tmp_path,
                                                               digest, monkeypatch, linked):
    real = fake_site(RELEASE)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    site = real
    if linked == "site-packages":
        site = tmp_path / "venv-site-packages"
        site.symlink_to(real)
        monkeypatch.setenv("PYTHONPATH", str(site))
        link = site
    else:
        inside = {"torch": "torch", "init.py": "torch/nn/init.py"}[linked]
        link = real / inside
        shutil.move(str(link), str(elsewhere / link.name))
        link.symlink_to(elsewhere / link.name)
    original = (digest(real), digest(elsewhere))
    selu = run_cli("apply", "--python", sys.executable)
    assert selu.returncode == 0, selu.stderr
    assert link.is_symlink()
    init_py = Path(os.path.realpath(str(site / "torch/nn/init.py")))
    assert "elif nonlinearity == 'selu':" in init_py.read_text()
    assert leftovers(real) == leftovers(elsewhere) == []
    assert run_cli("revert", "--python", sys.executable).returncode == 0
    assert link.is_symlink()
    assert (digest(real), digest(elsewhere)) == original


# -- trees the patches do not fit ---------------------------------------------------------

def _crlf(path: Path) -> None:
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))


@pytest.mark.parametrize("checkout", [False, True], ids=["tree", "checkout"])
def test_a_crlf_tree_is_a_conflict_that_names_the_line_endings(make_tree, git, run_cli, digest,
                                                               checkout):
    tree = make_tree(RELEASE)
    for path in tree.rglob("*.py"):
        _crlf(path)
    if checkout:
        git(tree, "init", "-q")
        git(tree, "add", "-A")
        git(tree, "commit", "-q", "-m", "a CRLF tree")
    before = digest(tree)
    status = run_cli("status", "--tree", str(tree))
    assert status.returncode == 1
    conflicts = [line for line in status.stdout.splitlines() if " CONFLICT " in line]
    assert conflicts and all("has CRLF line endings and the patch has LF" in line
                             for line in conflicts)
    result = run_cli("apply", "--tree", str(tree))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = result.stderr.splitlines()
    assert len(errors) == len(conflicts)
    for line in errors:
        assert re.fullmatch(r"gainkit patch: error: " + re.escape(str(tree)) + r"/\S+\.py: has "
                            r"CRLF line endings and the patch has LF; convert the file to LF "
                            r"line endings first \(\S+\.patch\)", line), line
    assert digest(tree) == before


def test_one_crlf_file_stops_the_whole_series(make_tree, run_cli, digest):
    tree = make_tree(RELEASE)
    _crlf(tree / "torch/nn/init.py")
    before = digest(tree)
    result = run_cli("apply", "--tree", str(tree))
    assert result.returncode == 1
    assert all(f"{tree}/torch/nn/init.py: has CRLF" in line for line in result.stderr.splitlines())
    assert digest(tree) == before  # activation.py and the test would apply: not written either


HAND_EDITS = {
    "line-above": ("        return math.sqrt(2.0 / (1 + negative_slope ** 2))\n",
                   "        return math.sqrt(2.0 / (1.0 + negative_slope ** 2))\n"),
    "line-below": ('        raise ValueError("Unsupported nonlinearity {}".format(nonlinearity))',
                   '        raise ValueError("Unsupported nonlinearity %s" % nonlinearity)'),
    "own-selu": ("    else:\n        raise ValueError(\"Unsupported nonlinearity",
                 "    elif nonlinearity == 'selu':\n        return 1.0\n"
                 "    else:\n        raise ValueError(\"Unsupported nonlinearity"),
    "trailing-space": ("    ReLU              :math:`\\sqrt{2}`\n",
                       "    ReLU              :math:`\\sqrt{2}` \n"),
}


# In a checkout whose history holds the release's file, git am --3way merges an edit that
# leaves a line between it and the patch's change, and conflicts on one that touches it.
MERGES_IN_A_CHECKOUT = {"line-above": False, "line-below": True, "own-selu": False,
                        "trailing-space": True}


@pytest.mark.parametrize("edit", sorted(HAND_EDITS))
def test_a_hand_edit_near_a_hunk_is_a_conflict_naming_file_and_line(make_tree, run_cli,
                                                                    digest, edit):
    tree = make_tree(RELEASE)
    init_py = tree / "torch/nn/init.py"
    old, new = HAND_EDITS[edit]
    assert init_py.read_text().count(old) == 1
    init_py.write_text(init_py.read_text().replace(old, new))
    before = digest(tree)
    status = run_cli("status", "--tree", str(tree))
    assert status.returncode == 1
    assert re.search(re.escape(f"CONFLICT  ({init_py}: hunk at line ") + r"\d+ does not apply\)",
                     status.stdout), status.stdout
    result = run_cli("apply", "--tree", str(tree))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert any(re.fullmatch(re.escape(f"gainkit patch: error: {init_py}: hunk at line ")
                            + r"\d+ does not apply \(\S+\.patch\)", line)
               for line in result.stderr.splitlines()), result.stderr
    assert digest(tree) == before


@pytest.mark.parametrize("edit", sorted(HAND_EDITS))
def test_a_fork_commit_near_a_hunk_is_merged_3_way_or_a_conflict_naming_the_file(
        make_tree, git, run_cli, digest, edit):
    tree = make_tree(RELEASE, checkout=True)
    init_py = tree / "torch/nn/init.py"
    old, new = HAND_EDITS[edit]
    init_py.write_text(init_py.read_text().replace(old, new))
    git(tree, "commit", "-q", "-am", "fork: hand edit")
    before, head = digest(tree), git(tree, "rev-parse", "HEAD").strip()
    status = run_cli("status", "--tree", str(tree))
    result = run_cli("apply", "--tree", str(tree))
    assert "Traceback" not in result.stderr
    if MERGES_IN_A_CHECKOUT[edit]:
        assert status.returncode == 0, status.stdout
        assert "applies with a 3-way merge (git am --3way)" in status.stdout
        assert result.returncode == 0, result.stderr
        text = init_py.read_text()
        assert new in text and "elif nonlinearity == 'selu':" in text
        assert git(tree, "merge-base", "--is-ancestor", head, "HEAD") == ""
        assert "3-way" in run_cli("status", "--tree", str(tree)).stdout  # reverses 3-way too
        assert run_cli("revert", "--tree", str(tree)).returncode == 0
        assert git(tree, "rev-parse", "HEAD").strip() == head
    else:
        assert status.returncode == 1
        wanted = (f"gainkit patch: error: {init_py}: a 3-way merge (git am --3way) conflicts "
                  "with the checkout's own changes (0001-")
        assert result.returncode == 1
        assert any(line.startswith(wanted) for line in result.stderr.splitlines()), \
            result.stderr
        assert not (tree / ".git" / "rebase-apply").exists()
    assert digest(tree) == before or MERGES_IN_A_CHECKOUT[edit]


def test_a_hand_edit_away_from_the_hunks_is_patched_and_kept(make_tree, run_cli, digest):
    tree = make_tree(RELEASE)
    init_py = tree / "torch/nn/init.py"
    init_py.write_text("# local note: vendored from torch 1.7.1\n" + init_py.read_text())
    before = digest(tree)
    assert run_cli("apply", "--tree", str(tree)).returncode == 0
    text = init_py.read_text()
    assert text.startswith("# local note") and "elif nonlinearity == 'selu':" in text
    assert run_cli("revert", "--tree", str(tree)).returncode == 0
    assert digest(tree) == before
