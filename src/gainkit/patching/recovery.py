"""Recovery: undoing what a run killed outright (SIGKILL, a power cut) left half-written.

Such a run leaves its journal in the target root. The next command on that target, whichever
it is, rolls the target back to what the journal recorded before it plans anything: the files
go back from their copies, or a checkout's HEAD goes back to where it was before ``git am``,
if nothing has been built on it since. Each rollback is said in one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

from gainkit.patching import git, journal
from gainkit.patching.errors import EXIT_WRITE, PatchError
from gainkit.patching.targets import Target
from gainkit.patching.write import roll_back


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


def recover(target: Target, writable: bool) -> List[str]:
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
                    done = f"restored {_count(roll_back(leftover, root), 'file')}"
                lines.append(f"{found}; {done}")
                held.checkpoint("recovered")
        except OSError as error:
            raise PatchError(f"{found}; cannot roll it back: {error.filename}: {error.strerror}; "
                             f"its journal is {leftover.directory}",
                             exit_code=EXIT_WRITE) from None
    return lines
