"""The Markdown report of judged releases (a ``gainkit.reports.judging.Matrix``): the cross-release
matrix, the releases and their deviations, and per gain its mean-field regime and what the
stability records measured. The figures (``gainkit.reports.plots``) take their labels from here
(``case_gain``, ``activations``, ``activation_label``), so text and plots name things alike.

This module imports no matplotlib, so the Markdown report works without it.
"""

from __future__ import annotations

import math
from typing import Dict, List, Sequence

from gainkit.meanfield import theory
from gainkit.reports import conv_modes
from gainkit.reports.judging import (
    DEVIATES,
    MISSING,
    NO_DATA,
    NOT_RUN,
    PASS,
    STATUS_ORDER,
    Cell,
    Matrix,
    number,
)

SAME_DIGITS = 1e-6  # relative: releases that agree this closely drew the same weights
FINDINGS_SHOWN = 5  # per row and release in the report; the rest are counted


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
    setups = {tuple(r.get(k) for k in ("init", "device", "dtype", "depth")) for _, r in records
              if r.get("check") != POOLED_CHECK}
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
            # sorted as numbers: a chi_1 of exactly 1 (orthogonal linear) is an infinite depth
            depths = [layers_text(depth) for depth in sorted(depth_10x(chi)
                                                             for chi in (min(chis), max(chis)))]
            span = depths[0] if depths[0] == depths[1] else "–".join(depths)
            text += f", so gradients change 10x after {span} layers (theory {theory_depth})"
    text += _pooled_regime_text(records)
    if _same_on_every_release(records):
        text += ("; every release measured the same χ₁ to 6 digits (same seeds, same draws: "
                 "only float rounding differs)")
    return text + "."


POOLED_CHECK = "regime"  # a stability record judging a gain's regime on every init pooled


def _pooled_regime_text(records: Sequence[tuple]) -> str:
    pooled = [r for _, r in records if r.get("check") == POOLED_CHECK]
    if not pooled:
        return ""
    regimes = sorted({str(r.get("regime")) for r in pooled})
    passed = sum(1 for r in pooled if r.get("verdict") == PASS)
    bands = [b for r in pooled for b in r.get("chi_1_band") or ()
             if isinstance(b, (int, float))]
    text = (f"; the regime, judged on the slopes of every init pooled, "
            f"{' or '.join(regimes)}: {passed} of {len(pooled)} (release × device × dtype)")
    if bands:
        text += f" with χ₁ bands within {_span(bands)}"
    return text


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
                 ("chi_1", "χ₁ {}"), ("known", "{}"))


def cell_text(cell: Cell) -> str:
    lines = [STATUS_MARK[cell.status]]
    lines += [label.format(cell.figures[key]) for key, label in FIGURE_LABELS
              if key in cell.figures]
    known = {key for key, _ in FIGURE_LABELS}
    lines += [f"{key} {value}" for key, value in sorted(cell.figures.items())
              if key not in known]
    return "<br>".join(lines)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    """A Markdown table; a cell's "|" is escaped and a newline becomes a space."""
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
    return markdown_table(header, rows)


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
    return markdown_table(["results", "torch", "git", "python", "devices", "seed",
                   "tests passed / failed / skipped", "records", "verdict"], rows)


def other_records_table(matrix: Matrix) -> List[str]:
    rows = []
    for case_id in matrix.other_ids:
        rows.append([case_id] + [cell_text(v.other[case_id]) if case_id in v.other else "—"
                                 for v in matrix.verdicts])
    return markdown_table(["record"] + [v.release.name for v in matrix.verdicts], rows)


def summary_line(matrix: Matrix) -> str:
    deviating = [v.release.name for v in matrix.verdicts if not v.conforms]
    total = len(matrix.verdicts)
    if not deviating:
        return f"**All {total} releases conform.**" if total != 1 else \
            "**The one release conforms.**"
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
    lines += known_deviations_section(matrix)
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
    lines += default_stacks_section(matrix)
    lines += conv_modes.section([(v.release.name, v.release.records) for v in matrix.verdicts])
    if matrix.other_ids:
        lines += ["", "## Other records", ""] + other_records_table(matrix)
    return "\n".join(lines).rstrip() + "\n"


def known_deviations_section(matrix: Matrix) -> List[str]:
    """Known deviations of torch's random kernels (gains.toml's [[kernel_deviation]]) that the
    suite measured: reported, not counted against a release."""
    lines = []
    for verdict in matrix.verdicts:
        known = [(name, text) for name, cell in verdict.cells.items() for text in cell.known]
        if known:
            lines += [f"### Known kernel deviations in {verdict.release.name} "
                      f"(torch {verdict.release.version})", ""]
            lines += [f"- {name}: {text}" for name, text in known[:FINDINGS_SHOWN]]
            if len(known) > FINDINGS_SHOWN:
                lines.append(f"- … and {len(known) - FINDINGS_SHOWN} more")
            lines.append("")
    return lines


def default_stacks_section(matrix: Matrix) -> List[str]:
    """What nn.Linear's own default does to a deep stack, per activation: the mean-field
    account (gainkit.suite.default_stacks) and each release's measured chi_1 and verdict."""
    from gainkit.suite import default_stacks

    measured: Dict[str, Dict[str, dict]] = {}
    for verdict in matrix.verdicts:
        for record in verdict.release.records:
            if record.get("kind") == "default_stack":
                measured.setdefault(str(record["case_id"]), {}).setdefault(
                    verdict.release.name, record)
    if not measured:
        return []
    names = [v.release.name for v in matrix.verdicts]
    rows = []
    for case in default_stacks.CASES:
        records = measured.get(default_stacks.record_id(case), {})
        stack = default_stacks.summary(case, next(iter(records.values()))["width"]
                                       if records else default_stacks.WIDTH)
        cells = ["—" if name not in records else "{} χ₁ {} (mean field {})".format(
            "✅" if records[name].get("verdict") == PASS else "❌",
            number(records[name]["chi_1_measured"], 4),
            number(records[name]["chi_1_predicted"], 4)) for name in names]
        rows.append([case.id, stack.sentence()] + cells)
    return ["", "## Module defaults in deep networks", "",
            "Deep square stacks of nn.Linear layers as they initialise themselves "
            "(`kaiming_uniform_(a=sqrt(5))`: implied gain 1/√3, and biases of variance "
            "1/(3 fan_in)), one per activation of calculate_gain's list; mean field with the "
            "biases in the length map, and the χ₁ each release measured past the first layers "
            "(against mean field at the same layers: the floor q* is reached later than "
            "the stack is deep for selu).", ""] + markdown_table(
                ["activation", "mean field"] + names, rows)


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
    return [""] + markdown_table(["activation", "PyTorch gain", "g_f (forward)", "g_b (backward)",
                          "g_c (centred)", "critical", "χ₁ at PyTorch's gain"], rows)
