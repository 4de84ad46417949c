"""gainkit check --python: another environment checked by its own gainkit, refused untouched
when it lacks a package, and its outputs checked before anything runs.

The quick tests use a bare venv holding a stand-in torch package (what the probe imports); the
slow one builds, from the cached torch 1.7.1 wheel and a gainkit wheel of this checkout, a
fresh venv on the Python that wheel was built for (3.7), and checks it from this interpreter
(3.11): first without gainkit there (exit 2, nothing written), then with it (patched, passes).
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import upstream_releases
from gainkit import environments

ROOT = Path(__file__).resolve().parent.parent
RELEASE = "1.7.1"
SELU_GAIN = "import torch.nn.init as i; print(i.calculate_gain('selu'))"


def gainkit_check(*args: str, env: dict | None = None, timeout: int = 900):
    return subprocess.run([sys.executable, "-m", "gainkit.tools.cli", "check", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ if env is None else env,
                                   PYTHONDONTWRITEBYTECODE="1"))


def digest(folder: Path) -> str:
    """Every path, mode and byte under ``folder``."""
    sha = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        sha.update(f"{path.relative_to(folder)} {oct(path.lstat().st_mode)}\n".encode())
        if path.is_file():
            sha.update(path.read_bytes())
    return sha.hexdigest()


@pytest.fixture
def torch_only_env(tmp_path) -> Path:
    """A venv (no pip) whose only package is a stand-in torch 1.7.1."""
    env = tmp_path / "torch-only"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    (site,) = glob.glob(str(env / "lib" / "python3*" / "site-packages"))
    (Path(site) / "torch").mkdir()
    (Path(site) / "torch" / "__init__.py").write_text('__version__ = "1.7.1"\n')
    info = Path(site) / "torch-1.7.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 1.7.1\n")
    return env


def test_a_target_without_gainkit_is_refused_in_one_line_and_left_untouched(torch_only_env):
    before = digest(torch_only_env)
    done = gainkit_check("--python", str(torch_only_env))
    python = torch_only_env / "bin" / "python"
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"gainkit check: error: {python} (Python {sys.version.split()[0]}): "
                           "gainkit and pytest are not installed there (it has torch 1.7.1); "
                           f"install them: {python} -m pip install gainkit pytest")
    assert digest(torch_only_env) == before  # no lock, journal or patched file


def test_the_callers_packages_do_not_leak_into_the_target(torch_only_env):
    """With this environment's site-packages on PYTHONPATH the target could import gainkit
    and pytest, so a probe that let them leak in would find nothing missing."""
    import gainkit

    ours = str(Path(gainkit.__file__).resolve().parent.parent)
    leaky = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ours, str(Path(pytest.__file__).resolve().parent.parent)]))
    python = str(torch_only_env / "bin" / "python")
    control = subprocess.run([python, "-c", "import gainkit, pytest"], env=leaky)
    assert control.returncode == 0  # the leak is real without isolation
    done = gainkit_check("--python", str(torch_only_env), env=leaky)
    assert done.returncode == 2 and "gainkit and pytest are not installed there" in done.stderr
    assert environments.probe(python).missing == ["gainkit", "pytest"]
    assert "PYTHONPATH" not in environments.clean_environ(leaky)


@pytest.mark.parametrize("option", ["--gainkit-json", "--junitxml"])
def test_an_output_it_cannot_write_is_refused_before_the_target_is_probed(unwritable, option,
                                                                          tmp_path):
    folder, reason = unwritable
    bad = folder / "results.out"
    done = gainkit_check("--python", str(tmp_path / "no-such-env"), f"{option}={bad}")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"gainkit check: error: {option} {bad}: " \
        + done.stderr.split(": ", 3)[-1]
    assert done.stderr.rstrip().endswith(reason) and len(done.stderr.splitlines()) == 1


def test_a_deviations_file_it_cannot_read_is_refused_before_anything(tmp_path):
    done = gainkit_check("--gainkit-deviations", str(tmp_path / "nope.txt"))
    assert done.returncode == 2
    assert done.stderr == (f"gainkit check: error: --gainkit-deviations {tmp_path}/nope.txt: "
                           "No such file or directory\n")


# -- end to end, from wheels in fresh venvs (slow) ----------------------------------------

def _python(version: str) -> str | None:
    """python<version> that really runs: pyenv's, or one on PATH."""
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip() \
        if subprocess.run(["sh", "-c", "command -v pyenv"], capture_output=True).returncode \
        == 0 else os.path.expanduser("~/.pyenv")
    for candidate in sorted(glob.glob(f"{root}/versions/{version}.*/bin/python")):
        if subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0:
            return candidate
    return None


def _run(*command: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    done = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout,
                          env=dict(environments.clean_environ(),
                                   PIP_DISABLE_PIP_VERSION_CHECK="1"))
    if done.returncode != 0:
        pytest.skip(f"cannot build the env ({' '.join(command[:4])}...): "
                    f"{(done.stderr or done.stdout)[-300:]}")
    return done


@pytest.fixture(scope="module")
def old_env(tmp_path_factory):
    """(venv with torch 1.7.1 only, gainkit wheel of this checkout)."""
    try:
        wheel = upstream_releases.wheel_path(RELEASE)
    except upstream_releases.ReleaseUnavailable as error:
        pytest.skip(f"no torch {RELEASE} wheel: {error.reason}")
    tag = wheel.name.split("-")[2]  # cp37
    python = _python(f"{tag[2]}.{tag[3:]}")
    if python is None:
        pytest.skip(f"no Python {tag[2]}.{tag[3:]} for {wheel.name}")
    folder = tmp_path_factory.mktemp("check-e2e")
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(folder),
         str(ROOT))
    (gainkit_wheel,) = folder.glob("gainkit-*.whl")
    env = folder / f"py{tag[2:]}-torch{RELEASE}"
    _run(python, "-m", "venv", str(env))
    _run(str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel),
         "numpy<1.24", "typing-extensions")
    return env, gainkit_wheel


@pytest.mark.slow
def test_an_old_env_is_refused_without_gainkit_then_checked_by_its_own(old_env):
    env, gainkit_wheel = old_env
    python = str(env / "bin" / "python")
    torch_dir = next((env / "lib").glob("python3*/site-packages/torch"))
    before = digest(torch_dir / "nn")

    refused = gainkit_check("--python", str(env))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "gainkit and pytest are not installed there (it has torch 1.7.1)" in refused.stderr
    assert refused.stdout == "" and digest(torch_dir / "nn") == before

    _run(python, "-m", "pip", "install", "--quiet", str(gainkit_wheel), "numpy<1.24")
    checked = gainkit_check("--python", str(env), "--gainkit-device", "cpu",
                            "-k", "test_values or test_docstring")
    output = checked.stdout + checked.stderr
    try:
        assert checked.returncode == 0, output[-5000:]
        assert "Traceback" not in output and "ImportError" not in output
        assert f"running there: {python} -I -m gainkit.tools.check" in checked.stdout
        assert re.search(rf"^applied [1-9]\d* patch(es)? to {re.escape(str(torch_dir.parent))}$",
                         checked.stdout, re.M), checked.stdout
        last = checked.stdout.strip().splitlines()[-1]
        assert last.startswith(f"gainkit check: torch {RELEASE} ") and " conforms: " in last
        assert f" at {torch_dir} " in last
        gain = subprocess.run([python, "-c", SELU_GAIN], capture_output=True, text=True)
        assert gain.stdout == "0.75\n"
    finally:
        subprocess.run([python, "-I", "-m", "gainkit.tools.patch", "revert", "--python", python],
                       capture_output=True)
    assert digest(torch_dir / "nn") == before


def test_another_gainkit_version_there_is_named_and_its_own_check_runs(monkeypatch, capsys):
    from types import SimpleNamespace

    import gainkit
    from gainkit.tools import check

    ran = {}

    def run(command, env):
        ran.update(command=command, env=env)
        return SimpleNamespace(returncode=1)

    monkeypatch.setattr(check.subprocess, "run", run)
    monkeypatch.setenv("PYTHONPATH", "/caller/site-packages")
    probe = environments.Probe("/t/bin/python", "3.8.18", "/t", {
        "gainkit": {"version": "0.0.9"}, "pytest": {"version": "8.3.5"},
        "torch": {"version": "1.7.1"}})
    code = check._in_target(SimpleNamespace(no_patch=True), ["-k", "tanh"], probe)
    assert code == 1  # the target's verdict, unchanged
    assert ran["command"] == ["/t/bin/python", "-I", "-m", "gainkit.tools.check", "--no-patch",
                              "-k", "tanh"]
    assert "PYTHONPATH" not in ran["env"]
    note = capsys.readouterr().out.splitlines()[0]
    assert note == (f"gainkit check: note: /t/bin/python has gainkit 0.0.9, this is gainkit "
                    f"{gainkit.__version__}: running the one installed there (its patch series "
                    "and suite)")


def test_the_folder_it_runs_from_cannot_change_the_suites_settings(tmp_path):
    # A project whose pytest settings the suite cannot run under: an unknown option in addopts
    # and a testpaths of its own. gainkit check runs the suite with its own file
    # (conformance/pytest.ini) and passes; plain pytest in that folder reads the project's.
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\naddopts = "--no-such-option"\ntestpaths = ["nowhere"]\n')
    selection = ["--no-patch", "-k", "test_values and tanh"]
    done = subprocess.run([sys.executable, "-m", "gainkit.tools.cli", "check", *selection],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "conforms" in done.stdout.splitlines()[-1]
    control = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "gainkit.conformance",
                              "-k", "test_values and tanh"], capture_output=True, text=True,
                             timeout=600, cwd=tmp_path)
    assert control.returncode == 4 and "--no-such-option" in control.stderr


def test_tox_runs_the_suite_with_its_own_settings():
    tox = (ROOT / "tox.ini").read_text()
    assert "pytest -c {env_site_packages_dir}/gainkit/conformance/pytest.ini" in tox
    assert (ROOT / "conformance" / "pytest.ini").is_file()
