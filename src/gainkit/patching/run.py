"""The commands on a target: check, apply and revert, one run at a time.

:func:`exclusive` takes the target's lock (``gainkit.patching.lock``) once for a whole command,
first rolls back what a killed run left (``gainkit.patching.recovery``), and yields the
:class:`Hold` that :func:`apply` and :func:`revert` require: they write under the caller's lock
and never take it themselves. They write the plan (``gainkit.patching.write``) with SIGINT
held between two writes, so that a terminal Ctrl-C never cuts one in half; in a checkout, only
once the index is clean and the touched files have no local changes (``git.check_checkout``).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List

from gainkit.patching import git, journal
from gainkit.patching.errors import EXIT_CONFLICT, PatchError
from gainkit.patching.lock import Busy, Lock
from gainkit.patching.plan import APPLIED, APPLIES, CONFLICT, Plan, Verdict
from gainkit.patching.recovery import recover
from gainkit.patching.targets import Target
from gainkit.patching.write import am, unmake_commits, write_files


@dataclass
class Hold:
    """A target's lock, held by :func:`exclusive` for one command; apply and revert need it."""

    root: Path
    recovered: List[str]  # one line per rollback of a killed run, done on taking the lock
    since: float  # time.perf_counter() once those rollbacks were done

    def predates(self, plan: Plan) -> bool:
        """Whether plan read the target before a rollback of this hold changed it."""
        return bool(self.recovered) and plan.made < self.since


@contextlib.contextmanager
def exclusive(target: Target, writing: bool = True) -> Iterator[Hold]:
    """Hold the target's lock for a whole command, after rolling back what a killed run left.

    Yields the Hold, with one line per rollback. Another run holding the lock is refused at
    once. A target that takes no new files is only read (writing=False), since no run can
    change it then.
    """
    root = target.root
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
    try:
        held.checkpoint("locked")
        recovered = recover(target, writable=locked)
        yield Hold(root, recovered, time.perf_counter())
    finally:
        lock.release()


def check(plan: Plan) -> None:
    """Raise one line per CONFLICT: `apply` would refuse the series."""
    conflicts = plan.having(CONFLICT)
    if conflicts:
        raise PatchError(*[f"{verdict.reason} ({verdict.patch.name})"
                           for verdict in conflicts], exit_code=EXIT_CONFLICT)


def apply(plan: Plan, hold: Hold) -> List[Verdict]:
    """Apply every APPLIES patch, all or nothing; returns them (none: nothing to do)."""
    check(plan)
    return _change(plan, hold, "apply")


def revert(plan: Plan, hold: Hold) -> List[Verdict]:
    """Undo every APPLIED patch, all or nothing; returns them (none: nothing to do)."""
    return _change(plan, hold, "revert")


def _change(plan: Plan, hold: Hold, command: str) -> List[Verdict]:
    """Write what command ("apply" or "revert") makes of the target, under hold's lock."""
    applying = command == "apply"
    todo = plan.having(APPLIES if applying else APPLIED)
    changes = plan.changes(plan.after_apply if applying else plan.after_revert)
    if todo:
        if hold.root != plan.target.root:  # a caller's slip, or it would write unlocked
            raise ValueError(f"{plan.target.root}: planned, but the lock held is {hold.root}")
        if hold.predates(plan):  # the plan was made on what the rollback has just undone
            raise PatchError(f"{hold.recovered[0]}; plan again")
        with journal.HeldInterrupt() as held:
            if plan.target.use_am:
                git.check_checkout(plan.target.root, list(changes), committing=applying)
                if applying:
                    am(plan, held)
                else:
                    unmake_commits(plan)
            else:
                write_files(plan, changes, held, command)
    return todo
