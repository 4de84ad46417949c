"""The patch series in patches/, applied with plain git to trees built from real torch releases."""

from __future__ import annotations

import ast
import datetime
import email
import email.policy
import email.utils
import math
import os
import random
import re
import subprocess
import sys
import unittest
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

import upstream_releases

PATCHES = Path(__file__).resolve().parents[1] / "patches"
EXCERPTS = Path(__file__).resolve().parent / "data" / "upstream"
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "Series Test", "GIT_AUTHOR_EMAIL": "series@example.com",
                "GIT_COMMITTER_NAME": "Series Test", "GIT_COMMITTER_EMAIL": "series@example.com"}

PRE_SELU = ["1.0.0", "1.0.1", "1.1.0", "1.2.0", "1.3.0", "1.3.1", "1.4.0", "1.5.0", "1.5.1",
            "1.6.0", "1.7.0", "1.7.1"]
RELEASES = PRE_SELU + ["1.8.0", "1.8.1", "2.13.0"]
SELU_SINCE, WARNING_SINCE = Version("1.8.0"), Version("1.9.0")

NAMES = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
         "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu", "SELU", "gelu", ""]
NO_PARAM = object()
PARAMS = [NO_PARAM, 0, 0.2, 10, 3, True, "0.1", None]
DEP3_DATE = "%Y-%m-%d"


# -- reading the series --------------------------------------------------------------------

def series_names() -> list:
    lines = (PATCHES / "series").read_text().splitlines()
    entries = (line.split("#", 1)[0].strip() for line in lines)
    return [entry for entry in entries if entry]


def read_patch(name: str) -> SimpleNamespace:
    """Header, DEP-3 fields (from the commit message) and diff text of one patch file."""
    message = email.message_from_bytes((PATCHES / name).read_bytes(), policy=email.policy.default)
    body = message.get_content()
    description, _, diff = body.partition("\n---\n")
    fields = dict(re.findall(r"^([A-Z][A-Za-z-]+): (.+)$", description, re.MULTILINE))
    return SimpleNamespace(name=name, message=message, fields=fields, diff=diff,
                           versions=SpecifierSet(fields.get("Torch-Versions", "")))


def patches_for(version: str) -> list:
    return [name for name in series_names() if read_patch(name).versions.contains(version)]


# -- release trees -------------------------------------------------------------------------

def release_text(version: str, member: str) -> str:
    try:
        return upstream_releases.release_file(version, member).decode()
    except upstream_releases.ReleaseUnavailable as error:
        pytest.skip(f"torch {version} is not downloadable: {error.reason}")


def layout_of(version: str):
    """Where that release keeps TestNNInit, and the upstream excerpt standing for it."""
    if Version(version) >= Version("2.0"):
        return "test/nn/test_init.py", EXCERPTS / "test_init-2x.py"
    if Version(version) >= SELU_SINCE:
        return "test/test_nn.py", EXCERPTS / "test_nn-18.py"
    return "test/test_nn.py", EXCERPTS / "test_nn-pre18.py"


def git(tree: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(tree)] + list(args), capture_output=True, text=True,
                          env=dict(os.environ, **GIT_IDENTITY))


def release_tree(root: Path, version: str) -> Path:
    """A git repository holding that release's real init.py, activation.py and its test."""
    tree = root / f"pytorch-{version}"
    files = {member: release_text(version, member)
             for member in ("torch/nn/init.py", "torch/nn/modules/activation.py")}
    test_path, excerpt = layout_of(version)
    files[test_path] = excerpt.read_text()
    files["version.txt"] = version + "\n"
    for path, text in files.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text(text)
    assert git(tree, "init", "-q").returncode == 0
    git(tree, "add", "-A")
    assert git(tree, "commit", "-q", "-m", f"torch {version}").returncode == 0
    return tree


# -- the scratch repository the series is exported from ------------------------------------

EXPORT_IDENTITY = {"GIT_AUTHOR_NAME": "gainkit",
                   "GIT_AUTHOR_EMAIL": "gainkit@users.noreply.github.com",
                   "GIT_COMMITTER_NAME": "gainkit",
                   "GIT_COMMITTER_EMAIL": "gainkit@users.noreply.github.com"}


def export_release(name: str) -> str:
    """The release a patch is made on: the newest one the test knows inside its range."""
    versions = read_patch(name).versions
    return [version for version in RELEASES if versions.contains(version)][-1]


def series_repository(root: Path) -> tuple:
    """One repository, a branch per release a patch is made on (export_release): a base commit
    of that release's real files, then, by git am in series order, every patch for it up to
    the last one made there, each committed on the day its Last-Update says. Returns the
    repository and the commit of each patch on its own release's branch."""
    repo = root / "series-repo"
    repo.mkdir()
    assert git(repo, "init", "-q").returncode == 0
    names = series_names()
    commits = {}
    for release in sorted({export_release(name) for name in names}, key=Version):
        assert git(repo, "checkout", "-q", "--orphan", f"torch-{release}").returncode == 0
        git(repo, "rm", "-rqf", "--ignore-unmatch", ".")
        tree = release_tree(root / "bases", release)
        for path in tree.rglob("*"):
            if path.is_file() and ".git" not in path.relative_to(tree).parts:
                (repo / path.relative_to(tree)).parent.mkdir(parents=True, exist_ok=True)
                (repo / path.relative_to(tree)).write_bytes(path.read_bytes())
        git(repo, "add", "-A")
        assert git(repo, "commit", "-q", "-m", f"torch {release}").returncode == 0
        mine = [name for name in names if export_release(name) == release]
        for name in names[:names.index(mine[-1]) + 1]:
            if not read_patch(name).versions.contains(release):
                continue
            day = read_patch(name).fields["Last-Update"]
            env = dict(os.environ, **EXPORT_IDENTITY, GIT_COMMITTER_DATE=f"{day}T00:00:00+0000")
            applied = subprocess.run(["git", "-C", str(repo), "am", "--quiet",
                                      str(PATCHES / name)], capture_output=True, text=True,
                                     env=env)
            assert applied.returncode == 0, (release, name, applied.stderr)
            if name in mine:
                commits[name] = git(repo, "rev-parse", "HEAD").stdout.strip()
    return repo, commits


def touched_paths(name: str) -> list:
    numstat = subprocess.run(["git", "apply", "--numstat", str(PATCHES / name)],
                             capture_output=True, text=True, check=True).stdout
    return [line.split("\t")[2] for line in numstat.splitlines()]


def git_am(tree: Path, names: list) -> subprocess.CompletedProcess:
    return git(tree, "am", "--quiet", *[str(PATCHES / name) for name in names])


# -- calculate_gain and docstrings, read from source without importing torch ----------------

def top_level(source: str, name: str):
    return next(node for node in ast.parse(source).body if getattr(node, "name", None) == name)


def calculate_gain_of(source: str):
    """The calculate_gain defined in an init.py, executed on its own with math and warnings."""
    function = top_level(source, "calculate_gain")
    # 2.x annotates with typing aliases defined elsewhere in init.py; behaviour ignores them.
    for argument in function.args.posonlyargs + function.args.args + function.args.kwonlyargs:
        argument.annotation = None
    function.returns = None
    code = compile(ast.Module(body=[function], type_ignores=[]), "init.py", "exec")
    namespace = {"math": math, "warnings": warnings}
    exec(code, namespace)
    return namespace["calculate_gain"]


def outcome(function, name, param):
    try:
        result = function(name) if param is NO_PARAM else function(name, param)
    except Exception as error:  # the error's type and message are the behaviour compared
        return ("raises", type(error), str(error))
    return ("returns", type(result), result)


def docstring(source: str, name: str) -> str:
    return ast.get_docstring(top_level(source, name), clean=False)


def run_upstream_tests(test_source: str, calculate_gain) -> unittest.TestResult:
    """Run TestNNInit's two calculate_gain tests from an upstream excerpt against a function."""
    namespace = {"TestCase": unittest.TestCase, "random": random,
                 "init": SimpleNamespace(calculate_gain=calculate_gain)}
    exec(compile(test_source, "TestNNInit", "exec"), namespace)
    suite = unittest.TestSuite(namespace["TestNNInit"](method) for method in
                               ("test_calculate_gain_linear", "test_calculate_gain_nonlinear"))
    result = unittest.TestResult()
    suite.run(result)
    return result


@pytest.fixture(scope="module")
def reference_gain():
    """calculate_gain of the first release with the SELU gain, unpatched."""
    return calculate_gain_of(release_text("1.8.0", "torch/nn/init.py"))


# -- the series applied to every release ---------------------------------------------------

@pytest.mark.parametrize("version", RELEASES)
def test_series_applies_with_git_am_in_order(tmp_path, version):
    tree = release_tree(tmp_path, version)
    names = patches_for(version)
    assert names, f"no patch targets torch {version}"
    applied = git_am(tree, names)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    log = git(tree, "log", "--format=%s").stdout.splitlines()
    assert len(log) == len(names) + 1


@pytest.mark.parametrize("version", RELEASES)
def test_patched_calculate_gain_behaves_as_in_1_8(tmp_path, version, reference_gain):
    tree = release_tree(tmp_path, version)
    assert git_am(tree, patches_for(version)).returncode == 0
    patched = calculate_gain_of((tree / "torch/nn/init.py").read_text())
    assert patched("selu") == 0.75
    for name in NAMES:
        for param in PARAMS:
            assert outcome(patched, name, param) == outcome(reference_gain, name, param), \
                (name, param)


@pytest.mark.parametrize("version", PRE_SELU)
def test_selu_backport_is_the_upstream_change(tmp_path, version):
    """After 0001 the function is 1.8.0's, except the docstring example line of 1.0 and 1.1."""
    tree = release_tree(tmp_path, version)
    assert git_am(tree, patches_for(version)[:1]).returncode == 0
    patched = (tree / "torch/nn/init.py").read_text()
    wanted = release_text("1.8.0", "torch/nn/init.py")
    example = re.compile(r"^\s*>>> gain = nn\.init\.calculate_gain\(.*$", re.MULTILINE)

    def function_source(source):
        return example.sub("", ast.get_source_segment(source, top_level(source, "calculate_gain")))

    assert function_source(patched) == function_source(wanted)


@pytest.mark.parametrize("version", PRE_SELU + ["1.8.0", "1.8.1"])
def test_warnings_carry_the_1_9_text(tmp_path, version):
    """calculate_gain's and nn.SELU's docstrings gain 1.9.0's lines (link target moved)."""
    tree = release_tree(tmp_path, version)
    assert git_am(tree, patches_for(version)).returncode == 0
    init_1_9 = release_text("1.9.0", "torch/nn/init.py")
    activation_1_9 = release_text("1.9.0", "torch/nn/modules/activation.py")

    def lines(text):
        return sorted(line.strip() for line in text.splitlines()
                      if line.strip() and ">>> gain" not in line)

    patched_init = (tree / "torch/nn/init.py").read_text()
    assert lines(docstring(patched_init, "calculate_gain")) == \
        lines(docstring(init_1_9, "calculate_gain"))
    patched_selu = docstring((tree / "torch/nn/modules/activation.py").read_text(), "SELU")
    wanted_selu = docstring(activation_1_9, "SELU")
    start = wanted_selu.index("    .. warning::")
    warning = wanted_selu[start:wanted_selu.index("\n\n", start) + 2]
    assert warning + "    More details can be found in the paper" in patched_selu


@pytest.mark.parametrize("version", RELEASES)
def test_patched_upstream_test_is_live_and_passes(tmp_path, version):
    tree = release_tree(tmp_path, version)
    assert git_am(tree, patches_for(version)).returncode == 0
    test_path, _ = layout_of(version)
    test_source = (tree / test_path).read_text()
    assert re.search(r"for fn in \[[^\]]*['\"]selu['\"]\]:", test_source)
    assert "conv_transpose1d" in test_source
    patched_gain = calculate_gain_of((tree / "torch/nn/init.py").read_text())
    result = run_upstream_tests(test_source, patched_gain)
    assert result.wasSuccessful(), result.failures + result.errors


def test_live_test_fails_on_a_release_without_the_gain(tmp_path):
    """The test patch alone on 1.7.1: its SELU assertion now runs, and 1.7.1 has no SELU gain."""
    tree = release_tree(tmp_path, "1.7.1")
    test_patch = [name for name in patches_for("1.7.1")
                  if all(path.startswith("test/") for path in touched_paths(name))]
    assert git_am(tree, test_patch).returncode == 0
    unpatched_gain = calculate_gain_of((tree / "torch/nn/init.py").read_text())
    result = run_upstream_tests((tree / "test/test_nn.py").read_text(), unpatched_gain)
    assert not result.wasSuccessful()
    assert "Unsupported nonlinearity selu" in str(result.errors)


def test_upstream_test_before_the_patch_never_asserts_selu(reference_gain):
    """Why the test patches exist: the 2.x upstream test passes with any SELU gain."""
    def wrong_selu(nonlinearity, param=None):
        return 1.0 if nonlinearity == "selu" else reference_gain(nonlinearity, param)

    result = run_upstream_tests((EXCERPTS / "test_init-2x.py").read_text(), wrong_selu)
    assert result.wasSuccessful()


# -- the patch files -----------------------------------------------------------------------

def test_series_lists_exactly_the_patch_files():
    names = series_names()
    assert len(names) == len(set(names))
    assert sorted(names) == sorted(path.name for path in PATCHES.glob("*.patch"))
    assert names == sorted(names)


@pytest.mark.parametrize("position, name", list(enumerate(series_names(), start=1)))
def test_patch_file_is_format_patch_output_with_dep3_fields(position, name):
    patch = read_patch(name)
    assert re.fullmatch(r"[^<>]+ <[^<>@\s]+@[^<>@\s]+>", str(patch.message["From"]))
    assert email.utils.parsedate_to_datetime(str(patch.message["Date"]))
    assert str(patch.message["Subject"]).startswith(f"[PATCH {position}/{len(series_names())}] ")
    fields = patch.fields
    assert ("Origin" in fields) != ("Forwarded" in fields)
    if "Origin" in fields:
        assert re.fullmatch(r"backport, https://github\.com/pytorch/pytorch/\S+", fields["Origin"])
        release, _, url = fields["Applied-Upstream"].partition(", ")
        assert Version(release) > Version("1.0") and url.startswith("https://github.com/")
        assert not patch.versions.contains(release)
    datetime.datetime.strptime(fields["Last-Update"], DEP3_DATE)
    assert len(patch.versions) >= 1
    files = patch.diff.count("\ndiff --git ") + patch.diff.startswith("diff --git ")
    index_lines = re.findall(r"^index [0-9a-f]{7,}\.\.[0-9a-f]{7,}( \d{6})?$", patch.diff,
                             re.MULTILINE)
    assert files >= 1 and len(index_lines) == files


@pytest.mark.parametrize("name", series_names())
def test_patch_touches_torch_or_test_files_only(name):
    paths = touched_paths(name)
    assert paths and all(path.startswith(("torch/", "test/")) for path in paths)


# -- plain git refuses a tree that has the change ------------------------------------------

TORCH_PATCHES = [name for name in series_names()
                 if all(path.startswith("torch/") for path in touched_paths(name))]


def _first_upstream(name: str) -> str:
    release = read_patch(name).fields["Applied-Upstream"].partition(",")[0]
    known = sorted(RELEASES + ["1.9.0"], key=Version)
    return next(version for version in known if Version(version) >= Version(release))


@pytest.mark.parametrize("name", TORCH_PATCHES)
def test_plain_git_refuses_a_torch_patch_on_a_tree_that_has_its_change(tmp_path, name):
    """Default `git apply --check`, on every release patched by the series and on the first
    release (and the newest) that has the change upstream."""
    patch = read_patch(name)
    patched = [version for version in RELEASES if patch.versions.contains(version)]
    upstream = sorted({_first_upstream(name), RELEASES[-1]}, key=Version)
    assert patched and upstream
    for version in patched:
        tree = release_tree(tmp_path / "patched", version)
        assert git_am(tree, patches_for(version)).returncode == 0
        again = git(tree, "apply", "--check", str(PATCHES / name))
        assert again.returncode != 0, f"{name} applies twice to {version}"
    for version in upstream:
        tree = release_tree(tmp_path / "upstream", version)
        refused = git(tree, "apply", "--check", str(PATCHES / name))
        assert refused.returncode != 0, f"{name} applies to {version}, which has its change"


# -- the series is what export writes ------------------------------------------------------

def export(repo: Path, patch_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gainkit.tools.patch", "export", "--tree",
                           str(repo), "--patches", str(patch_dir)] + list(args),
                          capture_output=True, text=True)


def test_export_regenerates_the_series_byte_for_byte(tmp_path):
    """From a repository of real release files with each patch committed by git am, export
    writes every patch file and the series file again, byte for byte."""
    repo, commits = series_repository(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "series").write_text("".join(line + "\n" for line in
                                        (PATCHES / "series").read_text().splitlines()
                                        if line.startswith("#")))
    result = export(repo, out, "--new-series", *[commits[name] for name in series_names()])
    assert result.returncode == 0, result.stderr
    written = sorted(path.name for path in out.iterdir())
    assert written == sorted(series_names() + ["series"])
    for name in written:
        assert (out / name).read_bytes() == (PATCHES / name).read_bytes(), name


def test_export_of_an_edited_commit_refreshes_that_patch_alone(tmp_path):
    """Edit a patch as a commit (amend its message): export rewrites that file in place, its
    Last-Update the day of the amend, its other fields and Torch-Versions kept."""
    repo, commits = series_repository(tmp_path)
    out = tmp_path / "patches"
    out.mkdir()
    for name in series_names() + ["series"]:
        (out / name).write_bytes((PATCHES / name).read_bytes())
    name = series_names()[0]
    git(repo, "checkout", "-q", commits[name])
    message = git(repo, "log", "-1", "--format=%B").stdout.replace(
        "Before 1.8.0", "Before torch 1.8.0", 1)
    assert "Before torch 1.8.0" in message
    env = dict(os.environ, **EXPORT_IDENTITY, GIT_COMMITTER_DATE="2030-01-02T03:04:05+0000")
    assert subprocess.run(["git", "-C", str(repo), "commit", "-q", "--amend", "-m", message],
                          env=env).returncode == 0
    result = export(repo, out, "HEAD")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"wrote {out / name}"]
    changed = [other for other in series_names() + ["series"]
               if (out / other).read_bytes() != (PATCHES / other).read_bytes()]
    assert changed == [name]
    old, new = read_patch(name), email.message_from_bytes((out / name).read_bytes(),
                                                         policy=email.policy.default)
    fields = dict(re.findall(r"^([A-Z][A-Za-z-]+): (.+)$", new.get_content().partition(
        "\n---\n")[0], re.MULTILINE))
    assert fields == dict(old.fields, **{"Last-Update": "2030-01-02"})
    assert str(new["Subject"]) == str(old.message["Subject"])
    assert new.get_content().partition("\n---\n")[2] == old.diff


@pytest.mark.parametrize("case", ["no-fields", "merge", "no-commit", "unknown-subject"])
def test_export_refuses_what_is_not_a_series_patch_and_writes_nothing(tmp_path, case):
    repo, commits = series_repository(tmp_path)
    out = tmp_path / "patches"
    out.mkdir()
    for name in series_names() + ["series"]:
        (out / name).write_bytes((PATCHES / name).read_bytes())
    git(repo, "checkout", "-q", commits[series_names()[0]])
    revision = "HEAD"
    if case == "no-fields":
        (repo / "NOTES").write_text("a note\n")
        git(repo, "add", "NOTES")
        git(repo, "commit", "-q", "-m", "notes: no fields")
        wanted = "not a series patch: its message ends with no Torch-Versions field"
    elif case == "merge":
        git(repo, "merge", "-q", "--allow-unrelated-histories", "-m", "a merge",
            f"torch-{RELEASES[-1]}", "-s", "ours")
        wanted = "not a series patch: a patch is one commit on one parent"
    elif case == "no-commit":
        revision = "no-such-branch"
        wanted = "'no-such-branch' names no commit there"
    else:
        git(repo, "commit", "-q", "--amend", "-m", git(repo, "log", "-1", "--format=%B").stdout
            .replace("add the SELU gain", "add SELU", 1))
        wanted = f"is no patch of {out / 'series'}; pass --new-series"
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    result = export(repo, out, revision)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gainkit patch: error: ") and wanted in lines[0]
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
