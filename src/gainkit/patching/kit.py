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
from pathlib import Path
from typing import Dict, Iterator, List, Set

from gainkit.patching import git, journal
from gainkit.patching.errors import EXIT_CONFLICT, EXIT_WRITE, PatchError, last_line
from gainkit.patching.lock import Busy, Lock
from gainkit.patching.plan import APPLIED, APPLIES, CONFLICT, Contents, Plan, Verdict, read_bytes
from gainkit.patching.targets import Target

PAUSE_ENV = journal.PAUSE_ENV


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
        if read_bytes(root / rel) != plan.before[rel]:
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


def _am(plan: Plan, held: journal.HeldInterrupt) -> None:
    root = plan.target.root
    todo = plan.having(APPLIES)
    head = git.head(root)
    record = _begin(root, "apply", {}, {"head": head, "branch": git.branch(root),
                                        "subjects": [verdict.patch.subject for verdict in todo]})
    try:
        held.checkpoint("journal")
        for number, verdict in enumerate(todo, 1):
            result = git.run(["am", "--quiet", str(verdict.patch.path)], root)
            if result.returncode != 0:
                raise PatchError(f"{verdict.patch.path}: git am failed: "
                                 f"{last_line(result.stderr)}", exit_code=EXIT_WRITE)
            held.checkpoint(f"patch-{number}")
        for rel, data in plan.after_apply.items():
            if read_bytes(root / rel) != data:
                raise PatchError(f"{root / rel}: git am gave other bytes than git apply",
                                 exit_code=EXIT_WRITE)
    except BaseException:
        try:
            git.reset_to(root, head)
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
    subjects = git.run(["log", "--format=%s", f"--max-count={len(applied)}", "HEAD"], root)
    changed = git.run(["diff", "--name-only", base, "HEAD", "--"], root).stdout.split()
    exact = set(changed) <= set(plan.before) and subjects.stdout.splitlines() == [
        verdict.patch.subject for verdict in reversed(applied)]
    for rel, data in plan.after_revert.items():
        blob = git.run(["cat-file", "blob", f"{base}:{rel}"], root, raw=True)
        exact = exact and (blob.stdout if blob.returncode == 0 else None) == data
    if not exact:
        raise PatchError(f"{root}: the topmost commits of HEAD are not exactly the series' "
                         f"{len(applied)} patches; undo them with git revert, or use "
                         "--working-tree", exit_code=EXIT_CONFLICT)
    result = git.run(["reset", "--quiet", "--keep", base], root)
    if result.returncode != 0:
        raise PatchError(f"{root}: git reset failed: {last_line(result.stderr)}")


# -- one run at a time, and recovery ------------------------------------------------------

_HELD: Set[Path] = set()  # targets whose lock this process holds


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _recover_checkout(root: Path, checkout: dict) -> str:
    """Undo the commits of an interrupted git am, if HEAD is still exactly where it left it."""
    head, subjects = checkout["head"], checkout["subjects"]
    if git.busy(root):
        git.reset_to(root, git.head(root))  # aborts the git am that was cut off
    on_top = git.run(["log", "--reverse", "--format=%s", f"{head}..HEAD"], root)
    made = on_top.stdout.splitlines()
    if (git.branch(root) != checkout["branch"] or on_top.returncode != 0
            or made != subjects[:len(made)]
            or git.run(["merge-base", "--is-ancestor", head, "HEAD"], root).returncode != 0):
        raise OSError(0, f"HEAD has moved since; check it by hand against {head}", str(root))
    git.reset_to(root, head)
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
                git.check_checkout(plan.target.root, list(changes), committing=True)
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
                git.check_checkout(plan.target.root, list(changes), committing=False)
                _unmake_commits(plan)
            else:
                _write_files(plan, changes, held, "revert")
    return todo
