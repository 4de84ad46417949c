"""End to end: `gainkit patch` on a real torch 1.7.1 installed in its own virtual environment.

The environment is cached outside the repository (``<gainkit cache>/envs/``) and reused; its
Python is the one the cached 1.7.1 wheel was built for (the wheel's cpXY tag).
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import upstream_releases

pytestmark = pytest.mark.slow

RELEASE = "1.7.1"
QUIET = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
SELU_GAIN = "import torch.nn.init as i; print(i.calculate_gain('selu'))"


def _interpreter(version: str):
    """python<version> that really runs (a pyenv shim on PATH may not)."""
    candidates = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python")))
    candidates += [shutil.which(f"python{version}") or ""]
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0:
            return candidate
    return None


def _run(*command: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(list(command), capture_output=True, text=True, env=QUIET,
                          timeout=timeout)


@pytest.fixture(scope="module")
def torch_env():
    """A venv with the real torch 1.7.1 wheel, built once; reverted after the test whatever
    happens, so the cached environment stays pristine."""
    try:
        wheel = upstream_releases.wheel_path(RELEASE)
    except upstream_releases.ReleaseUnavailable as error:
        pytest.skip(f"no torch {RELEASE} wheel: {error.reason}")
    tag = wheel.name.split("-")[2]  # e.g. cp37
    version = f"{tag[2]}.{tag[3:]}"
    python = _interpreter(version)
    if python is None:
        pytest.skip(f"python{version} (for {wheel.name}) is not installed")
    env = upstream_releases.cache_root() / "envs" / f"py{tag[2:]}-torch{RELEASE}"
    if not (env / "complete").is_file():
        shutil.rmtree(str(env), ignore_errors=True)
        steps = [[python, "-m", "venv", str(env)],
                 [str(env / "bin/python"), "-m", "pip", "install", "--quiet", "--no-deps",
                  str(wheel), "numpy<1.24", "typing-extensions",
                  'dataclasses; python_version < "3.7"']]
        for step in steps:
            result = _run(*step)
            if result.returncode != 0:
                pytest.skip(f"cannot build {env}: {(result.stderr or result.stdout)[-300:]}")
        (env / "complete").write_text(wheel.name + "\n")
    yield env
    _run(sys.executable, "-m", "gainkit.tools.patch", "revert", "--python", str(env))


def _digest(directory: Path) -> str:
    sha = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        sha.update(f"{path.relative_to(directory)} {oct(path.lstat().st_mode)}\n".encode())
        if path.is_file():
            sha.update(path.read_bytes())
    return sha.hexdigest()


def test_patching_an_installed_torch_1_7_1_and_reverting_it(torch_env):
    python = str(torch_env / "bin" / "python")
    torch_nn = next((torch_env / "lib").glob("python3*/site-packages/torch/nn"))
    before = _digest(torch_nn)
    unpatched = _run(python, "-c", SELU_GAIN)
    assert unpatched.returncode == 1 and "ValueError: Unsupported nonlinearity selu" in \
        unpatched.stderr.splitlines()[-1]

    applied = _run(sys.executable, "-m", "gainkit.tools.patch", "apply", "--python", python)
    assert applied.returncode == 0 and applied.stderr == "", applied.stderr
    assert applied.stdout.startswith(f"target: site-packages {torch_nn.parent.parent} "
                                     f"(torch {RELEASE}, from torch-{RELEASE}.dist-info)\n")
    assert _run(python, "-c", SELU_GAIN).stdout == "0.75\n"

    reverted = _run(sys.executable, "-m", "gainkit.tools.patch", "revert", "--python",
                    str(torch_env))
    assert reverted.returncode == 0 and reverted.stderr == "", reverted.stderr
    again = _run(python, "-c", SELU_GAIN)
    assert again.returncode == 1 and "Unsupported nonlinearity selu" in again.stderr
    assert _digest(torch_nn) == before
