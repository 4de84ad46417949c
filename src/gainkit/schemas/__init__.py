"""The JSON Schemas of gainkit's JSON outputs, shipped with the package.

``results.schema.json``: the suite's results file (``--gainkit-json``), which ``gainkit
report`` reads; ``gains.schema.json``: ``gainkit gains --format json``. The unit tests validate
real output against them (tests/test_schemas.py, tests/test_gains_tool.py).
"""

from __future__ import annotations

import json
import os

FOLDER = os.path.dirname(os.path.abspath(__file__))


def path(name: str) -> str:
    """The file of schema ``name`` (``results`` or ``gains``)."""
    return os.path.join(FOLDER, f"{name}.schema.json")


def load(name: str) -> dict:
    with open(path(name), encoding="utf-8") as handle:
        return json.load(handle)
