"""``gainkit`` command: routes ``gainkit TOOL ARGS...`` to ``gainkit.tools.TOOL.main(ARGS)``.

Exit codes are each tool's own (documented in its ``--help``); 2 is always a usage error.
"""

from __future__ import annotations

import importlib
import sys

TOOLS = {
    "check": "status of the patch series on your torch, patch where needed, run the suite",
    "patch": "status / check / apply / revert the patch series on a tree, checkout or environment",
    "gains": "derive gains and mean-field behaviour for any activation",
    "report": "merge conformance results into a Markdown report with plots",
    "envcheck": "assert that a tox env imports the torch release its name says",
}


def _usage() -> str:
    width = max(len(name) for name in TOOLS)
    lines = ["usage: gainkit TOOL [ARGS...]", "", "tools:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, text in TOOLS.items()]
    lines += ["", "`gainkit TOOL --help` describes a tool."]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in TOOLS:
        print(
            "gainkit: error: {!r} is not a tool (choose from {})".format(name, ", ".join(TOOLS)),
            file=sys.stderr,
        )
        return 2
    module = importlib.import_module("gainkit.tools." + name)
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
