"""The conformance suite is sharp: it passes on torch as installed and fails under every mutant.

Each mutant of ``gainkit.mutants.CATALOGUE`` runs the conformance files that must catch it
(restricted to the relevant tests with its ``-k`` expression) in a fresh interpreter with
``-p gainkit.mutants --gainkit-mutant NAME``; every one of those files must report a failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gainkit.expectations import GAINS
from gainkit.mutants import CATALOGUE, MUTANTS

torch = pytest.importorskip("torch")

REPOSITORY = Path(__file__).resolve().parents[1]
CONFORMANCE = REPOSITORY / "conformance"
pytestmark = pytest.mark.mutation


def run_conformance(json_path: Path, files, *options) -> tuple:
    """(exit code, failed node ids, output) of a conformance run in a fresh interpreter."""
    command = [sys.executable, "-m", "pytest", *[str(CONFORMANCE / name) for name in files],
               "-q", "-p", "no:cacheprovider", "--gainkit-json", str(json_path), *options]
    completed = subprocess.run(command, cwd=str(REPOSITORY), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    failed = []
    if json_path.exists():
        outcomes = json.loads(json_path.read_text(encoding="utf-8"))["outcomes"]
        failed = [entry["nodeid"] for entry in outcomes if entry["outcome"] == "failed"]
    return completed.returncode, failed, completed.stdout


def test_catalogue_has_a_gain_mutant_for_every_stability_case():
    stability_names = {case.nonlinearity for case in GAINS if case.stability}
    for name in stability_names:
        assert f"gain-{name}-x1.05" in MUTANTS
    assert any(name.endswith("-x0.95") for name in MUTANTS)


@pytest.mark.parametrize("mutant", CATALOGUE, ids=[mutant.name for mutant in CATALOGUE])
def test_suite_kills_mutant(mutant, tmp_path):
    # The faults are in Python, not in kernels: CPU runs are the whole evidence.
    options = ["-p", "gainkit.mutants", "--gainkit-mutant", mutant.name, "--device", "cpu"]
    if mutant.select:
        options += ["-k", mutant.select]
    if len(mutant.caught_by) == 1:
        options.append("-x")  # one failure is the whole evidence
    code, failed, output = run_conformance(tmp_path / "results.json", mutant.caught_by, *options)
    assert code == 1, f"expected test failures (exit 1), got exit {code}:\n{output[-3000:]}"
    for name in mutant.caught_by:
        assert any(node.split("::")[0].endswith(name) for node in failed), (
            f"{name} did not catch {mutant.name}:\n{output[-3000:]}")


def test_unmodified_suite_passes(tmp_path):
    missing = [case.id for case in GAINS if gain_missing(case)]
    if missing:
        pytest.skip(f"torch {torch.__version__} lacks {missing}: the suite fails until patched")
    code, failed, output = run_conformance(tmp_path / "results.json", ["."])
    assert code == 0 and not failed, output[-3000:]


def gain_missing(case) -> bool:
    try:
        torch.nn.init.calculate_gain(*case.call_args())
    except ValueError:
        return True
    return False
