"""Every CLI, given bad arguments: one line on stderr, its documented exit code, no traceback.

The patch tool's cases run the `gainkit` dispatcher in a fresh interpreter, as a user would;
the other tools' run `gainkit.tools.cli.main` in this one (importing torch once, not per case).
The exit codes asserted here must also be the ones each tool's --help documents.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gainkit.patching.series import load_series
from gainkit.tools import cli

RELEASE = "1.7.1"
TOOLS = ("patch", "gains", "report", "check", "envcheck", "mutate")


def gainkit(*args: str, cwd: Path = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gainkit.tools.cli"] + list(args),
                          capture_output=True, text=True, cwd=str(cwd) if cwd else None,
                          env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))


def in_process(capsys, *args: str) -> subprocess.CompletedProcess:
    """`gainkit ARGS` run by this interpreter; an exception other than SystemExit escapes."""
    try:
        code = cli.main(list(args))
    except SystemExit as exit:
        code = exit.code
    stdout, stderr = capsys.readouterr()
    return subprocess.CompletedProcess(["gainkit"] + list(args), code, stdout, stderr)


def assert_one_error(result, code: int, pattern: str) -> str:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == code, output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert re.fullmatch(pattern, lines[0]), lines[0]
    return lines[0]


@pytest.fixture
def junk(tmp_path):
    """Things that are not what an argument wants, in tmp_path."""
    (tmp_path / "notes.txt").write_text("not an interpreter, not a tree\n")
    (tmp_path / "empty").mkdir()
    script = tmp_path / "fails"
    script.write_text("#!/bin/sh\necho 'it broke' >&2\nexit 3\n")
    script.chmod(0o755)
    binary = tmp_path / "binary"
    binary.write_bytes(b"\x7fELF\x00junk")
    binary.chmod(0o755)
    return tmp_path


# -- the dispatcher -----------------------------------------------------------------------

@pytest.mark.parametrize("args, pattern", [
    ([], r"gainkit: error: name a tool \(choose from " + ", ".join(cli.TOOLS) + r"\).*"),
    (["frobnicate"], r"gainkit: error: 'frobnicate' is not a tool \(choose from .*\)"),
    (["--frobnicate"], r"gainkit: error: '--frobnicate' is not a tool \(choose from .*\)"),
], ids=["missing-tool", "unknown-tool", "unknown-option"])
def test_the_dispatcher_names_the_tools(args, pattern):
    assert_one_error(gainkit(*args), 2, pattern)


# -- gainkit patch ------------------------------------------------------------------------

PATCH_CASES = {
    "missing-subcommand": ([], r"the following arguments are required: command"),
    "unknown-subcommand": (["frobnicate"], r"argument command: invalid choice: 'frobnicate' .*"),
    "missing-value": (["status", "--tree"], r"argument --tree: expected one argument"),
    "tree-and-python": (["status", "--tree", "{tmp}", "--python", "{tmp}"],
                        r"argument --python: not allowed with argument --tree"),
    "working-tree-alone": (["status", "--working-tree"], r"--working-tree needs --tree"),
    "tree-missing": (["status", "--tree", "{tmp}/nowhere"], r"{tmp}/nowhere: no such directory"),
    "tree-is-a-file": (["status", "--tree", "{tmp}/notes.txt"],
                       r"{tmp}/notes.txt: not a directory"),
    "tree-not-torch": (["status", "--tree", "{tmp}/empty"],
                       r"{tmp}/empty: not a torch source tree \(no torch/nn/init.py\)"),
    "python-missing": (["status", "--python", "{tmp}/nowhere"],
                       r"{tmp}/nowhere: no such interpreter"),
    "python-is-text": (["status", "--python", "{tmp}/notes.txt"],
                       r"{tmp}/notes.txt: cannot run it: Permission denied"),
    "python-is-junk": (["status", "--python", "{tmp}/binary"],
                       r"{tmp}/binary: cannot run it: Exec format error"),
    "python-fails": (["status", "--python", "{tmp}/fails"],
                     r"{tmp}/fails: cannot run it: it broke"),
    "python-dir-no-venv": (["status", "--python", "{tmp}/empty"],
                           r"{tmp}/empty/bin/python: no such interpreter"),
    "python-relative-file": (["status", "--python", "notes.txt"],
                             r"{tmp}/notes.txt: cannot run it: Permission denied"),
    "patches-missing": (["status", "--patches", "{tmp}/nowhere"],
                        r"{tmp}/nowhere: not a directory; pass --patches DIR"),
    "patches-is-a-file": (["status", "--patches", "{tmp}/notes.txt"],
                          r"{tmp}/notes.txt: not a directory; pass --patches DIR"),
    "patches-without-series": (["status", "--patches", "{tmp}/empty"],
                               r"{tmp}/empty/series: no such file; pass --patches DIR"),
}


@pytest.mark.parametrize("case", sorted(PATCH_CASES))
def test_patch_rejects_bad_arguments(junk, case):
    args, pattern = PATCH_CASES[case]
    args = [arg.format(tmp=junk) for arg in args]
    assert_one_error(gainkit("patch", *args, cwd=junk), 2,
                     r"gainkit patch: error: " + pattern.format(tmp=re.escape(str(junk))))


@pytest.mark.parametrize("version, message", [
    (b"banana\n", "'banana' is not a version"), (b"", "'' is not a version"),
    (b"1.7.1\x00\xff", r"'1\.7\.1\\x00\ufffd' is not a version")],
    ids=["word", "empty", "binary"])
def test_a_tree_whose_version_is_not_a_version_is_refused(make_tree, digest, version,
                                                          message):
    tree = make_tree(RELEASE)
    (tree / "version.txt").write_bytes(version)
    before = digest(tree)
    assert_one_error(gainkit("patch", "apply", "--tree", str(tree)), 2,
                     "gainkit patch: error: " + re.escape(f"{tree}/version.txt: ") + message)
    assert digest(tree) == before


@pytest.mark.parametrize("version", ["99.0.0", "3.0.0a0"])
def test_a_tree_newer_than_every_range_has_nothing_to_apply(make_tree, digest, version):
    """Documented in `gainkit patch --help`: no error, every patch UPSTREAM or N/A. (The files
    are the newest release's: on older files the content decides, and the patches apply.)"""
    tree = make_tree("2.13.0", version_txt=version, with_test=False)
    before = digest(tree)
    result = gainkit("patch", "apply", "--tree", str(tree))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "nothing to apply"
    assert all(re.search(r"  (UPSTREAM|N/A) +\(", line) for line in lines[1:-1]), lines
    assert digest(tree) == before


def _series_with(tmp_path: Path, series_dir: Path, series_text: str = None,
                 patch_text: str = None) -> Path:
    """A copy of the series with a changed series file or a changed first patch."""
    patches = tmp_path / "patches"
    shutil.copytree(str(series_dir), str(patches))
    if series_text is not None:
        (patches / "series").write_text(series_text)
    if patch_text is not None:
        _first_patch(patches).write_text(patch_text)
    return patches


def _first_patch(series_dir: Path) -> Path:
    return load_series(series_dir)[0].path


def _break(text: str, case: str) -> str:
    header, diff = text.split("\ndiff --git ", 1)
    return {
        "not-mbox": "just some notes, not a patch\n",
        "empty": "",
        "binary": "\x00\x01\x02 garbage \x7f\n",
        "no-diff": header + "\n",
        "corrupt-diff": header + "\ndiff --git " + diff.replace("\n@@ ", "\n@@ junk ", 1)
                        .replace("\n ", "\n!", 3),
        "bad-specifier": re.sub(r"Torch-Versions: .*", "Torch-Versions: >=one.zero", text),
        "bad-upstream": re.sub(r"Applied-Upstream: [^,\n]*", "Applied-Upstream: soon", text),
        "no-torch-versions": text.replace("Torch-Versions:", "Torch-Range:"),
    }[case]


@pytest.mark.parametrize("case, pattern", [
    ("not-mbox", r"{patch}: not a git format-patch file \(no Subject\)"),
    ("empty", r"{patch}: not a git format-patch file \(no Subject\)"),
    ("binary", r"{patch}: not a git format-patch file \(no Subject\)"),
    ("no-torch-versions", r"{patch}: no Torch-Versions field"),
    ("bad-specifier", r"{patch}: Invalid specifier: '>=one\.zero'"),
    ("bad-upstream", r"{patch}: Invalid version: 'soon'"),
    ("no-diff", r"{patch}: not a git format-patch file \(no diff --git\)"),
    ("corrupt-diff", r"{patch}: .* at line \d+.*"),
])
def test_a_malformed_patch_file_is_named_and_nothing_is_written(make_tree, digest, tmp_path,
                                                                series_dir, case, pattern):
    tree = make_tree(RELEASE)
    before = digest(tree)
    first = _first_patch(series_dir).name
    patches = _series_with(tmp_path, series_dir,
                           patch_text=_break(_first_patch(series_dir).read_text(), case))
    first = patches / first
    result = gainkit("patch", "apply", "--tree", str(tree), "--patches", str(patches))
    assert_one_error(result, 2, "gainkit patch: error: "
                     + pattern.format(patch=re.escape(str(first))))
    assert digest(tree) == before


@pytest.mark.parametrize("case, series, pattern", [
    ("missing-file", "0001-no-such.patch\n", r"{dir}/0001-no-such\.patch: listed in "
                                              r"{dir}/series but missing"),
    ("junk-line", "this is not a patch name at all\n",
     r"{dir}/this is not a patch name at all: listed in {dir}/series but missing"),
    ("a-directory", "../patches\n", r"{dir}/\.\./patches: listed in {dir}/series but missing"),
    ("not-utf8", b"\xff\xfe\x00series".decode("latin-1"),
     r"{dir}/series: cannot read it: 'utf-8' codec can't decode .*"),
])
def test_junk_in_the_series_file_is_named_and_nothing_is_written(make_tree, digest, tmp_path,
                                                                 series_dir, case, series,
                                                                 pattern):
    tree = make_tree(RELEASE)
    before = digest(tree)
    patches = _series_with(tmp_path, series_dir)
    if case == "not-utf8":
        (patches / "series").write_bytes(series.encode("latin-1"))
    else:
        (patches / "series").write_text("# a comment\n" + series)
    result = gainkit("patch", "apply", "--tree", str(tree), "--patches", str(patches))
    assert_one_error(result, 2, "gainkit patch: error: "
                     + pattern.format(dir=re.escape(str(patches))))
    assert digest(tree) == before


# -- the other tools ----------------------------------------------------------------------

OTHER_CASES = {
    "gains": [
        ([], 2, r"gainkit gains: error: name an ACTIVATION or use --all or --module-defaults"),
        (["no_such_activation"], 2, r"gainkit gains: error: unknown activation "
                                    r"'no_such_activation': .*"),
        (["no.such.module:f"], 2, r"gainkit gains: error: cannot import module "
                                  r"'no\.such\.module': .*"),
        (["torch.nn:NoSuchThing"], 2, r"gainkit gains: error: module 'torch\.nn' has no "
                                      r"callable 'NoSuchThing'"),
        (["relu", "--gain", "banana"], 2, r"gainkit gains: error: argument --gain: .*"),
        (["relu", "--gain", "-1"], 2, r"gainkit gains: error: argument --gain: .*"),
        (["relu", "--gain", "nan"], 2, r"gainkit gains: error: argument --gain: .*"),
        (["relu", "--q0", "0"], 2, r"gainkit gains: error: argument --q0: .*"),
        (["relu", "--q0"], 2, r"gainkit gains: error: argument --q0: expected one argument"),
        (["relu", "--format", "xml"], 2, r"gainkit gains: error: argument --format: .*"),
        (["relu", "--frobnicate"], 2, r"gainkit gains: error: unrecognized arguments: .*"),
    ],
    "report": [
        ([], 2, r"gainkit report: error: the following arguments are required: RESULTS"),
        (["{tmp}/nowhere.json"], 2, r"gainkit report: error: {tmp}/nowhere\.json: no such "
                                    r"file or directory"),
        (["{tmp}/notes.txt"], 2, r"gainkit report: error: {tmp}/notes\.txt: not JSON: .*"),
        (["{tmp}/empty"], 2, r"gainkit report: error: {tmp}/empty: directory holds no "
                             r"\*\.json results"),
        (["{tmp}/binary"], 2, r"gainkit report: error: {tmp}/binary: .*"),
        (["{tmp}/list.json"], 2, r"gainkit report: error: {tmp}/list\.json: not gainkit "
                                 r"results.*"),
        (["{tmp}/list.json", "--output"], 2, r"gainkit report: error: argument --output: "
                                             r"expected one argument"),
    ],
    "check": [
        (["--python"], 2, r"gainkit check: error: argument --python: expected one argument"),
        (["--python", "{tmp}/nowhere"], 2, r"gainkit check: error: {tmp}/nowhere: no such "
                                           r"interpreter"),
        (["--python", "{tmp}/notes.txt"], 2, r"gainkit check: error: {tmp}/notes\.txt: cannot "
                                             r"run it: Permission denied"),
        (["--python", "{tmp}/empty"], 2, r"gainkit check: error: {tmp}/empty/bin/python: no "
                                         r"such interpreter"),
    ],
    "envcheck": [
        ([], 2, r"gainkit envcheck: error: expected one argument, the tox env name"),
        (["py38", "extra"], 2, r"gainkit envcheck: error: expected one argument, the tox env "
                               r"name"),
        (["py38"], 2, r"gainkit envcheck: error: py38: no torchX\.Y\.Z factor in the env name"),
        (["py38-torch0.0.1"], 2, r"gainkit envcheck: error: py38-torch0\.0\.1: imports torch "
                                 r"\S+ from \S+, not 0\.0\.1"),
    ],
    "mutate": [
        (["--frobnicate"], 2, r"gainkit mutate: error: unrecognized arguments: --frobnicate"),
        (["--mutants"], 2, r"gainkit mutate: error: argument --mutants: expected one argument"),
        (["--mutants", "no_such_mutant"], 2, r"gainkit mutate: error: argument --mutants: "
                                             r"unknown mutant no_such_mutant.*"),
        (["--seeds", "banana"], 2, r"gainkit mutate: error: argument --seeds: .*"),
        (["--seeds", "-1"], 2, r"gainkit mutate: error: argument --seeds: .*"),
        (["--jobs", "0"], 2, r"gainkit mutate: error: argument --jobs: .*"),
        (["--json", "{tmp}/notes.txt/results.json"], 2, r"gainkit mutate: error: --json "
                                                         r"{tmp}/notes\.txt/results\.json: "
                                                         r"{tmp}/notes\.txt is not a "
                                                         r"directory: Not a directory"),
    ],
}


@pytest.mark.parametrize("tool, args, code, pattern", [
    (tool,) + case for tool, cases in OTHER_CASES.items() for case in cases],
    ids=[f"{tool}-{index}" for tool, cases in OTHER_CASES.items()
         for index in range(len(cases))])
def test_other_tools_reject_bad_arguments(junk, capsys, monkeypatch, tool, args, code, pattern):
    (junk / "list.json").write_text("[1, 2]\n")
    monkeypatch.chdir(junk)
    args = [arg.format(tmp=junk) for arg in args]
    assert_one_error(in_process(capsys, tool, *args), code,
                     pattern.format(tmp=re.escape(str(junk))))


def _documented_codes(capsys, tool: str):
    """The exit codes a tool's --help lists under 'Exit codes'."""
    result = in_process(capsys, tool, "--help")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    section = result.stdout.split("Exit codes", 1)[1]
    return {int(code) for code in re.findall(r"^ {4}(\d+) ", section, re.M)}


@pytest.mark.parametrize("tool", TOOLS)
def test_the_codes_asserted_here_are_the_documented_ones(capsys, tool):
    asserted = {case[1] for case in OTHER_CASES.get(tool, [])} | ({2} if tool == "patch" else set())
    assert asserted and asserted <= _documented_codes(capsys, tool)


# -- a reader that stops early ------------------------------------------------------------

@pytest.mark.parametrize("command", [
    ["-m", "gainkit.tools.cli", "patch", "status"],
    ["-m", "gainkit.tools.patch", "status"],
    ["-m", "gainkit.tools.cli", "--help"],
    ["-m", "gainkit.tools.cli", "envcheck", "--help"],
    ["-m", "gainkit.tools.cli", "gains", "relu"],
], ids=["gainkit-patch", "module-patch", "gainkit-help", "gainkit-envcheck", "gainkit-gains"])
def test_a_closed_pipe_ends_the_output_quietly(command):
    """`gainkit patch status | head -0`: exit 141 as a shell reports SIGPIPE, no traceback."""
    process = subprocess.Popen([sys.executable] + command, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    process.stdout.close()  # the reader is gone before anything is written
    stderr = process.stderr.read()
    process.wait(timeout=300)
    assert "Traceback" not in stderr and stderr == "", stderr
    assert process.returncode == 141
