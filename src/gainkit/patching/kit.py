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
import email
import email.parser
import email.policy
import importlib.util
import os
import re
import shlex
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from gainkit.patching import journal
from gainkit.patching.lock import Busy, Lock

APPLIES, APPLIED, UPSTREAM, CONFLICT, NOT_APPLICABLE = (
    "APPLIES", "APPLIED", "UPSTREAM", "CONFLICT", "N/A")
EXIT_OK, EXIT_CONFLICT, EXIT_USAGE, EXIT_WRITE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
PAUSE_ENV = journal.PAUSE_ENV
SITE_INCLUDE = "torch/*"
Contents = Dict[str, Optional[bytes]]  # relative path -> bytes; None: the file is absent

_REPO_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
             "GIT_COMMON_DIR", "GIT_PREFIX")
# '' (the cwd) is dropped from sys.path so that a torch/ in the cwd is not mistaken for it.
_FIND_TORCH = ("import sys, importlib.util as u; sys.path[:1] = [p for p in sys.path[:1] if p]; "
               "s = u.find_spec('torch'); "
               "print(s.submodule_search_locations[0] if s and s.submodule_search_locations "
               "else '')")


class PatchError(Exception):
    """A failure the user can act on: one line per problem, each naming a file and a cause."""

    def __init__(self, *lines: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(lines[0])
        self.lines = list(lines)
        self.exit_code = exit_code


@dataclass
class Patch:
    path: Path
    subject: str
    fields: Dict[str, str]
    torch_versions: SpecifierSet
    upstream: Version | None

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class Target:
    kind: str  # "git checkout", "source tree" or "site-packages"
    root: Path
    version: Version
    version_source: str
    include: str | None = None  # git apply --include pattern
    use_am: bool = False
    interpreter: Path | None = None  # site-packages: the interpreter that imports this torch

    def describe(self) -> str:
        return f"{self.kind} {self.root} (torch {self.version}, from {self.version_source})"


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


# -- the series ---------------------------------------------------------------------------

def default_patch_dir() -> Path:
    """The series installed as gainkit.patches, else the one of this source checkout."""
    spec = importlib.util.find_spec("gainkit.patches")
    candidates = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    candidates.append(Path(__file__).resolve().parents[3] / "patches")
    for candidate in candidates:
        if (candidate / "series").is_file():
            return candidate
    return candidates[-1]


def load_series(patch_dir: Path) -> List[Patch]:
    series = Path(patch_dir) / "series"
    if not Path(patch_dir).is_dir():
        raise PatchError(f"{patch_dir}: not a directory; pass --patches DIR")
    if not series.is_file():
        raise PatchError(f"{series}: no such file; pass --patches DIR")
    try:
        lines = series.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise PatchError(f"{series}: cannot read it: {error}") from None
    patches = []
    for line in lines:
        name = line.split("#", 1)[0].strip()
        if name:
            path = series.parent / name
            if not path.is_file():
                raise PatchError(f"{path}: listed in {series} but missing")
            patches.append(read_patch(path))
    return patches


def read_patch(path: Path) -> Patch:
    with path.open("rb") as handle:
        message = email.message_from_binary_file(handle, policy=email.policy.default)
    body = (message.get_payload(decode=True) or b"").decode("utf-8", "replace")
    commit_message = ("\n" + body).split("\n---\n", 1)[0]
    fields = {}  # type: Dict[str, str]
    for paragraph in reversed(commit_message.strip().split("\n\n")):
        block = email.parser.HeaderParser().parsestr(paragraph.strip() + "\n\n")
        if block.defects or block.get_payload().strip() or not block.keys():
            break
        fields = {**{key: " ".join(value.split()) for key, value in block.items()}, **fields}
    subject = re.sub(r"^\[PATCH[^\]]*\]\s*", "", " ".join(str(message["Subject"]).split()))
    try:
        versions = SpecifierSet(fields["Torch-Versions"])
        upstream = fields.get("Applied-Upstream")
        return Patch(path, subject, fields, versions,
                     Version(upstream.split(",")[0]) if upstream else None)
    except KeyError:
        raise PatchError(f"{path}: no Torch-Versions field") from None
    except (InvalidSpecifier, InvalidVersion) as error:
        raise PatchError(f"{path}: {error}") from None


# -- targets ------------------------------------------------------------------------------

def _base_version(text: str, source: Path) -> Version:
    try:
        return Version(Version(text.strip()).base_version)
    except (InvalidVersion, AttributeError):
        raise PatchError(f"{source}: {text.strip()!r} is not a version") from None


def tree_target(path: str, working_tree: bool = False) -> Target:
    root = Path(path).expanduser()
    if root.exists() and not root.is_dir():
        raise PatchError(f"{root}: not a directory")
    if not root.is_dir():
        raise PatchError(f"{root}: no such directory")
    root = root.resolve()
    if not (root / "torch" / "nn" / "init.py").is_file():
        raise PatchError(f"{root}: not a torch source tree (no torch/nn/init.py)")
    version_file = root / "version.txt"
    if not version_file.is_file():
        raise PatchError(f"{version_file}: missing, so the torch version is unknown")
    is_checkout = (root / ".git").exists()
    if working_tree and not is_checkout:
        raise PatchError(f"{root}: --working-tree needs a git checkout")
    version = _base_version(version_file.read_text(encoding="utf-8", errors="replace"),
                            version_file)
    return Target("git checkout" if is_checkout else "source tree", root, version,
                  "version.txt", use_am=is_checkout and not working_tree)


def python_target(python: str) -> Target:
    interpreter = Path(os.path.abspath(os.path.expanduser(python)))  # never looked up in PATH
    if interpreter.is_dir():  # a virtual environment
        interpreter = interpreter / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not interpreter.exists():
        raise PatchError(f"{interpreter}: no such interpreter")
    try:
        found = subprocess.run([str(interpreter), "-c", _FIND_TORCH], capture_output=True,
                               text=True, timeout=300)
    except OSError as error:
        raise PatchError(f"{interpreter}: cannot run it: {error.strerror}") from None
    except subprocess.TimeoutExpired:
        raise PatchError(f"{interpreter}: cannot run it: no answer in 300 s") from None
    if found.returncode != 0:
        raise PatchError(f"{interpreter}: cannot run it: {_last_line(found.stderr)}")
    if not found.stdout.strip():
        raise PatchError(f"{interpreter}: torch is not installed there")
    site = Path(found.stdout.strip()).parent
    metadata = sorted(site.glob("torch-*.dist-info/METADATA"))
    if len(metadata) != 1:
        raise PatchError(f"{site}: {len(metadata)} torch-*.dist-info/METADATA, expected one")
    with metadata[0].open("rb") as handle:
        version = _base_version(str(email.message_from_binary_file(handle)["Version"]),
                                metadata[0])
    return Target("site-packages", site, version, metadata[0].parent.name, include=SITE_INCLUDE,
                  interpreter=interpreter)


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


def _last_line(text: str) -> str:
    """git's last complaint, without its "error: " or "fatal: "."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return re.sub(r"^(error|fatal): ", "", lines[-1].strip()) if lines else "failed"


def _explain(stderr: str, root: Path, before: Contents) -> str:
    """git apply's complaint as one line naming the target file."""
    failed = re.search(r"patch failed: (.+):(\d+)$", stderr, re.M)
    if failed and b"\r\n" in (before.get(failed.group(1)) or b""):
        return (f"{root / failed.group(1)}: has CRLF line endings and the patch has LF; "
                "convert the file to LF line endings first")
    if failed:
        return f"{root / failed.group(1)}: hunk at line {failed.group(2)} does not apply"
    message = _last_line(stderr)
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
                raise PatchError(f"{patch.path}: {_last_line(numstat.stderr)}")
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
            raise OSError(0, f"git am --abort failed: {_last_line(aborted.stderr)}", str(root))
    if _head(root) != head:
        reset = _git(["reset", "--quiet", "--keep", head], root)
        if reset.returncode != 0:
            raise OSError(0, f"git reset failed: {_last_line(reset.stderr)}", str(root))


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
                                 f"{_last_line(result.stderr)}", exit_code=EXIT_WRITE)
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
        raise PatchError(f"{root}: git reset failed: {_last_line(result.stderr)}")


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
