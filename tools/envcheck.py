"""Assert that a tox env imports the torch release its name says.

Usage: ``python -m gainkit.tools.envcheck ENV_NAME`` (or ``gainkit envcheck ENV_NAME``) where
ENV_NAME holds a factor ``torchX.Y.Z`` (e.g. ``py38-torch1.7.1``).
Runs inside old environments too (Python 3.7, torch 1.0).

Exit codes:
    0    torch imports and is the release the name says; one line names it
    2    it is another release, torch does not import, or the arguments are wrong;
         one line on stderr says which
"""

from __future__ import annotations

import re
import sys

_FACTOR = re.compile(r"(?:^|-)torch(\d+\.\d+\.\d+)(?:-|$)")


def expected_release(env_name: str):
    match = _FACTOR.search(env_name)
    return match.group(1) if match else None


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    if len(args) != 1:
        print("gainkit envcheck: error: expected one argument, the tox env name", file=sys.stderr)
        return 2
    env_name = args[0]
    expected = expected_release(env_name)
    if expected is None:
        print(
            f"gainkit envcheck: error: {env_name}: no torchX.Y.Z factor in the env name",
            file=sys.stderr,
        )
        return 2
    try:
        import torch
    except Exception as exc:  # any import failure is the env's fault, report it in one line
        print(
            f"gainkit envcheck: error: {env_name}: torch does not import: {exc}",
            file=sys.stderr,
        )
        return 2
    installed = torch.__version__.split("+")[0]
    git_version = getattr(getattr(torch, "version", None), "git_version", "unknown")
    if installed != expected:
        print(
            f"gainkit envcheck: error: {env_name}: imports torch {torch.__version__}"
            f" from {torch.__file__}, not {expected}",
            file=sys.stderr,
        )
        return 2
    print(
        "{}: torch {} (git {}) on Python {}.{}.{}, as named".format(
            env_name, torch.__version__, git_version, *sys.version_info[:3]
        )
    )
    return 0


if __name__ == "__main__":
    from gainkit.tools import cli

    sys.exit(cli.run(main, prog="gainkit envcheck"))
