"""Files of Debian's real pytorch source packages, for the patch tests.

Debian packages pytorch from upstream release tarballs, whose ``version.txt`` says what a
checkout of that branch says (``1.13.0a0`` in 1.13.1, ``2.6.0a0`` in 2.6.0): real source trees,
unlike the wheels' files. The source package is fetched with ``apt-get source --download-only``
through a private apt configuration (its own deb-src list, package lists and cache under the
gainkit cache, ``$GAINKIT_CACHE`` or ``~/.cache/gainkit``, in ``debian/``), so the system's apt
is neither read nor changed. The files the series touches, and ``version.txt``, are read from
the package's upstream tarball once and kept in ``debian/files/<suite>/``.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import upstream_releases

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
MIRROR = "http://deb.debian.org/debian"
# The Debian release that carries each pytorch release, and that release.
SUITES = {"1.13.1": "bookworm", "2.6.0": "trixie"}
MEMBERS = ("version.txt", "torch/nn/init.py", "torch/nn/modules/activation.py",
           "test/test_nn.py", "test/nn/test_init.py")


class SourceUnavailable(Exception):
    """The source package could not be fetched; the reason says why."""


def _root() -> Path:
    return upstream_releases.cache_root() / "debian"


def _apt_options(root: Path) -> list:
    apt = root / "apt"
    return ["-o", f"Dir::Etc::SourceList={apt / 'sources.list'}",
            "-o", f"Dir::Etc::SourceParts={apt / 'sources.list.d'}",
            "-o", f"Dir::Etc::Preferences={apt / 'preferences'}",
            "-o", f"Dir::Etc::PreferencesParts={apt / 'preferences.d'}",
            "-o", f"Dir::State::Lists={apt / 'lists'}",
            "-o", f"Dir::Cache={apt / 'cache'}",
            "-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root", "-q"]


def _run(command: list, cwd: Path, what: str, timeout: int = 900) -> str:
    try:
        result = subprocess.run(command, cwd=str(cwd), capture_output=True, text=True,
                                timeout=timeout)
    except FileNotFoundError:
        raise SourceUnavailable(f"{command[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise SourceUnavailable(f"{what}: no answer in {timeout} s") from None
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines()
                 if line.startswith(("E:", "Err:"))] or (result.stderr or result.stdout
                                                         ).splitlines()[-1:]
        raise SourceUnavailable(f"{what} failed: {' '.join(lines)[:300]}")
    return result.stdout + result.stderr


def _download(version: str, suite: str) -> Path:
    """The upstream tarball of the pytorch source package in that Debian suite."""
    root = _root()
    apt = root / "apt"
    for directory in ("lists/partial", "cache/archives/partial", "sources.list.d",
                      "preferences.d"):
        (apt / directory).mkdir(parents=True, exist_ok=True)
    if not KEYRING.is_file():
        raise SourceUnavailable(f"{KEYRING} is missing (package debian-archive-keyring)")
    (apt / "sources.list").write_text("".join(
        f"deb-src [signed-by={KEYRING}] {MIRROR} {name} main\n"
        for name in sorted(set(SUITES.values()))))
    options = _apt_options(root)
    if not any((apt / "lists").glob("*Sources*")):
        said = _run(["apt-get"] + options + ["update"], root, "apt-get update")
        if not any((apt / "lists").glob("*Sources*")):  # apt says a failed fetch as a warning
            lines = said.splitlines()  # apt's W: lines carry the cause, Err: lines the URL
            failed = [line for line in lines if line.startswith(("W:", "E:"))] + \
                [line for line in lines if line.startswith("Err")]
            raise SourceUnavailable("apt-get update fetched no source index: "
                                    + " ".join(failed[:2])[:300])
    where = root / "sources" / suite
    found = sorted(where.glob(f"pytorch_{version}*.orig.tar.*"))
    if not found:
        scratch = root / "sources" / f".{suite}-download"
        shutil.rmtree(str(scratch), ignore_errors=True)
        scratch.mkdir(parents=True)
        try:
            _run(["apt-get"] + options + ["source", "--download-only", f"pytorch/{suite}"],
                 scratch, f"apt-get source pytorch/{suite}")
            failure = None
        except SourceUnavailable as error:
            failure = error  # the Debian part may be gone from a mirror; upstream's is enough
        found = sorted(scratch.glob("pytorch_*.orig.tar.*"))
        if not found:  # apt moves a file into place only once its hash checked out
            raise failure or SourceUnavailable(
                f"apt-get source pytorch/{suite} gave no upstream tarball")
        if not found[0].name.startswith(f"pytorch_{version}+") and \
                not found[0].name.startswith(f"pytorch_{version}."):
            raise SourceUnavailable(f"{suite} now carries {found[0].name}, not {version}")
        shutil.rmtree(str(where), ignore_errors=True)
        scratch.rename(where)
        found = sorted(where.glob(f"pytorch_{version}*.orig.tar.*"))
    return found[0]


_FAILED = {}  # type: dict  # version -> SourceUnavailable, so one test run asks apt once


def source_files(version: str) -> dict:
    """{member: bytes} of MEMBERS that Debian's pytorch ``version`` source tree has."""
    if version in _FAILED:
        raise _FAILED[version]
    try:
        return _source_files(version)
    except SourceUnavailable as error:
        _FAILED[version] = error
        raise


def _source_files(version: str) -> dict:
    suite = SUITES[version]
    files = _root() / "files" / suite
    if not (files / "complete").is_file():
        tarball = _download(version, suite)
        shutil.rmtree(str(files), ignore_errors=True)
        with tarfile.open(str(tarball)) as archive:
            for entry in archive:
                top, _, member = entry.name.partition("/")
                if member in MEMBERS and entry.isfile():
                    (files / member).parent.mkdir(parents=True, exist_ok=True)
                    (files / member).write_bytes(archive.extractfile(entry).read())
        (files / "complete").write_text(tarball.name + "\n")
    return {member: (files / member).read_bytes() for member in MEMBERS
            if (files / member).is_file()}
