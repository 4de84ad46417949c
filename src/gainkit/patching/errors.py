"""How the patch tool fails: PatchError, the exit codes, and a child process's complaint cut
to one line.

Every step (reading the series, finding the target, planning, writing) raises PatchError for a
failure the user can act on, and the CLIs turn it into ``error:`` lines and its exit code. The
codes are here, beside the error that carries them, so that there is one list of them.
"""

from __future__ import annotations

import re

EXIT_OK, EXIT_CONFLICT, EXIT_USAGE, EXIT_WRITE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class PatchError(Exception):
    """A failure the user can act on: one line per problem, each naming a file and a cause."""

    def __init__(self, *lines: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(lines[0])
        self.lines = list(lines)
        self.exit_code = exit_code


def last_line(text: str) -> str:
    """git's (or an interpreter's) last complaint, without its "error: " or "fatal: "."""
    lines = [line for line in text.strip().splitlines()
             if line.strip() and not line.startswith("hint: ")]
    return re.sub(r"^(error|fatal): ", "", lines[-1].strip()) if lines else "failed"
