"""Writing a target, all or nothing, and putting it back.

Before the first write, each file to write and its directory must take writes (probed by
opening them) and each file must still hold what the plan read. A tree or a site-packages is
then written file by file under a journal in the target root (``gainkit.patching.journal``)
that keeps the original of each file before it is replaced (temporary file + rename, which
breaks hard links such as conda's instead of writing through them; symlinks are written
through). A checkout's ``apply`` runs ``git am`` per patch, with the HEAD before it in the
journal. On any error or SIGINT the originals go back (in a checkout, ``git am --abort`` and
``git reset --keep`` back to that HEAD) and the journal goes.

``revert`` in a checkout drops the series' commits with ``git reset --keep``, and only when
they are exactly the topmost commits of HEAD: their subjects are the applied patches' in
order, and the commit below them holds what reverting gives. Anything else is refused rather
than rewriting history that later work builds on.

The caller holds the target's lock, and SIGINT with ``journal.HeldInterrupt``: each write here
is followed by a checkpoint, the only place where a held Ctrl-C takes effect.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List

from gainkit.patching import git, journal
from gainkit.patching.errors import EXIT_CONFLICT, EXIT_WRITE, PatchError, last_line
from gainkit.patching.plan import APPLIED, APPLIES, Contents, Plan, read_bytes


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


def roll_back(record: journal.Journal, root: Path) -> int:
    """Put back every file the journal kept; returns how many differed."""
    undo = record.undo_list(root)
    for number, (rel, content) in enumerate(undo, 1):
        _replace(root / rel, content)
        journal.test_pause(f"restore-{number}")
    record.discard(root)
    return len(undo)


def write_files(plan: Plan, changes: Contents, held: journal.HeldInterrupt, command: str) -> None:
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
            roll_back(record, root)
        except OSError as failure:
            raise PatchError(f"{failure.filename}: rollback failed ({failure.strerror}); the "
                             f"next gainkit patch run on {root} restores the originals from "
                             f"{record.directory}", exit_code=EXIT_WRITE) from None
        if isinstance(error, OSError):
            raise PatchError(f"{error.filename or root}: {error.strerror}; nothing changed",
                             exit_code=EXIT_WRITE) from None
        raise
    record.discard(root)


def am(plan: Plan, held: journal.HeldInterrupt) -> None:
    root = plan.target.root
    todo = plan.having(APPLIES)
    head = git.head(root)
    record = _begin(root, "apply", {}, {"head": head, "branch": git.branch(root),
                                        "subjects": [verdict.patch.subject for verdict in todo]})
    try:
        held.checkpoint("journal")
        for number, verdict in enumerate(todo, 1):
            three_way = ["--3way"] if verdict.three_way else []
            result = git.run(["am", "--quiet"] + three_way + [str(verdict.patch.path)], root)
            if result.returncode != 0:
                output = result.stdout + result.stderr
                conflicted = re.findall(r"(?:^U |Merge conflict in )(\S+)$", output, re.M)
                cause = (f"{root / conflicted[0]}: git am --3way conflicts with the checkout's "
                         "own changes; aborted, the checkout is as it was" if conflicted else
                         f"{verdict.patch.path}: git am failed: {last_line(result.stderr)}")
                raise PatchError(cause, exit_code=EXIT_WRITE)
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


def unmake_commits(plan: Plan) -> None:
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
