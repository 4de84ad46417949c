"""The commands on a target: check, apply and revert, one run at a time.

:func:`exclusive` holds the target's lock (``gainkit.patching.lock``) for a whole command and
first rolls back what a killed run left (``gainkit.patching.recovery``). :func:`apply` and
:func:`revert` then write the plan (``gainkit.patching.write``) with SIGINT held between two
writes, so that a terminal Ctrl-C never cuts one in half; in a checkout, only once the index is
clean and the touched files have no local changes (``git.check_checkout``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, List, Set

from gainkit.patching import git, journal
from gainkit.patching.errors import EXIT_CONFLICT, PatchError
from gainkit.patching.lock import Busy, Lock
from gainkit.patching.plan import APPLIED, APPLIES, CONFLICT, Plan, Verdict
from gainkit.patching.recovery import recover
from gainkit.patching.targets import Target
from gainkit.patching.write import am, unmake_commits, write_files

_HELD: Set[Path] = set()  # targets whose lock this process holds


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
        yield recover(target, writable=locked)
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
                am(plan, held)
            else:
                write_files(plan, changes, held, "apply")
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
                unmake_commits(plan)
            else:
                write_files(plan, changes, held, "revert")
    return todo
