"""Export: patch files written from commits, so that a maintainer edits a patch as a commit.

A patch of the series is one commit (``git am`` makes it, ``git commit --amend`` or ``git
rebase -i`` edits it) and ``git format-patch`` writes it back. This module runs format-patch
with every setting that shapes the file given explicitly (three lines of context, 7-digit
``index`` blobs, ``[PATCH n/N]``, a zero commit id in the mbox ``From`` line, no signature), so
that the file depends on the commit's author, message and diff alone, not on who committed it,
which git wrote it or the user's format config. The one field it sets is ``Last-Update``: the
day the commit last changed (its committer date, which ``--amend`` and ``rebase`` renew). The
other DEP-3 fields and ``Torch-Versions`` are the commit message's own.

Two ways to place the files (``n/N`` and the file name come from the series):

- refresh: each commit replaces the patch of the series with the same subject, in its place;
- a new series (``new_series``): the commits, in the order given, are the whole series; the
  ``series`` file is written anew (its leading comment kept) and patch files it no longer
  lists are removed.

Everything is checked and formatted before the first file is written: a commit that is not a
series patch (a merge, no ``Torch-Versions`` in its message) is an error that writes nothing.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

from gainkit.patching import git, journal
from gainkit.patching.errors import EXIT_WRITE, PatchError, last_line
from gainkit.patching.series import load_series, read_fields

# Every option that shapes the file, so that neither the user's config nor the committer
# changes a byte of it.
FORMAT_OPTIONS = ["-1", "--zero-commit", "--no-signature", "--no-numbered", "--unified=3",
                  "--abbrev=7", "--no-renames", "--no-thread", "--no-cover-letter",
                  "--no-attach", "--no-signoff", "--no-notes", "--stat"]
SERIES = "series"


@dataclass
class Exported:
    commit: str
    subject: str
    name: str  # the file name format-patch gives, NNNN-<subject>.patch
    text: bytes


def repository(path: str) -> Path:
    root = Path(path).expanduser()
    if not root.is_dir():
        raise PatchError(f"{root}: no such directory")
    top = git.run(["rev-parse", "--show-toplevel"], root)
    if top.returncode != 0:
        raise PatchError(f"{root}: not a git checkout; export writes patches from its commits")
    return Path(top.stdout.strip())


def resolve(root: Path, revisions: List[str]) -> List[str]:
    """Commit ids, in order: a RANGE (A..B) gives its commits oldest first."""
    commits = []  # type: List[str]
    for revision in revisions:
        if ".." in revision:
            listed = git.run(["rev-list", "--reverse", "--topo-order", revision, "--"], root)
            found = listed.stdout.split()
        else:
            listed = git.run(["rev-parse", "--verify", "--quiet", revision + "^{commit}"], root)
            found = listed.stdout.split()
        if listed.returncode != 0 or not found:
            raise PatchError(f"{root}: {revision!r} names no commit there")
        commits += [commit for commit in found if commit not in commits]
    return commits


def _subject(root: Path, commit: str) -> str:
    return git.run(["log", "-1", "--format=%s", commit], root).stdout.strip()


def _check_series_commit(root: Path, commit: str) -> str:
    """The commit's subject, if it is a series patch; else PatchError."""
    subject = _subject(root, commit)
    named = f"{root}: commit {commit[:12]} ({subject!r})"
    parents = git.run(["log", "-1", "--format=%P", commit], root).stdout.split()
    if len(parents) != 1:
        raise PatchError(f"{named}: not a series patch: a patch is one commit on one parent")
    message = git.run(["log", "-1", "--format=%B", commit], root).stdout
    fields = read_fields(message)
    if "Torch-Versions" not in fields:
        raise PatchError(f"{named}: not a series patch: its message ends with no "
                         "Torch-Versions field")
    return subject


def _with_last_update(text: str, day: str, where: str) -> str:
    """The commit message's Last-Update set to day (added before Torch-Versions if missing)."""
    message, separator, rest = text.partition("\n---\n")
    if re.search(r"^Last-Update: .*$", message, re.M):
        message = re.sub(r"^Last-Update: .*$", f"Last-Update: {day}", message, count=1,
                         flags=re.M)
    else:
        message, count = re.subn(r"^Torch-Versions: ", f"Last-Update: {day}\nTorch-Versions: ",
                                 message, count=1, flags=re.M)
        if not count:
            raise PatchError(f"{where}: format-patch wrote no Torch-Versions line")
    return message + separator + rest


def format_commit(root: Path, commit: str, number: int, total: int) -> Exported:
    subject = _check_series_commit(root, commit)
    day = git.run(["log", "-1", "--format=%cs", commit], root).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="gainkit-export-") as out:
        written = git.run(["-c", "core.abbrev=7", "-c", "diff.noprefix=false",
                           "-c", "diff.mnemonicPrefix=false", "format-patch"] + FORMAT_OPTIONS
                          + [f"--subject-prefix=PATCH {number}/{total}",
                             f"--start-number={number}", "-o", out, commit], root)
        files = sorted(Path(out).iterdir())
        if written.returncode != 0 or len(files) != 1:
            raise PatchError(f"{root}: git format-patch {commit[:12]} failed: "
                             f"{last_line(written.stderr)}")
        text = files[0].read_text(encoding="utf-8")
    text = _with_last_update(text, day, f"{root}: commit {commit[:12]}")
    return Exported(commit, subject, files[0].name, text.encode("utf-8"))


def _series_header(series: Path) -> List[str]:
    lines = series.read_text(encoding="utf-8").splitlines() if series.is_file() else []
    header = []
    for line in lines:
        if line.strip() and not line.lstrip().startswith("#"):
            break
        header.append(line)
    return header


def plan_export(root: Path, commits: List[str], patch_dir: Path,
                new_series: bool) -> Dict[Path, bytes | None]:
    """Every file to write (None: to remove), worked out before anything is written."""
    if not commits:
        raise PatchError("export: name at least one commit")
    patch_dir = Path(patch_dir)
    if new_series:
        if not patch_dir.is_dir():
            raise PatchError(f"{patch_dir}: no such directory")
        exported = [format_commit(root, commit, number, len(commits))
                    for number, commit in enumerate(commits, 1)]
        names = [item.name for item in exported]
        if len(set(names)) != len(names):
            raise PatchError(f"{root}: two commits give the same file name {names[0]}")
        changes = {patch_dir / item.name: item.text for item in exported}  # type: Dict
        for stale in sorted(patch_dir.glob("*.patch")):
            if stale.name not in names:
                changes[stale] = None
        series = patch_dir / SERIES
        text = "\n".join(_series_header(series) + names) + "\n"
        changes[series] = text.encode("utf-8")
        return changes
    patches = load_series(patch_dir)
    by_subject = {patch.subject: position for position, patch in enumerate(patches, 1)}
    changes = {}
    for commit in commits:
        subject = _check_series_commit(root, commit)
        if subject not in by_subject:
            raise PatchError(f"{root}: commit {commit[:12]} ({subject!r}) is no patch of "
                             f"{patch_dir / SERIES}; pass --new-series to write the series "
                             "from these commits")
        position = by_subject[subject]
        item = format_commit(root, commit, position, len(patches))
        old = patches[position - 1].path
        if item.name != old.name:
            raise PatchError(f"{old}: the commit gives the file name {item.name}; pass "
                             "--new-series to rename patches")
        changes[old] = item.text
    return changes


def write_export(changes: Dict[Path, bytes | None]) -> None:
    """Write (or remove) the planned files; each write is whole (temporary file + rename)."""
    for path in sorted({path.parent for path in changes}):
        try:
            journal.probe_directory(path)
        except OSError as error:
            raise PatchError(f"{path}: cannot create files in it: {error.strerror}") from None
    try:
        for path, data in changes.items():
            if data is None:
                os.unlink(str(path))
            elif not path.is_file() or path.read_bytes() != data:
                journal.replace(path, data)
    except OSError as error:
        raise PatchError(f"{error.filename}: {error.strerror}", exit_code=EXIT_WRITE) from None
