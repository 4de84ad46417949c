"""Check, apply and revert the gainkit patch series on a torch target.

Targets: a pytorch git checkout, a plain source tree (an unpacked release), or the torch that
an interpreter imports (its site-packages, which take only the ``torch/`` parts of the series).
git decides everything about patch text (``git apply --numstat``, ``git apply [-R]``,
``git am``); the DEP-3 fields and Torch-Versions come from the patch files via ``email``.

A change is all or nothing:

1. Plan: the files the series touches are copied to a scratch directory, where the series is
   replayed (applied patches unwound newest first, then every patch applied in order). That
   gives each patch's status and the exact bytes of every file after ``apply`` and after
   ``revert`` while the target is only read.
2. Preflight: each file to write and its directory must take writes (probed by opening them);
   a checkout needs a clean index and no local changes in the touched files.
3. Write, holding the target's lock (a second run refuses at once), under a journal in the
   target root (``gainkit.patching.journal``) that keeps the original of each file before it is
   replaced (temporary file + rename, which breaks hard links such as conda's instead of
   writing through them; symlinks are written through). On any error or SIGINT the originals
   go back and the journal goes. In a checkout ``apply`` runs ``git am`` per patch, with the
   HEAD before it in the journal, and a failure or SIGINT runs ``git am --abort`` and
   ``git reset --keep`` back to it. SIGINT is held until the next point between two writes,
   and git runs in its own session, so a terminal Ctrl-C never cuts a write in half.
4. Recover: a run killed outright leaves its journal; the next command on that target (any
   of them, within :func:`exclusive`) rolls the target back to what the journal recorded
   and says so in one line, before it plans anything.

``revert`` in a checkout drops the series' commits with ``git reset --keep``, and only when
they are exactly the topmost commits of HEAD: their subjects are the applied patches' in
order, and the commit below them holds what reverting gives. Anything else is refused rather
than rewriting history that later work builds on.

Test seam: GAINKIT_TEST_PAUSE_AFTER_PATCH=<seconds> sleeps after the first write of a change
(first file replaced, or first patch committed) so that a test can interrupt it half-way;
``<step>:<seconds>`` pauses at a named step (see ``gainkit.patching.journal``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set

from gainkit.patching import journal
from gainkit.patching.errors import EXIT_CONFLICT, EXIT_WRITE, PatchError, last_line
from gainkit.patching.lock import Busy, Lock
from gainkit.patching.series import Patch
from gainkit.patching.targets import Target

APPLIES, APPLIED, UPSTREAM, CONFLICT, NOT_APPLICABLE = (
    "APPLIES", "APPLIED", "UPSTREAM", "CONFLICT", "N/A")
PAUSE_ENV = journal.PAUSE_ENV
Contents = Dict[str, Optional[bytes]]  # relative path -> bytes; None: the file is absent

_REPO_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
             "GIT_COMMON_DIR", "GIT_PREFIX")


@dataclass
class Verdict:
    patch: Patch
    status: str | None
    reason: str
    files: List[str] = field(default_factory=list)


@dataclass
class Plan:
    target: Target
    verdicts: List[Verdict]
    before: Contents
    after_apply: Contents
    after_revert: Contents

    def having(self, status: str) -> List[Verdict]:
        return [verdict for verdict in self.verdicts if verdict.status == status]

    def changes(self, contents: Contents) -> Contents:
        return {rel: data for rel, data in contents.items() if data != self.before[rel]}


# -- planning -----------------------------------------------------------------------------

def _git(args: List[str], cwd: Path, outside_repo: bool = False,
         raw: bool = False) -> subprocess.CompletedProcess:
    """Run git; raw: stdout as bytes."""
    env = {key: value for key, value in os.environ.items() if key not in _REPO_ENV}
    env["GIT_OPTIONAL_LOCKS"] = "0"  # reading must not lock out the user's own git
    if outside_repo:  # keep git from finding a repository that encloses cwd
        env["GIT_CEILING_DIRECTORIES"] = str(Path(cwd).resolve().parent)
    text = {} if raw else {"encoding": "utf-8", "errors": "replace"}
    try:
        return subprocess.run(["git"] + args, cwd=str(cwd), env=env, capture_output=True,
                              start_new_session=True, **text)
    except FileNotFoundError:
        raise PatchError("git: not found; the patch tool runs git") from None


def _explain(stderr: str, root: Path, before: Contents) -> str:
    """git apply's complaint as one line naming the target file."""
    failed = re.search(r"patch failed: (.+):(\d+)$", stderr, re.M)
    if failed and b"\r\n" in (before.get(failed.group(1)) or b""):
        return (f"{root / failed.group(1)}: has CRLF line endings and the patch has LF; "
                "convert the file to LF line endings first")
    if failed:
        return f"{root / failed.group(1)}: hunk at line {failed.group(2)} does not apply"
    message = last_line(stderr)
    path, colon, cause = message.partition(": ")
    if colon and not os.path.isabs(path) and " " not in path:
        return f"{root / path}: {cause}"
    return f"{root}: {message}"


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _screen(patch: Patch, target: Target, files: List[str]) -> Verdict:
    """The verdict that needs no patching: UPSTREAM, N/A, or undecided (status None)."""
    version = target.version
    if patch.upstream is not None and version >= patch.upstream:
        reason = f"torch {version} >= Applied-Upstream {patch.upstream}"
        return Verdict(patch, UPSTREAM, reason, files)
    if version not in patch.torch_versions:
        reason = f"torch {version} is outside Torch-Versions {patch.fields['Torch-Versions']}"
        return Verdict(patch, NOT_APPLICABLE, reason, files)
    if not files:
        return Verdict(patch, NOT_APPLICABLE, f"changes nothing under {target.include}", files)
    if not any((target.root / rel).exists() for rel in files):
        return Verdict(patch, NOT_APPLICABLE, "absent here: " + ", ".join(files), files)
    return Verdict(patch, None, "", files)


def make_plan(patches: List[Patch], target: Target) -> Plan:
    """Replay the series on a scratch copy of the touched files; the target is only read."""
    include = ["--include=" + target.include] if target.include else []
    with tempfile.TemporaryDirectory(prefix="gainkit-patch-") as tmp:
        scratch = Path(tmp)

        def git_apply(patch: Patch, *flags: str) -> subprocess.CompletedProcess:
            return _git(["apply"] + list(flags) + include + [str(patch.path)], scratch,
                        outside_repo=True)

        verdicts = []
        for patch in patches:
            numstat = git_apply(patch, "--numstat")
            if numstat.returncode != 0:
                raise PatchError(f"{patch.path}: {last_line(numstat.stderr)}")
            files = [line.split("\t", 2)[2] for line in numstat.stdout.splitlines()]
            verdicts.append(_screen(patch, target, files))
        every = sorted({rel for verdict in verdicts for rel in verdict.files})
        before = {rel: _read(target.root / rel) for rel in every}
        for rel, data in before.items():
            if data is not None:
                (scratch / rel).parent.mkdir(parents=True, exist_ok=True)
                (scratch / rel).write_bytes(data)
        for verdict in verdicts:  # a backport skipped here, but is its change missing?
            if (verdict.status and verdict.patch.upstream
                    and any(before[rel] is not None for rel in verdict.files)
                    and git_apply(verdict.patch, "--check").returncode == 0
                    and git_apply(verdict.patch, "--check", "-R").returncode != 0):
                verdict.reason += "; yet it applies: its change is missing here"
        live = [verdict for verdict in verdicts if verdict.status is None]
        for verdict in reversed(live):
            if git_apply(verdict.patch, "-R").returncode == 0:
                verdict.status, verdict.reason = APPLIED, "reverse-applies cleanly"
        after_revert = {rel: _read(scratch / rel) for rel in every}
        for verdict in live:
            result = git_apply(verdict.patch)
            if result.returncode != 0:
                verdict.status, verdict.reason = CONFLICT, _explain(result.stderr, target.root,
                                                                   before)
            elif verdict.status is None:
                verdict.status, verdict.reason = APPLIES, "applies cleanly"
        after_apply = {rel: _read(scratch / rel) for rel in every}
    return Plan(target, verdicts, before, after_apply, after_revert)


def git_command(plan: Plan) -> str | None:
    """The plain git command that applies what `apply` would apply."""
    todo = [str(verdict.patch.path) for verdict in plan.having(APPLIES)]
    target = plan.target
    if not todo:
        return None
    if target.use_am:
        return " ".join(map(shlex.quote, ["git", "-C", str(target.root), "am"] + todo))
    include = ["--include=" + target.include] if target.include else []
    words = ["git", "apply"] + include + todo
    return (f"cd {shlex.quote(str(target.root))} && GIT_CEILING_DIRECTORIES="
            f"{shlex.quote(str(target.root.parent))} " + " ".join(map(shlex.quote, words)))


# -- writing ------------------------------------------------------------------------------

def _replace(path: Path, content: journal.Content) -> None:
    """The one way the tool changes a file of a target (rollbacks included)."""
    journal.replace(path, content)


def _check_writable(root: Path, rels: List[str]) -> None:
    """Probe, without changing them, that each file and its directory take writes."""
    for path in [root / rel for rel in rels]:
        try:
            if path.exists():
                open(str(path), "ab").close()
        except OSError as error:
            raise PatchError(f"{path}: cannot write it: {error.strerror}") from None
    for directory in sorted({root} | {journal.real_path(root / rel).parent for rel in rels}):
        try:
            journal.probe_directory(directory)
        except OSError as error:
            raise PatchError(f"{directory}: cannot create files in it: {error.strerror}") from None


def _begin(root: Path, command: str, existed: Dict[str, bool],
           checkout: dict | None = None) -> journal.Journal:
    try:
        return journal.Journal.begin(root, command, existed, checkout)
    except OSError as error:
        raise PatchError(f"{root}: cannot create files in it: {error.strerror}") from None


def _roll_back(record: journal.Journal, root: Path) -> int:
    """Put back every file the journal kept; returns how many differed."""
    undo = record.undo_list(root)
    for number, (rel, content) in enumerate(undo, 1):
        _replace(root / rel, content)
        journal.test_pause(f"restore-{number}")
    record.discard(root)
    return len(undo)


def _write_files(plan: Plan, changes: Contents, held: journal.HeldInterrupt, command: str) -> None:
    root = plan.target.root
    for rel in changes:
        if _read(root / rel) != plan.before[rel]:
            raise PatchError(f"{root / rel}: changed since it was read; run again")
    record = _begin(root, command, {rel: plan.before[rel] is not None for rel in changes})
    try:
        held.checkpoint("prepared")
        _check_writable(root, list(changes))
        try:
            record.back_up(root)
        except OSError as error:
            raise PatchError(f"{record.directory}: cannot keep a copy of the files to replace: "
                             f"{error.strerror}") from None
        held.checkpoint("journal")
        for number, (rel, data) in enumerate(changes.items(), 1):
            _replace(root / rel, data)
            held.checkpoint(f"file-{number}")
    except BaseException as error:
        try:
            _roll_back(record, root)
        except OSError as failure:
            raise PatchError(f"{failure.filename}: rollback failed ({failure.strerror}); the "
                             f"next gainkit patch run on {root} restores the originals from "
                             f"{record.directory}", exit_code=EXIT_WRITE) from None
        if isinstance(error, OSError):
            raise PatchError(f"{error.filename or root}: {error.strerror}; nothing changed",
                             exit_code=EXIT_WRITE) from None
        raise
    record.discard(root)


def _head(root: Path) -> str:
    return _git(["rev-parse", "HEAD"], root).stdout.strip()


def _branch(root: Path) -> str:
    return _git(["symbolic-ref", "-q", "HEAD"], root).stdout.strip()


def _busy(root: Path) -> bool:
    paths = _git(["rev-parse", "--git-path", "rebase-apply", "--git-path", "rebase-merge"], root)
    return any((root / path).exists() for path in paths.stdout.split())


def _check_checkout(root: Path, rels: List[str], committing: bool) -> None:
    if _busy(root):
        raise PatchError(f"{root}: a git am or rebase is in progress; finish it first")
    if _git(["diff", "--cached", "--quiet"], root).returncode != 0:
        raise PatchError(f"{root}: the index has staged changes; commit or stash them")
    dirty = _git(["diff", "--name-only", "--"] + rels, root).stdout.split() if rels else []
    if dirty:
        raise PatchError(f"{root / dirty[0]}: has local changes; commit or stash them, or use "
                         "--working-tree")
    if committing and _git(["var", "GIT_COMMITTER_IDENT"], root).returncode != 0:
        raise PatchError(f"{root}: git needs user.name and user.email to commit")


def _reset_to(root: Path, head: str) -> None:
    """Abort a git am in progress and move the branch back to head, keeping nothing of it."""
    if _busy(root):
        aborted = _git(["am", "--abort"], root)
        if aborted.returncode != 0:
            raise OSError(0, f"git am --abort failed: {last_line(aborted.stderr)}", str(root))
    if _head(root) != head:
        reset = _git(["reset", "--quiet", "--keep", head], root)
        if reset.returncode != 0:
            raise OSError(0, f"git reset failed: {last_line(reset.stderr)}", str(root))


def _am(plan: Plan, held: journal.HeldInterrupt) -> None:
    root = plan.target.root
    todo = plan.having(APPLIES)
    head = _head(root)
    record = _begin(root, "apply", {}, {"head": head, "branch": _branch(root),
                                        "subjects": [verdict.patch.subject for verdict in todo]})
    try:
        held.checkpoint("journal")
        for number, verdict in enumerate(todo, 1):
            result = _git(["am", "--quiet", str(verdict.patch.path)], root)
            if result.returncode != 0:
                raise PatchError(f"{verdict.patch.path}: git am failed: "
                                 f"{last_line(result.stderr)}", exit_code=EXIT_WRITE)
            held.checkpoint(f"patch-{number}")
        for rel, data in plan.after_apply.items():
            if _read(root / rel) != data:
                raise PatchError(f"{root / rel}: git am gave other bytes than git apply",
                                 exit_code=EXIT_WRITE)
    except BaseException:
        try:
            _reset_to(root, head)
        except OSError as failure:
            raise PatchError(f"{root}: rollback failed ({failure.strerror}); the next gainkit "
                             f"patch run resets it to {head}", exit_code=EXIT_WRITE) from None
        record.discard(root)
        raise
    record.discard(root)


def _unmake_commits(plan: Plan) -> None:
    """Drop the series' commits with git reset --keep, if they are exactly the top of HEAD.

    They are when the subjects of the topmost commits are those of the applied patches in
    series order, and the commit below them holds exactly what reverting the series gives.
    """
    root, applied = plan.target.root, plan.having(APPLIED)
    base = f"HEAD~{len(applied)}"
    subjects = _git(["log", "--format=%s", f"--max-count={len(applied)}", "HEAD"], root)
    changed = _git(["diff", "--name-only", base, "HEAD", "--"], root).stdout.split()
    exact = set(changed) <= set(plan.before) and subjects.stdout.splitlines() == [
        verdict.patch.subject for verdict in reversed(applied)]
    for rel, data in plan.after_revert.items():
        blob = _git(["cat-file", "blob", f"{base}:{rel}"], root, raw=True)
        exact = exact and (blob.stdout if blob.returncode == 0 else None) == data
    if not exact:
        raise PatchError(f"{root}: the topmost commits of HEAD are not exactly the series' "
                         f"{len(applied)} patches; undo them with git revert, or use "
                         "--working-tree", exit_code=EXIT_CONFLICT)
    result = _git(["reset", "--quiet", "--keep", base], root)
    if result.returncode != 0:
        raise PatchError(f"{root}: git reset failed: {last_line(result.stderr)}")


# -- one run at a time, and recovery ------------------------------------------------------

_HELD: Set[Path] = set()  # targets whose lock this process holds


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _recover_checkout(root: Path, checkout: dict) -> str:
    """Undo the commits of an interrupted git am, if HEAD is still exactly where it left it."""
    head, subjects = checkout["head"], checkout["subjects"]
    if _busy(root):
        _reset_to(root, _head(root))  # aborts the git am that was cut off
    on_top = _git(["log", "--reverse", "--format=%s", f"{head}..HEAD"], root)
    made = on_top.stdout.splitlines()
    if (_branch(root) != checkout["branch"] or on_top.returncode != 0
            or made != subjects[:len(made)]
            or _git(["merge-base", "--is-ancestor", head, "HEAD"], root).returncode != 0):
        raise OSError(0, f"HEAD has moved since; check it by hand against {head}", str(root))
    _reset_to(root, head)
    return f"dropped {_count(len(made), 'commit')}; HEAD is {head[:12]} again"


def _recover(target: Target, writable: bool) -> List[str]:
    root, lines = target.root, []
    for leftover in journal.Journal.leftovers(root):
        if leftover.record is None:  # it had not begun, or it had finished: the target is whole
            if writable:
                leftover.discard(root)
            continue
        found = f"{root}: found {leftover.describe()}"
        try:
            if not writable:
                raise OSError(0, "no write access", str(root))
            with journal.HeldInterrupt() as held:  # a rollback is never cut in half either
                if leftover.checkout:
                    done = _recover_checkout(root, leftover.checkout)
                    leftover.discard(root)
                else:
                    done = f"restored {_count(_roll_back(leftover, root), 'file')}"
                lines.append(f"{found}; {done}")
                held.checkpoint("recovered")
        except OSError as error:
            raise PatchError(f"{found}; cannot roll it back: {error.filename}: {error.strerror}; "
                             f"its journal is {leftover.directory}",
                             exit_code=EXIT_WRITE) from None
    return lines


@contextlib.contextmanager
def exclusive(target: Target, writing: bool = True) -> Iterator[List[str]]:
    """Hold the target's lock for a whole command, after rolling back what a killed run left.

    Yields one line per rollback. Another run holding the lock is refused at once. A target
    that takes no new files is only read (writing=False), since no run can change it then.
    """
    root = target.root
    if root in _HELD:
        yield []
        return
    lock = Lock(root)
    # A Ctrl-C while the lock file is being made waits until the lock is ours to release, so
    # it cannot leave the file behind.
    with journal.HeldInterrupt() as held:
        try:
            locked = lock.acquire()
            if writing and not locked:
                journal.probe_directory(root)  # raises the reason
        except Busy as busy:
            raise PatchError(f"{root}: another gainkit patch is running (pid {busy.pid})"
                             ) from None
        except OSError as error:
            lock.release()
            raise PatchError(f"{root}: cannot create files in it: {error.strerror}") from None
    _HELD.add(root)
    try:
        held.checkpoint("locked")
        yield _recover(target, writable=locked)
    finally:
        _HELD.discard(root)
        lock.release()


def check(plan: Plan) -> None:
    """Raise one line per CONFLICT: `apply` would refuse the series."""
    conflicts = plan.having(CONFLICT)
    if conflicts:
        raise PatchError(*[f"{verdict.reason} ({verdict.patch.name})"
                           for verdict in conflicts], exit_code=EXIT_CONFLICT)


def apply(plan: Plan) -> List[Verdict]:
    """Apply every APPLIES patch, all or nothing; returns them (none: nothing to do)."""
    check(plan)
    todo = plan.having(APPLIES)
    changes = plan.changes(plan.after_apply)
    if todo:
        with exclusive(plan.target) as recovered, journal.HeldInterrupt() as held:
            if recovered:  # the plan was made on what the rollback has just undone
                raise PatchError(f"{recovered[0]}; plan again")
            if plan.target.use_am:
                _check_checkout(plan.target.root, list(changes), committing=True)
                _am(plan, held)
            else:
                _write_files(plan, changes, held, "apply")
    return todo


def revert(plan: Plan) -> List[Verdict]:
    """Undo every APPLIED patch, all or nothing; returns them (none: nothing to do)."""
    todo = plan.having(APPLIED)
    changes = plan.changes(plan.after_revert)
    if todo:
        with exclusive(plan.target) as recovered, journal.HeldInterrupt() as held:
            if recovered:  # the plan was made on what the rollback has just undone
                raise PatchError(f"{recovered[0]}; plan again")
            if plan.target.use_am:
                _check_checkout(plan.target.root, list(changes), committing=False)
                _unmake_commits(plan)
            else:
                _write_files(plan, changes, held, "revert")
    return todo
