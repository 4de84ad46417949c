"""gainkit report: merge conformance results into one Markdown report, with plots.

    gainkit report RESULTS... [--output report.md] [--plots DIR]

RESULTS are JSON files written by `pytest --pyargs gainkit.conformance --gainkit-json PATH`, or
directories holding them (tox writes results/<env name>.json). Each file is one torch release.

Exit codes:
    0    every release conforms
    1    a release deviates (a failed record or test, a wrong or missing gain); the report
         lists each deviation
    2    bad input: a missing or unreadable results file, not gainkit results, matplotlib
         missing for --plots, an --output or --plots path that cannot be written (one line
         naming it and the OS's reason); found before anything is written
    3    writing the report or a plot failed part-way (a full disk); no half-written file
         is left
A results file named twice (a folder and a file in it) counts once.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List

from gainkit import outputs
from gainkit.reports import judging, markdown
from gainkit.tools import cli

PROG = "gainkit report"
EXIT_CONFORMS, EXIT_DEVIATES, EXIT_INPUT = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ToolParser(PROG, __doc__)
    parser.add_argument("results", nargs="+", metavar="RESULTS",
                        help="results JSON files or directories of them")
    parser.add_argument("--output", metavar="FILE",
                        help="write the Markdown report here (default: standard output)")
    parser.add_argument("--plots", metavar="DIR",
                        help="write PNG plots here and show them in the report "
                             "(needs matplotlib: pip install 'gainkit[report]')")
    return parser


def _plots_module():
    try:
        from gainkit.reports import plots
    except ImportError as error:
        raise judging.ReportInputError(
            f"--plots needs matplotlib ({error}); install it: pip install 'gainkit[report]'"
        ) from None
    return plots


def main(argv: List[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        releases = judging.load_releases(args.results)
        plots = _plots_module() if args.plots else None
        if args.output:
            outputs.check_file(args.output, "--output")
        if args.plots:
            outputs.check_folder(args.plots, "--plots")
        matrix = judging.build_matrix(releases)
    except (judging.ReportInputError, outputs.OutputError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_INPUT
    try:
        links = {}
        if plots is not None:
            base = os.path.dirname(os.path.abspath(args.output)) if args.output else os.getcwd()
            written = plots.write_all(matrix, args.plots)
            links = {key: os.path.relpath(path, base).replace(os.sep, "/")
                     for key, path in written.items()}
        text = markdown.markdown(matrix, links)
        if args.output:
            outputs.write_text(args.output, text, "--output")
        else:
            sys.stdout.write(text)
    except outputs.OutputError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return outputs.EXIT_WRITE
    for verdict in matrix.verdicts:
        if not verdict.conforms:
            findings = verdict.findings
            more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
            print(f"{PROG}: {verdict.release.name} deviates: {findings[0]}{more}",
                  file=sys.stderr)
    return EXIT_CONFORMS if matrix.conforms else EXIT_DEVIATES


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
