"""Fixtures for the patch tool's tests: torch targets built from real release files."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import Version

import upstream_releases
from gainkit.patching import journal
from gainkit.patching.series import default_patch_dir, load_series

DATA = Path(__file__).parent / "data" / "upstream"
TORCH_FILES = ("torch/nn/init.py", "torch/nn/modules/activation.py")
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "Test Committer", "GIT_AUTHOR_EMAIL": "test@example.com",
                "GIT_COMMITTER_NAME": "Test Committer", "GIT_COMMITTER_EMAIL": "test@example.com",
                # a `git status` polling a checkout must not take index.lock from the tool's git am
                "GIT_OPTIONAL_LOCKS": "0"}


def release_bytes(version: str, member: str) -> bytes:
    try:
        return upstream_releases.release_file(version, member)
    except upstream_releases.ReleaseUnavailable as error:
        pytest.skip(f"no torch {version} wheel: {error.reason}")


def upstream_test_file(version: str):
    """(path in the tree, bytes) of the upstream test of calculate_gain for that release."""
    release = Version(version)
    if release >= Version("2.0"):
        return "test/nn/test_init.py", (DATA / "test_init-2x.py").read_bytes()
    name = "test_nn-18.py" if release >= Version("1.8") else "test_nn-pre18.py"
    return "test/test_nn.py", (DATA / name).read_bytes()


def _git(tree: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(tree)] + list(args), check=True, text=True,
                          capture_output=True, env=dict(os.environ, **GIT_IDENTITY)).stdout


@pytest.fixture(scope="session")
def git():
    """git -C TREE ARGS..., checked, with a committer identity; returns stdout."""
    return _git


@pytest.fixture(scope="session")
def series_dir() -> Path:
    found = default_patch_dir()
    if not (found / "series").is_file():
        pytest.skip(f"{found}/series is not written yet")
    return found


@pytest.fixture(scope="session")
def series(series_dir):
    return load_series(series_dir)


@pytest.fixture
def make_tree(tmp_path):
    """A torch source tree of a real release: version.txt, init.py, activation.py, the test."""
    def make(version: str, where: Path = None, checkout: bool = False,
             version_txt: str = None, with_test: bool = True) -> Path:
        tree = where or tmp_path / f"pytorch-{version}"
        for member in TORCH_FILES:
            (tree / member).parent.mkdir(parents=True, exist_ok=True)
            (tree / member).write_bytes(release_bytes(version, member))
        (tree / "version.txt").write_text((version_txt or version) + "\n")
        if with_test:
            path, content = upstream_test_file(version)
            (tree / path).parent.mkdir(parents=True, exist_ok=True)
            (tree / path).write_bytes(content)
        if checkout:
            _git(tree, "init", "-q")
            _git(tree, "add", "-A")
            _git(tree, "commit", "-q", "-m", f"torch {version} files")
        return tree
    return make


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    """A site-packages holding the torch files of a release, found through PYTHONPATH."""
    def make(version: str, label: str = "") -> Path:
        site = tmp_path / "site-packages"
        for member in TORCH_FILES:
            (site / member).parent.mkdir(parents=True, exist_ok=True)
            (site / member).write_bytes(release_bytes(version, member))
        (site / "torch" / "__init__.py").write_text("raise ImportError('never imported')\n")
        info = site / f"torch-{version}{label}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: torch\nVersion: {version}{label}\n")
        monkeypatch.setenv("PYTHONPATH", str(site))
        return site
    return make


@pytest.fixture
def digest():
    """sha256 of every path, mode and byte under a tree (and, in a checkout, HEAD and status)."""
    def of(tree: Path) -> str:
        sha = hashlib.sha256()
        for path in sorted(tree.rglob("*")):
            rel = path.relative_to(tree)
            if rel.parts[0] == ".git":
                continue
            try:
                mode = path.lstat().st_mode
                data = path.read_bytes() if path.is_file() else b""
            except FileNotFoundError:  # renamed away by a write in flight (tests that poll)
                continue
            sha.update(f"{rel} {oct(mode)}\n".encode())
            sha.update(data)
        if (tree / ".git").exists():
            sha.update(_git(tree, "rev-parse", "HEAD").encode())
            sha.update(_git(tree, "status", "--porcelain", "--untracked-files=all").encode())
        return sha.hexdigest()
    return of


@pytest.fixture
def run_cli(series_dir):
    """Run `python -m gainkit.tools.patch ARGS --patches <series>` in a fresh interpreter."""
    def run(*args: str, env: dict = None, patches: Path = None):
        command = [sys.executable, "-m", "gainkit.tools.patch"] + list(args)
        command += ["--patches", str(patches or series_dir)]
        return subprocess.run(command, capture_output=True, text=True,
                              env=dict(os.environ, **GIT_IDENTITY, **(env or {})))
    return run


@pytest.fixture
def one_error():
    """Check that the CLI failed as a user error must: that exit code, one stderr line naming
    the tool, no traceback; returns the line."""
    def check(result, code):
        assert result.returncode == code, result.stdout + result.stderr
        assert "Traceback" not in result.stderr + result.stdout
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("gainkit patch: "), result.stderr
        return lines[0]
    return check


@pytest.fixture
def start_cli(series_dir):
    """Start `python -m gainkit.tools.patch ARGS --patches <series>` paused at a step of its
    write (GAINKIT_TEST_PAUSE_AFTER_PATCH=STEP:SECONDS); returns it once it is there. Any
    process still running at the end of the test is killed.

    ``sigint``: the SIGINT disposition it starts with, whatever the test runner's own is (a
    runner started in the background by a script ignores SIGINT, and a child inherits that)."""
    started = []

    def start(*args: str, step: str, env: dict = None, patches: Path = None,
              sigint=signal.SIG_DFL):
        command = [sys.executable, "-m", "gainkit.tools.patch"] + list(args)
        command += ["--patches", str(patches or series_dir)]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, **GIT_IDENTITY, **{journal.PAUSE_ENV: step + ":120"},
                     **(env or {})),
            preexec_fn=lambda: signal.signal(signal.SIGINT, sigint))
        started.append(process)
        line = process.stderr.readline()
        if line != f"gainkit patch: test pause at {step}\n":
            process.kill()
            stdout, stderr = process.communicate()
            pytest.fail(f"{' '.join(args)} never paused at {step}: {line}{stderr}{stdout}")
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


# -- places no output can be written to (tests of every output option) ----------------------

@pytest.fixture(params=["under-a-file", "immutable-folder"])
def unwritable(request, tmp_path):
    """(folder no file can be created in, the OS's reason). As root, permission bits stop
    nothing, so the two are a path under a regular file and a folder made immutable with
    `chattr +i` (skipped, with the reason, where chattr does not work on this filesystem)."""
    if request.param == "under-a-file":
        regular = tmp_path / "regular-file"
        regular.write_text("a file, not a folder\n")
        yield regular, "Not a directory"
        return
    folder = tmp_path / "immutable"
    folder.mkdir()
    made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"chattr +i fails here: {(made.stderr or made.stdout).strip()}")
    try:
        yield folder, "Operation not permitted"
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
