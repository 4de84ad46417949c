"""The activation registry: each activation gainkit knows, by name, with what gainkit knows of it.

An entry holds what every layer needs of an activation: theory's numpy phi and phi' with their
kinks and positive homogeneity, the probe's torch phi and phi', the gains tool's formula and
calculate_gain name, and torch's default parameters and constants, which the mutation
catalogue and the conformance suite compute with. Each number is written here once.

This is the bottom layer: it imports numpy alone. A pair's builder imports scipy or torch when
it is called, so ``import gainkit.meanfield.theory`` does not load torch, and torch-free code
can read the constants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Dict, Mapping, Tuple

import numpy as np

Pair = Tuple[Callable, Callable]  # (phi, phi')
Builder = Callable[[Mapping[str, float]], Pair]  # parameters -> pair

# What an entry may offer, and how a lookup names it in an error.
KINDS = {"mean_field": "mean-field activation", "torch": "torch-probe activation"}


class UnknownActivation(ValueError):
    """A name the registry has no entry for, or none of the kind asked for."""


@dataclass(frozen=True)
class MeanField:
    """The numpy form theory integrates.

    ``kinks``: where phi or phi' is not smooth (quadrature is split there); ``homogeneous``:
    phi(c x) = c phi(x) for c > 0, which makes the length map linear in q.
    """

    build: Builder
    kinks: Tuple[float, ...] = ()
    homogeneous: bool = False


@dataclass(frozen=True)
class Entry:
    """One activation. ``parameters(slope)`` is what a builder receives."""

    name: str
    formula: str  # phi(x) for the docs, with torch's defaults filled in; "" for none
    gain_name: str | None  # calculate_gain's name for it; None: calculate_gain has none
    defaults: Mapping[str, float]  # torch's default parameters
    constants: Mapping[str, float]  # numbers fixed by its definition
    param: str | None  # the parameter a bare ``slope`` argument sets (leaky_relu:0.2)
    # its names in torch.nn.functional and, lower-cased, as a torch.nn module class
    torch_names: Tuple[str, ...]
    # the words users type for it (swish, log_sigmoid) and the torch spelling they mean
    aliases: Tuple[str, ...] = ()
    spelling: str = ""  # a torch.nn.functional name or torch.nn class; "": the name itself
    mean_field: MeanField | None = field(default=None, repr=False)
    torch: Builder | None = field(default=None, repr=False)

    def parameters(self, slope: float | None = None) -> Dict[str, float]:
        values = dict(self.defaults)
        if slope is not None and self.param is not None:
            values[self.param] = slope
        values.update(self.constants)
        return values

    def numpy_pair(self, slope: float | None = None) -> Pair:
        """numpy ``(phi, phi')``; ``slope`` replaces the default of ``param``."""
        if self.mean_field is None:
            raise _unknown(self.name, "mean_field")
        return self.mean_field.build(self.parameters(slope))

    def torch_pair(self, slope: float | None = None) -> Pair:
        """torch ``(phi, phi')``; ``slope`` replaces the default of ``param``."""
        if self.torch is None:
            raise _unknown(self.name, "torch")
        return self.torch(self.parameters(slope))


_ENTRIES: Dict[str, Entry] = {}
_BY_TORCH_NAME: Dict[str, Entry] = {}
_BY_ALIAS: Dict[str, Entry] = {}


def register(name: str, formula: str = "", *, gain_name: str | None = None,
             defaults: Mapping[str, float] | None = None,
             constants: Mapping[str, float] | None = None, param: str | None = None,
             torch_names: Tuple[str, ...] | None = None, aliases: Tuple[str, ...] = (),
             spelling: str = "", mean_field: MeanField | None = None,
             torch: Builder | None = None) -> Entry:
    """Add an entry; ``formula`` is a ``str.format`` template over its defaults and constants,
    so the numbers it shows are the ones the builders use. ``torch_names`` default to
    ``(name,)``; ``aliases`` are other words for it, each a torch spelling of none."""
    if name in _ENTRIES or name in _BY_ALIAS:
        raise ValueError(f"activation {name!r} is registered twice")
    defaults = MappingProxyType(dict(defaults or {}))
    constants = MappingProxyType(dict(constants or {}))
    entry = Entry(name, formula.format(**defaults, **constants), gain_name, defaults,
                  constants, param, (name,) if torch_names is None else tuple(torch_names),
                  tuple(aliases), spelling, mean_field, torch)
    for torch_name in entry.torch_names:
        if torch_name in _BY_TORCH_NAME:
            raise ValueError(f"torch name {torch_name!r} is registered twice")
    for alias in entry.aliases:
        if alias in _ENTRIES or alias in _BY_ALIAS:
            raise ValueError(f"alias {alias!r} is registered twice")
    _ENTRIES[name] = entry
    _BY_TORCH_NAME.update(dict.fromkeys(entry.torch_names, entry))
    _BY_ALIAS.update(dict.fromkeys(entry.aliases, entry))
    return entry


def names(kind: str | None = None) -> Tuple[str, ...]:
    """The registered names in registration order; with ``kind`` (one of KINDS), only those
    that offer it."""
    return tuple(name for name, entry in _ENTRIES.items() if _offers(entry, kind))


def get(name: str, kind: str | None = None) -> Entry:
    """The entry ``name``; with ``kind``, it must offer it. UnknownActivation otherwise."""
    entry = _ENTRIES.get(name)
    if entry is None or not _offers(entry, kind):
        raise _unknown(name, kind)
    return entry


def _offers(entry: Entry, kind: str | None) -> bool:
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    return kind is None or getattr(entry, kind) is not None


def _unknown(name: str, kind: str | None) -> UnknownActivation:
    return UnknownActivation(f"unknown {KINDS.get(kind, 'activation')} {name!r}; known: "
                             + ", ".join(names(kind)))


def torch_spelling(word: str) -> str | None:
    """The torch spelling of an alias (swish -> silu) or of a name torch spells otherwise
    (linear -> nn.Identity: F.linear is a layer); None for any other word."""
    entry = _BY_ALIAS.get(word) or _ENTRIES.get(word)
    if entry is None or (word == entry.name and not entry.spelling):
        return None
    return entry.spelling or entry.name


def aliases() -> Dict[str, str]:
    """Each word :func:`torch_spelling` translates -> its torch spelling, in registry order."""
    found = {}
    for entry in _ENTRIES.values():
        for word in ((entry.name,) if entry.spelling else ()) + entry.aliases:
            found[word] = entry.spelling or entry.name
    return found


def from_torch_name(torch_name: str) -> Entry | None:
    """The entry torch spells ``torch_name`` (a torch.nn.functional name, or a torch.nn module
    class name lower-cased); None where the registry has none."""
    return _BY_TORCH_NAME.get(torch_name)


# --- mean-field builders (numpy; scipy imported when built) -------------------------------

# quad calls phi one float at a time: comparisons and arithmetic on a Python float cost a
# tenth of a numpy ufunc call, and the same expressions broadcast over arrays.
def _leaky(slope: float) -> Pair:
    return (lambda x: x * (slope + (1.0 - slope) * (x > 0))), (
        lambda x: slope + (1.0 - slope) * (x > 0))


def _elu(alpha: float, scale: float) -> Pair:
    # x * (x <= 0) is min(x, 0): it keeps exp away from large positive x.
    def phi(x):
        return scale * (x * (x > 0) + alpha * np.expm1(x * (x <= 0)))

    def dphi(x):
        return scale * ((x > 0) + alpha * np.exp(x * (x <= 0)) * (x <= 0))

    return phi, dphi


def _relu6(x):
    return x * (x > 0) - (x - 6.0) * (x > 6)


def _sigmoid(params) -> Pair:
    from scipy.special import expit

    return expit, (lambda x: expit(x) * (1.0 - expit(x)))


def _gelu(params) -> Pair:
    from scipy.special import ndtr

    inv_sqrt_2pi = 1.0 / math.sqrt(2.0 * math.pi)
    return (lambda x: x * ndtr(x)), (
        lambda x: ndtr(x) + x * np.exp(-0.5 * x * x) * inv_sqrt_2pi)


def _silu(params) -> Pair:
    from scipy.special import expit

    return (lambda x: x * expit(x)), (lambda x: expit(x) * (1.0 + x * (1.0 - expit(x))))


def _softplus(params) -> Pair:
    from scipy.special import expit

    return (lambda x: np.logaddexp(0.0, x)), expit


def _mish(params) -> Pair:
    from scipy.special import expit

    def dphi(x):
        squashed = np.tanh(np.logaddexp(0.0, x))
        return squashed + x * expit(x) * (1.0 - squashed**2)

    return (lambda x: x * np.tanh(np.logaddexp(0.0, x))), dphi


# --- torch builders (torch imported when built) -------------------------------------------

def _torch_linear(params) -> Pair:
    import torch

    return (lambda h: h), torch.ones_like


def _torch_relu(params) -> Pair:
    import torch

    return torch.relu, (lambda h: (h > 0).to(h.dtype))


def _torch_leaky_relu(params) -> Pair:
    import torch
    import torch.nn.functional as F

    negative = float(params["negative_slope"])
    return ((lambda h: F.leaky_relu(h, negative)),
            (lambda h: torch.where(h > 0, torch.ones_like(h), torch.full_like(h, negative))))


def _torch_sigmoid(params) -> Pair:
    import torch

    def sigmoid_derivative(h):
        value = torch.sigmoid(h)
        return value * (1.0 - value)

    return torch.sigmoid, sigmoid_derivative


def _torch_tanh(params) -> Pair:
    import torch

    return torch.tanh, (lambda h: 1.0 - torch.tanh(h) ** 2)


def _torch_selu(params) -> Pair:
    import torch
    import torch.nn.functional as F

    alpha, scale = params["alpha"], params["scale"]

    def selu_derivative(h):
        # clamp: exp of the positive side is discarded by where, but must not overflow.
        negative = scale * alpha * torch.exp(torch.clamp(h, max=0.0))
        return torch.where(h > 0, torch.full_like(h, scale), negative)

    return F.selu, selu_derivative


# --- the entries --------------------------------------------------------------------------

# Registration order is the order of names(): theory's and the probe's tables follow it.
register("linear", gain_name="linear", torch_names=("identity",), aliases=("identity",),
         spelling="nn.Identity",  # F.linear is a layer, not an activation
         mean_field=MeanField(lambda p: ((lambda x: x), (lambda x: 1.0 + 0.0 * x)), (), True),
         torch=_torch_linear)
register("relu", "max(0, x)", gain_name="relu",
         mean_field=MeanField(lambda p: _leaky(0.0), (0.0,), True), torch=_torch_relu)
register("leaky_relu", "x if x > 0 else s x, s = negative_slope ({negative_slope:g})",
         gain_name="leaky_relu", aliases=("leakyrelu", "lrelu"),
         defaults={"negative_slope": 0.01}, param="negative_slope",
         torch_names=("leaky_relu", "leakyrelu"),
         mean_field=MeanField(lambda p: _leaky(p["negative_slope"]), (0.0,), True),
         torch=_torch_leaky_relu)
register("sigmoid", "1 / (1 + exp(-x))", gain_name="sigmoid", mean_field=MeanField(_sigmoid),
         torch=_torch_sigmoid)
register("tanh", "tanh(x)", gain_name="tanh",
         mean_field=MeanField(lambda p: (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2)),
         torch=_torch_tanh)
register("selu", "l (x if x > 0 else a (exp(x) - 1)), a = {alpha:.4f}, l = {scale:.4f}",
         gain_name="selu", constants={"alpha": 1.6732632423543772848170429916717,
                                      "scale": 1.0507009873554804934193349852946},
         mean_field=MeanField(lambda p: _elu(p["alpha"], p["scale"]), (0.0,)),
         torch=_torch_selu)
register("elu", "x if x > 0 else a (exp(x) - 1), a = alpha ({alpha:g})",
         defaults={"alpha": 1.0}, param="alpha",
         mean_field=MeanField(lambda p: _elu(p["alpha"], 1.0), (0.0,)))
register("gelu", "x Phi(x), Phi the standard normal CDF (approximate='tanh': tanh formula)",
         mean_field=MeanField(_gelu))
register("silu", "x / (1 + exp(-x))", aliases=("swish",), mean_field=MeanField(_silu))
register("softplus", "log(1 + exp(b x)) / b, b = beta ({beta:g}); x where b x > threshold "
         "({threshold:g})", defaults={"beta": 1.0, "threshold": 20.0},
         mean_field=MeanField(_softplus))
register("mish", "x tanh(softplus(x))", mean_field=MeanField(_mish))
register("hardswish", "x relu6(x + 3) / 6", aliases=("hard_swish",), mean_field=MeanField(
    lambda p: ((lambda x: x * _relu6(x + 3.0) / 6.0),
               (lambda x: (2.0 * x + 3.0) / 6.0 * (abs(x) < 3) + 1.0 * (x >= 3))),
    (-3.0, 3.0)))
register("hardtanh", "clamp(x, min_val, max_val) ({min_val:g}, {max_val:g})",
         defaults={"min_val": -1.0, "max_val": 1.0}, aliases=("hard_tanh",),
         mean_field=MeanField(
             lambda p: ((lambda x: x - (x - 1.0) * (x > 1) - (x + 1.0) * (x < -1)),
                        (lambda x: 1.0 * (abs(x) < 1))), (-1.0, 1.0)))
register("softsign", "x / (1 + |x|)", mean_field=MeanField(
    lambda p: ((lambda x: x / (1.0 + abs(x))), (lambda x: 1.0 / (1.0 + abs(x)) ** 2)), (0.0,)))
# Formulas only: the gains tool analyses these through torch itself.
register("celu", "max(0, x) + min(0, a (exp(x / a) - 1)), a = alpha ({alpha:g})",
         defaults={"alpha": 1.0})
register("hardshrink", "x if |x| > l else 0, l = lambd ({lambd:g})", defaults={"lambd": 0.5},
         aliases=("hard_shrink",))
register("hardsigmoid", "relu6(x + 3) / 6", aliases=("hard_sigmoid",))
register("logsigmoid", "log(1 / (1 + exp(-x)))", aliases=("log_sigmoid",))
register("relu6", "min(max(0, x), 6)")
register("rrelu", "x if x > 0 else s x, s = (lower + upper) / 2 = 11/48 (not training)")
register("softshrink", "x - l sign(x) if |x| > l else 0, l = lambd ({lambd:g})",
         defaults={"lambd": 0.5}, aliases=("soft_shrink",))
register("tanhshrink", "x - tanh(x)", aliases=("tanh_shrink",))
register("threshold", "x if x > threshold else value")
