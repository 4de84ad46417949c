"""The expected behaviour of every gain, read from ``data/gains.toml``."""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, replace
from typing import Dict, Tuple

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised in the old-Python tox envs
    import tomli as tomllib

_MISSING = object()
NETWORKS = ("mlp", "conv")  # the deep networks a gain's stability checks can build

# The device x dtype instances of every device-generic conformance test. float64 CUDA kernels are
# not what users train with, and they double the CUDA time. The suite's Bonferroni counts use
# len(DEVICE_DTYPES), so they follow this list.
DEVICE_DTYPES = (("cpu", "float32"), ("cpu", "float64"), ("cuda", "float32"))
# The half-precision dtypes the init-function checks also draw in, on every device: what
# mixed-precision code initialises. torch 1.0 has no bfloat16, and CPU random kernels for it
# came later (1.7.1 has uniform_ but no normal_): those instances skip and say so.
REDUCED_PRECISION = ("float16", "bfloat16")


def _evaluate(expression: str) -> float:
    # The data file states values as readable expressions ("5 / 3", "math.sqrt(2)").
    return eval(expression, {"__builtins__": {}, "math": math})  # noqa: S307


@dataclass(frozen=True)
class GainCase:
    """One documented ``calculate_gain`` value and what it should do to a deep network."""

    id: str
    nonlinearity: str
    value: float
    type: str
    since: str
    activation: str
    regime: str
    stability: bool
    param: object = _MISSING
    network: str = "mlp"  # which stability suite builds its network: "mlp" or "conv"
    slope: float | None = None
    deviation: str = ""
    claim: str = ""
    doc_row: str = ""

    def __post_init__(self):
        if self.network not in NETWORKS:
            raise ValueError(f"gain {self.id}: network {self.network!r}, expected one of "
                             f"{', '.join(NETWORKS)}")

    @property
    def has_param(self) -> bool:
        return self.param is not _MISSING

    def call_args(self) -> tuple:
        """Positional arguments for ``calculate_gain``."""
        return (self.nonlinearity, self.param) if self.has_param else (self.nonlinearity,)

    @property
    def since_tuple(self) -> Tuple[int, ...]:
        return version_tuple(self.since)


@dataclass(frozen=True)
class ReferenceCase:
    """A gain outside ``calculate_gain`` that the suite checks for comparison."""

    id: str
    activation: str
    gain: float
    regime: str
    source: str
    slope: float | None = None
    claim: str = ""


@dataclass(frozen=True)
class Example:
    """An argument to calculate_gain, written in the data file as a Python expression."""

    id: str
    value: str

    def evaluate(self):
        """The argument itself (expressions may use ``math``, ``numpy`` and ``torch``)."""
        import numpy
        import torch

        # Full builtins: torch.tensor imports lazily and needs __import__.
        namespace = {"math": math, "numpy": numpy, "torch": torch}
        return eval(self.value, namespace)  # noqa: S307 - the project's own data file


@dataclass(frozen=True)
class Calling:
    """How calculate_gain treats its arguments and what it raises ([calling])."""

    unsupported_message: str
    invalid_slope_message: str
    default_slope: float
    unsupported_names: Tuple[str, ...]
    accepted_slopes: Tuple[Example, ...]
    rejected_slopes: Tuple[Example, ...]
    ignored_params: Tuple[Example, ...]


@dataclass(frozen=True)
class Docstring:
    """What calculate_gain's docstring must say ([docstring]; table rows: ``doc_row``)."""

    selu_warning_since: str
    selu_warning_source: str

    @property
    def selu_warning_since_tuple(self) -> Tuple[int, ...]:
        return version_tuple(self.selu_warning_since)


@dataclass(frozen=True)
class Arguments:
    """The arguments the random inits take besides the gain ([arguments])."""

    generator_since: str
    generator_source: str
    generator_inits: Tuple[str, ...]
    generator_deviations: Dict[str, str]  # init -> what of its draw ignores the generator

    @property
    def generator_since_tuple(self) -> Tuple[int, ...]:
        return version_tuple(self.generator_since)


def version_tuple(version: str) -> Tuple[int, ...]:
    """``'1.7.1+cu101'`` -> ``(1, 7, 1)``."""
    core = version.split("+")[0]
    parts = []
    for piece in core.split(".")[:3]:
        digits = ""
        for char in piece:
            if not char.isdigit():
                break
            digits += char
        parts.append(int(digits or 0))
    return tuple(parts)


def data_path() -> str:
    """Where the expectations are read from (``gainkit/data/gains.toml``)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                        "gains.toml")


def _read_data() -> dict:
    with open(data_path(), encoding="utf-8") as handle:
        return tomllib.loads(handle.read())


def load() -> Tuple[Tuple[GainCase, ...], Tuple[ReferenceCase, ...], Calling, Docstring,
                    Arguments]:
    data = _read_data()
    gains = []
    for row in data["gain"]:
        row = dict(row)
        row["value"] = _evaluate(row["value"])
        gains.append(GainCase(**row))
    references = []
    for row in data.get("reference", []):
        row = dict(row)
        row["gain"] = _evaluate(row["gain"])
        references.append(ReferenceCase(**row))
    calling = dict(data["calling"])
    for key in ("accepted_slopes", "rejected_slopes", "ignored_params"):
        calling[key] = tuple(Example(**row) for row in calling[key])
    calling["unsupported_names"] = tuple(calling["unsupported_names"])
    arguments = dict(data["arguments"])
    arguments["generator_inits"] = tuple(arguments["generator_inits"])
    arguments["generator_deviations"] = dict(arguments.get("generator_deviations", {}))
    return (tuple(gains), tuple(references), Calling(**calling),
            Docstring(**data["docstring"]), Arguments(**arguments))


GAINS, REFERENCES, CALLING, DOCSTRING, ARGUMENTS = load()


@dataclass(frozen=True)
class KernelDeviation:
    """A random kernel drawing the wrong distribution in some releases ([[kernel_deviation]])."""

    kernel: str
    device: str
    dtype: str
    since: str
    statistic: str
    reference: str
    what: str
    until: str | None = None

    def applies(self, kernel: str, device: str, dtype: str, version: Tuple[int, ...]) -> bool:
        return (kernel == self.kernel and device.split(":")[0] == self.device
                and dtype == self.dtype and version_tuple(self.since) <= version
                and (self.until is None or version < version_tuple(self.until)))

    def describe(self) -> str:
        until = f" before {self.until}" if self.until else ""
        return (f"known deviation of torch {self.since}{until}, {self.device} {self.dtype} "
                f"{self.kernel} ({self.reference}): {self.what}")


def load_kernel_deviations() -> Tuple[KernelDeviation, ...]:
    return tuple(KernelDeviation(**row) for row in _read_data().get("kernel_deviation", []))


KERNEL_DEVIATIONS = load_kernel_deviations()


def kernel_deviations(kernel: str, device: str, dtype: str,
                      version: Tuple[int, ...]) -> Dict[str, str]:
    """statistic -> why it is reported, not asserted, for draws of ``kernel`` there."""
    return {deviation.statistic: deviation.describe() for deviation in KERNEL_DEVIATIONS
            if deviation.applies(kernel, device, dtype, version)}


def first_per_value(cases) -> list:
    """The first case of each distinct value: an init that takes the gain as a number needs
    one case per value, not one per name."""
    chosen = {}
    for case in cases:
        chosen.setdefault(case.value, case)
    return list(chosen.values())


# --- module defaults (data/module_defaults.toml) ------------------------------------------------

@dataclass(frozen=True)
class ParameterDefault:
    """How one parameter of a module is drawn at initialisation ([[module.parameter]])."""

    name: str
    distribution: str  # "uniform", "normal" or "constant"
    variance: float | None = None
    value: float | None = None
    zero_rows: Tuple[int, ...] = ()
    fan: str = ""
    variance_formula: str = ""


@dataclass(frozen=True)
class DefaultDeviation:
    """A release range that draws ``parameter`` differently ([[module.deviation]])."""

    since: str
    until: str
    parameter: str
    source: str
    distribution: str = ""
    variance: float | None = None
    value: float | None = None

    def covers(self, version: Tuple[int, ...]) -> bool:
        return version_tuple(self.since) <= version < version_tuple(self.until)


@dataclass(frozen=True)
class ModuleDefault:
    """One module configuration and what its default initialisation draws ([[module]])."""

    id: str
    build: str
    sizes: Tuple[Tuple[str, int], ...]
    parameters: Tuple[ParameterDefault, ...]
    source: str
    verified: Tuple[str, ...]
    memory_format: str = ""
    requires: Tuple[str, ...] = ()
    since: str = ""
    deviations: Tuple[DefaultDeviation, ...] = ()

    def namespace(self) -> dict:
        """``nn`` and the sizes: what ``build`` is evaluated in."""
        import torch

        return dict(self.sizes, nn=torch.nn)

    def parameter(self, name: str) -> ParameterDefault:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise KeyError(f"{self.id} has no parameter {name!r}")

    def expected(self, name: str, version: Tuple[int, ...]) -> ParameterDefault:
        """``parameter(name)`` as the release ``version`` draws it (its deviation applied)."""
        parameter = self.parameter(name)
        for deviation in self.deviations:
            if deviation.parameter == name and deviation.covers(version):
                changes = {key: getattr(deviation, key) for key in
                           ("distribution", "variance", "value")
                           if getattr(deviation, key) not in (None, "")}
                return replace(parameter, **changes)
        return parameter


def _module_default(row: dict) -> ModuleDefault:
    row = dict(row)
    sizes = dict(row["sizes"])
    namespace = {"__builtins__": {}, "math": math}
    namespace.update(sizes)

    def number(expression):
        return None if expression is None else float(eval(expression, namespace))  # noqa: S307

    parameters = []
    for entry in row.pop("parameter"):
        entry = dict(entry)
        formula = entry.get("variance", "")
        entry["variance"] = number(entry.get("variance"))
        entry["value"] = number(entry.get("value"))
        entry["zero_rows"] = tuple(entry.get("zero_rows", ()))
        parameters.append(ParameterDefault(variance_formula=formula, **entry))
    deviations = []
    for entry in row.pop("deviation", []):
        entry = dict(entry)
        entry["variance"] = number(entry.get("variance"))
        entry["value"] = number(entry.get("value"))
        deviations.append(DefaultDeviation(**entry))
    row["sizes"] = tuple(sizes.items())
    row["verified"] = tuple(row["verified"])
    row["requires"] = tuple(row.get("requires", ()))
    return ModuleDefault(parameters=tuple(parameters), deviations=tuple(deviations), **row)


def module_defaults_path() -> str:
    return os.path.join(os.path.dirname(data_path()), "module_defaults.toml")


def load_module_defaults() -> Tuple[ModuleDefault, ...]:
    with open(module_defaults_path(), encoding="utf-8") as handle:
        data = tomllib.loads(handle.read())
    return tuple(_module_default(row) for row in data["module"])


MODULE_DEFAULTS = load_module_defaults()
