"""gainkit mutate: the conformance suite's misses and false alarms, measured.

    gainkit mutate [--all | --mutants NAME,...] [--seeds N] [--first-seed S] [--seed S]
                   [--focused] [--jobs J] [--json PATH] [--markdown] [--list]

1. runs the suite against each mutant of the catalogue (gainkit.mutation.catalogue: realistic
faults in    torch.nn.init, installed in the test process only) and prints, per mutant, which tests
   killed it and how long the run took; then the kill rate;
2. runs the unmodified suite under seeds S, S+1, ..., S+N-1 and prints, per seed, whether it
   passed; any failure is a false alarm, repeated by the command printed under the table.

The full run (every mutant, 50 seeds) is `gainkit mutate`; CI runs a slice
(tests/test_suite_kills.py). Runs use --gainkit-device cpu unless told: the faults are Python code.

Exit codes:
    0   every mutant killed, each by every conformance file the catalogue names, and no seed
        failed
    1   a mutant survived or was missed by a file that should catch it, a seed failed, or a
        run crashed or timed out
    2   usage error (unknown mutant, bad number, a --json path that cannot be written: one
        line naming it and the OS's reason); nothing is run
    3   writing --json failed after the runs (a full disk); no half-written file is left
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Sequence

from gainkit import outputs
from gainkit.mutation import runner
from gainkit.mutation.catalogue import CATALOGUE, MUTANTS
from gainkit.tools import cli

PROG = "gainkit mutate"
EXIT_OK, EXIT_FOUND, EXIT_USAGE = 0, 1, 2
DEFAULT_SEEDS = 50
SHOWN_IDS = 3


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _count(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def _positive(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _mutant_names(text: str) -> List[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in MUTANTS]
    if unknown:
        raise argparse.ArgumentTypeError(
            "unknown mutant {} (gainkit mutate --list names them)".format(", ".join(unknown)))
    return names


def _parser() -> argparse.ArgumentParser:
    parser = cli.ToolParser(PROG, __doc__)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true",
                       help="every mutant of the catalogue (the default)")
    which.add_argument("--mutants", metavar="NAME,...", type=_mutant_names,
                       help="only these mutants ('' for none: the seed sweep only)")
    parser.add_argument("--list", action="store_true", help="describe the catalogue and exit")
    parser.add_argument("--seeds", metavar="N", type=_count, default=DEFAULT_SEEDS,
                        help=f"seeds of the false-alarm sweep (default {DEFAULT_SEEDS}; 0: none)")
    parser.add_argument("--first-seed", metavar="S", type=_count, default=1,
                        help="first seed of the sweep (default 1)")
    parser.add_argument("--seed", metavar="S", type=_count, default=0,
                        help="seed of the mutant runs (default 0, the suite's default)")
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="cpu",
                        help="the suite's --gainkit-device (default cpu)")
    parser.add_argument("--focused", action="store_true",
                        help="run each mutant on the files that must catch it and the tests "
                             "its -k expression selects only (the quick slice)")
    parser.add_argument("--jobs", metavar="J", type=_positive, default=1,
                        help="runs at a time (default 1; each run uses every core)")
    parser.add_argument("--timeout", metavar="SECONDS",
                        type=cli.positive_number("a timeout in seconds"), default=1800.0,
                        help="stop a run after this long and count it failed (default 1800)")
    parser.add_argument("--json", metavar="PATH", type=Path,
                        help="write every run's outcome, failing test ids and time to PATH")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    return parser


class Table:
    """Rows printed as they come: aligned text, or Markdown."""

    def __init__(self, headings: Sequence[str], widths: Sequence[int], markdown: bool) -> None:
        self.widths = [max(width, len(heading)) for heading, width in zip(headings, widths)]
        self.markdown = markdown
        print(self.row(headings))
        if markdown:
            print("|" + "|".join("---" for _ in headings) + "|")

    def row(self, cells: Sequence[str]) -> str:
        if self.markdown:
            return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
        padded = [cell.ljust(width) for cell, width in zip(cells[:-1], self.widths)]
        return "  ".join(padded + [cells[-1]]).rstrip()

    def add(self, cells: Sequence[str]) -> None:
        print(self.row(cells), flush=True)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest:02d} s"


def _tests(count: int) -> str:
    return f"{count} test" if count == 1 else f"{count} tests"


def _killers(run: runner.SuiteRun) -> str:
    failed = run.failed
    shown = ", ".join(runner.short_id(nodeid) for nodeid in failed[:SHOWN_IDS])
    more = f", +{len(failed) - SHOWN_IDS} more" if len(failed) > SHOWN_IDS else ""
    return shown + more


def _header(args, names: Sequence[str], seeds: Sequence[int], options) -> List[str]:
    from gainkit.suite import torchinfo

    info = torchinfo.describe()
    lines = [f"library under test: torch {info['version']} at {info['file']} "
             f"(Python {info['python']})",
             f"suite: {options.suite} on --gainkit-device {options.device}"]
    if names:
        scope = "focused: the files and -k slice each names" if args.focused else "whole suite"
        lines.append(f"mutants: {len(names)} of {len(CATALOGUE)}, seed {options.seed}, {scope}")
    if seeds:
        lines.append(f"false-alarm sweep: seeds {seeds[0]}..{seeds[-1]} ({len(seeds)} runs)")
    return lines


def _run_mutants(names, options, jobs: int, markdown: bool) -> List[runner.MutantResult]:
    width = max(len(name) for name in names)
    table = Table(("mutant", "verdict", "killed by", "time", "first killing tests"),
                  (width, 8, 9, 10, 0), markdown)
    results = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for result in pool.map(lambda name: runner.kill(MUTANTS[name], options), names):
            results.append(result)
            # an n/a mutant's reason takes the last column, keeping the others aligned
            table.add((result.mutant.name, result.verdict, _tests(len(result.run.failed)),
                       _duration(result.run.seconds), result.reason or _killers(result.run)))
    return results


def _run_seeds(seeds, options, jobs: int, markdown: bool) -> List[runner.SeedResult]:
    table = Table(("seed", "verdict", "passed", "failed", "time", "failing tests"),
                  (6, 11, 6, 6, 10, 0), markdown)
    results = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for result in pool.map(lambda seed: runner.sweep(seed, options), seeds):
            results.append(result)
            table.add((str(result.seed), result.verdict, str(result.run.passed),
                       str(len(result.run.failed)), _duration(result.run.seconds),
                       _killers(result.run)))
    return results


def _summary(mutants, seeds, seconds: float) -> List[str]:
    lines = []
    if mutants:
        applying = [result for result in mutants if result.applies]
        killed = sum(result.killed for result in applying)
        declared = sum(result.killed and result.as_declared for result in applying)
        idle = len(mutants) - len(applying)
        lines.append(
            f"kill rate: {killed}/{len(applying)} mutants killed "
            f"({100 * runner.kill_rate(mutants):.0f}%), {declared} by every file the "
            f"catalogue names; {_duration(sum(r.run.seconds for r in mutants))} of runs"
            + (f"; {idle} not applicable to this torch" if idle else ""))
    if seeds:
        alarms = sum(not result.clean for result in seeds)
        lines.append(f"false alarms: {alarms} of {len(seeds)} seeds; "
                     f"{_duration(sum(r.run.seconds for r in seeds))} of runs")
    lines.append(f"total: {_duration(seconds)}")
    for result in list(mutants) + list(seeds):
        failed = (not result.as_declared) if isinstance(result, runner.MutantResult) \
            else not result.clean
        if failed:
            lines.append(f"reproduce: {runner.reproduce(result.run)}")
    return lines


def _as_json(header, mutants, seeds, seconds: float) -> dict:
    from gainkit.suite import torchinfo

    def run_fields(run):
        return {"exit_code": run.exit_code, "seconds": run.seconds, "passed": run.passed,
                "failed": run.failed, "command": runner.reproduce(run)}

    return {
        "torch": torchinfo.describe(),
        "header": header,
        "mutants": [dict(run_fields(result.run), name=result.mutant.name,
                         description=result.mutant.description, tags=list(result.mutant.tags),
                         caught_by=list(result.mutant.caught_by), verdict=result.verdict,
                         reason=result.reason, killed=result.killed, missed_by=result.missed_by)
                    for result in mutants],
        "kill_rate": runner.kill_rate(mutants) if mutants else None,
        "sweep": [dict(run_fields(result.run), seed=result.seed, verdict=result.verdict)
                  for result in seeds],
        "false_alarms": sum(not result.clean for result in seeds),
        "seconds": seconds,
    }


def _list_catalogue() -> None:
    width = max(len(mutant.name) for mutant in CATALOGUE)
    for mutant in CATALOGUE:
        print(f"{mutant.name.ljust(width)}  {mutant.description}")
        print(f"{'':{width}}  tags: {', '.join(mutant.tags)}; caught by: "
              f"{', '.join(mutant.caught_by)}; -k {mutant.select or '(all)'}")


def main(argv: List[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.list:
        _list_catalogue()
        return EXIT_OK
    names = [mutant.name for mutant in CATALOGUE] if args.mutants is None else args.mutants
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    if not names and not seeds:
        print(f"{PROG}: error: nothing to run: no mutants and --seeds 0", file=sys.stderr)
        return EXIT_USAGE
    if args.json is not None:
        try:
            outputs.check_file(str(args.json), "--json")
        except outputs.OutputError as error:
            print(f"{PROG}: error: {error}", file=sys.stderr)
            return EXIT_USAGE
    from gainkit.patching.errors import PatchError
    from gainkit.tools.check import conformance_dir

    try:
        suite = conformance_dir()
    except PatchError as error:
        print(f"{PROG}: error: {error.lines[0]}", file=sys.stderr)
        return EXIT_USAGE
    options = runner.Options(suite=suite, device=args.device, seed=args.seed,
                               focused=args.focused, timeout=args.timeout)
    header = _header(args, names, seeds, options)
    print("\n".join(header), flush=True)
    started = time.monotonic()
    mutants, swept = [], []
    if names:
        print()
        mutants = _run_mutants(names, options, args.jobs, args.markdown)
    if seeds:
        print()
        swept = _run_seeds(seeds, options, args.jobs, args.markdown)
    seconds = time.monotonic() - started
    print()
    print("\n".join(_summary(mutants, swept, seconds)))
    if args.json is not None:
        try:
            outputs.write_text(str(args.json), json.dumps(
                _as_json(header, mutants, swept, seconds), indent=1), "--json")
        except outputs.OutputError as error:
            print(f"{PROG}: error: {error}", file=sys.stderr)
            return outputs.EXIT_WRITE
    success = all(r.as_declared for r in mutants) and all(r.clean for r in swept)
    return EXIT_OK if success else EXIT_FOUND


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
