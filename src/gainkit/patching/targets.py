"""What a series is applied to: a pytorch git checkout, a plain source tree, or the torch that
an interpreter imports, and the torch version each one holds.

A target is found and described here and only read; planning and writing take it as it is.
The version is only a hint (the plan decides each patch by the files' content): a tree's comes
from ``version.txt``, else ``torch/version.py`` (a built checkout, a copied site-packages), else
a ``torch-*.dist-info`` beside ``torch/``; a tree with none of them has no version, and the
plan refuses it unless its content alone decides.
"""

from __future__ import annotations

import ast
import email
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

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
    version: Version | None  # None: no version found; the content alone decides
    version_source: str  # the file it was read from, or why there is none
    include: str | None = None  # git apply --include pattern
    use_am: bool = False
    interpreter: Path | None = None  # site-packages: the interpreter that imports this torch

    def describe(self) -> str:
        if self.version is None:
            return f"{self.kind} {self.root} (torch version unknown: {self.version_source})"
        return f"{self.kind} {self.root} (torch {self.version}, from {self.version_source})"

    def version_says(self) -> str:
        """The version evidence, as a status line quotes it."""
        if self.version is None:
            return "no torch version found"
        said = f"{self.version_source} says {self.version}"
        if self.version.is_prerelease:
            said += ", a pre-release"
        return said


def _version(text: str, source: Path) -> Version:
    """PEP 440 version without its local label (1.7.1+cu101 is 1.7.1, 1.8.0a0 stays)."""
    try:
        return Version(Version(text.strip()).public)
    except (InvalidVersion, AttributeError, TypeError):
        raise PatchError(f"{source}: {str(text).strip()!r} is not a version") from None


def _version_py(path: Path) -> str:
    """``__version__`` of a torch/version.py, read without running it."""
    try:
        module = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError):
        raise PatchError(f"{path}: not Python, so no __version__ in it") from None
    for node in module.body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                and any(getattr(name, "id", None) == "__version__" for name in node.targets)):
            return str(node.value.value)
    raise PatchError(f"{path}: no __version__ = '...' in it")


def _dist_version(metadata: Path) -> str:
    with metadata.open("rb") as handle:
        return str(email.message_from_binary_file(handle)["Version"])


def tree_version(root: Path):
    """(version or None, where it came from or why there is none) of a source tree."""
    version_file, version_py = root / "version.txt", root / "torch" / "version.py"
    if version_file.is_file():
        text = version_file.read_text(encoding="utf-8", errors="replace")
        return _version(text, version_file), "version.txt"
    if version_py.is_file():
        return _version(_version_py(version_py), version_py), "torch/version.py"
    metadata = sorted(root.glob("torch-*.dist-info/METADATA"))
    if len(metadata) == 1:
        return _version(_dist_version(metadata[0]), metadata[0]), metadata[0].parent.name
    return None, "no version.txt, torch/version.py or torch-*.dist-info"


def tree_target(path: str, working_tree: bool = False) -> Target:
    root = Path(path).expanduser()
    if root.exists() and not root.is_dir():
        raise PatchError(f"{root}: not a directory")
    if not root.is_dir():
        raise PatchError(f"{root}: no such directory")
    root = root.resolve()
    if not (root / "torch" / "nn" / "init.py").is_file():
        raise PatchError(f"{root}: not a torch source tree (no torch/nn/init.py)")
    is_checkout = (root / ".git").exists()
    if working_tree and not is_checkout:
        raise PatchError(f"{root}: --working-tree needs a git checkout")
    version, source = tree_version(root)
    return Target("git checkout" if is_checkout else "source tree", root, version, source,
                  use_am=is_checkout and not working_tree)


def interpreter_path(python: str) -> Path:
    """``--python``'s interpreter: a path (never looked up in PATH) or a virtual environment's."""
    interpreter = Path(os.path.abspath(os.path.expanduser(python)))
    if interpreter.is_dir():  # a virtual environment
        interpreter = interpreter / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not interpreter.exists():
        raise PatchError(f"{interpreter}: no such interpreter")
    return interpreter


PYTHON_TIMEOUT = 300  # seconds: a cold torch import on a slow disk


def run_python(interpreter: str, arguments: List[str], env: Dict[str, str] | None = None) -> str:
    """The stdout of ``interpreter arguments``; one-line PatchError if it cannot run or fails."""
    try:
        done = subprocess.run([interpreter] + list(arguments), capture_output=True, text=True,
                              env=env, timeout=PYTHON_TIMEOUT)
    except OSError as error:
        raise PatchError(f"{interpreter}: cannot run it: {error.strerror}") from None
    except subprocess.TimeoutExpired:
        raise PatchError(f"{interpreter}: cannot run it: no answer in {PYTHON_TIMEOUT} s") from None
    if done.returncode != 0:
        raise PatchError(f"{interpreter}: cannot run it: {last_line(done.stderr)}")
    return done.stdout


def python_target(python: str) -> Target:
    interpreter = interpreter_path(python)
    found = run_python(str(interpreter), ["-c", _FIND_TORCH])
    if not found.strip():
        raise PatchError(f"{interpreter}: torch is not installed there")
    site = Path(found.strip()).parent
    metadata = sorted(site.glob("torch-*.dist-info/METADATA"))
    if len(metadata) != 1:
        raise PatchError(f"{site}: {len(metadata)} torch-*.dist-info/METADATA, expected one")
    version = _version(_dist_version(metadata[0]), metadata[0])
    return Target("site-packages", site, version, metadata[0].parent.name, include=SITE_INCLUDE,
                  interpreter=interpreter)

