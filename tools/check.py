"""gainkit check: the main job, for the torch of one Python environment.

    gainkit check [--python PATH] [--no-patch] [PYTEST ARGS...]

1. prints the patch series' status for that torch (as `gainkit patch status --python`);
2. applies the series where it applies (the SELU backport on torch < 1.8), unless --no-patch;
3. runs the conformance suite with that interpreter; extra arguments go to pytest
   as ``python -m pytest --pyargs gainkit.conformance [PYTEST ARGS...]`` (e.g.
   --gainkit-device cuda, --gainkit-seed 3, --gainkit-json results.json, --junitxml junit.xml).

Exit codes, before the suite runs (one line on stderr, nothing left half-written):
    2    usage or target error (no such interpreter, no torch there, another gainkit patch
         running on it, ...)
    3    patching failed half-way and was rolled back (the patch tool's code)
    130  interrupted
then pytest's, unchanged: 0 the torch conforms, 1 a deviation (a conformance test failed),
2 interrupted, 3 internal error, 4 pytest usage error, 5 no tests collected.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List

import gainkit
from gainkit.patching.errors import PatchError
from gainkit.patching.plan import APPLIES, make_plan
from gainkit.patching.run import apply, exclusive
from gainkit.patching.series import default_patch_dir, load_series
from gainkit.patching.targets import python_target
from gainkit.suite import plugin
from gainkit.tools import cli
from gainkit.tools import patch as patch_tool

PROG = "gainkit check"


def conformance_dir() -> Path:
    """The folder of the installed suite (gainkit.conformance)."""
    folder = plugin.suite_dir()
    if folder is None or not os.path.isfile(os.path.join(folder, "conftest.py")):
        raise PatchError(f"{os.path.dirname(gainkit.__file__)}: the conformance suite is "
                         "not installed with gainkit")
    return Path(folder)


def _can_run_suite(python: str) -> bool:
    probe = "import gainkit.conformance, gainkit.suite.plugin, pytest, torch"
    return subprocess.run([python, "-c", probe], capture_output=True).returncode == 0


def main(argv: List[str] | None = None) -> int:
    parser = cli.ToolParser(PROG, __doc__)
    parser.add_argument("--python", metavar="PATH", default=sys.executable,
                        help="interpreter or virtual environment to check (default: this one)")
    parser.add_argument("--no-patch", action="store_true",
                        help="report the series' status but do not apply it")
    args, pytest_args = parser.parse_known_args(argv)
    try:
        target = python_target(args.python)
        patches = load_series(default_patch_dir())
        with exclusive(target, writing=False) as hold:
            for line in hold.recovered:
                print(line)
            plan = make_plan(patches, target)
            print("\n".join(patch_tool.status_lines(plan)[:-1]))
            if plan.having(APPLIES) and not args.no_patch:
                done = apply(plan, hold)
                print(f"applied {len(done)} patches to {target.root}")
        if not _can_run_suite(str(target.interpreter)):
            raise PatchError(
                f"{target.interpreter}: cannot import gainkit, pytest and torch there; "
                f"install gainkit into that environment first")
    except PatchError as error:
        for line in error.lines:
            print(f"{PROG}: error: {line}", file=sys.stderr)
        return error.exit_code
    command = [str(target.interpreter), "-m", "pytest", "--pyargs", plugin.SUITE_PACKAGE,
               "-p", "no:cacheprovider"]
    command += pytest_args
    print("running: " + " ".join(command), flush=True)
    return subprocess.run(command).returncode


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
