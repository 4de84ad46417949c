"""Output files of every gainkit command: checked before any work, written whole or not at all.

A command that is asked to write somewhere (``gainkit report --output/--plots``, ``gainkit
mutate --json``, the suite's ``--gainkit-json``, ``gainkit check``'s pytest outputs) calls
:func:`check_file` or :func:`check_folder` for each path before it runs anything, so that a
typo, a read-only or immutable folder or a path under a regular file is one line naming the path
and the OS's reason, not a traceback after minutes of work. :func:`write_text` then writes
through a temporary file in the same folder and renames it into place: a write that fails later
(a full disk) leaves the old file or no file, never half of one.

As root, permission bits do not stop a write, but an immutable folder (``chattr +i``) does; so
the checks create (and remove) a probe file rather than asking ``os.access``.

This is the bottom layer (standard library only): the suite's plugin imports it in old
environments (Python 3.7).
"""

from __future__ import annotations

import errno
import os
import tempfile

# the exit code of a write that failed after the work was done (nothing half-written is left)
EXIT_WRITE = 3


class OutputError(Exception):
    """An output path that cannot be written; the message is one line naming it and why."""


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def _nearest_existing(path: str) -> str:
    """``path`` or its nearest ancestor that exists (what a makedirs would start from)."""
    current = path
    while not os.path.lexists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def _probe_folder(option: str, shown: str, folder: str) -> None:
    """Create and remove a file in the existing folder ``folder``."""
    try:
        handle, probe = tempfile.mkstemp(prefix=".gainkit-probe-", dir=folder)
    except OSError as error:
        raise OutputError(f"{option} {shown}: cannot write in {folder}: {_reason(error)}") \
            from None
    os.close(handle)
    os.unlink(probe)


def check_folder(path: str, option: str) -> None:
    """That files can be created in folder ``path`` (created when written, like --junitxml's)."""
    absolute = os.path.abspath(path)
    existing = _nearest_existing(absolute)
    if not os.path.isdir(existing):
        what = "is" if existing == absolute else f"{existing} is"
        raise OutputError(f"{option} {path}: {what} not a directory: "
                          f"{os.strerror(errno.ENOTDIR)}")
    _probe_folder(option, path, existing)


def check_file(path: str, option: str) -> None:
    """That file ``path`` can be written (replaced where it exists); its folders may be
    missing: :func:`write_text` creates them."""
    absolute = os.path.abspath(path)
    if os.path.isdir(absolute):
        raise OutputError(f"{option} {path}: is a directory: {os.strerror(errno.EISDIR)}")
    existing = _nearest_existing(os.path.dirname(absolute))
    if not os.path.isdir(existing):
        raise OutputError(f"{option} {path}: {existing} is not a directory: "
                          f"{os.strerror(errno.ENOTDIR)}")
    _probe_folder(option, path, existing)
    if os.path.lexists(absolute):
        try:  # an immutable or append-only file cannot be replaced even in a writable folder
            with open(absolute, "a"):
                pass
        except OSError as error:
            raise OutputError(f"{option} {path}: {_reason(error)}") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str, text: str, option: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` whole; see :func:`write_bytes`."""
    write_bytes(path, text.encode("utf-8"), option)


def write_bytes(path: str, data: bytes, option: str) -> None:
    """Write ``data`` to ``path`` whole: a temporary file in its folder, renamed into place."""
    folder = os.path.dirname(os.path.abspath(path))
    temporary = None
    try:
        os.makedirs(folder, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                                             suffix=".tmp", dir=folder)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp's 0600 is not what open() gives
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
        temporary = None
    except OSError as error:
        raise OutputError(f"{option} {path}: writing failed: {_reason(error)} (nothing "
                          "half-written is left)") from None
    finally:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
