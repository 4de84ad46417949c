"""PNG figures of a conformance report (matplotlib, drawn off-screen with the Agg canvas).

No pyplot: figures are ``matplotlib.figure.Figure`` objects on their own Agg canvas, so
nothing here touches a global backend or needs a display.
"""

from __future__ import annotations

import io
import math
import os
from typing import Dict, List, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FormatStrFormatter, LogFormatterSciNotation, LogLocator, NullFormatter
from PIL import Image  # a dependency of matplotlib

from gainkit import outputs
from gainkit.meanfield import theory
from gainkit.reports import judging, markdown

DPI = 100
STATUS_COLOURS = {
    judging.PASS: "#4caf50",
    judging.DEVIATES: "#e53935",
    judging.MISSING: "#fb8c00",
    judging.NOT_RUN: "#9e9e9e",
    judging.NO_DATA: "#f5f5f5",
}
# gain definition -> (label, colour, line style)
DEFINITION_STYLES = {
    "forward": ("g_f forward (q* = 1)", "#1e88e5", "--"),
    "backward": ("g_b backward", "#fb8c00", "-."),
    "centred": ("g_c centred (NFNet)", "#43a047", ":"),
    "critical": ("critical (χ₁ = 1 at q*)", "#8e24aa", (0, (5, 2, 1, 2, 1, 2))),
}
PALETTE = ("#1e88e5", "#e53935", "#43a047", "#fb8c00", "#8e24aa", "#00897b", "#6d4c41",
           "#546e7a")  # one colour per release
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
PHASE_POINTS = 90  # gains per activation on the phase picture


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str) -> str:
    """PNG with a 256-colour palette: these flat-colour figures lose nothing visible and the
    file shrinks about 3x (reports are committed and shown in READMEs)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight",
                   metadata={"Software": None})
    image = Image.open(buffer).convert("RGB").quantize(colors=256)
    png = io.BytesIO()
    image.save(png, format="PNG", optimize=True)
    outputs.write_bytes(path, png.getvalue(), "--plots")
    return path


def heatmap_grid(matrix: judging.Matrix) -> tuple:
    """(cells as rows of Cell, (y labels, y title), (x labels, x title)) of the heat map.

    Releases run across when there are fewer of them than gains and down the side otherwise,
    so that a fifty-release sweep makes a tall, readable figure rather than a 5000-pixel strip.
    """
    rows, verdicts = matrix.rows, matrix.verdicts
    cells = [[v.cells[row] for v in verdicts] for row in rows]
    gain_axis = (list(rows), "gain (data/gains.toml id)")
    if len(verdicts) <= len(rows):
        release_axis = ([f"{v.release.name}\n{v.release.version}" for v in verdicts],
                        "torch release (results file)")
        return cells, gain_axis, release_axis
    release_axis = ([f"{v.release.name} ({v.release.version})" for v in verdicts],
                    "torch release (results file)")
    return [list(column) for column in zip(*cells)], release_axis, gain_axis


def matrix_heatmap(matrix: judging.Matrix, path: str) -> str:
    """Gains x releases, coloured by each cell's status and labelled with the value."""
    order = list(STATUS_COLOURS)
    cells, (y_labels, y_title), (x_labels, x_title) = heatmap_grid(matrix)
    codes = np.array([[order.index(cell.status) for cell in line] for line in cells])
    figure = _figure(2.2 + 1.05 * len(x_labels), 1.4 + 0.36 * len(y_labels))
    axes = figure.add_subplot(1, 1, 1)
    axes.imshow(codes, cmap=ListedColormap([STATUS_COLOURS[s] for s in order]), vmin=-0.5,
                vmax=len(order) - 0.5, aspect="auto")
    for i, line in enumerate(cells):
        for j, cell in enumerate(line):
            if cell.value is not None:
                text = judging.number(cell.value, 5) + ("*" if cell.patched else "")
            elif cell.status in (judging.MISSING, judging.NOT_RUN):
                text = cell.status
            else:  # a reference gain: no calculate_gain value, show what was measured
                text = "χ₁ " + cell.figures["chi_1"] if "chi_1" in cell.figures else ""
            axes.text(j, i, text, ha="center", va="center", fontsize=7,
                      color="white" if cell.status in (judging.PASS, judging.DEVIATES)
                      else "black")
    axes.set_xticks(range(len(x_labels)))
    axes.set_xticklabels(x_labels, rotation=35, ha="right", fontsize=7)
    axes.set_yticks(range(len(y_labels)))
    axes.set_yticklabels(y_labels, fontsize=8 if len(y_labels) <= 20 else 7)
    axes.set_xlabel(x_title)
    axes.set_ylabel(y_title)
    axes.set_title("calculate_gain across releases (cell text: returned value, * = patched "
                   "in; references: measured χ₁)", fontsize=9)
    present = sorted({cell.status for line in cells for cell in line}, key=order.index)
    axes.legend(handles=[Patch(color=STATUS_COLOURS[s], label=s) for s in present],
                loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title="verdict",
                title_fontsize=8)
    return _save(figure, path)


def chi_curve(act: theory.Activation, gains: np.ndarray) -> tuple:
    """χ₁ at the fixed point reached from q0 = 1 for each gain, and whether that fixed point
    is finite and non-zero (else χ₁ is the limit of a dying or exploding signal).

    A homogeneous activation's χ₁ does not depend on q: it is taken at q0 = 1, as in
    ``theory.analyse``, even where q itself shrinks or grows geometrically.
    """
    if act.homogeneous:
        return np.array([theory.chi(act, gain, 1.0) for gain in gains]), np.ones(len(gains),
                                                                                   bool)
    fixed = [theory.fixed_point(act, gain, 1.0) for gain in gains]
    chis = np.array([theory.chi(act, gain, q) for gain, q in zip(gains, fixed)])
    return chis, np.array([0.0 < q < math.inf for q in fixed])


def _log_ticks(axis, low: float, high: float) -> None:
    """Readable labels on a log axis spanning ``low..high``.

    Up to three decades: plain numbers at 1, 2, 5 x 10^k (the default minor labels, 6x10^-1
    and so on, overlap). Wider: matplotlib's decades, unlabelled minor ticks.
    """
    if high / low <= 1e3:
        axis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FormatStrFormatter("%g"))
    else:
        axis.set_major_locator(LogLocator(base=10.0, numticks=8))
        axis.set_major_formatter(LogFormatterSciNotation())
    axis.set_minor_formatter(NullFormatter())


def _log_axes(axes) -> None:
    _log_ticks(axes.xaxis, *axes.get_xlim())
    _log_ticks(axes.yaxis, *axes.get_ylim())


def _phase_panel(axes, matrix: judging.Matrix, name: str, slope: float | None) -> None:
    act = theory.activation(name, slope)
    definitions = theory.gain_definitions(act)
    cases = [case for case in tuple(matrix.gains) + tuple(matrix.references)
             if case.activation == name and case.slope == slope]
    marked = [g for g in definitions.values() if g] + [markdown.case_gain(c) for c in cases]
    gains = np.geomspace(min(marked) / 2.0, max(marked) * 2.0, PHASE_POINTS)
    chis, finite = chi_curve(act, gains)
    axes.axhspan(1e-12, 1.0, color="#e3f2fd", zorder=0)
    axes.axhspan(1.0, 1e12, color="#ffebee", zorder=0)
    axes.axhline(1.0, color="grey", linewidth=0.8)
    axes.plot(gains, np.where(finite, chis, np.nan), color="black", linewidth=1.6,
              label="χ₁(g) at q*")
    if not finite.all():
        # The limit curve includes its finite neighbours, so the two curves meet.
        near_limit = np.convolve((~finite).astype(int), [1, 1, 1], mode="same") > 0
        axes.plot(gains, np.where(near_limit, chis, np.nan), color="grey",
                  linewidth=1.2, linestyle="--", label="limit: signal dies (q* → 0) or "
                  "blows up (q* → ∞)")
    for key, gain in definitions.items():
        if gain:
            label, colour, style = DEFINITION_STYLES[key]
            axes.axvline(gain, color=colour, linestyle=style, linewidth=1.4, label=label)
    for case in cases:
        gain = markdown.case_gain(case)
        chi_1 = chi_curve(act, np.array([gain]))[0][0]
        is_pytorch = hasattr(case, "nonlinearity")
        axes.plot([gain], [chi_1], marker="o" if is_pytorch else "s", markersize=7,
                  color="#d81b60" if is_pytorch else "#00897b", linestyle="none",
                  label="PyTorch calculate_gain" if is_pytorch else "reference gain")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlim(gains[0], gains[-1])
    low, high = max(chis.min(), 1e-4), min(chis.max(), 1e4)
    axes.set_ylim(min(low, 0.5) / 1.5, max(high, 2.0) * 1.5)
    _log_axes(axes)
    axes.set_title(markdown.activation_label(name, slope), fontsize=10)
    axes.text(0.03, 0.04, "ordered", transform=axes.transAxes, fontsize=7, color="#1565c0")
    axes.text(0.03, 0.90, "chaotic", transform=axes.transAxes, fontsize=7, color="#c62828")
    axes.tick_params(labelsize=7)


def phase_picture(matrix: judging.Matrix, path: str) -> str:
    """χ₁ against gain per activation, PyTorch's gain and the four definitions marked."""
    pairs = markdown.activations(matrix)
    columns = min(4, len(pairs))
    rows = int(math.ceil(len(pairs) / float(columns)))
    figure = _figure(3.0 * columns, 2.6 * rows + 0.9)
    handles: Dict[str, object] = {}
    for index, (name, slope) in enumerate(pairs):
        axes = figure.add_subplot(rows, columns, index + 1)
        _phase_panel(axes, matrix, name, slope)
        if index % columns == 0:
            axes.set_ylabel("χ₁ (gradient factor per layer)", fontsize=8)
        if index >= len(pairs) - columns:
            axes.set_xlabel("gain g (weight std × sqrt(fan))", fontsize=8)
        for handle, label in zip(*axes.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    figure.suptitle("Phase picture: χ₁ = g² E[φ'(√q* z)²] at the forward fixed point "
                    "(q0 = 1); below 1 gradients vanish, above 1 they explode", fontsize=10)
    figure.legend(list(handles.values()), list(handles), loc="lower center",
                  ncol=min(4, len(handles)), fontsize=8, bbox_to_anchor=(0.5, -0.02))
    figure.tight_layout(rect=(0, 0.08, 1, 0.95))
    return _save(figure, path)


def _as_layers(value, depth: int) -> np.ndarray | None:
    """A per-layer list as an array of depth + 1 values; None when it is not one."""
    if isinstance(value, list) and len(value) == depth + 1 and all(
            isinstance(v, (int, float)) and v is not None for v in value):
        return np.array(value, dtype=float)
    return None


def mean_field_profiles(case, depth: int, q0: float = 1.0, q0_backward: float | None = None):
    """Mean-field q_l from ``q0`` and squared gradient g_l from a network started at
    ``q0_backward`` (default ``q0``), with g_depth = 1 (a unit output gradient); l = 0..depth."""
    act = theory.activation(case.activation, case.slope)
    gain = markdown.case_gain(case)
    q, _ = theory.profile(act, gain, q0, depth)
    start = q0 if q0_backward is None else q0_backward
    _, chis = theory.profile(act, gain, start, depth)
    grad = np.ones(depth + 1)
    for layer in range(depth - 1, -1, -1):
        grad[layer] = chis[layer] * grad[layer + 1]
    return q, grad


def _positive(values: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(values)) and np.all(values > 0))


def _scale(axes, arrays: Sequence[np.ndarray]) -> None:
    # Log scale where the quantity changes by more than 10x over depth; a flat profile
    # reads better on a linear axis.
    values = np.concatenate([a for a in arrays if a is not None and _positive(a)] or [[1.0]])
    if values.max() / values.min() > 10.0:
        axes.set_yscale("log")
        _log_ticks(axes.yaxis, values.min(), values.max())


def _representatives(records: List[tuple]) -> List[tuple]:
    """One (release name, record) per release, all of the same setup: profile checks before
    the claims' deeper networks, the forum's xavier_normal on CPU in float32 first."""
    usable = [(name, record) for name, record in records
              if isinstance(record.get("depth"), int)
              and _as_layers(record.get("measured_q"), record["depth"]) is not None]
    if not usable:
        return []

    def rank(item):
        record = item[1]
        return (record.get("check") == "claim", record.get("init") != "xavier_normal",
                record.get("device") != "cpu", record.get("dtype") != "float32")

    keys = ("check", "init", "device", "dtype", "depth")
    chosen = min(usable, key=rank)[1]
    setup = tuple(chosen.get(key) for key in keys)
    picked, seen = [], set()
    for name, record in usable:
        if name not in seen and tuple(record.get(key) for key in keys) == setup:
            seen.add(name)
            picked.append((name, record))
    return picked


def _identical_profiles(usable: List[tuple], depth: int) -> List[tuple]:
    """(label, record) per distinct measured profile, in release order.

    Releases whose RNG draws the same weights measure the same profiles to the last bit; a
    sweep of fifty releases then draws one line with one legend entry, not fifty.
    """
    groups: List[tuple] = []
    for name, record in usable:
        profile = [_as_layers(record.get(k), depth) for k in ("measured_q", "measured_grad")]
        for names, _, seen in groups:
            if all(a is None and b is None or a is not None and b is not None
                   and np.array_equal(a, b) for a, b in zip(profile, seen)):
                names.append(name)
                break
        else:
            groups.append(([name], record, profile))
    labels = []
    for names, record, _ in groups:
        label = ", ".join(names) if len(names) <= 3 else (
            f"{names[0]}, …, {names[-1]} ({len(names)} releases, identical)")
        labels.append((label, record))
    return labels


def _positive_number(value) -> bool:
    return isinstance(value, (int, float)) and 0.0 < value < math.inf


def depth_profile(case, records: List[tuple], path: str) -> str | None:
    """Measured q_l and squared gradient per layer, one line per release, against the
    finite-width prediction (with its band) and the mean-field curve.

    ``records``: (release name, stability record). None when no record has profiles.
    """
    usable = _representatives(records)
    if not usable:
        return None
    first_name, first = usable[0]
    depth = first["depth"]
    layers = np.arange(depth + 1)
    mean_q, mean_grad = mean_field_profiles(
        case, depth, float(first.get("q0", 1.0)),
        float(first["q_star"]) if _positive_number(first.get("q_star")) else None)
    # A record's own mean-field curves win: a conv stack's factors are its term counts times
    # what the init drew (the module default's 1/3), which the gain alone does not give.
    recorded_q = _as_layers(first.get("mean_field_q"), depth)
    recorded_grad = _as_layers(first.get("mean_field_grad"), depth)
    panels = (("q", "pre-activation second moment q_l = mean h_l²",
               mean_q if recorded_q is None else recorded_q),
              ("grad", "squared gradient: mean (∂L/∂h_l)²",
               mean_grad if recorded_grad is None else recorded_grad))
    figure = _figure(9.0, 3.6)
    for index, (key, label, theory_curve) in enumerate(panels):
        axes = figure.add_subplot(1, 2, index + 1)
        drawn = [theory_curve]
        band = _band(first, key, depth)
        if band is not None:
            axes.fill_between(layers, band[0], band[1], color="#90caf9", alpha=0.45,
                              linewidth=0, label="band: ±{} standard errors ({})".format(
                                  judging.number(first.get("z"), 3), first_name))
            drawn += list(band)
        predicted = _as_layers(first.get("predicted_" + key), depth)
        if predicted is not None:
            axes.plot(layers, predicted, color="#0d47a1", linestyle=":", linewidth=1.6,
                      label="finite-width prediction (geometric mean)")
            drawn.append(predicted)
        axes.plot(layers, theory_curve, color="black", linestyle="--", linewidth=1.4,
                  label="mean field (width → ∞)")
        for number, (names, record) in enumerate(_identical_profiles(usable, depth)):
            measured = _as_layers(record.get("measured_" + key), depth)
            if measured is not None:
                drawn.append(measured)
                # Profiles that differ only slightly would hide each other: shrinking hollow
                # markers keep them visible as nested symbols.
                axes.plot(layers, measured, color=PALETTE[number % len(PALETTE)],
                          linewidth=1.0, marker=MARKERS[number % len(MARKERS)],
                          markersize=max(2.5, 6.5 - 1.3 * number), markerfacecolor="none",
                          markevery=max(1, depth // 25), label=f"measured: {names}")
        _scale(axes, drawn)
        axes.set_xlabel("layer l (0 = input)")
        axes.set_ylabel(label, fontsize=8)
        axes.tick_params(labelsize=7)
    # One legend under both panels: they draw the same entries, and inside an axes a long
    # list of releases would cover the curves.
    entries: Dict[str, object] = {}
    for panel in figure.axes:
        for handle, text in zip(*panel.get_legend_handles_labels()):
            entries.setdefault(text, handle)
    figure.legend(list(entries.values()), list(entries), loc="upper center",
                  bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=6.5, frameon=False)
    # A conv stack's width is its channel count.
    names = {"width": "channels"} if "layer" in first else {}
    setup = ", ".join(f"{names.get(k, k)} {first[k]}" for k in ("layer", "init", "width", "draws",
                                                                "device", "dtype") if k in first)
    gain = judging.number(markdown.case_gain(case), 6)
    figure.suptitle(f"{case.id} (gain {gain}): depth profiles; {setup}; geometric means over "
                    "draws", fontsize=9)
    figure.tight_layout(rect=(0, 0, 1, 0.93))
    return _save(figure, path)


def _band(record: dict, key: str, depth: int) -> tuple | None:
    """(low, high) per layer of quantity ``key`` ("q" or "grad"), if the record has one."""
    for low_key, high_key in ((f"band_{key}_lo", f"band_{key}_hi"),
                              ("band_lo", "band_hi") if key == "q" else (None, None)):
        if low_key is None:
            continue
        low = _as_layers(record.get(low_key), depth)
        high = _as_layers(record.get(high_key), depth)
        if low is not None and high is not None:
            return low, high
    return None


def write_all(matrix: judging.Matrix, folder: str) -> Dict[str, str]:
    """Every figure of the report into ``folder``; keys as ``markdown.markdown`` expects."""
    os.makedirs(folder, exist_ok=True)
    written = {"matrix": matrix_heatmap(matrix, os.path.join(folder, "matrix.png")),
               "phase": phase_picture(matrix, os.path.join(folder, "phase.png"))}
    for case_id in matrix.rows:
        path = depth_profile(matrix.case(case_id), matrix.stability_records(case_id),
                             os.path.join(folder, f"profile-{case_id}.png"))
        if path:
            written["profile:" + case_id] = path
    return written
