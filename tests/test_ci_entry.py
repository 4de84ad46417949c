""".ci/run is README's test command, verbatim, and installs tox into a venv of its own."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_command_verbatim_in_its_own_venv():
    commands = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line and not line.startswith("#") and not line.startswith(("set ", "cd "))]
    assert len(commands) == 1
    (command,) = commands
    readme = (ROOT / "README.md").read_text()
    assert f"\n    {command}\n" in readme
    steps = [step.strip() for step in command.split("&&")]
    assert steps[0].startswith("python3 -m venv ")
    venv = steps[0].split()[-1]
    # everything after creating the venv runs that venv's interpreter, never the machine's
    assert all(step.startswith(f"{venv}/bin/") for step in steps[1:]), steps
    assert any("pip install tox" in step for step in steps)
