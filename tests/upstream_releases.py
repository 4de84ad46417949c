"""Files of real torch releases, read from their PyPI wheels.

Wheels are fetched once with ``pip download`` and kept, with every file read
from them, in a cache outside the repository: ``$GAINKIT_CACHE`` or
``~/.cache/gainkit`` (``wheels/`` and ``files/<version>/<member>``), so that
later reads never open the ~700 MB archive again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from packaging.version import Version

# pip picks the newest manylinux tag a release was published with.
LINUX_PLATFORMS = (
    "manylinux1_x86_64",
    "manylinux2014_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux_2_28_x86_64",
)


class ReleaseUnavailable(Exception):
    """pip could not download the wheel of a torch release."""

    def __init__(self, version: str, reason: str) -> None:
        super().__init__(f"torch {version}: {reason}")
        self.version = version
        self.reason = reason


def cache_root() -> Path:
    return Path(os.environ.get("GAINKIT_CACHE") or Path.home() / ".cache" / "gainkit")


def wheel_python(version: str) -> str:
    """A Python version with a Linux wheel of that release on PyPI."""
    # cp37 wheels exist for 1.0.0-1.13.1 (the only ones for 1.0.x); cp311 from 1.13 on.
    return "3.7" if Version(version).release < (1, 14) else "3.11"


def _cached_wheel(wheels: Path, version: str) -> Path | None:
    # "+*" also finds local builds such as 2.13.0+cpu, which pip accepts for ==2.13.0.
    found = sorted(wheels.glob(f"torch-{version}-*.whl"))
    found += sorted(wheels.glob(f"torch-{version}+*.whl"))
    return found[0] if found else None


def wheel_path(version: str) -> Path:
    """The cached wheel of torch ``version``, downloaded on first use."""
    wheels = cache_root() / "wheels"
    cached = _cached_wheel(wheels, version)
    if cached is not None:
        return cached
    wheels.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--python-version", wheel_python(version), "--quiet"]
    for platform in LINUX_PLATFORMS:
        command += ["--platform", platform]
    # A private download directory, then a rename, so that concurrent callers
    # never see a half-written wheel.
    with tempfile.TemporaryDirectory(dir=str(wheels), prefix=".download-") as scratch:
        try:
            result = subprocess.run(command + [f"torch=={version}", "-d", scratch],
                                    capture_output=True, text=True)
        except OSError as error:
            raise ReleaseUnavailable(version, f"cannot run pip: {error}") from None
        downloaded = _cached_wheel(Path(scratch), version)
        if result.returncode != 0 or downloaded is None:
            output = (result.stderr or result.stdout).strip().splitlines()
            errors = [line for line in output if line.startswith("ERROR:")] or output[-1:]
            reason = " ".join(errors) or f"pip download exited {result.returncode}"
            raise ReleaseUnavailable(version, reason)
        os.replace(str(downloaded), str(wheels / downloaded.name))
    return wheels / downloaded.name


def release_file(version: str, member: str = "torch/nn/init.py") -> bytes:
    """The bytes of ``member`` (a path inside the wheel) in torch ``version``."""
    cached = cache_root() / "files" / version / member
    if cached.is_file():
        return cached.read_bytes()
    with zipfile.ZipFile(str(wheel_path(version))) as wheel:
        content = wheel.read(member)
    cached.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=str(cached.parent), prefix=".partial-")
    with os.fdopen(fd, "wb") as stream:
        stream.write(content)
    os.replace(partial, str(cached))
    return content
