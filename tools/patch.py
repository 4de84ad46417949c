"""gainkit patch: check, apply and revert the gainkit patch series on a torch target.

    gainkit patch status [TARGET] [--patches DIR]   one line per patch, and the plain git command
    gainkit patch check  [TARGET] [--patches DIR]   would `apply` succeed? nothing is written
    gainkit patch apply  [TARGET] [--patches DIR]   apply the series, all or nothing
    gainkit patch revert [TARGET] [--patches DIR]   undo it, all or nothing
    gainkit patch export --tree REPO [--patches DIR] [--new-series] COMMIT|A..B ...
                                                    write patch files from commits

TARGET is one of
    --tree PATH      a pytorch git checkout (apply commits with git am; revert drops those
                     commits if they are the top of HEAD) or a plain source tree (git apply);
                     both need torch/nn/init.py (the version: see below)
    --tree PATH --working-tree
                     a checkout, changing only its working tree (git apply, no commits)
    --python PATH    the torch installed for this interpreter or virtual environment
                     (default: the running interpreter); only the torch/ parts of the series

The torch version of a tree comes from version.txt, else torch/version.py, else a
torch-*.dist-info beside torch/; a pre-release (1.8.0a0, what master says) sorts before its
release. A tree with no version is taken when its content matches the series.

Statuses, decided by the files' content, the version breaking ties: APPLIES (the change is
absent and the patch applies), APPLIED (the change is present), UPSTREAM (the version says the
release has it upstream: the change is present, or the patch does not apply), CONFLICT (in
range, but it neither applies nor reverse-applies), N/A (out of range and not applicable, or
none of its files in the target). Each line gives its reason and, where the version is a
pre-release or missing, what the version said. When content and version disagree, content
wins: a patch outside Torch-Versions whose change is absent and which applies is applied, and
the line says so. In a git checkout a patch whose context no longer matches is retried as a
3-way merge (git am --3way) with the files it was made on from the checkout's history; a merge
conflict is a CONFLICT naming the file, and nothing is written.
A torch newer than every range (say 99.0) is no error: its patches are UPSTREAM or N/A.
A file with CRLF line endings is a CONFLICT that says so; the tool never mixes line endings.

export writes patch files from commits of REPO (one per COMMIT, or per commit of A..B): each
replaces the patch of --patches DIR's series with the same subject, in its place; with
--new-series the commits, in order, become the whole series (series rewritten, patch files it
no longer lists removed). The commit message's DEP-3 fields and Torch-Versions are kept;
Last-Update becomes the commit's committer date. A commit that is not a series patch is an
error, and nothing is written.

One command runs on a target at a time: a second one, while the first holds the target's lock
(.gainkit-patch.lock in its root), refuses at once. A run killed half-way (power cut, SIGKILL)
leaves a journal in .gainkit-patch-*/ there; the next command on that target, whichever it is,
first rolls the target back to how it was before the killed run and prints one line saying so:
    TARGET: found an interrupted apply from TIME (pid N); restored 2 files

Exit codes:
    0    done, or nothing to do (for check: apply would succeed)
    1    the series does not fit the target: a CONFLICT (one line per conflict on stderr), or
         a revert git cannot do safely; nothing was written
    2    usage or target error (missing path, not a torch tree, a bad series or patch file,
         local changes in a checkout, a file that cannot be written, another gainkit patch
         running on the target, ...); nothing was written
    3    a write failed half-way (a full disk, a file made read-only meanwhile); what was
         written has been rolled back. Or a rollback failed: the line says where the
         originals are, and the next run on the target retries the rollback
    130  interrupted (SIGINT); what was written has been rolled back
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List

from gainkit.patching import export
from gainkit.patching.errors import EXIT_CONFLICT, EXIT_INTERRUPTED, EXIT_OK, PatchError
from gainkit.patching.plan import APPLIES, CONFLICT, Plan, git_command, make_plan
from gainkit.patching.run import Hold, apply, check, exclusive, revert
from gainkit.patching.series import default_patch_dir, load_series
from gainkit.patching.targets import python_target, tree_target
from gainkit.tools import cli

PROG = "gainkit patch"


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ToolParser(PROG, __doc__)
    parser.add_argument("command", choices=["status", "check", "apply", "revert", "export"])
    parser.add_argument("commits", nargs="*", default=[], metavar="COMMIT",
                        help="export: the commits (or A..B ranges) to write as patches")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--tree", metavar="PATH", help="a pytorch checkout or source tree")
    where.add_argument("--python", metavar="PATH",
                       help="an interpreter or virtual environment (default: this one)")
    parser.add_argument("--working-tree", action="store_true",
                        help="with --tree on a checkout: change files only, make no commits")
    parser.add_argument("--patches", metavar="DIR", default=str(default_patch_dir()),
                        help="the patch series directory (default: %(default)s)")
    parser.add_argument("--new-series", action="store_true",
                        help="export: the commits are the whole series, in order")
    return parser


def _export(args: argparse.Namespace) -> int:
    if not args.tree:
        raise PatchError("export needs --tree REPO, the checkout that holds the commits")
    if args.working_tree or args.python:
        raise PatchError("export takes --tree REPO only")
    root = export.repository(args.tree)
    changes = export.plan_export(root, export.resolve(root, args.commits), Path(args.patches),
                                 args.new_series)
    export.write_export(changes)
    for path, data in changes.items():
        print(f"removed {path}" if data is None else f"wrote {path}")
    return EXIT_OK


def status_lines(plan: Plan) -> List[str]:
    width = max((len(verdict.patch.name) for verdict in plan.verdicts), default=0)
    lines = ["target: " + plan.target.describe()]
    lines += [f"{verdict.patch.name:<{width}}  {verdict.status:<9} ({verdict.reason})"
              for verdict in plan.verdicts]
    command = git_command(plan)
    return lines + ["with git alone: " + command if command else "nothing to apply"]


def _run(command: str, plan: Plan, hold: Hold) -> int:
    if command == "status":
        print("\n".join(status_lines(plan)))
        return EXIT_CONFLICT if plan.having(CONFLICT) else EXIT_OK
    if command == "check":
        check(plan)
        print(f"ok: {len(plan.having(APPLIES))} to apply to {plan.target.describe()}")
        return EXIT_OK
    print("\n".join(status_lines(plan)[:-1]))
    if command == "apply":
        done = apply(plan, hold)
        print(f"applied {len(done)} patches" if done else "nothing to apply")
    else:
        done = revert(plan, hold)
        print(f"reverted {len(done)} patches" if done else "nothing to revert")
    return EXIT_OK


def main(argv: List[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(argv)
    target = None
    try:
        if args.command == "export":
            return _export(args)
        if args.commits or args.new_series:
            raise PatchError(f"{args.command} takes no commits; those are for export")
        if args.working_tree and not args.tree:
            raise PatchError("--working-tree needs --tree")
        patches = load_series(args.patches)
        if args.tree:
            target = tree_target(args.tree, args.working_tree)
        else:
            target = python_target(args.python or sys.executable)
        writing = args.command in ("apply", "revert")
        with exclusive(target, writing) as hold:
            for line in hold.recovered:
                print(line, flush=True)
            return _run(args.command, make_plan(patches, target), hold)
    except PatchError as error:
        for line in error.lines:
            print(f"{PROG}: error: {line}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("{}: interrupted; {} is as it was".format(
            PROG, target.root if target else "the target"), file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
