"""Merge the conformance suite's JSON results into one verdict per release and gain.

Each results file is one torch release (``pytest --pyargs gainkit.conformance --gainkit-json``). A
release conforms when every record's verdict is "pass", every record that can be re-checked against
``data/gains.toml`` agrees with it, no test failed, and every gain of the data file returned
its value (after patching, older releases must have it too). Anything else is a deviation.

Rendering is elsewhere: the Markdown text in ``gainkit.reports.markdown``, the figures in
``gainkit.reports.plots``. Whether every release conforms (the report's exit status) needs only this
module.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Sequence

from gainkit.suite.expectations import GAINS, REFERENCES, version_tuple

PASS = "pass"
# Cell statuses, worst first: a cell shows the worst status among its findings.
MISSING = "missing"  # calculate_gain raised: the gain does not exist in that release
DEVIATES = "deviates"
NOT_RUN = "not run"  # a gain of the data file without a value record
NO_DATA = "no data"  # a reference gain nobody measured (not a deviation)
STATUS_ORDER = (MISSING, DEVIATES, NOT_RUN, PASS, NO_DATA)
# Record kinds whose verdict field is mandatory.
JUDGED_KINDS = ("value", "init", "stability")


class ReportInputError(ValueError):
    """A results path or file the report cannot use (one line, names the file)."""


@dataclass
class Release:
    """One results file: the torch it tested and what the suite recorded."""

    name: str
    path: str
    torch: dict
    seed: object
    devices: List[str]
    records: List[dict]
    outcomes: List[dict]

    @property
    def version(self) -> str:
        return str(self.torch["version"])

    @property
    def sort_key(self) -> tuple:
        return version_tuple(self.version), self.name


def results_files(paths: Sequence[str]) -> List[str]:
    """The JSON files named by ``paths``: files as given, directories' ``*.json`` sorted; a
    file named twice (``results/ results/r.json``, a link) is one release, taken once."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            inside = sorted(name for name in os.listdir(path) if name.endswith(".json"))
            if not inside:
                raise ReportInputError(f"{path}: directory holds no *.json results")
            found += [os.path.join(path, name) for name in inside]
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise ReportInputError(f"{path}: no such file or directory")
    unique = {}
    for path in found:
        unique.setdefault(os.path.realpath(path), path)
    return list(unique.values())


def load_release(path: str, name: str) -> Release:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError) as error:
        raise ReportInputError(f"{path}: cannot read: {error}") from None
    except ValueError as error:
        raise ReportInputError(f"{path}: not JSON: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        raise ReportInputError(f"{path}: not gainkit results (no 'records' list)")
    torch = data.get("torch")
    if not isinstance(torch, dict) or not isinstance(torch.get("version"), str):
        raise ReportInputError(f"{path}: not gainkit results (no 'torch.version')")
    for index, record in enumerate(data["records"]):
        if not isinstance(record, dict) or not {"kind", "case_id"} <= set(record):
            raise ReportInputError(f"{path}: record {index} has no 'kind' and 'case_id'")
    outcomes = data.get("outcomes", [])
    if not isinstance(outcomes, list) or not all(
            isinstance(o, dict) and "outcome" in o and "nodeid" in o for o in outcomes):
        raise ReportInputError(f"{path}: 'outcomes' is not a list of test outcomes")
    return Release(name, path, torch, data.get("seed"), list(data.get("devices") or []),
                   data["records"], outcomes)


def load_releases(paths: Sequence[str]) -> List[Release]:
    """Every results file under ``paths``, ordered by torch version.

    A release is named after its file (tox writes ``results/<env name>.json``); files that
    share a name are told apart by their path.
    """
    files = results_files(paths)
    stems = [os.path.splitext(os.path.basename(path))[0] for path in files]
    releases = []
    for path, stem in zip(files, stems):
        name = stem if stems.count(stem) == 1 else os.path.splitext(os.path.normpath(path))[0]
        releases.append(load_release(path, name))
    if not releases:
        raise ReportInputError("no results files given")
    return sorted(releases, key=lambda release: release.sort_key)


def number(value, digits: int = 6) -> str:
    """Compact text for a measured figure."""
    if value is None:
        return "—"
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        return "{:.{}g}".format(value, digits)
    return str(value)


def _setup(record: dict) -> str:
    """Where a record was measured, for messages: init, mode, layer, device, dtype."""
    parts = [str(record[key]) for key in ("check", "init", "mode", "layer", "device", "dtype")
             if record.get(key) not in (None, "")]
    return " ".join(parts)


@dataclass
class Cell:
    """What one release did for one gain."""

    status: str = NO_DATA
    figures: Dict[str, str] = field(default_factory=dict)
    findings: List[str] = field(default_factory=list)
    passed: Dict[str, List[int]] = field(default_factory=dict)  # kind -> [passed, total]
    stability: List[dict] = field(default_factory=list)
    value: object = None  # what calculate_gain returned
    patched: bool = False  # the release predates the gain, which the patch added
    known: List[str] = field(default_factory=list)  # known kernel deviations (gains.toml)

    def worsen(self, status: str, finding: str) -> None:
        # A missing gain explains the failures that follow from it: it goes first.
        self.findings.insert(0 if status == MISSING else len(self.findings), finding)
        if STATUS_ORDER.index(status) < STATUS_ORDER.index(self.status):
            self.status = status

    def count(self, kind: str, passed: bool) -> None:
        tally = self.passed.setdefault(kind, [0, 0])
        tally[0] += int(passed)
        tally[1] += 1


def _check_value(record: dict, case, cell: Cell, release: Release) -> None:
    measured = record.get("measured")
    call = "calculate_gain({!r}{})".format(
        case.nonlinearity, f", {case.param!r}" if case.has_param else "")
    if measured is None or record.get("verdict") == MISSING:
        cell.figures["value"] = "raises ValueError"
        cell.worsen(MISSING, f"{call} does not exist in torch {release.version}"
                    + (f" (added in {case.since}; the patch was not applied)"
                       if version_tuple(release.version) < case.since_tuple else ""))
        return
    cell.value = measured
    cell.figures["value"] = number(measured, 10)
    if version_tuple(release.version) < case.since_tuple:
        cell.patched = True
        cell.figures["value"] += " (patched)"
    if measured != case.value or record.get("measured_type") != case.type:
        cell.worsen(DEVIATES, "{} returns {} ({}), the data file says {} ({})".format(
            call, repr(measured), record.get("measured_type"), repr(case.value), case.type))


def _check_band(record: dict, cell: Cell) -> bool:
    """Re-check an init record's own numbers: variance ratio and kurtosis inside their bands."""
    ok = True
    if all(isinstance(record.get(k), (int, float)) for k in ("ratio", "band_lo", "band_hi")):
        if not record["band_lo"] <= record["ratio"] <= record["band_hi"]:
            ok = False
            cell.worsen(DEVIATES, "{}: variance ratio {} outside [{}, {}]".format(
                _setup(record), number(record["ratio"]), number(record["band_lo"]),
                number(record["band_hi"])))
    keys = ("kurtosis", "kurtosis_expected", "kurtosis_half_width")
    if all(isinstance(record.get(k), (int, float)) for k in keys):
        if abs(record["kurtosis"] - record["kurtosis_expected"]) > record["kurtosis_half_width"]:
            if record.get("deviation"):  # the suite judged it a known deviation of the kernel
                cell.known.append("{}: {}".format(_setup(record), record["deviation"]))
                return ok
            ok = False
            cell.worsen(DEVIATES, "{}: kurtosis {} outside {} +- {}".format(
                _setup(record), number(record["kurtosis"]), number(record["kurtosis_expected"]),
                number(record["kurtosis_half_width"])))
    return ok


def _judge_record(record: dict, case, cell: Cell, release: Release) -> None:
    kind = record["kind"]
    verdict = record.get("verdict")
    if kind == "value" and case is not None and hasattr(case, "nonlinearity"):
        _check_value(record, case, cell, release)
        if verdict == MISSING:
            return
    consistent = _check_band(record, cell) if kind == "init" else True
    if verdict is None:
        if kind in JUDGED_KINDS:
            cell.worsen(DEVIATES, f"{kind} record without a verdict ({_setup(record)})")
        return
    if verdict != PASS:
        where = _setup(record)
        cell.worsen(DEVIATES, "{} verdict {!r}{}".format(
            kind, verdict, f" ({where})" if where else ""))
    cell.count(kind, verdict == PASS and consistent)
    if kind == "stability":
        cell.stability.append(record)


def _param_id(nodeid: str) -> str:
    match = re.search(r"\[(.*)\]$", nodeid)
    return match.group(1) if match else ""


def attribute(nodeid: str, ids: Sequence[str]) -> str | None:
    """The gain a test id's parameters name, or None.

    Parameter ids hold other ids too (layers such as ``linear-700to300``), so the earliest
    gain id wins, and at one position the longest (``leaky_relu-0.2`` before ``leaky_relu``):
    the suite's tests list the gain before the layer.
    """
    tokens = _param_id(nodeid).split("-")
    candidates = sorted((gain_id.split("-") for gain_id in ids), key=len, reverse=True)
    for start in range(len(tokens)):
        for candidate in candidates:
            if tokens[start:start + len(candidate)] == candidate:
                return "-".join(candidate)
    return None


@dataclass
class ReleaseVerdict:
    """One release judged against the data file."""

    release: Release
    cells: Dict[str, Cell]  # by gain or reference id
    other: Dict[str, Cell]  # records of ids the data file does not know (shown generically)
    failed_tests: List[str]
    unattributed: List[str]  # findings that belong to no gain
    outcome_counts: Dict[str, int]

    def findings_by_row(self) -> List[tuple]:
        """(row id, its findings) for rows that deviate, worst status first; then
        (None, failures that belong to no row)."""
        rows = [(name, cell) for name, cell in list(self.cells.items()) + list(self.other.items())
                if cell.findings]
        rows.sort(key=lambda item: STATUS_ORDER.index(item[1].status))
        grouped = [(name, list(cell.findings)) for name, cell in rows]
        return grouped + ([(None, list(self.unattributed))] if self.unattributed else [])

    @property
    def findings(self) -> List[str]:
        return [text if name is None else f"{name}: {text}"
                for name, texts in self.findings_by_row() for text in texts]

    @property
    def conforms(self) -> bool:
        return not self.findings


def _summarise(cell: Cell) -> None:
    if cell.known:
        cell.figures["known"] = f"{len(cell.known)} known kernel deviation" + (
            "s" * (len(cell.known) != 1))
    for kind, (passed, total) in sorted(cell.passed.items()):
        if kind != "value":
            cell.figures[kind] = f"{passed}/{total}"
    chis = [r["chi_1_measured"] for r in cell.stability
            if isinstance(r.get("chi_1_measured"), (int, float))]
    if chis:
        low, high = min(chis), max(chis)
        cell.figures["chi_1"] = number(low, 4) + ("" if number(low, 4) == number(high, 4)
                                                  else "–" + number(high, 4))


def judge(release: Release, gains=GAINS, references=REFERENCES) -> ReleaseVerdict:
    """Every gain's cell for ``release`` and everything that makes it deviate."""
    known = {case.id: case for case in tuple(gains) + tuple(references)}
    cells = {case_id: Cell() for case_id in known}
    other: Dict[str, Cell] = {}
    for record in release.records:
        case_id = str(record["case_id"])
        cell = cells.get(case_id) or other.setdefault(case_id, Cell())
        if cell.status == NO_DATA:
            cell.status = PASS
        _judge_record(record, known.get(case_id), cell, release)
    for case in gains:
        if "value" not in cells[case.id].figures:
            cells[case.id].worsen(NOT_RUN, "no value record: calculate_gain("
                                  f"{case.nonlinearity!r}) was not tested")
    # A record that names its test (a "nodeid" field) ties that test's failure to its gain.
    recorded = {str(r["nodeid"]): str(r["case_id"]) for r in release.records
                if r.get("nodeid") and str(r["case_id"]) in cells}
    counts: Dict[str, int] = {}
    failed, unattributed = [], []
    for outcome in release.outcomes:
        counts[outcome["outcome"]] = counts.get(outcome["outcome"], 0) + 1
        if outcome["outcome"] != "failed":
            continue
        text = "test failed: {} ({})".format(outcome["nodeid"], outcome.get("when", "call"))
        failed.append(outcome["nodeid"])
        owner = recorded.get(outcome["nodeid"]) or attribute(outcome["nodeid"], list(known))
        if owner is None:
            unattributed.append(text)
        else:
            cells[owner].worsen(DEVIATES, text)
    for cell in list(cells.values()) + list(other.values()):
        _summarise(cell)
    return ReleaseVerdict(release, cells, other, failed, unattributed, counts)


@dataclass
class Matrix:
    """All releases judged: rows are the data file's gains and references."""

    verdicts: List[ReleaseVerdict]
    gains: tuple = GAINS
    references: tuple = REFERENCES

    @property
    def rows(self) -> List[str]:
        return [case.id for case in tuple(self.gains) + tuple(self.references)]

    @property
    def other_ids(self) -> List[str]:
        return sorted({name for verdict in self.verdicts for name in verdict.other})

    @property
    def conforms(self) -> bool:
        return all(verdict.conforms for verdict in self.verdicts)

    def case(self, case_id: str):
        return next(case for case in tuple(self.gains) + tuple(self.references)
                    if case.id == case_id)

    def stability_records(self, case_id: str) -> List[tuple]:
        """(release name, record) of every stability record of ``case_id``."""
        return [(verdict.release.name, record) for verdict in self.verdicts
                for record in verdict.cells[case_id].stability]


def build_matrix(releases: Sequence[Release], gains=GAINS, references=REFERENCES) -> Matrix:
    return Matrix([judge(release, gains, references) for release in releases], tuple(gains),
                  tuple(references))
