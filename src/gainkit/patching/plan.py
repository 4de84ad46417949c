"""Planning: what the series would do to a target, worked out without writing to it.

The files the series touches are copied to a scratch directory, where the series is replayed:
applied patches unwound newest first, then every patch applied in order. That gives each
patch's status and the exact bytes of every file after ``apply`` and after ``revert``, which is
all that writing needs, while the target is only read. git decides everything about patch text
(``git apply --numstat``, ``git apply [-R]``); this module only reads its answers.

Statuses: APPLIES, APPLIED, UPSTREAM (the change is present and the version says upstream has
it, or the version says so and the patch does not apply), CONFLICT and N/A (torch outside
Torch-Versions, or none of the patch's files in the target). The content decides (does the
patch reverse-apply, apply, or neither?); the version (``targets``) says which patches are in
range, which decides between patches that fit the same content, and names UPSTREAM. Each
status keeps its reason, led by the version evidence where it is a pre-release or missing.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from gainkit.patching import git
from gainkit.patching.errors import PatchError, last_line
from gainkit.patching.series import Patch
from gainkit.patching.targets import Target

APPLIES, APPLIED, UPSTREAM, CONFLICT, NOT_APPLICABLE = (
    "APPLIES", "APPLIED", "UPSTREAM", "CONFLICT", "N/A")
Contents = Dict[str, Optional[bytes]]  # relative path -> bytes; None: the file is absent


@dataclass
class Verdict:
    patch: Patch
    status: str | None
    reason: str
    files: List[str] = field(default_factory=list)
    three_way: bool = False  # applies (or reverses) only as a 3-way merge: git am --3way
    chosen_by_content: bool = False  # out of range by version, yet absent and applicable


@dataclass
class Plan:
    target: Target
    verdicts: List[Verdict]
    before: Contents
    after_apply: Contents
    after_revert: Contents
    # When the target had been read (time.perf_counter()), so that apply and revert can tell a
    # plan made before the rollback that taking the lock did (run.Hold.predates).
    made: float = field(default_factory=time.perf_counter, compare=False)

    def having(self, status: str) -> List[Verdict]:
        return [verdict for verdict in self.verdicts if verdict.status == status]

    def changes(self, contents: Contents) -> Contents:
        return {rel: data for rel, data in contents.items() if data != self.before[rel]}


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


def read_bytes(path: Path) -> bytes | None:
    """A file's entry in Contents."""
    return path.read_bytes() if path.is_file() else None


def _screen(patch: Patch, target: Target, files: List[str]) -> Verdict:
    """N/A when the target can take nothing of the patch; else undecided (status None)."""
    if not files:
        return Verdict(patch, NOT_APPLICABLE, f"changes nothing under {target.include}", files)
    if not any((target.root / rel).exists() for rel in files):
        return Verdict(patch, NOT_APPLICABLE, "absent here: " + ", ".join(files), files)
    return Verdict(patch, None, "", files)


def _range_says(patch: Patch, target: Target) -> str:
    """Why the version puts the patch out of range ('' when it is in range, or unknown)."""
    version = target.version
    if version is None:
        return ""
    if patch.covers(version):
        return ""
    if patch.upstream_has(version):
        return f"{target.version_says()}, at or after Applied-Upstream {patch.upstream}"
    return f"{target.version_says()}, outside Torch-Versions {patch.fields['Torch-Versions']}"


def _with_version(target: Target, content: str) -> str:
    """A content reason, led by the version evidence where that is worth saying."""
    version = target.version
    if version is None or version.is_prerelease:
        return f"{target.version_says()}; {content}"
    return content


class _Scratch:
    """The touched files, copied out of the target, where the series is replayed with git."""

    def __init__(self, directory: Path, target: Target, merges: _Merges | None) -> None:
        self.directory, self.target, self.merges = directory, target, merges
        self.include = ["--include=" + target.include] if target.include else []

    def apply(self, patch: Patch, *flags: str) -> subprocess.CompletedProcess:
        return git.run(["apply"] + list(flags) + self.include + [str(patch.path)],
                       self.directory, outside_repo=True)

    def fits(self, patch: Patch, reverse: bool = False) -> bool:
        return self.apply(patch, "--check", *(["-R"] if reverse else [])).returncode == 0

    def read(self, rels: List[str]) -> Contents:
        return {rel: read_bytes(self.directory / rel) for rel in rels}

    def write(self, contents: Contents) -> None:
        for rel, data in contents.items():
            path = self.directory / rel
            if data is None:
                if path.exists():
                    path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)


class _Merges:
    """3-way merges of a checkout's files (``git apply --3way``), outside the checkout.

    A private repository borrows the checkout's objects (``objects/info/alternates``), so the
    preimage blobs a patch names in its ``index`` lines are found there when the checkout's
    history holds them, and nothing is written to the checkout itself.
    """

    def __init__(self, directory: Path, checkout: Path) -> None:
        self.directory = directory
        # --git-common-dir (git 2.5+) may answer relative to the checkout; --path-format,
        # which would make it absolute, needs git 2.31, and 3-way must not depend on that.
        objects = git.run(["rev-parse", "--git-common-dir"], checkout)
        self.usable = objects.returncode == 0 and bool(objects.stdout.strip())
        if self.usable:
            common = Path(checkout) / objects.stdout.strip()  # an absolute answer stays as is
            git.run(["init", "-q", str(directory)], directory.parent, outside_repo=True)
            alternates = directory / ".git" / "objects" / "info" / "alternates"
            alternates.write_text(str(common.resolve() / "objects") + "\n")

    def _git(self, *args: str, raw: bool = False) -> subprocess.CompletedProcess:
        return git.run(list(args), self.directory, raw=raw)

    def merge(self, patch: Patch, current: Contents, reverse: bool):
        """(merged contents, None), or (None, why not): a file in conflict, or no preimage."""
        text = patch.path.read_text(encoding="utf-8", errors="replace")
        blobs = dict(re.findall(r"^diff --git a/\S+ b/(\S+)\nindex ([0-9a-f]+)\.\.[0-9a-f]+",
                                text, re.M))
        for rel in current:
            if rel not in blobs or self._git("cat-file", "-e", blobs[rel] + "^{blob}"
                                             ).returncode != 0:
                return None, "the checkout's history lacks the file this patch was made on, " \
                             "so no 3-way merge either"
        work = self.directory
        self._git("rm", "-rqf", "--ignore-unmatch", ".")
        if reverse:  # store the patch's postimage, the base of the reverse merge
            for rel in current:
                (work / rel).parent.mkdir(parents=True, exist_ok=True)
                (work / rel).write_bytes(self._git("cat-file", "blob", blobs[rel], raw=True).stdout)
            if self._git("apply", str(patch.path)).returncode != 0:
                return None, "it does not apply to the file it was made on"
            for rel in current:
                self._git("hash-object", "-w", rel)
        for rel, data in current.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_bytes(data or b"")
        self._git("add", "-A")
        merged = self._git("apply", "--3way", *(["-R"] if reverse else []), str(patch.path))
        if merged.returncode != 0:
            conflicted = re.findall(r"^U (\S+)$", merged.stderr, re.M) or sorted(current)
            return None, f"{conflicted[0]}: a 3-way merge (git am --3way) conflicts with the " \
                         "checkout's own changes"
        result = {rel: read_bytes(work / rel) for rel in current}
        if result == current:  # both sides made the change already: it was not to be made
            return None, "a 3-way merge changes nothing"
        return result, None


def make_plan(patches: List[Patch], target: Target) -> Plan:
    """Decide every patch by the target's content, the version breaking ties; write nothing.

    The files the series touches are replayed on a scratch copy: the in-range patches whose
    change is present are unwound newest first (APPLIED; UPSTREAM when the version says the
    release has it upstream), then the series is applied in order. A patch in range applies
    (APPLIES) or not (CONFLICT; in a checkout, first retried as a 3-way merge). A patch out of
    range whose change is absent and which applies is applied all the same: content decides,
    and then an in-range patch on the same files that does not fit is N/A, not a CONFLICT.
    """
    with tempfile.TemporaryDirectory(prefix="gainkit-patch-") as tmp:
        (Path(tmp) / "files").mkdir()
        merges = None
        if target.kind == "git checkout":
            (Path(tmp) / "merge").mkdir()
            merges = _Merges(Path(tmp) / "merge", target.root)
        scratch = _Scratch(Path(tmp) / "files", target, merges if merges and merges.usable
                           else None)
        verdicts = []
        for patch in patches:
            numstat = scratch.apply(patch, "--numstat")
            if numstat.returncode != 0:
                raise PatchError(f"{patch.path}: {last_line(numstat.stderr)}")
            files = [line.split("\t", 2)[2] for line in numstat.stdout.splitlines()]
            verdicts.append(_screen(patch, target, files))
        every = sorted({rel for verdict in verdicts for rel in verdict.files})
        before = {rel: read_bytes(target.root / rel) for rel in every}
        scratch.write({rel: data for rel, data in before.items() if data is not None})
        live = [verdict for verdict in verdicts if verdict.status is None]
        if target.version is None and not live:
            raise PatchError(f"{target.root}: {target.version_source}, and no patch of the "
                             "series touches a file it has, so nothing says which patches "
                             "it takes")
        _unwind(live, target, scratch)
        after_revert = scratch.read(every)
        for verdict in live:
            _forward(verdict, target, scratch, before)
        _settle_alternatives(live)
        if target.version is None and not any(verdict.status in (APPLIES, APPLIED, UPSTREAM)
                                               for verdict in live):
            raise PatchError(f"{target.root}: {target.version_source}, and the content matches "
                             "no patch of the series (none applies or is applied)")
        after_apply = scratch.read(every)
    return Plan(target, verdicts, before, after_apply, after_revert)


def _in_range(verdict: Verdict, target: Target) -> bool:
    """In range by version; with no version, every patch is (the content alone decides)."""
    return target.version is None or not _range_says(verdict.patch, target)


def _unwind(live: List[Verdict], target: Target, scratch: _Scratch) -> None:
    """Mark the patches whose change is present, newest first, unwinding those that are ours."""
    for verdict in reversed(live):
        patch, version = verdict.patch, target.version
        # In range wins: on a pre-release (1.8.0a0) a present change reads as ours, so that
        # revert undoes what apply did; out of range, one the version says upstream has.
        upstream = not _in_range(verdict, target) and patch.upstream_has(version)
        if not (upstream or _in_range(verdict, target)):
            continue  # out of range: a present change is not ours to revert (see _forward)
        if scratch.fits(patch, reverse=True):
            if upstream:
                verdict.status = UPSTREAM
                verdict.reason = f"{_range_says(patch, target)}; the change is present"
                continue
            scratch.apply(patch, "-R")
            verdict.status = APPLIED
            verdict.reason = _with_version(target, "the change is present (reverse-applies)")
        elif scratch.merges and _in_range(verdict, target):
            current = scratch.read(verdict.files)
            merged, _ = scratch.merges.merge(patch, current, reverse=True)
            if merged is not None:
                scratch.write(merged)
                verdict.status, verdict.three_way = APPLIED, True
                verdict.reason = _with_version(
                    target, "the change is present (reverse-applies with a 3-way merge)")


def _forward(verdict: Verdict, target: Target, scratch: _Scratch, before: Contents) -> None:
    patch = verdict.patch
    if verdict.status == APPLIED:  # unwound above: put it back
        if verdict.three_way:
            merged, _ = scratch.merges.merge(patch, scratch.read(verdict.files), reverse=False)
            scratch.write(merged or {})
        else:
            scratch.apply(patch)
        return
    if verdict.status == UPSTREAM:
        return
    if target.version is None:  # nothing to break ties: what fits is taken, in series order
        if scratch.fits(patch) and not scratch.fits(patch, reverse=True):
            scratch.apply(patch)
            verdict.status = APPLIES
            verdict.reason = _with_version(target, "the change is absent; applies cleanly")
        else:
            verdict.status = NOT_APPLICABLE
            verdict.reason = _with_version(target, "it neither applies nor reverse-applies")
        return
    out_of_range = _range_says(patch, target)
    if out_of_range:
        if scratch.fits(patch) and not scratch.fits(patch, reverse=True):
            scratch.apply(patch)
            verdict.status, verdict.chosen_by_content = APPLIES, True
            verdict.reason = f"{out_of_range}; but the change is absent and the patch " \
                             "applies: the content decides"
        else:
            verdict.status = UPSTREAM if target.version and patch.upstream_has(target.version) \
                else NOT_APPLICABLE
            verdict.reason = out_of_range
        return
    result = scratch.apply(patch)
    if result.returncode == 0:
        verdict.status = APPLIES
        verdict.reason = _with_version(target, "the change is absent; applies cleanly")
        return
    verdict.status = CONFLICT
    verdict.reason = _explain(result.stderr, target.root, before)
    if scratch.merges and "CRLF" not in verdict.reason:  # never a merge of mixed line endings
        merged, why_not = scratch.merges.merge(patch, scratch.read(verdict.files), reverse=False)
        if merged is not None:
            scratch.write(merged)
            verdict.status, verdict.three_way = APPLIES, True
            verdict.reason = _with_version(
                target, "the change is absent; applies with a 3-way merge (git am --3way): "
                        "the checkout's history has the files it was made on")
        elif ": a 3-way merge" in why_not:
            verdict.reason = str(target.root / why_not)
        else:
            verdict.reason += "; " + why_not


def _settle_alternatives(live: List[Verdict]) -> None:
    """An in-range CONFLICT whose files a patch chosen by content serves is N/A instead."""
    chosen = [verdict for verdict in live if verdict.chosen_by_content]
    for verdict in live:
        if verdict.status != CONFLICT:
            continue
        serving = [other for other in chosen if set(verdict.files) <= set(other.files)]
        if serving:
            verdict.status = NOT_APPLICABLE
            verdict.reason = (f"does not fit this tree ({verdict.reason}); "
                              f"{serving[0].patch.name} fits instead")


def git_command(plan: Plan) -> str | None:
    """The plain git command that applies what `apply` would apply."""
    todo = [str(verdict.patch.path) for verdict in plan.having(APPLIES)]
    target = plan.target
    if not todo:
        return None
    if target.use_am:
        three_way = ["--3way"] if any(verdict.three_way for verdict in plan.having(APPLIES)) \
            else []
        return " ".join(map(shlex.quote, ["git", "-C", str(target.root), "am"] + three_way
                            + todo))
    include = ["--include=" + target.include] if target.include else []
    words = ["git", "apply"] + include + todo
    return (f"cd {shlex.quote(str(target.root))} && GIT_CEILING_DIRECTORIES="
            f"{shlex.quote(str(target.root.parent))} " + " ".join(map(shlex.quote, words)))
