"""What a series is applied to: a pytorch git checkout, a plain source tree, or the torch that
an interpreter imports, and the torch version each one holds.

A target is found and described here and only read; planning and writing take it as it is.
"""

from __future__ import annotations

import email
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from gainkit.patching.errors import PatchError, last_line

SITE_INCLUDE = "torch/*"
# '' (the cwd) is dropped from sys.path so that a torch/ in the cwd is not mistaken for it.
_FIND_TORCH = ("import sys, importlib.util as u; sys.path[:1] = [p for p in sys.path[:1] if p]; "
               "s = u.find_spec('torch'); "
               "print(s.submodule_search_locations[0] if s and s.submodule_search_locations "
               "else '')")


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


def interpreter_path(python: str) -> Path:
    """``--python``'s interpreter: a path (never looked up in PATH) or a virtual environment's."""
    interpreter = Path(os.path.abspath(os.path.expanduser(python)))
    if interpreter.is_dir():  # a virtual environment
        interpreter = interpreter / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not interpreter.exists():
        raise PatchError(f"{interpreter}: no such interpreter")
    return interpreter


def python_target(python: str) -> Target:
    interpreter = interpreter_path(python)
    try:
        found = subprocess.run([str(interpreter), "-c", _FIND_TORCH], capture_output=True,
                               text=True, timeout=300)
    except OSError as error:
        raise PatchError(f"{interpreter}: cannot run it: {error.strerror}") from None
    except subprocess.TimeoutExpired:
        raise PatchError(f"{interpreter}: cannot run it: no answer in 300 s") from None
    if found.returncode != 0:
        raise PatchError(f"{interpreter}: cannot run it: {last_line(found.stderr)}")
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

