"""``gainkit`` command: routes ``gainkit TOOL ARGS...`` to ``gainkit.tools.TOOL.main(ARGS)``.

Exit codes are each tool's own (documented in its ``--help``); 2 is always a usage error,
130 an interrupt (Ctrl-C), and 141 a reader that stopped reading early (``gainkit ... | head``:
the output that was not read is dropped quietly, as a shell reports SIGPIPE).
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
from typing import Callable, List

EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 2, 130, 141

TOOLS = {
    "check": "status of the patch series on your torch, patch where needed, run the suite",
    "patch": "status / check / apply / revert the patch series on a tree, checkout or environment",
    "gains": "derive gains and mean-field behaviour for any activation",
    "report": "merge conformance results into a Markdown report with plots",
    "mutate": "run the suite against faults in torch.nn.init and under many seeds: misses, "
              "false alarms",
    "envcheck": "assert that a tox env imports the torch release its name says",
}


class ToolParser(argparse.ArgumentParser):
    """A gainkit tool's argument parser: its module docstring's body is the description, and a
    usage error is one line on stderr with exit 2, like every other user error."""

    def __init__(self, prog: str, doc: str) -> None:
        super().__init__(prog=prog, description=doc.split("\n\n", 1)[1],
                         formatter_class=argparse.RawDescriptionHelpFormatter)

    def error(self, message: str) -> None:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def positive_number(what: str) -> Callable[[str], float]:
    """An argparse type: a positive finite float, or a usage error that names ``what``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not 0.0 < value < math.inf:
            raise argparse.ArgumentTypeError(f"{text!r}: {what} must be a positive finite number")
        return value

    return parse


def _usage() -> str:
    width = max(len(name) for name in TOOLS)
    lines = ["usage: gainkit TOOL [ARGS...]", "", "tools:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, text in TOOLS.items()]
    lines += ["", "`gainkit TOOL --help` describes a tool."]
    return "\n".join(lines)


def run(tool_main: Callable[[List[str] | None], int], argv: List[str] | None = None,
        prog: str = "gainkit") -> int:
    """tool_main(argv), ended quietly by a closed standard output or a Ctrl-C."""
    try:
        code = tool_main(argv)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # Python flushes stdout again at exit; it must find somewhere to write to
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _dispatch(argv: List[str] | None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if not args:
        print("gainkit: error: name a tool (choose from {}); gainkit --help describes "
              "them".format(", ".join(TOOLS)), file=sys.stderr)
        return EXIT_USAGE
    name, rest = args[0], args[1:]
    if name not in TOOLS:
        print(
            "gainkit: error: {!r} is not a tool (choose from {})".format(name, ", ".join(TOOLS)),
            file=sys.stderr,
        )
        return EXIT_USAGE
    module = importlib.import_module("gainkit.tools." + name)
    return module.main(rest)


def main(argv: List[str] | None = None) -> int:
    return run(_dispatch, argv)


if __name__ == "__main__":
    sys.exit(main())
