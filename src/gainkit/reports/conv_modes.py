"""The measured mode-preservation table: which fan rule preserves which pass of a conv layer,
per layer type and groups, from the suite's own ``conv_mode`` records
(``conformance/test_conv_modes.py``). The report (``gainkit.reports.markdown``) and
docs/conv-modes.md show the same table.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

from gainkit.reports.judging import number

RECORD_KIND = "conv_mode"  # gainkit.suite.conv_modes.RECORD_KIND, without importing torch
FAN_LABELS = {"fan_in": "kaiming fan_in", "fan_out": "kaiming fan_out",
              "fan_avg": "xavier (fan_avg)"}
HEADER = ["layer", "groups", "init", "data: preserves", "measured: preserves",
          "forward E[y²]/E[x²]", "backward E[dx²]/E[dy²]", "deviation"]


def mode_records(records: Sequence[dict]) -> List[dict]:
    return [record for record in records if record.get("kind") == RECORD_KIND]


def _factor(groups: List[dict], pass_name: str) -> str:
    first = groups[0]
    measured = ", ".join(number(record[f"{pass_name}_measured"], 4) for record in groups)
    expected = first[f"{pass_name}_expected"]
    formula = first[f"{pass_name}_formula"]
    stated = number(expected, 4) if formula == number(expected, 4) else \
        f"{formula} = {number(expected, 4)}"
    return f"{stated}; measured {measured}"


def _preserves(groups: List[dict]) -> str:
    found = sorted({str(record.get("measured_preserves")) for record in groups})
    verdicts = {record.get("verdict") for record in groups}
    mark = "✅" if verdicts == {"pass"} else "❌"
    return f"{mark} {' / '.join(found)}"


def _deviation(record: dict) -> str:
    if not record.get("deviation"):
        return "—"
    references = ", ".join(record.get("references") or [])
    return f"{record['deviation']} ({references})" if references else record["deviation"]


def table(records: Sequence[dict]) -> List[str]:
    """Markdown lines: one row per layer x groups x fan rule, its inits' measured factors
    (normal, then uniform; every device recorded) against the data's formulas."""
    from gainkit.reports.markdown import markdown_table

    grouped: Dict[Tuple[str, str, str], List[dict]] = {}
    for record in mode_records(records):
        key = (str(record["layer"]), str(record["groups_kind"]), str(record["mode"]))
        grouped.setdefault(key, []).append(record)
    rows = []
    for (layer, kind, fan), group in grouped.items():
        first = group[0]
        rows.append([f"{layer}: {first['module']}", kind, FAN_LABELS.get(fan, fan)
                     + " ({})".format(", ".join(sorted({str(r['init']) for r in group}))),
                     str(first["preserves"]), _preserves(group), _factor(group, "forward"),
                     _factor(group, "backward"), _deviation(first)])
    return markdown_table(HEADER, rows) if rows else []


def summary_line(records: Sequence[dict]) -> str:
    found = mode_records(records)
    passed = sum(record.get("verdict") == "pass" for record in found)
    devices = sorted({str(record.get("device")) for record in found})
    return (f"{passed}/{len(found)} checks pass ({', '.join(devices)}); each factor is the mean "
            "over independent draws of one stride-1 layer with circular padding, gain 1 "
            "(calculate_gain of the conv name); a pass is measured preserved when 1 lies in "
            "its band.")


def section(releases: Sequence[Tuple[str, Sequence[dict]]]) -> List[str]:
    """The report's section: the newest release's table (``releases`` oldest first), and how
    many checks every release passed."""
    measured = [(name, mode_records(records)) for name, records in releases]
    measured = [(name, records) for name, records in measured if records]
    if not measured:
        return []
    name, records = measured[-1]
    lines = ["", "## What each fan mode preserves in a conv layer", "",
             "For every conv name of calculate_gain, plain, grouped and depthwise: the pass "
             "each init's fan rule keeps at factor 1 and what the other pass is multiplied "
             "by, as `data/conv_modes.toml` states it (torch's fans, with its deviations from "
             f"what their names promise) and as release {name} measured it.", ""]
    lines += [f"- {release}: {summary_line(found)}" for release, found in measured]
    return lines + [""] + table(records)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gainkit.reports.conv_modes RESULTS.json``: the table of docs/conv-modes.md
    from one results file; bad input is one line and exit 2."""
    import sys

    from gainkit.reports.judging import ReportInputError, load_release

    arguments = list(sys.argv[1:] if argv is None else argv)
    if len(arguments) != 1:
        sys.stderr.write("usage: python -m gainkit.reports.conv_modes RESULTS.json\n")
        return 2
    try:
        release = load_release(arguments[0], arguments[0])
    except ReportInputError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    lines = table(release.records)
    if not lines:
        sys.stderr.write(f"error: {arguments[0]}: no {RECORD_KIND} records (run "
                         "conformance/test_conv_modes.py with --gainkit-json)\n")
        return 2
    sys.stdout.write(summary_line(release.records) + "\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
