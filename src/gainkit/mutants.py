"""Named faults in ``torch.nn.init``, and a pytest plugin that runs the suite against one.

The conformance suite proves it is sharp by failing on each of these realistic
regressions: ``pytest conformance -p gainkit.mutants --gainkit-mutant NAME``.

A mutant is data: a name, what it breaks, which conformance files must catch it (with a
``-k`` expression selecting the relevant tests) and the ``torch.nn.init`` attributes it
replaces. Each replacement is built from the ``torch.nn.init`` module and the original
attribute, and keeps the original signature of every release (1.0 ``xavier_normal_(tensor,
gain=1)`` ... 2.x ``xavier_normal_(tensor, gain=1.0, generator=None)``): extra arguments are
passed through. Functions in ``torch.nn.init`` look each other up as module globals at call
time, so replacing ``calculate_gain`` also changes what ``kaiming_*`` draw.

Adding a mutant is one ``Mutant(...)`` entry in ``CATALOGUE``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

SQRT3 = math.sqrt(3.0)
GAIN_FILES = ("test_values.py", "test_docstring.py", "test_init_functions.py",
              "test_stability.py")
INIT_FILES = ("test_init_functions.py",)

# build(init_module, original_attribute) -> replacement
Builder = Callable[[object, Callable], Callable]


@dataclass(frozen=True)
class Mutant:
    name: str
    description: str
    replacements: Dict[str, Builder]
    caught_by: Tuple[str, ...]  # conformance files each expected to fail under it
    select: str = ""  # pytest -k expression for the tests that matter ("" = all)

    def apply(self, init) -> Dict[str, Callable]:
        """Install the faults into ``init``; returns the originals for :func:`restore`."""
        originals = {attribute: getattr(init, attribute) for attribute in self.replacements}
        for attribute, build in self.replacements.items():
            setattr(init, attribute, build(init, originals[attribute]))
        return originals


def restore(init, originals: Dict[str, Callable]) -> None:
    for attribute, original in originals.items():
        setattr(init, attribute, original)


# Building blocks ---------------------------------------------------------------------------

def scaled_gain(nonlinearity: str, factor: float) -> Builder:
    """calculate_gain returns ``factor`` times the right gain for one name."""

    def build(init, original):
        @functools.wraps(original)
        def calculate_gain(name, param=None):
            gain = original(name, param)
            return gain * factor if name == nonlinearity else gain

        return calculate_gain

    return build


def swapped_fan(init, original):
    """_calculate_correct_fan returns fan_out for mode='fan_in' and vice versa."""

    @functools.wraps(original)
    def _calculate_correct_fan(tensor, mode):
        swapped = {"fan_in": "fan_out", "fan_out": "fan_in"}.get(mode.lower(), mode)
        return original(tensor, swapped)

    return _calculate_correct_fan


def fill(init, tensor, family: str, std: float, bound_factor: float, *args, **kwargs):
    if family == "normal":
        return init.normal_(tensor, 0.0, std, *args, **kwargs)
    bound = bound_factor * std
    return init.uniform_(tensor, -bound, bound, *args, **kwargs)


def xavier(family: str, variance_over_gain2: Callable[[int, int], float],
           bound_factor: float = SQRT3) -> Builder:
    """A xavier_{family}_ computing std^2 = gain^2 * variance_over_gain2(fan_in, fan_out)."""

    def build(init, original):
        @functools.wraps(original)
        def xavier_(tensor, gain=1.0, *args, **kwargs):
            fan_in, fan_out = init._calculate_fan_in_and_fan_out(tensor)
            std = gain * math.sqrt(variance_over_gain2(fan_in, fan_out))
            return fill(init, tensor, family, std, bound_factor, *args, **kwargs)

        return xavier_

    return build


def kaiming(family: str, bound_factor: float = SQRT3) -> Builder:
    """A kaiming_{family}_ as upstream, with the uniform bound bound_factor * std."""

    def build(init, original):
        @functools.wraps(original)
        def kaiming_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", *args, **kwargs):
            fan = init._calculate_correct_fan(tensor, mode)
            std = init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
            return fill(init, tensor, family, std, bound_factor, *args, **kwargs)

        return kaiming_

    return build


def xavier_average(fan_in: int, fan_out: int) -> float:
    return 2.0 / (fan_in + fan_out)


def gain_mutant(nonlinearity: str, factor: float, select: str) -> Mutant:
    return Mutant(
        name=f"gain-{nonlinearity}-x{factor}",
        description=f"calculate_gain({nonlinearity!r}) returns {factor} x the documented gain",
        replacements={"calculate_gain": scaled_gain(nonlinearity, factor)},
        caught_by=GAIN_FILES,
        select=select,
    )


# The catalogue -----------------------------------------------------------------------------

CATALOGUE = (
    # -k expressions: "relu" alone would also select leaky_relu.
    gain_mutant("tanh", 1.05, "tanh"),
    gain_mutant("relu", 1.05, "relu and not leaky"),
    gain_mutant("sigmoid", 1.05, "sigmoid"),
    gain_mutant("selu", 1.05, "selu"),
    gain_mutant("leaky_relu", 1.05, "leaky_relu"),
    gain_mutant("linear", 1.05, "linear"),
    gain_mutant("relu", 0.95, "relu and not leaky"),
    Mutant(
        name="kaiming-mode-swapped",
        description="kaiming_* use fan_out for mode='fan_in' and fan_in for mode='fan_out'",
        replacements={"_calculate_correct_fan": swapped_fan},
        caught_by=INIT_FILES,
        select="kaiming and relu",
    ),
    Mutant(
        name="xavier-fan-in-only",
        description="xavier_* use std = gain * sqrt(2 / (fan_in + fan_in))",
        replacements={
            "xavier_normal_": xavier("normal", lambda fan_in, fan_out: 2.0 / (2 * fan_in)),
            "xavier_uniform_": xavier("uniform", lambda fan_in, fan_out: 2.0 / (2 * fan_in)),
        },
        caught_by=INIT_FILES,
        select="xavier",
    ),
    Mutant(
        name="xavier-fan-product",
        description="xavier_* use std = gain * sqrt(2 / (fan_in * fan_out))",
        replacements={
            "xavier_normal_": xavier("normal", lambda fan_in, fan_out: 2.0 / (fan_in * fan_out)),
            "xavier_uniform_": xavier("uniform", lambda fan_in, fan_out: 2.0 / (fan_in * fan_out)),
        },
        caught_by=INIT_FILES,
        select="xavier",
    ),
    Mutant(
        name="uniform-bound-no-sqrt3",
        description="xavier_uniform_ and kaiming_uniform_ draw from U(-std, std)",
        replacements={
            "xavier_uniform_": xavier("uniform", xavier_average, bound_factor=1.0),
            "kaiming_uniform_": kaiming("uniform", bound_factor=1.0),
        },
        caught_by=INIT_FILES,
        select="uniform",
    ),
)
MUTANTS = {mutant.name: mutant for mutant in CATALOGUE}
assert len(MUTANTS) == len(CATALOGUE), "mutant names must be unique"


# The pytest plugin -------------------------------------------------------------------------

def pytest_addoption(parser):
    parser.getgroup("gainkit", "gainkit conformance suite").addoption(
        "--gainkit-mutant", metavar="NAME", default=None, choices=sorted(MUTANTS),
        help="run against torch.nn.init with this fault installed: " + ", ".join(MUTANTS))


def pytest_configure(config):
    name = config.getoption("gainkit_mutant")
    if name is None:
        return
    from torch.nn import init

    config._gainkit_mutant = (MUTANTS[name], MUTANTS[name].apply(init))


def pytest_unconfigure(config):
    applied = getattr(config, "_gainkit_mutant", None)
    if applied is not None:
        from torch.nn import init

        restore(init, applied[1])


def pytest_report_header(config):
    applied = getattr(config, "_gainkit_mutant", None)
    if applied is not None:
        return f"gainkit mutant installed: {applied[0].name} ({applied[0].description})"
    return None
