"""Torch activations as :class:`gainkit.meanfield.theory.Activation`: resolve, check, tabulate.

A user names an activation as a ``torch.nn.functional`` function or a ``torch.nn`` module class
(with parameters: ``leaky_relu:0.2``, ``elu:alpha=0.5``, ``Softplus:beta=2``) or as an
importable ``package.module:callable[:params]``. :func:`resolve` checks that it is elementwise,
deterministic, differentiable by autograd and finite, finds its kinks (where autograd's
derivative, or the function itself, jumps) and whether it is positively homogeneous.

quad evaluates phi one Python float at a time, and a torch call per point (an autograd call
for phi') made an analysis 50x slower than the numpy built-ins of theory. So phi and phi' are
evaluated by torch once, on a dense grid, and interpolated piecewise between kinks: phi by
cubic Hermite interpolation on torch's values and autograd's derivatives, phi' by a cubic spline
on autograd's values. Interpolation error is O(h^4) with h = 1/512 on |x| <= 64 (below 1e-12
for the activations in torch), far below the 1e-6 the tool promises; beyond the grid the
torch callable itself is called.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import math
import warnings
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy.interpolate import CubicHermiteSpline, CubicSpline

from gainkit import activations
from gainkit.meanfield import theory

_PER_UNIT = 512  # grid nodes per unit of x on the core range
_CORE = 16.0  # |x| up to which the grid is uniform; geometric beyond
# quad reaches |x| = 12 sqrt(q), and theory searches fixed points up to q = Q_HUGE.
_X_MAX = 2.0 * 12.0 * math.sqrt(theory.Q_HUGE)
_MUST_BE_FINITE = 64.0  # phi and phi' must be finite on |x| <= this
_JUMP = 1e-9  # a jump of phi or phi' across adjacent floats larger than this is a kink
_PROBE_SHAPE = (3, 4, 5)

class ActivationError(ValueError):
    """The user's activation cannot be analysed; the message is one line naming the cause."""


@dataclass(frozen=True)
class TorchActivation:
    """A resolved elementwise activation: the torch callable and what theory needs of it."""

    name: str  # the spec as the user wrote it
    function: Callable[[torch.Tensor], torch.Tensor]
    definition: str  # the call it makes, e.g. torch.nn.functional.elu(x, alpha=0.5)
    formula: str  # its formula where known, else ""
    kinks: Tuple[float, ...]  # where phi or phi' jumps
    jumps: Tuple[float, ...]  # where phi itself jumps (hardshrink, threshold)
    homogeneous: bool
    gain_args: tuple | None  # calculate_gain's arguments for it; None: not a gain name
    theory: theory.Activation = field(repr=False, compare=False)


# --- parsing a spec -----------------------------------------------------------------------

def _parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if text.isidentifier():
            return text  # a bare word: gelu:approximate=tanh
        raise ActivationError(f"parameter {text!r} is neither a Python literal nor a bare "
                              "word") from None


def parse_params(text: str) -> Tuple[tuple, Dict[str, object]]:
    """``"0.2"`` -> ((0.2,), {}); ``"alpha=0.5,inplace=False"`` -> ((), {...})."""
    args, kwargs = [], {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, equals, value = item.partition("=")
        if equals:
            if not key.strip().isidentifier():
                raise ActivationError(f"parameter {item!r}: {key.strip()!r} is not a name")
            kwargs[key.strip()] = _parse_value(value.strip())
        elif kwargs:
            raise ActivationError(f"parameter {item!r}: positional after keyword parameters")
        else:
            args.append(_parse_value(item))
    return tuple(args), kwargs


def _call_text(prefix: str, args: tuple, kwargs: dict, first: str = "x") -> str:
    parts = ([first] if first else []) + [repr(a) for a in args]
    parts += [f"{key}={value!r}" for key, value in kwargs.items()]
    return "{}({})".format(prefix, ", ".join(parts))


def _torch_name(head: str):
    """(kind, name, object) for a torch.nn.functional function or torch.nn module class."""
    for prefix in ("torch.nn.functional.", "F.", "torch.nn.", "nn."):
        if head.startswith(prefix):
            head = head[len(prefix):]
            break
    candidate = getattr(F, head, None) if head.isidentifier() else None
    if callable(candidate) and not inspect.isclass(candidate) and not head.startswith("_"):
        return "functional", head, candidate
    candidate = getattr(torch.nn, head, None) if head.isidentifier() else None
    if inspect.isclass(candidate) and issubclass(candidate, torch.nn.Module):
        return "module", head, candidate
    return None


def _import_callable(path: str, attribute: str):
    try:
        target = importlib.import_module(path)
    except ImportError as error:
        raise ActivationError(f"cannot import module {path!r}: {error}") from None
    except Exception as error:  # noqa: BLE001 - any failure of the user's module is reported
        raise ActivationError(f"importing {path!r} failed: {type(error).__name__}: {error}") \
            from None
    for part in attribute.split("."):
        if not part.isidentifier() or not hasattr(target, part):
            raise ActivationError(f"module {path!r} has no callable {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ActivationError(f"{path}:{attribute} is not callable")
    return target


def _instantiate(cls, args, kwargs, label):
    try:
        instance = cls(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - the user's parameters are reported back
        raise ActivationError(f"cannot build {label}: {type(error).__name__}: {error}") from None
    # The analysis runs in float64; a module's parameters (PReLU's slope) must follow.
    return instance.double() if isinstance(instance, torch.nn.Module) else instance


def _bind(spec: str):
    """(function, definition, formula, calculate_gain args) for a spec."""
    head, _, rest = spec.partition(":")
    head = activations.torch_spelling(head.strip()) or head  # swish -> silu, linear -> Identity
    found = _torch_name(head.strip())
    if found is None:
        if not rest or not all(p.isidentifier() for p in head.strip().split(".")):
            raise ActivationError(
                f"unknown activation {spec!r}: not a torch.nn.functional function, not a "
                "torch.nn module class, not package.module:callable")
        attribute, _, rest = rest.partition(":")
        target = _import_callable(head.strip(), attribute.strip())
        args, kwargs = parse_params(rest)
        label = f"{head.strip()}:{attribute.strip()}"
        if inspect.isclass(target):
            instance = _instantiate(target, args, kwargs, _call_text(label, args, kwargs, ""))
            return instance, _call_text(label, args, kwargs, "") + "(x)", "", None
        return _partial(target, args, kwargs), _call_text(label, args, kwargs), "", None
    kind, name, target = found
    args, kwargs = parse_params(rest)
    if kind == "functional":
        function = _partial(target, args, kwargs)
        definition = _call_text("torch.nn.functional." + name, args, kwargs)
        entry = activations.from_torch_name(name.rstrip("_"))
    else:
        function = _instantiate(target, args, kwargs, _call_text("torch.nn." + name, args,
                                                                 kwargs, ""))
        definition = _call_text("torch.nn." + name, args, kwargs, "") + "(x)"
        entry = activations.from_torch_name(name.lower())
    if entry is None:
        return function, definition, "", None
    gain_args = None
    if entry.gain_name == "leaky_relu":
        if kind == "functional":
            slope = args[0] if args else kwargs.get("negative_slope",
                                                    entry.defaults["negative_slope"])
        else:
            slope = getattr(function, "negative_slope", None)
        gain_args = (entry.gain_name, slope)
    elif entry.gain_name is not None:
        gain_args = (entry.gain_name,)
    return function, definition, entry.formula, gain_args


def _partial(function, args, kwargs):
    def bound(x):
        return function(x, *args, **kwargs)
    return bound


# --- checks -------------------------------------------------------------------------------

def _call(function, x: torch.Tensor, label: str) -> torch.Tensor:
    # A clone: in-place functions (relu_) must neither touch the caller's tensor nor a leaf.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = function(x.clone())
    except Exception as error:  # noqa: BLE001 - any failure on a tensor input is reported
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ActivationError(f"{label} fails on a tensor: {type(error).__name__}: "
                              f"{message}") from None
    if not isinstance(result, torch.Tensor):
        raise ActivationError(f"{label} is not elementwise: it returns "
                              f"{type(result).__name__}, not a tensor")
    return result


def check_elementwise(function, label: str) -> None:
    """Raise ActivationError unless ``function`` maps each element to a deterministic value
    that depends on that element alone: same shape, permuting the inputs permutes the outputs,
    and a slice of the input gives the slice of the output."""
    generator = torch.Generator()
    generator.manual_seed(0)
    x = 3.0 * torch.randn(_PROBE_SHAPE, generator=generator, dtype=torch.float64)
    y = _call(function, x, label)
    if y.shape != x.shape:
        raise ActivationError(f"{label} is not elementwise: shape {tuple(x.shape)} -> "
                              f"{tuple(y.shape)}")
    if not y.is_floating_point():
        raise ActivationError(f"{label} is not elementwise: it returns {y.dtype} values")
    y = y.detach().double().flatten()
    again = _call(function, x, label).detach().double().flatten()
    if not _same(again, y):
        raise ActivationError(f"{label} is not deterministic: two calls on the same input differ")
    order = torch.randperm(x.numel(), generator=generator)
    permuted = _call(function, x.flatten()[order].reshape(x.shape), label)
    if not _same(permuted.detach().double().flatten(), y[order]):
        raise ActivationError(f"{label} is not elementwise: permuting the inputs does not "
                              "permute the outputs")
    head = _call(function, x.flatten()[:7], label)
    if head.shape != (7,) or not _same(head.detach().double(), y[:7]):
        raise ActivationError(f"{label} is not elementwise: an output depends on other elements")


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    # Vectorised and scalar kernels may round differently.
    return bool(torch.allclose(a, b, rtol=1e-12, atol=1e-300, equal_nan=True))


def _values(function, x: np.ndarray, label: str) -> Tuple[np.ndarray, np.ndarray]:
    """phi and autograd's phi' at the points x (float64)."""
    inputs = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    with torch.enable_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch 1.7 warns about CUDA on a CPU-only machine
        outputs = _call(function, inputs, label)
        try:
            derivative, = torch.autograd.grad(outputs.sum(), inputs)
        except RuntimeError as error:
            raise ActivationError(f"{label} is not differentiable by autograd: "
                                  f"{str(error).splitlines()[0]}") from None
    return (outputs.detach().double().numpy().copy(),
            derivative.detach().double().numpy().copy())


def is_homogeneous(function, label: str) -> bool:
    """phi(c x) = c phi(x) for c > 0, to rounding, on points from 1e-6 to 1e3 of both signs."""
    x = np.concatenate([np.geomspace(1e-6, 1e3, 40), -np.geomspace(1e-6, 1e3, 40)])
    base = _values(function, x, label)[0]
    for factor in (0.37, 2.9):
        scaled = _values(function, factor * x, label)[0]
        if not np.allclose(scaled, factor * base, rtol=1e-12, atol=0.0):
            return False
    return True


# --- kinks --------------------------------------------------------------------------------

def _grid() -> np.ndarray:
    core = np.arange(-_CORE * _PER_UNIT, _CORE * _PER_UNIT + 1) / _PER_UNIT
    ratio = 1.0 + 1.0 / _PER_UNIT
    count = int(math.ceil(math.log(_X_MAX / _CORE) / math.log(ratio)))
    outer = _CORE * ratio ** np.arange(1, count + 1)
    return np.concatenate([-outer[::-1], core, outer])


def _jump_candidates(x, values) -> np.ndarray:
    """Intervals i where ``values`` changes far more than its neighbours predict."""
    width = np.diff(x)
    slope = np.diff(values) / width
    predicted = np.empty_like(slope)
    predicted[1:-1] = 0.5 * (slope[:-2] + slope[2:])
    predicted[0], predicted[-1] = slope[1], slope[-2]
    excess = np.abs(slope - predicted) * width
    return np.flatnonzero(excess > 1e-6 * (1.0 + np.abs(values[:-1])))


def _shortest_in(low: float, high: float) -> float:
    # The bisection ends on adjacent floats around the jump; the one with the fewest decimals
    # is the parameter the user wrote (0, 3, 0.5), not an artefact of where bisection stopped.
    middle = 0.5 * (low + high)
    for decimals in range(18):
        value = round(middle, decimals)
        if low <= value <= high:
            return float(value) + 0.0  # + 0.0: no -0.0
    return float(middle)


def find_kinks(function, x, phi, dphi, label: str) -> Tuple[Tuple[float, ...], ...]:
    """``(kinks, jumps)``: points where phi or autograd's phi' jumps, and those where phi
    itself does. Candidate grid intervals are bisected towards the larger change; a jump that
    survives down to adjacent floats is a kink."""
    candidates = np.union1d(_jump_candidates(x, phi), _jump_candidates(x, dphi))
    if candidates.size == 0:
        return (), ()
    low, high = x[candidates].copy(), x[candidates + 1].copy()
    low_values = np.stack([phi[candidates], dphi[candidates]])
    high_values = np.stack([phi[candidates + 1], dphi[candidates + 1]])
    for _ in range(80):
        middle = low + 0.5 * (high - low)
        if np.all((middle <= low) | (middle >= high)):
            break
        middle_values = np.stack(_values(function, middle, label))
        left = np.abs(middle_values - low_values).sum(axis=0)
        right = np.abs(high_values - middle_values).sum(axis=0)
        go_left = left >= right
        high = np.where(go_left, middle, high)
        low = np.where(go_left, low, middle)
        high_values = np.where(go_left, middle_values, high_values)
        low_values = np.where(go_left, low_values, middle_values)
    scale = 1.0 + np.abs(low_values) + np.abs(high_values)
    jumped = np.abs(high_values - low_values) > _JUMP * scale

    def points(where):
        return tuple(sorted({_shortest_in(a, b) for a, b in zip(low[where], high[where])}))
    return points(np.any(jumped, axis=0)), points(jumped[0])


# --- tabulation ---------------------------------------------------------------------------

class _Piecewise:
    """A piecewise cubic, evaluated fast on Python floats and vectorised on arrays.

    Each interval keeps its expansions about both ends, and a point uses the nearer one, so a
    value next to a node (phi(1e-300) at a zero of phi) keeps its relative accuracy.
    """

    def __init__(self, starts, ends, left, right, fallback):
        self.starts, self._ends, self._left, self._right = starts, np.asarray(ends), left, right
        self.low, self.high = float(starts[0]), float(ends[-1])
        self._start_list = starts.tolist()
        # Nine numbers per interval in one flat list: the scalar path slices and unpacks.
        self._flat = np.stack([starts, self._ends, left[0], left[1], left[2], right[0], right[1],
                               right[2], left[3]], axis=1).ravel().tolist()
        self.fallback = fallback

    def __call__(self, x):
        if isinstance(x, float):
            if not self.low <= x < self.high:
                return self.fallback(x)
            first = 9 * (bisect_right(self._start_list, x) - 1)
            start, end, l0, l1, l2, r0, r1, r2, cubic = self._flat[first:first + 9]
            if x - start <= end - x:
                t = x - start
                return ((cubic * t + l2) * t + l1) * t + l0
            t = x - end
            return ((cubic * t + r2) * t + r1) * t + r0
        return self._vector(np.asarray(x, dtype=np.float64))

    def _vector(self, x: np.ndarray) -> np.ndarray:
        inside = (x >= self.low) & (x < self.high)
        index = np.clip(np.searchsorted(self.starts, x, side="right") - 1, 0,
                        len(self.starts) - 1)
        start, end = self.starts[index], self._ends[index]
        use_left = x - start <= end - x
        t = np.where(use_left, x - start, x - end)
        rows = [np.where(use_left, self._left[k][index], self._right[k][index])
                for k in range(4)]
        result = ((rows[3] * t + rows[2]) * t + rows[1]) * t + rows[0]
        if not np.all(inside):
            outside = np.flatnonzero(~inside)
            result = np.array(result, dtype=np.float64)
            result.flat[outside] = [self.fallback(float(v)) for v in x.flat[outside]]
        return result if result.ndim else float(result)


def _expansions(polynomial, starts, ends, end_values):
    """Coefficients (constant first) about each interval's start and about its end."""
    c = polynomial.c  # scipy: highest power first, in powers of (x - start)
    width = ends - starts
    left = [c[3], c[2], c[1], c[0]]
    right = [end_values,
             (3.0 * c[0] * width + 2.0 * c[1]) * width + c[2],
             3.0 * c[0] * width + c[1],
             c[0]]
    return left, right


def _pieces(x, kinks, values_at):
    """Grid nodes split at the kinks (and 0), with one-sided values at each piece's ends."""
    breaks = sorted(set(kinks) | {0.0})
    edges = np.array([x[0]] + [b for b in breaks if x[0] < b < x[-1]] + [x[-1]])
    spacing = np.gradient(x)
    node_sets = []
    for low, high in zip(edges[:-1], edges[1:]):
        inner = x[(x > low) & (x < high)]
        margin = 0.25 * np.interp(inner, x, spacing)
        keep = inner[(inner - low > margin) & (high - inner > margin)]
        node_sets.append(np.union1d(keep, np.linspace(low, high, 5)))
    inner = [nodes[1:-1] for nodes in node_sets]
    count = len(node_sets)
    # One torch call: the inner nodes, then each piece's ends one float inside (the one-sided
    # values), then the edges themselves.
    phi, dphi = values_at(np.concatenate(inner + [np.nextafter(edges[:-1], np.inf),
                                                 np.nextafter(edges[1:], -np.inf), edges]))
    split = np.cumsum([part.size for part in inner])
    total = split[-1]
    phi_low, phi_high = phi[total:total + count], phi[total + count:total + 2 * count]
    dphi_low, dphi_high = dphi[total:total + count], dphi[total + count:total + 2 * count]
    phi_edges = phi[total + 2 * count:]
    # phi at a point where it is continuous is its value there, not a neighbour's:
    # theory tests phi(0) == 0 exactly.
    phi_low = np.where(_continuous(phi_edges[:-1], phi_low), phi_edges[:-1], phi_low)
    phi_high = np.where(_continuous(phi_edges[1:], phi_high), phi_edges[1:], phi_high)
    pieces = []
    for i, (nodes, phi_inner, dphi_inner) in enumerate(zip(
            node_sets, np.split(phi[:total], split[:-1]), np.split(dphi[:total], split[:-1]))):
        pieces.append((nodes, np.concatenate([[phi_low[i]], phi_inner, [phi_high[i]]]),
                       np.concatenate([[dphi_low[i]], dphi_inner, [dphi_high[i]]])))
    return pieces


def _continuous(at, beside):
    return np.abs(at - beside) <= _JUMP * (1.0 + np.abs(at))


def _tabulate(function, kinks, label) -> Tuple[_Piecewise, _Piecewise]:
    x = _grid()

    def values_at(points):
        return _values(function, points, label)

    tables = {"phi": ([], [], [], []), "dphi": ([], [], [], [])}
    for nodes, phi, dphi in _pieces(x, kinks, values_at):
        starts, ends = nodes[:-1], nodes[1:]
        for key, polynomial, end_values in (
                ("phi", CubicHermiteSpline(nodes, phi, dphi), phi[1:]),
                ("dphi", CubicSpline(nodes, dphi), dphi[1:])):
            left, right = _expansions(polynomial, starts, ends, end_values)
            tables[key][0].append(starts)
            tables[key][1].append(ends)
            tables[key][2].append(left)
            tables[key][3].append(right)

    def exact(which):
        def value(point):
            result = float(values_at(np.array([point]))[which][0])
            if math.isnan(result):
                raise ActivationError(f"{label} gives nan at x = {point!r}")
            return result
        return value

    result = []
    for which, key in enumerate(("phi", "dphi")):
        starts, ends, lefts, rights = tables[key]
        left = [np.concatenate([part[k] for part in lefts]) for k in range(4)]
        right = [np.concatenate([part[k] for part in rights]) for k in range(4)]
        result.append(_Piecewise(np.concatenate(starts), np.concatenate(ends), left, right,
                                 exact(which)))
    return result[0], result[1]


def _check_finite(x, phi, dphi, label):
    """nan anywhere on the grid, or inf on |x| <= _MUST_BE_FINITE, is an ActivationError."""
    for values, what in ((phi, label), (dphi, f"the autograd derivative of {label}")):
        near = np.abs(x) <= _MUST_BE_FINITE
        for kind, bad in (("nan", np.isnan(values)), ("inf", np.isinf(values) & near)):
            if np.any(bad):
                point = x[bad][np.argmin(np.abs(x[bad]))]
                raise ActivationError(f"{what} gives {kind} at x = {point:g}")


# --- resolving ----------------------------------------------------------------------------

def resolve(spec: str) -> TorchActivation:
    """The activation a spec names, checked and wrapped for theory (ActivationError if not)."""
    spec = spec.strip()
    if not spec:
        raise ActivationError("empty activation name")
    function, definition, formula, gain_args = _bind(spec)
    check_elementwise(function, definition)
    x = _grid()
    phi, dphi = _values(function, x, definition)
    _check_finite(x, phi, dphi, definition)
    finite = np.isfinite(phi) & np.isfinite(dphi)
    if not np.all(finite):  # overflow far out: tabulate where finite, torch beyond
        x = x[_finite_span(finite)]
        phi, dphi = _values(function, x, definition)
    kinks, jumps = find_kinks(function, x, phi, dphi, definition)
    homogeneous = is_homogeneous(function, definition)
    phi_table, dphi_table = _tabulate(function, kinks, definition)
    act = theory.Activation.from_callables(spec, phi_table, dphi_table, kinks, homogeneous,
                                           jumps)
    return TorchActivation(spec, function, definition, formula, kinks, jumps, homogeneous,
                           gain_args, act)


def _finite_span(finite: np.ndarray) -> slice:
    middle = finite.size // 2
    bad_left = np.flatnonzero(~finite[:middle])
    bad_right = np.flatnonzero(~finite[middle:])
    start = bad_left[-1] + 1 if bad_left.size else 0
    stop = middle + bad_right[0] if bad_right.size else finite.size
    return slice(start, stop)


def pytorch_gain(act: TorchActivation) -> Tuple[float | None, str]:
    """The installed torch's ``calculate_gain`` for this activation, or None and why."""
    if act.gain_args is None:
        return None, "calculate_gain has no entry for it"
    call = "calculate_gain({})".format(", ".join(map(repr, act.gain_args)))
    try:
        value = float(torch.nn.init.calculate_gain(*act.gain_args))
    except ValueError as error:
        return None, f"{call} raises in torch {torch.__version__}: {error}"
    return value, call


def functional_activations() -> Tuple[List[str], Dict[str, str]]:
    """The elementwise activations of the installed torch.nn.functional (in-place variants
    left out), and every other public function with the reason it is not one."""
    found, skipped = [], {}
    for name in sorted(dir(F)):
        target = getattr(F, name)
        if name.startswith("_") or not inspect.isroutine(target):
            continue
        if name.endswith("_") and hasattr(F, name[:-1]):
            skipped[name] = f"in-place variant of {name[:-1]}"
            continue
        try:
            check_elementwise(target, name)
        except ActivationError as error:
            skipped[name] = str(error)
            continue
        if _is_identity(target, name):  # alpha_dropout when not training
            skipped[name] = f"{name} is the identity with its default arguments"
            continue
        found.append(name)
    return found, skipped


def _is_identity(function, label: str) -> bool:
    x = torch.linspace(-5.0, 5.0, 101, dtype=torch.float64)
    return bool(torch.equal(_call(function, x, label).detach().double(), x))
