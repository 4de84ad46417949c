"""Planning: what the series would do to a target, worked out without writing to it.

The files the series touches are copied to a scratch directory, where the series is replayed:
applied patches unwound newest first, then every patch applied in order. That gives each
patch's status and the exact bytes of every file after ``apply`` and after ``revert``, which is
all that writing needs, while the target is only read. git decides everything about patch text
(``git apply --numstat``, ``git apply [-R]``); this module only reads its answers.

Statuses: APPLIES, APPLIED, UPSTREAM (the target's torch >= Applied-Upstream), CONFLICT and
N/A (torch outside Torch-Versions, or none of the patch's files in the target).
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
            return git.run(["apply"] + list(flags) + include + [str(patch.path)], scratch,
                           outside_repo=True)

        verdicts = []
        for patch in patches:
            numstat = git_apply(patch, "--numstat")
            if numstat.returncode != 0:
                raise PatchError(f"{patch.path}: {last_line(numstat.stderr)}")
            files = [line.split("\t", 2)[2] for line in numstat.stdout.splitlines()]
            verdicts.append(_screen(patch, target, files))
        every = sorted({rel for verdict in verdicts for rel in verdict.files})
        before = {rel: read_bytes(target.root / rel) for rel in every}
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
        after_revert = {rel: read_bytes(scratch / rel) for rel in every}
        for verdict in live:
            result = git_apply(verdict.patch)
            if result.returncode != 0:
                verdict.status, verdict.reason = CONFLICT, _explain(result.stderr, target.root,
                                                                   before)
            elif verdict.status is None:
                verdict.status, verdict.reason = APPLIES, "applies cleanly"
        after_apply = {rel: read_bytes(scratch / rel) for rel in every}
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
