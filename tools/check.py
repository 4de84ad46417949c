"""gainkit check: the main job, for the torch of one Python environment.

    gainkit check [--python PATH] [--no-patch] [PYTEST ARGS...]

1. checks that every output the pytest arguments name (--gainkit-json, --junitxml) can be
   written and that a --gainkit-deviations file can be read;
2. with --python naming another environment: probes it (isolated: `python -I`, without this
   environment's PYTHONPATH) for gainkit, pytest and torch, and refuses in one line naming
   what is missing and how to install it, before anything is patched; then runs that
   environment's own gainkit check there (its patch series, its suite, its Python), so nothing
   of this environment is imported there. A gainkit version there that differs from this one
   is named in a note and used: the series and the suite are the target's;
3. prints the patch series' status for that torch (as `gainkit patch status --python`) and
   applies the series where it applies (the SELU backport on torch < 1.8), unless --no-patch;
4. runs the conformance suite with that interpreter; extra arguments go to pytest
   as ``python -m pytest --pyargs gainkit.conformance [PYTEST ARGS...]`` (e.g.
   --gainkit-device cuda, --gainkit-seed 3, --gainkit-json results.json, --junitxml junit.xml),
   and ends with one verdict line: which torch, whether it conforms, counts, why skipped.

Exit codes, before the suite runs (one line on stderr, nothing written):
    2    usage or target error (no such interpreter, gainkit, pytest or torch missing there,
         an output that cannot be written, another gainkit patch running on it, ...)
    3    patching failed half-way and was rolled back (the patch tool's code)
    130  interrupted
then pytest's, unchanged: 0 the torch conforms, 1 a deviation (a conformance test failed),
2 interrupted, 3 internal error or the results file could not be written, 4 pytest usage
error, 5 no tests collected.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Tuple

import gainkit
from gainkit import environments, outputs
from gainkit.patching.errors import PatchError
from gainkit.patching.plan import APPLIES, make_plan
from gainkit.patching.run import apply, exclusive
from gainkit.patching.series import default_patch_dir, load_series
from gainkit.patching.targets import interpreter_path, python_target
from gainkit.suite import plugin, summary
from gainkit.tools import cli
from gainkit.tools import patch as patch_tool

PROG = "gainkit check"
# pytest options whose value is a file the run writes
OUTPUT_OPTIONS = ("--gainkit-json", "--junitxml", "--junit-xml")
READ_OPTIONS = ("--gainkit-deviations",)


def conformance_dir() -> Path:
    """The folder of the installed suite (gainkit.conformance)."""
    folder = plugin.suite_dir()
    if folder is None or not os.path.isfile(os.path.join(folder, "conftest.py")):
        raise PatchError(f"{os.path.dirname(gainkit.__file__)}: the conformance suite is "
                         "not installed with gainkit")
    return Path(folder)


def option_values(arguments: List[str], names: Tuple[str, ...]) -> List[Tuple[str, str]]:
    """(option, value) of each ``--name VALUE`` or ``--name=VALUE`` in ``arguments``."""
    found = []
    for index, argument in enumerate(arguments):
        name, equals, value = argument.partition("=")
        if name in names and equals:
            found.append((name, value))
        elif argument in names and index + 1 < len(arguments):
            found.append((argument, arguments[index + 1]))
    return found


def check_pytest_files(pytest_args: List[str]) -> None:
    """Every file the pytest arguments write can be written; every file they read, read."""
    try:
        for option, path in option_values(pytest_args, OUTPUT_OPTIONS):
            outputs.check_file(path, option)
    except outputs.OutputError as error:
        raise PatchError(str(error)) from None
    for option, path in option_values(pytest_args, READ_OPTIONS):
        try:
            with open(path, encoding="utf-8"):
                pass
        except OSError as error:
            raise PatchError(f"{option} {path}: {error.strerror or error}") from None


def _in_target(args, pytest_args: List[str], probe: environments.Probe) -> int:
    """The target's own gainkit check, run there."""
    theirs = probe.version("gainkit")
    if theirs != gainkit.__version__:
        print(f"{PROG}: note: {probe.interpreter} has gainkit {theirs}, this is gainkit "
              f"{gainkit.__version__}: running the one installed there (its patch series "
              "and suite)", flush=True)
    command = environments.own_gainkit_command(
        probe.interpreter, (["--no-patch"] if args.no_patch else []) + pytest_args)
    print("running there: " + " ".join(command), flush=True)
    return subprocess.run(command, env=environments.clean_environ()).returncode


def _verdict(results_path: str, code: int, target) -> str:
    try:
        with open(results_path, encoding="utf-8") as handle:
            line = json.load(handle)["verdict"]["line"]
    except (OSError, ValueError, KeyError, TypeError):
        line = "torch {} at {}: no verdict: pytest exited {} ({})".format(
            target.version, target.root / "torch", code, summary.PYTEST_EXITS.get(code, "?"))
    return f"{PROG}: {line}"


def _run_suite(target, pytest_args: List[str]) -> int:
    command = [str(target.interpreter), "-m", "pytest", "-c", plugin.suite_config(), "--pyargs",
               plugin.SUITE_PACKAGE, "-p", "no:cacheprovider"] + pytest_args
    given = option_values(pytest_args, ("--gainkit-json",))
    with tempfile.TemporaryDirectory(prefix="gainkit-check-") as scratch:
        results = given[-1][1] if given else os.path.join(scratch, "results.json")
        print("running: " + " ".join(command), flush=True)
        code = subprocess.run(command + ([] if given else ["--gainkit-json", results])
                              ).returncode
        print(_verdict(results, code, target))
    return code


def main(argv: List[str] | None = None) -> int:
    parser = cli.ToolParser(PROG, __doc__)
    parser.add_argument("--python", metavar="PATH", default=None,
                        help="interpreter or virtual environment to check (default: this one)")
    parser.add_argument("--no-patch", action="store_true",
                        help="report the series' status but do not apply it")
    args, pytest_args = parser.parse_known_args(argv)
    try:
        check_pytest_files(pytest_args)
        if args.python is not None:
            interpreter = str(interpreter_path(args.python))
            probe = environments.probe(interpreter)
            refusal = probe.refusal()
            if refusal:
                raise PatchError(refusal)
            if not probe.is_this_environment():
                return _in_target(args, pytest_args, probe)
        target = python_target(sys.executable)
        patches = load_series(default_patch_dir())
        with exclusive(target, writing=False) as hold:
            for line in hold.recovered:
                print(line)
            plan = make_plan(patches, target)
            print("\n".join(patch_tool.status_lines(plan)[:-1]))
            if plan.having(APPLIES) and not args.no_patch:
                done = apply(plan, hold)
                print("applied {} patch{} to {}".format(len(done), "es" * (len(done) != 1),
                                                       target.root))
    except PatchError as error:
        for line in error.lines:
            print(f"{PROG}: error: {line}", file=sys.stderr)
        return error.exit_code
    return _run_suite(target, pytest_args)


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
