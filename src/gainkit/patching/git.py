"""git, run the way the patch tool needs it, and what apply and revert ask of a checkout.

Every git the tool starts goes through :func:`run`: without the caller's repository variables
(``GIT_DIR`` and the like would point it at another repository), without git's optional locks
(reading must not lock out the user's own git), and in a session of its own, so that a Ctrl-C
in the terminal reaches only the patch tool, which holds it until a write is whole, and never
kills a git half-way. The rest asks a checkout what apply and revert must know: HEAD, its
branch, whether an am or rebase is in progress, whether it is clean enough to commit on, and
how to go back to a HEAD.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import List

from gainkit.patching.errors import PatchError, last_line

_REPO_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
             "GIT_COMMON_DIR", "GIT_PREFIX")


def run(args: List[str], cwd: Path, outside_repo: bool = False,
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


def head(root: Path) -> str:
    return run(["rev-parse", "HEAD"], root).stdout.strip()


def branch(root: Path) -> str:
    return run(["symbolic-ref", "-q", "HEAD"], root).stdout.strip()


def busy(root: Path) -> bool:
    paths = run(["rev-parse", "--git-path", "rebase-apply", "--git-path", "rebase-merge"], root)
    return any((root / path).exists() for path in paths.stdout.split())


def check_checkout(root: Path, rels: List[str], committing: bool) -> None:
    if busy(root):
        raise PatchError(f"{root}: a git am or rebase is in progress; finish it first")
    if run(["diff", "--cached", "--quiet"], root).returncode != 0:
        raise PatchError(f"{root}: the index has staged changes; commit or stash them")
    dirty = run(["diff", "--name-only", "--"] + rels, root).stdout.split() if rels else []
    if dirty:
        raise PatchError(f"{root / dirty[0]}: has local changes; commit or stash them, or use "
                         "--working-tree")
    if committing and run(["var", "GIT_COMMITTER_IDENT"], root).returncode != 0:
        raise PatchError(f"{root}: git needs user.name and user.email to commit")


def reset_to(root: Path, commit: str) -> None:
    """Abort a git am in progress and move the branch back to commit, keeping nothing of it."""
    if busy(root):
        aborted = run(["am", "--abort"], root)
        if aborted.returncode != 0:
            raise OSError(0, f"git am --abort failed: {last_line(aborted.stderr)}", str(root))
    if head(root) != commit:
        reset = run(["reset", "--quiet", "--keep", commit], root)
        if reset.returncode != 0:
            raise OSError(0, f"git reset failed: {last_line(reset.stderr)}", str(root))
