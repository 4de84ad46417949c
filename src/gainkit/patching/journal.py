"""Crash safety for the patch tool: a journal to undo a run that was killed half-way, the one
way a target file is replaced, and SIGINT held until it falls between two writes.

One run at a time per target is ``gainkit.patching.lock``; this module only has to make
whatever that run writes undoable.

The journal is a directory ``.gainkit-patch-XXXXXXXX`` in the target root holding
``journal.json`` and, under ``files/``, a copy of every file about to be replaced, whose mode
and sha256 the journal records. Its phases: ``preparing`` (nothing in the target has been
written yet), ``writing`` (the copies are complete; any of the files may have been replaced).
A checkout's journal records the HEAD before ``git am`` instead of files. A run that finds a
journal rolls the target back to what the journal recorded before doing anything else; the
copies are moved back into place, which needs no free space, so a full disk can be undone.

Every write to a target file goes through :func:`replace`: a temporary file next to it (named
``.gainkit-new-<name>``, so that a rollback knows which to delete), then a rename. Symlinks are
written through, so a linked site-packages or torch directory keeps its links.

Test seam: GAINKIT_TEST_PAUSE_AFTER_PATCH. A plain number of seconds pauses once, after the first
write to the target. ``STEP:SECONDS`` pauses at that step (``prepared``, ``journal``, ``file-K``,
``patch-K``, ``restore-K``; K counts from 1), printing ``gainkit patch: test pause at STEP`` on
stderr first; SIGUSR1 ends the pause early, SIGINT interrupts it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple, Union

JOURNAL_PREFIX = ".gainkit-patch-"
RECORD = "journal.json"
PROBE = ".gainkit-probe"
NEW_PREFIX = ".gainkit-new-"
PREPARING, WRITING = "preparing", "writing"
PAUSE_ENV = "GAINKIT_TEST_PAUSE_AFTER_PATCH"

Content = Union[bytes, Path, None]  # bytes; a file (a backup) to put in place; None: absent


# -- writing ------------------------------------------------------------------------------

def real_path(path: Path) -> Path:
    """The file behind path, following symlinks, so a write goes through them."""
    return Path(os.path.realpath(str(path))) if os.path.islink(str(path)) else path


def _temporary(path: Path) -> Path:
    real = real_path(path)
    return real.parent / (NEW_PREFIX + real.name)


def _remove(path: Path) -> None:
    try:
        os.unlink(str(path))
    except FileNotFoundError:
        pass


def replace(path: Path, content: Content) -> None:
    """Make path hold content, atomically: a temporary file beside it, then a rename.

    Errors are OSErrors naming path. A backup is moved into place, which needs no free
    space (a rollback on a full disk still works); it is copied only across file systems.
    """
    if content is None:
        if os.path.lexists(str(path)):
            os.unlink(str(path))
        return
    real, temporary = real_path(path), _temporary(path)
    try:
        _remove(temporary)
        real.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            try:
                os.replace(str(content), str(real))
                return
            except OSError as error:
                if error.errno != errno.EXDEV:
                    raise
            shutil.copy2(str(content), str(temporary))
        else:
            mode = real.stat().st_mode & 0o7777 if real.exists() else 0o644
            with open(str(temporary), "wb") as stream:
                stream.write(content)
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(str(temporary), mode)
        os.replace(str(temporary), str(real))
    except OSError as error:
        _remove_quietly(temporary)
        raise OSError(error.errno, error.strerror, str(path)) from None
    except BaseException:
        _remove_quietly(temporary)
        raise


def _remove_quietly(path: Path) -> None:
    try:
        _remove(path)
    except OSError:
        pass


def probe_directory(directory: Path) -> None:
    """Create and delete a file in directory (OSError if it takes no new files)."""
    probe = directory / PROBE
    os.close(os.open(str(probe), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    os.unlink(str(probe))


# -- the journal --------------------------------------------------------------------------

class Journal:
    """What an apply or revert is about to change in a target, and how to undo it."""

    def __init__(self, directory: Path, record: dict | None) -> None:
        self.directory = directory
        self.record = record  # None: unreadable; the run had not begun, or had finished

    @classmethod
    def begin(cls, root: Path, command: str, existed: Dict[str, bool],
              checkout: dict | None = None) -> Journal:
        """Start a journal for these files (path -> whether it exists now), or for a checkout's
        HEAD (checkout: head, branch and the subjects of the patches to commit)."""
        directory = Path(tempfile.mkdtemp(prefix=JOURNAL_PREFIX, dir=str(root)))
        record = {"command": command, "pid": os.getpid(),
                  "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "phase": WRITING if checkout else PREPARING, "files": existed,
                  "checkout": checkout}
        journal = cls(directory, record)
        try:
            journal._save()
        except BaseException:
            shutil.rmtree(str(directory), ignore_errors=True)
            raise
        return journal

    @classmethod
    def leftovers(cls, root: Path) -> List[Journal]:
        found = []
        for directory in sorted(Path(root).glob(JOURNAL_PREFIX + "*")):
            if directory.is_dir() and not directory.is_symlink():
                try:
                    record = json.loads((directory / RECORD).read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    record = None
                found.append(cls(directory, record))
        return found

    def _save(self) -> None:
        temporary = self.directory / (RECORD + ".new")
        with open(str(temporary), "w", encoding="utf-8") as stream:
            json.dump(self.record, stream, indent=1)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(str(temporary), str(self.directory / RECORD))

    @property
    def files(self) -> Dict[str, bool]:
        return self.record["files"]

    @property
    def checkout(self) -> dict | None:
        return self.record.get("checkout")

    def describe(self) -> str:
        return "an interrupted {} from {} (pid {})".format(
            self.record.get("command", "run"), self.record.get("started", "?"),
            self.record.get("pid", "?"))

    def _backup(self, rel: str) -> Path:
        return self.directory / "files" / rel

    def back_up(self, root: Path) -> None:
        """Copy every file that exists, with its digest, then enter the writing phase."""
        originals = {}
        for rel, existed in self.files.items():
            if existed:
                self._backup(rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(str(real_path(root / rel)), str(self._backup(rel)))
                originals[rel] = _fingerprint(self._backup(rel))
        self.record["originals"] = originals
        self.record["phase"] = WRITING
        self._save()

    def undo_list(self, root: Path) -> List[Tuple[str, Content]]:
        """(path, what to put back) for each file that differs from its original."""
        if self.record.get("phase") != WRITING:
            return []
        undo = []  # type: List[Tuple[str, Content]]
        for rel, existed in self.files.items():
            path, backup = root / rel, self._backup(rel)
            if not existed:
                if os.path.lexists(str(path)):
                    undo.append((rel, None))
            elif _fingerprint(path) == self.record["originals"][rel]:
                continue  # not written yet, or already put back (the backup moved there)
            elif backup.is_file():
                undo.append((rel, backup))
            else:
                raise OSError(errno.ENOENT, "the backup is missing", str(backup))
        return undo

    def discard(self, root: Path) -> None:
        """Delete what the run may have left beside the files, then the journal itself."""
        if self.record is not None:
            directories = {Path(root)}
            for rel in self.files:
                _remove(_temporary(root / rel))
                directories.add(real_path(root / rel).parent)
            for directory in directories:
                _remove(directory / PROBE)
            _remove(self.directory / RECORD)  # first: a journal without it is discarded whole
        shutil.rmtree(str(self.directory))


def _fingerprint(path: Path) -> str | None:
    """Mode and sha256 of a file; None if it is not there."""
    try:
        mode = os.stat(str(path)).st_mode
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None
    return f"{mode:o} {hashlib.sha256(data).hexdigest()}"


class HeldInterrupt:
    """Holds SIGINT until a checkpoint between two writes, so no write is cut in half."""

    def __init__(self) -> None:
        self.pending = False
        self.previous = None

    def __enter__(self) -> HeldInterrupt:
        # A process started with SIGINT ignored (nohup, `cmd &` in a script) keeps ignoring it:
        # catching it only inside this block would make a Ctrl-C count in some steps and not
        # in others.
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN):
            self.previous = signal.signal(signal.SIGINT, self._hold)
        return self

    def _hold(self, signum: int, frame: object) -> None:
        self.pending = True

    def checkpoint(self, step: str) -> None:
        test_pause(step, lambda: self.pending)
        if self.pending:
            raise KeyboardInterrupt

    def __exit__(self, *exc_info: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


# -- the test seam ------------------------------------------------------------------------

def test_pause(step: str, interrupted: Callable[[], bool] = lambda: False) -> None:
    """Pause where GAINKIT_TEST_PAUSE_AFTER_PATCH says (see the module docstring)."""
    value = os.environ.get(PAUSE_ENV)
    if not value:
        return
    wanted, colon, seconds = value.rpartition(":")
    if not colon:
        if not step.startswith(("file-", "patch-")):
            return
        del os.environ[PAUSE_ENV]  # only the first write
    elif wanted != step:
        return
    resumed = []
    previous = None
    if colon and threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGUSR1, lambda signum, frame: resumed.append(signum))
    try:
        if colon:
            print(f"gainkit patch: test pause at {step}", file=sys.stderr, flush=True)
        deadline = time.monotonic() + float(seconds)
        while time.monotonic() < deadline and not interrupted() and not resumed:
            time.sleep(0.05)  # short naps: a sleep resumes after a signal handler returns
    finally:
        if previous is not None:
            signal.signal(signal.SIGUSR1, previous)
