"""What each fan rule of torch's inits preserves in a conv layer, measured and judged.

The expectations are data (``data/conv_modes.toml``): for every conv name of calculate_gain,
groups kind (plain, grouped, depthwise) and fan rule (kaiming's fan_in and fan_out, xavier's
average), the pass a layer preserves and the factor the other changes by, as formulas of the
channels and groups. They are torch's facts -- its fans read from the weight's shape, which
part from the counts a layer sums where groups or a transposed weight are involved
(``gainkit.meanfield.conv``) -- and the unit tests hold every formula to ``ConvGeometry``.

A check (``measure``, ``judge``) initialises torch's own module weight with the real init
(gain calculate_gain(<conv name>) = 1) over independent draws, runs one stride-1 layer with
circular padding (``gainkit.probe.conv_layer``) and compares the mean forward factor
E[y^2]/E[x^2] and backward factor E[dx^2]/E[dy^2] with the data's formulas, on a log scale.

Bands: z standard errors of the single-layer model (``gainkit.meanfield.conv_layer``: weight
noise plus the input noise of a weight-shared layer), z a Bonferroni bound over every
comparison of the file on every device at the stability suite's family-wise rate
(``coverage.FAMILY_ALPHA``). Draws: the fewest that put each +-5% gain control outside its band
with the same confidence (as ``designs.sharpness_draws``); one sample of as many positions as
put the input noise at most at the weight noise (``positions_for``). The ratio estimator's
O(1 / (P C)) bias (below 1e-3 here) and float32 rounding of its pairwise sums are negligible
next to the bands (about +-5%).

dtype: float32 on every device. The fans, and so the factors, do not depend on the dtype; the
init's variance in every dtype is test_init_functions.py's. float64 grouped convolutions run one
kernel per group on the CPU (4 us each), which a depthwise check at these draws multiplies into
the suite's whole budget.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from gainkit.meanfield import conv_layer as layer_model
from gainkit.meanfield.conv import ConvGeometry
from gainkit.suite import designs, variance

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised in the old-Python tox envs
    import tomli as tomllib

PASSES = layer_model.PASSES
PRESERVES = ("forward", "backward", "both", "neither")
FAN_INITS = {
    "fan_in": ("kaiming_normal_fan_in", "kaiming_uniform_fan_in"),
    "fan_out": ("kaiming_normal_fan_out", "kaiming_uniform_fan_out"),
    "fan_avg": ("xavier_normal", "xavier_uniform"),
}
BATCH = 8
RECORD_KIND = "conv_mode"
FORMULA_NAMES = ("C_in", "C_out", "g")


def data_path() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                        "conv_modes.toml")


@dataclass(frozen=True)
class GroupsKind:
    """A [groups.*] entry: the channels of a plain, grouped or depthwise layer."""

    id: str
    in_channels: int
    out_channels: int
    groups_spec: object  # a number, or "in_channels"

    @property
    def groups(self) -> int:
        if self.groups_spec == "in_channels":
            return self.in_channels
        if isinstance(self.groups_spec, bool) or not isinstance(self.groups_spec, int):
            raise ValueError(f"groups.{self.id}: groups must be a number or 'in_channels'")
        return self.groups_spec


@dataclass(frozen=True)
class ModeRow:
    """A [[mode]] table: one layer kind x groups kind x fan rule."""

    layers: Tuple[str, ...]
    groups: str
    fan: str
    inits: Tuple[str, ...]
    preserves: str
    forward: str
    backward: str
    deviation: str = ""
    references: Tuple[str, ...] = ()

    def formula(self, pass_name: str) -> str:
        return self.forward if pass_name == "forward" else self.backward


@dataclass(frozen=True)
class Case:
    """One check: a conv name, a groups kind and an init, with the row that states it."""

    layer: str
    kind: GroupsKind
    init: str
    row: ModeRow
    geometry: ConvGeometry

    @property
    def id(self) -> str:
        return f"{self.layer}-{self.kind.id}-{self.init}"

    @property
    def family(self) -> str:
        return "uniform" if "uniform" in self.init else "normal"

    @property
    def weight_kurtosis(self) -> float:
        return variance.standard_moment(self.family, 4)

    @property
    def module_text(self) -> str:
        geometry = self.geometry
        name = ("ConvTranspose" if geometry.transposed else "Conv") + f"{geometry.dims}d"
        return (f"{name}({geometry.in_channels}, {geometry.out_channels}, "
                f"{tuple(geometry.kernel)}, groups={geometry.groups})")


def transposed(layer: str) -> bool:
    return layer.startswith("conv_transpose")


def geometry_for(layer: str, kind: GroupsKind, kernel: Sequence[int]) -> ConvGeometry:
    return ConvGeometry(kind.in_channels, kind.out_channels, tuple(kernel), kind.groups,
                        transposed(layer))


def _read() -> dict:
    with open(data_path(), encoding="utf-8") as handle:
        return tomllib.loads(handle.read())


def load() -> Tuple[Dict[str, Tuple[int, ...]], Dict[str, GroupsKind], Tuple[ModeRow, ...]]:
    data = _read()
    kernels = {name: tuple(int(k) for k in kernel) for name, kernel in data["kernels"].items()}
    kinds = {name: GroupsKind(name, entry["in_channels"], entry["out_channels"],
                              entry["groups"]) for name, entry in data["groups"].items()}
    rows = []
    for entry in data["mode"]:
        entry = dict(entry)
        for key in ("layers", "inits", "references"):
            if key in entry:
                entry[key] = tuple(entry[key])
        rows.append(ModeRow(**entry))
    return kernels, kinds, tuple(rows)


KERNELS, GROUPS, ROWS = load()


def cases() -> Tuple[Case, ...]:
    """Every (conv name, groups kind, init) the rows state, in the data file's order."""
    found = []
    for row in ROWS:
        kind = GROUPS[row.groups]
        for layer in row.layers:
            geometry = geometry_for(layer, kind, KERNELS[layer])
            found += [Case(layer, kind, init, row, geometry) for init in row.inits]
    return tuple(found)


CASES = cases()


def evaluate(formula: str, geometry: ConvGeometry) -> float:
    """A row's formula at ``geometry``'s channels (C_in, C_out) and groups (g)."""
    names = dict(zip(FORMULA_NAMES, (geometry.in_channels, geometry.out_channels,
                                     geometry.groups)))
    code = compile(formula, "<conv_modes.toml formula>", "eval")
    unknown = set(code.co_names) - set(names)
    if unknown:
        raise ValueError(f"formula {formula!r} uses {', '.join(sorted(unknown))}; "
                         f"only {', '.join(FORMULA_NAMES)} are defined")
    return float(eval(code, {"__builtins__": {}}, names))  # noqa: S307 - names checked above


def expected(case: Case) -> Tuple[float, float]:
    """(forward, backward) factors the data file states for ``case``."""
    return tuple(evaluate(case.row.formula(name), case.geometry) for name in PASSES)


def preserves_text(kept: Sequence[str]) -> str:
    """"forward", "backward", "both" or "neither" for the passes ``kept``."""
    kept = [name for name in PASSES if name in kept]
    return {0: "neither", 2: "both"}.get(len(kept), kept[0] if kept else "neither")


# --- design, measurement, verdict --------------------------------------------------------------

def comparisons() -> int:
    """Two-sided comparisons one check makes: the forward and the backward factor."""
    return len(PASSES)


def suite_z(devices: int) -> float:
    """z for the whole file: every case's comparisons on every device."""
    from gainkit.suite import coverage

    return designs.bonferroni_z(len(CASES) * comparisons() * devices, coverage.FAMILY_ALPHA)


@dataclass(frozen=True)
class Design:
    batch: int
    positions: Tuple[int, ...]
    draws: int
    z: float

    def relative_variance(self, case: Case, pass_name: str) -> float:
        """Var / mean^2 of one draw's factor."""
        return layer_model.relative_variance(case.geometry, pass_name, self.batch,
                                             self.positions, case.weight_kurtosis)

    def half_width(self, case: Case, pass_name: str) -> float:
        """Band half-width on ln(mean factor over the draws)."""
        return self.z * math.sqrt(self.relative_variance(case, pass_name) / self.draws)


def positions_for(case: Case) -> Tuple[int, ...]:
    """Positions per dimension: the fewest the model holds at, the first dimension stretched
    until the input noise is at most the weight noise in both passes (more would add work
    without saving draws; fewer would need more draws, each a call of the init and a group of
    the conv). One sample: positions, not a batch, because torch's CPU transposed convs loop
    over the samples of a batch."""
    geometry = case.geometry
    kurtosis = case.weight_kurtosis
    minimal = layer_model.minimal_positions(geometry)
    weights = (kurtosis - 1.0) / layer_model.weight_count(geometry)
    inputs = max(layer_model.relative_variance(geometry, name, 1, minimal, kurtosis) - weights
                 for name in PASSES)
    stretch = max(1.0, inputs / weights)
    return (max(minimal[0], int(math.ceil(minimal[0] * stretch))),) + tuple(minimal[1:])


def plan(case: Case, z: float, positions: Sequence[int] | None = None,
         draws: int | None = None) -> Design:
    """The design of ``case``; ``positions`` None: ``positions_for``; ``draws`` None: the
    fewest that resolve the +-5% controls, ``|ln c^2| >= 2 z sd / sqrt(S)`` for each control
    factor c and pass."""
    positions = positions_for(case) if positions is None else tuple(positions)
    batch = 1
    if draws is None:
        gap = min(abs(2 * math.log(factor)) for factor in designs.CONTROL_FACTORS)
        worst = max(layer_model.relative_variance(case.geometry, name, batch, positions,
                                                  case.weight_kurtosis) for name in PASSES)
        draws = max(2, int(math.ceil((2 * z * math.sqrt(worst) / gap) ** 2)))
    return Design(batch, positions, int(draws), float(z))


def measure(case: Case, design: Design, device, dtype, seed: int):
    """The probe: ``case``'s init on its module's weight, nominal and the controls."""
    from gainkit.probe import conv_layer, mlp

    init = mlp.torch_init(case.init, case.layer)
    return conv_layer.measure(case.geometry, init, design.draws, design.batch, design.positions,
                              scales=(1.0,) + designs.CONTROL_FACTORS, device=device,
                              dtype=dtype, seed=seed)


@dataclass(frozen=True)
class ModeVerdict:
    problems: Tuple[str, ...]
    record: Dict[str, object]


def judge(case: Case, design: Design, measurement) -> ModeVerdict:
    """Each pass's mean factor against the data's formula; each control outside the band."""
    problems: List[str] = []
    fields: Dict[str, object] = {}
    if tuple(measurement.weight_shape) != tuple(case.geometry.weight_shape):
        problems.append(f"{case.module_text}.weight is {tuple(measurement.weight_shape)}, the "
                        f"data's layout says {case.geometry.weight_shape}")
    measured_means = {}
    for name, wanted, per_draw in zip(PASSES, expected(case),
                                      (measurement.forward, measurement.backward)):
        means = np.asarray(per_draw, dtype=float).mean(axis=1)  # per scale
        measured, half = float(means[0]), design.half_width(case, name)
        measured_means[name] = measured
        centre = math.log(wanted)
        if abs(math.log(measured) - centre) > half:
            problems.append(
                f"{name} factor {measured:.4f}, the data says {case.row.formula(name)} = "
                f"{wanted:.4f} (band x[{math.exp(-half):.4f}, {math.exp(half):.4f}], "
                f"{design.draws} draws, z {design.z:.2f})")
        for scale, factor in enumerate(designs.CONTROL_FACTORS, start=1):
            if abs(math.log(float(means[scale])) - centre) <= half:
                problems.append(f"negative control not rejected: weights x{factor} give a "
                                f"{name} factor {means[scale]:.4f}, inside the band")
        fields.update({f"{name}_measured": measured, f"{name}_expected": wanted,
                       f"{name}_formula": case.row.formula(name),
                       f"{name}_band_lo": wanted * math.exp(-half),
                       f"{name}_band_hi": wanted * math.exp(half),
                       f"{name}_controls": [float(v) for v in means[1:]]})
    measured_kept = [name for name in PASSES if abs(math.log(measured_means[name]))
                     <= design.half_width(case, name)]
    record = dict(fields, layer=case.layer, module=case.module_text, groups_kind=case.kind.id,
                  groups=case.geometry.groups, in_channels=case.geometry.in_channels,
                  out_channels=case.geometry.out_channels, kernel=list(case.geometry.kernel),
                  init=case.init, mode=case.row.fan, preserves=case.row.preserves,
                  measured_preserves=preserves_text(measured_kept),
                  deviation=case.row.deviation, references=list(case.row.references),
                  draws=design.draws, batch=design.batch, positions=list(design.positions),
                  z=design.z, weight_shape=list(measurement.weight_shape),
                  verdict="fail" if problems else "pass")
    return ModeVerdict(tuple(problems), record)
