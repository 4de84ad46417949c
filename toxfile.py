"""tox inline plugin: make the pyenv-installed Pythons visible to tox.

tox finds interpreters on PATH; on machines that keep several Pythons under pyenv only one of
them is on PATH. Appending every ``$(pyenv root)/versions/*/bin`` lets ``py37``..``py313`` envs
find their interpreter without anyone editing PATH, while a Python that is really missing still
shows up as a visible skip (``skip_missing_interpreters``).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess


def _pyenv_root() -> str:
    root = os.environ.get("PYENV_ROOT")
    if root:
        return root
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            return subprocess.run(
                [pyenv, "root"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return os.path.expanduser("~/.pyenv")


def _extend_path() -> None:
    path = os.environ.get("PATH", "").split(os.pathsep)
    extra = sorted(
        directory
        for directory in glob.glob(os.path.join(_pyenv_root(), "versions", "*", "bin"))
        if directory not in path
    )
    if extra:
        os.environ["PATH"] = os.pathsep.join(path + extra)


_extend_path()
