"""One patch run at a time per target: an exclusive ``flock`` on ``.gainkit-patch.lock``.

The lock file is in the target root and holds its holder's pid, so a run that is refused can
name the run that holds it. It is held for the whole run of every patch command (``status`` and
``check`` too: they may have to roll back a journal, which must never happen under a run that
is still alive). The kernel drops the lock when its holder dies, so a killed run leaves no
stale lock, only a file that the next run reuses. It is apart from the journal
(``gainkit.patching.journal``) because it guards the whole run, not one write.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not serialised
    fcntl = None

LOCK_NAME = ".gainkit-patch.lock"
_READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)


def _holder(fd: int) -> str:
    """The pid in a lock file that another run holds, or "unknown".

    The holder writes its pid just after it takes the lock, so a run refused in between reads
    an empty file: it waits a little for the pid rather than name nobody.
    """
    for _ in range(50):
        os.lseek(fd, 0, os.SEEK_SET)
        written = os.read(fd, 32).decode("ascii", "replace")
        if written.endswith("\n"):  # the pid and its newline come in one write
            return written.strip() or "unknown"
        time.sleep(0.01)
    return "unknown"  # a holder on a full disk, which could not write its pid


class Busy(Exception):
    """Another process holds the target's lock."""

    def __init__(self, pid: str) -> None:
        super().__init__(pid)
        self.pid = pid


class Lock:
    """An exclusive flock on ``<root>/.gainkit-patch.lock`` holding the holder's pid."""

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock at once or raise Busy; False if the root takes no files (read-only)."""
        if fcntl is None:
            return True
        while True:
            try:
                fd = os.open(str(self.path), os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                if error.errno in _READ_ONLY:
                    return False
                raise
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise Busy(holder) from None
            except BaseException:
                os.close(fd)
                raise
            try:  # the holder before us may have unlinked the file we opened: lock anew
                if os.path.samestat(os.fstat(fd), os.stat(str(self.path))):
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        self.fd = fd
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        except OSError:  # a full disk: the lock holds all the same, without the pid
            pass
        return True

    def release(self) -> None:
        if self.fd is not None:
            try:
                os.unlink(str(self.path))  # while still locked, so nobody locks a dead file
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None

