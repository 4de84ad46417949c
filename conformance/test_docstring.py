"""calculate_gain's docstring table documents every gain it returns, with the same value.

The table is upstream's reST simple table (``nonlinearity`` | ``gain`` with a ``:math:``
formula). Each formula is evaluated and compared with what ``calculate_gain`` returns, so a
row that disagrees with the code fails as surely as a missing row.
"""

from __future__ import annotations

import math
import re
import sys

import pytest
import torch
from torch.nn.init import calculate_gain

from gainkit.suite import torchinfo
from gainkit.suite.expectations import DOCSTRING, GAINS

# gains.toml's doc_row: the table row of each case; cases without one (conv_transpose*: no
# release has a row) are recorded as gaps, not failures.
DOCUMENTED_CASES = [case for case in GAINS if case.doc_row]


def docstring() -> str:
    """calculate_gain's docstring. Only ``python -OO`` strips docstrings by design: there the
    check cannot run and skips, saying so; anywhere else a missing docstring is a regression
    (a wrapper without functools.wraps, say) and fails."""
    if sys.flags.optimize >= 2:
        pytest.skip("docstrings are stripped in this interpreter (python -OO, "
                    f"sys.flags.optimize = {sys.flags.optimize})")
    doc = calculate_gain.__doc__
    if not doc:
        pytest.fail(f"torch.nn.init.calculate_gain has no docstring ({calculate_gain!r}, from "
                    f"{getattr(calculate_gain, '__module__', '?')}) although Python keeps "
                    "docstrings here (no -OO): whatever replaced it dropped the docs",
                    pytrace=False)
    return doc


def table_rows(doc: str) -> dict:
    """``{row label: gain column}`` of the first reST simple table in ``doc``."""
    lines = [line.strip() for line in doc.splitlines()]
    borders = [index for index, line in enumerate(lines) if re.fullmatch(r"=+( +=+)+", line)]
    if len(borders) < 3:
        return {}
    gain_column = lines[borders[0]].index(" =") + 1
    rows = {}
    for line in lines[borders[1] + 1:borders[2]]:
        rows[line[:gain_column].strip()] = line[gain_column:].strip()
    return rows


def evaluate_math(cell: str, negative_slope: float) -> float:
    """The number a ``:math:`` cell of the table denotes (the subset of LaTeX it uses)."""
    match = re.fullmatch(r":math:`(.*)`", cell)
    assert match, f"gain cell {cell!r} is not a :math: formula"
    expression = match.group(1).replace(r"\text{negative\_slope}", "negative_slope")
    expression = expression.replace("{", "(").replace("}", ")").replace(")(", ")/(")
    expression = expression.replace(r"\frac", "").replace(r"\sqrt", "math.sqrt")
    expression = expression.replace("^", "**")
    namespace = {"__builtins__": {}, "math": math, "negative_slope": negative_slope}
    return float(eval(expression, namespace))  # noqa: S307 - the subset built above


def test_every_name_documents_one_row():
    """The cases of one nonlinearity agree on their row (the data file cannot split a name)."""
    rows = {}
    for case in GAINS:
        rows.setdefault(case.nonlinearity, set()).add(case.doc_row)
    assert {name: labels for name, labels in rows.items() if len(labels) != 1} == {}


@pytest.mark.parametrize("case", DOCUMENTED_CASES, ids=[case.id for case in DOCUMENTED_CASES])
def test_table_row_states_the_returned_value(case, require_gain, results):
    value = require_gain(case)
    label = case.doc_row
    rows = table_rows(docstring())
    documented = evaluate_math(rows[label], case.slope or 0.0) if label in rows else None
    results.record("docstring", case.id, row=label, cell=rows.get(label), documented=documented,
                   measured=value)
    assert label in rows, f"calculate_gain's docstring table has no {label!r} row"
    assert math.isclose(documented, value, rel_tol=1e-12), (
        f"docstring row {label!r} says {rows[label]} = {documented}, calculate_gain returns "
        f"{value}")


def test_selu_warning_points_self_normalizing_networks_to_linear(results):
    doc = docstring()
    present = (".. warning::" in doc and "self-normalizing" in doc.lower()
               and re.search(r"nonlinearity=['\"]linear['\"]", doc) is not None)
    required = torchinfo.installed_version() >= DOCSTRING.selu_warning_since_tuple
    # Before 1.9 only the docs patch adds the warning, and nothing inside torch says whether
    # it was applied: there the presence is reported in the JSON results, not asserted.
    results.record("docstring", "selu-warning", present=present, required=required,
                   rule=f"required from torch {DOCSTRING.selu_warning_since} "
                        f"({DOCSTRING.selu_warning_source}); reported only before")
    if required:
        assert present, (
            f"torch {torch.__version__} >= 1.9 but calculate_gain's docstring lacks the warning "
            "that self-normalizing networks should use nonlinearity='linear'")
