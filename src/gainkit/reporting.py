"""Merge the conformance suite's JSON results into one verdict per release and gain.

Each results file is one torch release (``pytest conformance --gainkit-json``). A release
conforms when every record's verdict is "pass", every record that can be re-checked against
``data/gains.toml`` agrees with it, no test failed, and every gain of the data file returned
its value (after patching, older releases must have it too). Anything else is a deviation.

Plots live in ``gainkit.plots``; this module imports no matplotlib, so the Markdown report
and the exit status work without it.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Sequence

from gainkit import theory
from gainkit.expectations import GAINS, REFERENCES, version_tuple

PASS = "pass"
# Cell statuses, worst first: a cell shows the worst status among its findings.
MISSING = "missing"  # calculate_gain raised: the gain does not exist in that release
DEVIATES = "deviates"
NOT_RUN = "not run"  # a gain of the data file without a value record
NO_DATA = "no data"  # a reference gain nobody measured (not a deviation)
STATUS_ORDER = (MISSING, DEVIATES, NOT_RUN, PASS, NO_DATA)
SAME_DIGITS = 1e-6  # relative: releases that agree this closely drew the same weights
FINDINGS_SHOWN = 5  # per row and release in the report; the rest are counted
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
    """The JSON files named by ``paths``: files as given, directories' ``*.json`` sorted."""
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
    return found


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


def case_gain(case) -> float:
    return case.value if hasattr(case, "value") else case.gain


def mean_field(case) -> theory.MeanField:
    return theory.analyse(theory.activation(case.activation, case.slope), case_gain(case))


def _rate_text(chi_1: float) -> str:
    if chi_1 < 1.0:
        return f"shrinks {number(1.0 / chi_1, 3)}x a layer"
    return f"grows {number(100.0 * (chi_1 - 1.0), 3)}% a layer"


def depth_10x(chi_1: float) -> float:
    """Layers over which a quantity multiplied by ``chi_1`` per layer changes 10x."""
    return math.log(10.0) * theory.depth_scale(chi_1)


def theory_text(case) -> str:
    """Mean-field regime, gradient rate and forward fixed point of ``case`` in one sentence."""
    field = mean_field(case)
    if field.regime == "critical":
        gradient = ("χ₁ = 1, so the mean squared gradient keeps its scale at any depth (mean "
                    "field); at width N it spreads like exp(±3 sqrt(κ L / N)) with κ = "
                    + number(field.kappa_backward, 3))
    else:
        gradient = (f"χ₁ = {number(field.chi_1, 5)}: the mean squared gradient "
                    f"{_rate_text(field.chi_1)}, 10x in {number(field.depth_10x, 3)} layers")
    act = theory.activation(case.activation, case.slope)
    if act.homogeneous:
        keeps = abs(field.slope - 1.0) < theory.CRITICAL_TOLERANCE
        forward = ("the forward pass keeps q" if keeps else
                   f"the forward pass multiplies q by {number(field.slope, 4)} a layer")
    elif field.q_star in (0.0, math.inf):
        forward = "the forward signal {}".format("dies" if field.q_star == 0.0 else "blows up")
    else:
        forward = (f"the forward pass settles at q* = {number(field.q_star, 4)} (activation "
                   f"RMS {number(field.post_rms, 4)}), approaching it by a factor e every "
                   f"{number(field.xi_q, 3)} layers")
    return f"**{field.regime}** — {gradient}; {forward}."


def _span(values: Sequence[float], digits: int = 4) -> str:
    low, high = number(min(values), digits), number(max(values), digits)
    return low if low == high else f"{low}–{high}"


def measured_text(matrix: Matrix, case_id: str) -> str:
    """What the stability records measured for ``case_id`` across releases, in one sentence."""
    records = matrix.stability_records(case_id)
    if not records:
        return "No stability measurement in these results."
    setups = {tuple(r.get(k) for k in ("init", "device", "dtype", "depth")) for _, r in records}
    passed = sum(1 for _, r in records if r.get("verdict") == PASS)
    releases = len({name for name, _ in records})
    text = (f"Measured on {releases} release{'s' * (releases != 1)} in {len(setups)} "
            f"setup{'s' * (len(setups) != 1)} (init × device × dtype): {passed} of "
            f"{len(records)} checks within their bands")
    chis = [r["chi_1_measured"] for _, r in records
            if isinstance(r.get("chi_1_measured"), (int, float)) and r["chi_1_measured"] > 0]
    if chis:
        field = mean_field(matrix.case(case_id))
        theory_depth = layers_text(field.depth_10x)
        text += f"; χ₁ {_span(chis)} (theory {number(field.chi_1, 5)})"
        if min(chis) < 1.0 < max(chis):
            shortest = layers_text(min(depth_10x(chi) for chi in chis))
            text += (f": on both sides of 1, so gradients change 10x after no fewer than "
                     f"{shortest} layers (theory {theory_depth})")
        else:
            depths = [layers_text(depth_10x(chi)) for chi in (min(chis), max(chis))]
            span = depths[0] if depths[0] == depths[1] else "–".join(sorted(depths, key=float))
            text += f", so gradients change 10x after {span} layers (theory {theory_depth})"
    if _same_on_every_release(records):
        text += ("; every release measured the same χ₁ to 6 digits (same seeds, same draws: "
                 "only float rounding differs)")
    return text + "."


def _same_on_every_release(records: Sequence[tuple]) -> bool:
    per_release: Dict[str, List[float]] = {}
    for name, record in records:
        value = record.get("chi_1_measured")
        per_release.setdefault(name, []).append(value if isinstance(value, float) else math.nan)
    lists = list(per_release.values())
    return len(lists) > 1 and all(
        len(other) == len(lists[0]) and all(
            math.isclose(a, b, rel_tol=SAME_DIGITS) for a, b in zip(lists[0], other))
        for other in lists[1:])


def layers_text(layers: float) -> str:
    """A depth in layers: whole layers from 100 on, else 3 significant digits."""
    if math.isinf(layers):
        return "∞"
    return f"{layers:.0f}" if layers >= 100 else number(layers, 3)


def values_text(matrix: Matrix, case_id: str) -> str:
    statuses: Dict[str, List[str]] = {}
    for verdict in matrix.verdicts:
        statuses.setdefault(verdict.cells[case_id].status, []).append(verdict.release.name)
    if list(statuses) == [PASS]:
        count = len(matrix.verdicts)
        return f"Conforms on all {count} releases." if count > 1 else "Conforms on the one release."
    parts = ["{} on {}".format(status, ", ".join(names))
             for status, names in sorted(statuses.items(),
                                         key=lambda item: STATUS_ORDER.index(item[0]))]
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


STATUS_MARK = {PASS: "✅ pass", DEVIATES: "❌ deviates", MISSING: "⛔ missing",
               NOT_RUN: "⚠️ not run", NO_DATA: "—"}
FIGURE_LABELS = (("value", "{}"), ("init", "init {}"), ("stability", "stability {}"),
                 ("chi_1", "χ₁ {}"))


def cell_text(cell: Cell) -> str:
    lines = [STATUS_MARK[cell.status]]
    lines += [label.format(cell.figures[key]) for key, label in FIGURE_LABELS
              if key in cell.figures]
    known = {key for key, _ in FIGURE_LABELS}
    lines += [f"{key} {value}" for key, value in sorted(cell.figures.items())
              if key not in known]
    return "<br>".join(lines)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ")
                                 for c in cells) + " |"
    return [line(header), "|" + "---|" * len(header)] + [line(row) for row in rows]


def _image(plots: Dict[str, str], key: str, alt: str) -> List[str]:
    return ["", f"![{alt}]({plots[key]})", ""] if key in plots else []


def matrix_table(matrix: Matrix) -> List[str]:
    header = ["gain"] + [f"{v.release.name}<br>torch {v.release.version}"
                         for v in matrix.verdicts]
    rows = []
    for case_id in matrix.rows:
        case = matrix.case(case_id)
        label = f"{case_id} = {number(case_gain(case), 6)}"
        if not hasattr(case, "nonlinearity"):
            label += " (reference)"
        rows.append([label] + [cell_text(v.cells[case_id]) for v in matrix.verdicts])
    return _table(header, rows)


def releases_table(matrix: Matrix) -> List[str]:
    rows = []
    for verdict in matrix.verdicts:
        release, counts = verdict.release, verdict.outcome_counts
        rows.append([
            release.name, release.version, (release.torch.get("git_version") or "—")[:12],
            release.torch.get("python") or "—", ", ".join(release.devices) or "—",
            number(release.seed), "{} / {} / {}".format(counts.get("passed", 0),
                                                         counts.get("failed", 0),
                                                         counts.get("skipped", 0)),
            str(len(release.records)),
            "✅ conforms" if verdict.conforms else
            "❌ {} deviation{}".format(len(verdict.findings), "s" * (len(verdict.findings) != 1)),
        ])
    return _table(["results", "torch", "git", "python", "devices", "seed",
                   "tests passed / failed / skipped", "records", "verdict"], rows)


def other_records_table(matrix: Matrix) -> List[str]:
    rows = []
    for case_id in matrix.other_ids:
        rows.append([case_id] + [cell_text(v.other[case_id]) if case_id in v.other else "—"
                                 for v in matrix.verdicts])
    return _table(["record"] + [v.release.name for v in matrix.verdicts], rows)


def summary_line(matrix: Matrix) -> str:
    deviating = [v.release.name for v in matrix.verdicts if not v.conforms]
    total = len(matrix.verdicts)
    if not deviating:
        return "**All {} release{} conform.**".format(total, "s" * (total != 1))
    return "**{} of {} release{} deviate{}: {}.**".format(
        len(deviating), total, "s" * (total != 1), "s" * (len(deviating) == 1),
        ", ".join(deviating))


def markdown(matrix: Matrix, plots: Dict[str, str] | None = None) -> str:
    """The report. ``plots`` maps "matrix", "phase" and "profile:<id>" to image paths
    relative to the report."""
    plots = plots or {}
    lines = ["# gainkit conformance report: torch.nn.init.calculate_gain", "",
             summary_line(matrix), "",
             "Rows are the gains of `gainkit/data/gains.toml`, columns the torch releases. "
             "A cell shows the verdict, the value calculate_gain returned, how many "
             "initialisation-variance and deep-network stability checks passed, and the "
             "measured per-layer gradient factor χ₁.", "", "## Cross-release matrix", ""]
    lines += matrix_table(matrix)
    lines += _image(plots, "matrix", "heat map of the cross-release matrix")
    lines += ["", "## Releases", ""] + releases_table(matrix)
    lines += ["", "## Deviations", ""]
    for verdict in matrix.verdicts:
        if verdict.conforms:
            continue
        lines += [f"### {verdict.release.name} (torch {verdict.release.version})", ""]
        for name, texts in verdict.findings_by_row():
            prefix = "" if name is None else f"{name}: "
            lines += [f"- {prefix}{text}" for text in texts[:FINDINGS_SHOWN]]
            if len(texts) > FINDINGS_SHOWN:
                lines.append(f"- {prefix}… and {len(texts) - FINDINGS_SHOWN} more")
        lines.append("")
    if matrix.conforms:
        lines += ["None: every record passed and every gain returned its documented value.", ""]
    lines += ["## Gains", ""]
    networks: Dict[tuple, str] = {}  # (activation, slope, gain) -> first case id
    for case_id in matrix.rows:
        case = matrix.case(case_id)
        network = (case.activation, case.slope, case_gain(case))
        lines += [f"### {case_id} (gain {number(case_gain(case), 6)})", ""]
        if network in networks and not matrix.stability_records(case_id):
            lines += [f"Same network as {networks[network]} (a {case.activation} MLP at gain "
                      f"{number(case_gain(case), 6)}): see there."]
        else:
            networks.setdefault(network, case_id)
            lines += [theory_text(case), "", measured_text(matrix, case_id)]
        if hasattr(case, "nonlinearity"):
            lines += ["", values_text(matrix, case_id)]
        for note in (getattr(case, "deviation", ""), case.claim):
            if note:
                lines += ["", f"*{note}*"]
        lines += _image(plots, "profile:" + case_id, f"depth profiles of {case_id}") + [""]
    lines += ["## Phase picture", "",
              "χ₁ (the per-layer factor of the mean squared gradient at the forward fixed "
              "point) against the gain, for each activation of the data file; below 1 "
              "gradients vanish (ordered), above 1 they explode (chaotic)."]
    lines += _image(plots, "phase", "chi_1 against gain for each activation")
    lines += definitions_table(matrix)
    if matrix.other_ids:
        lines += ["", "## Other records", ""] + other_records_table(matrix)
    return "\n".join(lines).rstrip() + "\n"


def activations(matrix: Matrix) -> List[tuple]:
    """The distinct (activation, slope) pairs of the data file, in its order."""
    seen: List[tuple] = []
    for case in tuple(matrix.gains) + tuple(matrix.references):
        if (case.activation, case.slope) not in seen:
            seen.append((case.activation, case.slope))
    return seen


def activation_label(name: str, slope: float | None) -> str:
    return name if slope is None else f"{name}({number(slope)})"


def definitions_table(matrix: Matrix) -> List[str]:
    rows = []
    for name, slope in activations(matrix):
        act = theory.activation(name, slope)
        definitions = theory.gain_definitions(act)
        pytorch = [case for case in matrix.gains
                   if case.activation == name and case.slope == slope]
        value = pytorch[0].value if pytorch else None
        rows.append([activation_label(name, slope), number(value)]
                    + [number(definitions[key]) for key in ("forward", "backward", "centred",
                                                           "critical")]
                    + [number(theory.analyse(act, value).chi_1, 5) if value else "—"])
    return [""] + _table(["activation", "PyTorch gain", "g_f (forward)", "g_b (backward)",
                          "g_c (centred)", "critical", "χ₁ at PyTorch's gain"], rows)
