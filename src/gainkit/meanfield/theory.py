"""Mean-field signal propagation for a deep, square MLP (see docs/theory.md).

Layer map ``h' = W phi(h) + b`` with ``W_ij ~ N(0, g^2 / N)`` and biases of variance
``sigma_b^2`` (``bias_variance``; 0, the default, is the bias-free net the suite's gains are
judged on). In the infinite-width limit the pre-activation second moment ``q`` follows the
length map ``V(q) = g^2 E[phi(sqrt(q) z)^2] + sigma_b^2`` and the mean squared gradient
changes by ``chi = g^2 E[phi'(sqrt(q) z)^2]`` per layer (Poole et al. 2016, Schoenholz et al.
2017); the bias moves the fixed point q* and so chi_1, never chi's formula. Gaussian
expectations are integrated in pieces split at the activation's kinks, because Gauss-Hermite
converges slowly on kinked functions: Gauss-Legendre on each piece, adaptive quadrature where
that does not meet the tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable, Iterator, Tuple

import numpy as np
from scipy import integrate, optimize

from gainkit import activations

CRITICAL_TOLERANCE = 1e-9  # |chi_1 - 1| below this is "critical"
NEAR_CRITICAL_DEPTH = 100.0  # layers for a 10x change of the squared gradient
# q below Q_TINY counts as a dead signal, above Q_HUGE as blown up: the fixed-point search
# stops there because V(q)/q - 1 is no longer resolvable from quadrature error.
Q_TINY = 1e-10
Q_HUGE = 1e12
SAME_Q = 1e-12  # |V(q) / q - 1| below this: q is a fixed point to rounding
_SEARCH_STEP = 4.0  # geometric step when bracketing a fixed point or a critical gain
_GAIN_RANGE = (0.05, 100.0)
# Beyond |z| = 12 the density is below 1e-31; an integrand growing like z^8 loses < 1e-24 there.
_Z_MAX = 12.0
_PHI_SCALES = (1.0, 4.0, 16.0, 64.0)  # activation-space scales of sigmoid-like transitions
_LIMIT_POINT = 1e-300  # evaluates one-sided limits at 0 ...
_FAR_POINT = 1e100  # ... and at +-infinity
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_EPSREL = 1e-11  # quad's relative tolerance on E[f]
_ROUNDING = 1e-13  # ... and on E[|f|] where f cancels: ~500 float64 roundings of the sum
_QUAD_LIMIT = 200


@dataclass(frozen=True)
class Activation:
    """A scalar nonlinearity, vectorised over numpy arrays.

    ``kinks`` are the points where phi or phi' is not smooth (quadrature is split there);
    ``homogeneous`` marks positively homogeneous maps (phi(c x) = c phi(x), c > 0), for which
    the length map is linear in q; ``jumps`` are the kinks where phi itself is discontinuous
    (hardshrink, threshold): ``dphi`` is the derivative away from them, without their deltas.
    """

    name: str
    phi: Callable[[np.ndarray], np.ndarray]
    dphi: Callable[[np.ndarray], np.ndarray]
    kinks: Tuple[float, ...] = ()
    homogeneous: bool = False
    jumps: Tuple[float, ...] = ()

    @classmethod
    def from_callables(cls, name, phi, dphi=None, kinks=(), homogeneous=False,
                       jumps=()) -> Activation:
        """Wrap any callables; without ``dphi`` a central difference (error ~1e-10) is used.
        The jumps are kinks too."""

        def central_difference(x):
            step = 1e-5 * np.maximum(1.0, np.abs(x))
            return (np.asarray(phi(x + step)) - np.asarray(phi(x - step))) / (2.0 * step)

        return cls(name, phi, dphi or central_difference, tuple(sorted(set(kinks) | set(jumps))),
                   homogeneous, tuple(sorted(jumps)))


ACTIVATIONS = activations.names("mean_field")


def activation(name: str, slope: float | None = None) -> Activation:
    """The named activation; ``slope`` is leaky_relu's negative slope or elu's alpha."""
    entry = activations.get(name, "mean_field")
    phi, dphi = entry.numpy_pair(slope)
    return Activation(name, phi, dphi, entry.mean_field.kinks, entry.mean_field.homogeneous)


def _as_activation(act) -> Activation:
    return act if isinstance(act, Activation) else activation(act)


def expect(f, q=1.0, kinks=()) -> float:
    """``E[f(sqrt(q) z)]``, z ~ N(0, 1), in pieces split at 0 and the kinks: Gauss-Legendre
    (``_fixed_rule``), or ``scipy.integrate.quad`` on a side where that misses the tolerance.

    ``q = 0`` and ``q = inf`` give the limits (mean of the one-sided values of f at 0, or of
    f at -inf and +inf), which is what a dying or exploding signal sees.
    """
    q = float(q)
    if not q >= 0.0:
        raise ValueError(f"q must be >= 0, got {q}")
    if q == 0.0 or math.isinf(q):
        point = _LIMIT_POINT if q == 0.0 else _FAR_POINT
        with np.errstate(over="ignore", invalid="ignore"):
            return 0.5 * float(f(np.float64(-point)) + f(np.float64(point)))
    scale = math.sqrt(q)
    # Breakpoints: the kinks, the Gaussian's shoulders, and (for a wide Gaussian) the scales
    # where a saturating phi changes, which would otherwise fall between quadrature nodes.
    cuts = {k / scale for k in kinks} | {-6.0, -2.5, 2.5, 6.0}
    cuts |= {sign * x / scale for x in _PHI_SCALES for sign in (-1, 1) if x < scale}

    def integrand(z):
        return float(f(scale * z)) * math.exp(-0.5 * z * z)

    # Each side of 0 on its own: odd integrands cancel, and a relative tolerance on the
    # cancelled sum could not be met.
    sides = [[lower] + sorted(c for c in cuts if lower < c < upper) + [upper]
             for lower, upper in ((-_Z_MAX, 0.0), (0.0, _Z_MAX))]
    total = 0.0
    for edges, fixed in zip(sides, _fixed_rule(f, scale, sides)):
        if fixed is None:
            fixed = _integrate(integrand, edges[0], edges[-1], edges[1:-1] or None)
        total += fixed
    return total * _INV_SQRT_2PI


# Gauss-Legendre nodes and weights on [-1, 1] at two orders: the coarse rule's disagreement
# with the fine one bounds the fine rule's error on a piece where the integrand is smooth.
_COARSE_ORDER, _FINE_ORDER = 20, 40
_RULES = tuple(np.polynomial.legendre.leggauss(order) for order in (_COARSE_ORDER, _FINE_ORDER))
_RULE_NODES = np.concatenate([nodes for nodes, _ in _RULES])


def _fixed_rule(f, scale: float, sides):
    """Each side's integral of ``f(scale z) exp(-z^2 / 2)`` by Gauss-Legendre on every piece
    between its edges, in one vectorised call of f; None for a side whose coarse and fine
    rules disagree by more than quad's tolerance (_EPSREL of the side's integral, or
    _ROUNDING of the integral of |f| where it cancels), and None for every side where f does
    not broadcast over an array or is not finite on the nodes. The sides left None go to quad.

    Between the cuts of ``expect`` the built-in integrands are analytic, and the pair of
    rules costs one numpy evaluation of ~1000 points, about a tenth of quad's ~100 scalar
    calls."""
    lows = np.concatenate([edges[:-1] for edges in sides])
    highs = np.concatenate([edges[1:] for edges in sides])
    half, middle = 0.5 * (highs - lows), 0.5 * (highs + lows)
    z = middle[:, None] + half[:, None] * _RULE_NODES[None, :]
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            values = np.asarray(f(scale * z), dtype=float) * np.exp(-0.5 * z * z)
    except (TypeError, ValueError):  # a scalar-only callable: quad calls it one float at a time
        return [None] * len(sides)
    if values.shape != z.shape or not np.isfinite(values).all():
        return [None] * len(sides)
    coarse_weights, fine_weights = (weights for _, weights in _RULES)
    coarse = (values[:, :_COARSE_ORDER] @ coarse_weights) * half
    fine = (values[:, _COARSE_ORDER:] @ fine_weights) * half
    magnitude = (np.abs(values[:, _COARSE_ORDER:]) @ fine_weights) * half
    disagreement = np.abs(fine - coarse)
    results, start = [], 0
    for edges in sides:
        stop = start + len(edges) - 1
        side, error = float(fine[start:stop].sum()), float(disagreement[start:stop].sum())
        tolerance = max(_EPSREL * abs(side), _ROUNDING * float(magnitude[start:stop].sum()))
        results.append(side if error <= tolerance else None)
        start = stop
    return results


def _integrate(integrand, lower, upper, points) -> float:
    """quad to _EPSREL of the integral, or, where the integrand cancels (E[f He_4(z)] of a
    smooth f) so that rounding hides the integral, to _ROUNDING of the integral of |f|."""
    result = integrate.quad(integrand, lower, upper, points=points, epsabs=0.0,
                            epsrel=_EPSREL, limit=_QUAD_LIMIT, full_output=1)
    if len(result) == 3:  # a fourth item is quad's message: the tolerance was not met
        return result[0]
    magnitude = integrate.quad(lambda z: abs(integrand(z)), lower, upper, points=points,
                               epsabs=0.0, epsrel=1e-3, limit=_QUAD_LIMIT)[0]
    return integrate.quad(integrand, lower, upper, points=points, epsabs=_ROUNDING * magnitude,
                          epsrel=_EPSREL, limit=_QUAD_LIMIT)[0]


def length_map(act, gain, q, bias_variance: float = 0.0) -> float:
    """``V(q) = g^2 E[phi(sqrt(q) z)^2] + sigma_b^2``: the next layer's pre-activation second
    moment."""
    act = _as_activation(act)
    return gain**2 * expect(lambda x: act.phi(x) ** 2, q, act.kinks) + bias_variance


def chi(act, gain, q) -> float:
    """``g^2 E[phi'(sqrt(q) z)^2]``: per-layer factor of the mean squared gradient."""
    act = _as_activation(act)
    return gain**2 * expect(lambda x: act.dphi(x) ** 2, q, act.kinks)


def length_map_slope(act, gain, q) -> float:
    """``dV/dq = g^2 E[phi(u) phi'(u) u] / q`` (Stein's lemma form: no phi'', fine at kinks),
    plus, for each jump a of phi, ``g^2 a (phi(a+)^2 - phi(a-)^2) pdf_q(a) / (2 q)``: the
    delta the jump puts in (phi^2)', i.e. the edges of a dead zone moving with q.

    At q = 0 (only a fixed point when phi(0) = 0) and q = inf this is the limit
    ``g^2 E[phi(u) phi'(u) / u]`` (the jump terms vanish there).
    """
    act = _as_activation(act)
    q = float(q)
    if q == 0.0 or math.isinf(q):
        if q == 0.0 and float(act.phi(np.float64(0.0))) != 0.0:
            raise ValueError("dV/dq at q = 0 needs phi''(0) unless phi(0) = 0")
        return gain**2 * expect(lambda x: act.phi(x) * act.dphi(x) / x, q, act.kinks)
    smooth = expect(lambda x: act.phi(x) * act.dphi(x) * x, q, act.kinks)
    return gain**2 * (smooth + 0.5 * sum(_jump_term(act, a, q) for a in act.jumps)) / q


def _jump_term(act: Activation, a: float, q: float) -> float:
    """``a (phi(a+)^2 - phi(a-)^2) pdf_q(a)``."""
    above, below = (float(act.phi(np.nextafter(np.float64(a), side))) ** 2
                    for side in (np.inf, -np.inf))
    return a * (above - below) * math.exp(-0.5 * a * a / q) * _INV_SQRT_2PI / math.sqrt(q)


def fixed_point(act, gain, q0=1.0, bias_variance: float = 0.0) -> float:
    """The q the forward pass converges to from ``q0``: a root of ``V(q) = q`` (brentq).

    With biases (``bias_variance`` > 0) a homogeneous map has the one fixed point
    ``sigma_b^2 / (1 - rate)`` where its rate ``V(1) - sigma_b^2`` is below 1.

    0.0 when the signal dies, ``math.inf`` when it blows up, ``q0`` when V is the identity
    (a homogeneous activation at its critical gain) or when q0 is itself a fixed point to
    SAME_Q, stable or not. Assumes V increasing, so iterates move monotonically towards the
    nearest root in the direction of ``V(q0) - q0``.
    """
    act = _as_activation(act)
    q0 = float(q0)
    if not 0.0 <= q0 < math.inf:
        raise ValueError(f"q0 must be finite and >= 0, got {q0}")
    if act.homogeneous:
        rate = length_map(act, gain, 1.0)
        if bias_variance > 0.0:
            return bias_variance / (1.0 - rate) if rate < 1.0 else math.inf
        if abs(rate - 1.0) < CRITICAL_TOLERANCE:
            return q0
        return 0.0 if rate < 1.0 else math.inf
    if q0 == 0.0:
        if length_map(act, gain, 0.0, bias_variance) == 0.0:
            return 0.0
        q0 = Q_TINY

    def excess(log_q):
        q = math.exp(log_q)
        return length_map(act, gain, q, bias_variance) / q - 1.0

    start = math.log(q0)
    value = excess(start)
    if abs(value) < SAME_Q:
        # q0 is a fixed point; an unstable one (gelu at its forward gain) would otherwise be
        # left for 0 or inf by the sign of a rounding error.
        return q0
    step = math.log(_SEARCH_STEP) * (1.0 if value > 0 else -1.0)
    bound = math.log(Q_HUGE) if value > 0 else math.log(Q_TINY)
    near = start
    while True:
        far = near + step
        if (far - bound) * step > 0:
            return math.inf if value > 0 else 0.0
        if (excess(far) > 0) != (value > 0):
            break
        near = far
    return math.exp(optimize.brentq(excess, min(near, far), max(near, far), xtol=1e-13))


def kappa_forward(act, q) -> float:
    """``E[phi^4] / E[phi^2]^2 - 1`` at ``u = sqrt(q) z``: finite-width noise, forward pass.

    ValueError where E[phi^2] = 0 (a dead signal: hardshrink below its dead zone's edge),
    where the relative noise of a zero signal is undefined."""
    act = _as_activation(act)
    second = expect(lambda x: act.phi(x) ** 2, q, act.kinks)
    _require_signal(act, second, "phi", q)
    return expect(lambda x: act.phi(x) ** 4, q, act.kinks) / second**2 - 1.0


def kappa_backward(act, q) -> float:
    """``3 E[phi'^4] / E[phi'^2]^2 - 1``: finite-width noise of the backward pass (relu 5).
    ValueError where E[phi'^2] = 0 (no gradient passes)."""
    act = _as_activation(act)
    second = expect(lambda x: act.dphi(x) ** 2, q, act.kinks)
    _require_signal(act, second, "phi'", q)
    return 3.0 * expect(lambda x: act.dphi(x) ** 4, q, act.kinks) / second**2 - 1.0


def _require_signal(act: Activation, second: float, what: str, q: float) -> None:
    if second == 0.0:
        raise ValueError(f"{act.name}: E[{what}(u)^2] = 0 at q = {q:.3g} (a dead signal): "
                         "its finite-width noise kappa is undefined")


def profile(act, gain, q0, depth,
            bias_variance: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
    """Mean-field depth profile: ``q[l]`` and ``chi[l] = chi(q[l])`` for l = 0..depth.

    ``chi[l]`` is the factor by which the mean squared gradient w.r.t. pre-activations
    changes from layer l+1 back to layer l.
    """
    act = _as_activation(act)
    q = np.empty(depth + 1)
    q[0] = q0
    for layer in range(depth):
        q[layer + 1] = length_map(act, gain, q[layer], bias_variance)
    return q, np.array([chi(act, gain, value) for value in q])


def depth_scale(rate: float) -> float:
    """``1 / |ln rate|``: layers per e-fold of a quantity multiplied by ``rate`` per layer
    (inf within CRITICAL_TOLERANCE of 1, where the quadrature cannot tell it from 1)."""
    if abs(rate - 1.0) < CRITICAL_TOLERANCE:
        return math.inf
    return 1.0 / abs(math.log(rate)) if rate > 0 else 0.0


def forward_depth_scale(slope: float) -> float:
    """``-1 / ln slope``: layers per e-fold of q - q*, negative where q* repels (slope > 1)."""
    return depth_scale(slope) * (-1.0 if slope > 1.0 + CRITICAL_TOLERANCE else 1.0)


def regime(chi_1: float) -> str:
    """"critical", "near-critical" (a 10x change of the squared gradient takes over 100 layers),
    else "ordered" (gradients vanish, chi_1 < 1) or "chaotic" (they explode)."""
    if math.isnan(chi_1):
        raise ValueError("chi_1 is nan")
    if abs(chi_1 - 1.0) < CRITICAL_TOLERANCE:
        return "critical"
    if math.log(10.0) * depth_scale(chi_1) > NEAR_CRITICAL_DEPTH:
        return "near-critical"
    return "ordered" if chi_1 < 1.0 else "chaotic"


@dataclass(frozen=True)
class MeanField:
    """What a gain does to a deep square network in the mean-field limit (docs/theory.md)."""

    activation: str
    gain: float
    q_star: float  # fixed point of the length map reached from q0
    post_rms: float  # sqrt(E[phi(u)^2]) at q*: the RMS of the activations
    chi_1: float  # per-layer factor of the mean squared gradient at q*
    slope: float  # dV/dq at q*: per-layer contraction of q - q*
    xi_q: float  # -1 / ln(slope): forward depth scale (negative: q* repels)
    xi_grad: float  # 1 / |ln chi_1|: gradient depth scale
    depth_10x: float  # ln(10) / |ln chi_1|: layers for a 10x change of the squared gradient
    regime: str
    kappa_forward: float
    kappa_backward: float
    bias_variance: float = 0.0  # sigma_b^2 of the biases (0: bias-free)


def analyse(act, gain, q0=1.0, bias_variance: float = 0.0) -> MeanField:
    """Mean-field summary of ``act`` at ``gain`` for a forward pass started at ``q0``, with
    biases of variance ``bias_variance``.

    A homogeneous activation is scale-free, so its rates are taken at q = q0. When q* is 0 or
    inf the rates are the limits there, and the kappas are taken at Q_TINY or Q_HUGE.
    """
    act = _as_activation(act)
    q_star = fixed_point(act, gain, q0, bias_variance)
    q_rates = q0 if act.homogeneous else q_star
    q_kappa = q0 if act.homogeneous else min(max(q_star, Q_TINY), Q_HUGE)
    chi_1 = chi(act, gain, q_rates)
    if act.homogeneous:
        # V(q) = rate q: at the critical gain exactly the identity, and not 1 +- rounding,
        # whose logarithm would make a depth scale of 1e16 layers out of nothing.
        rate = length_map(act, gain, 1.0)
        slope = 1.0 if abs(rate - 1.0) < CRITICAL_TOLERANCE else rate
    else:
        slope = length_map_slope(act, gain, q_rates)
    return MeanField(
        activation=act.name,
        gain=float(gain),
        q_star=q_star,
        # V(q*) = q* = g^2 E[phi^2] + sigma_b^2
        post_rms=math.sqrt(max(q_star - bias_variance, 0.0)) / abs(gain),
        chi_1=chi_1,
        slope=slope,
        xi_q=forward_depth_scale(slope),
        xi_grad=depth_scale(chi_1),
        depth_10x=math.log(10.0) * depth_scale(chi_1),
        regime=regime(chi_1),
        kappa_forward=kappa_forward(act, q_kappa),
        kappa_backward=kappa_backward(act, q_kappa),
        bias_variance=float(bias_variance),
    )


def critical_gain(act, q0=1.0) -> Tuple[float | None, str]:
    """The gain where chi_1 = 1 at the fixed point (edge of chaos), and how it was found.

    Homogeneous: the forward-preserving gain, where every q is a fixed point. Otherwise the
    sign change of chi_1(g) - 1 nearest the forward gain, refined with brentq, unless it is the
    limit q* -> 0 (phi(0) = 0: tanh's g = 1) or q* -> inf (softplus), where the exact value
    solves g^2 E[phi'^2] = 1 at that limit. None, with the reason, when chi_1
    never crosses 1 in ``_GAIN_RANGE`` or jumps across it (gelu, silu: q* switches 0 -> inf).
    """
    act = _as_activation(act)
    forward = gain_forward(act)
    if act.homogeneous:
        return forward, "homogeneous: every q is a fixed point at the forward gain"

    reached = {}  # gain -> fixed point from q0

    def excess(gain):
        reached[gain] = fixed_point(act, gain, q0)
        return chi(act, gain, reached[gain]) - 1.0

    near = forward or 1.0
    ordered = excess(near) < 0
    factor = _SEARCH_STEP**0.5 if ordered else _SEARCH_STEP**-0.5  # gain drives chi_1 up
    while True:
        far = near * factor
        if not _GAIN_RANGE[0] <= far <= _GAIN_RANGE[1]:
            return None, "chi_1 at the fixed point stays {} 1 for gains {} {}".format(
                "below" if ordered else "above", "up to" if ordered else "down to", far)
        if (excess(far) < 0) != ordered:
            break
        near = far
    lower, upper = min(near, far), max(near, far)
    # Where q* switches from 0 to inf (gelu, silu), chi_1 jumps over 1 with it. V(q0) =
    # g^2 E[phi(sqrt(q0) z)^2] grows with g, so the switch can only be the one gain where
    # V(q0) = q0: tried first, instead of ~40 brentq steps of a fixed-point search each.
    # Rounded as gain_forward rounds 1 / sqrt(E[phi^2]): at q0 = 1 the search starts from that
    # gain, and sqrt(1 / E) can land an ulp above the bracket's end.
    switch = math.sqrt(q0) / math.sqrt(expect(lambda x: act.phi(x) ** 2, q0, act.kinks))
    if lower <= switch <= upper:
        jump = _jump(q0, switch, excess, reached)
        if jump:
            return None, jump
    # A crossing at a limit q* -> 0 or q* -> inf sits exactly where g^2 E[phi'^2] = 1 there;
    # chi_1 - 1 is second order on one side of it, which a bracketing search resolves poorly.
    for limit, label in ((0.0, "0"), (math.inf, "inf")):
        rate = chi(act, 1.0, limit)
        if rate == 0.0 or limit == 0.0 and float(act.phi(np.float64(0.0))) != 0.0:
            continue
        exact = 1.0 / math.sqrt(rate)
        if lower < exact < upper and excess(exact * (1 - 1e-4)) < 0 <= excess(exact * (1 + 1e-4)):
            return exact, f"limit q* -> {label}: g^2 E[phi'(u)^2] = 1 there"
    root = optimize.brentq(excess, lower, upper, xtol=1e-12)
    jump = _jump(q0, root, excess, reached)
    if jump:
        return None, jump
    return root, f"root of chi_1(g) = 1 at the fixed point reached from q0 = {q0}"


def _jump(q0: float, gain: float, excess, reached: dict) -> str:
    """Why there is no critical gain if chi_1 - 1 jumps across 0 at ``gain``, else ""."""
    left, right = excess(gain * (1 - 1e-7)), excess(gain * (1 + 1e-7))
    if max(abs(left), abs(right)) <= 1e-3 or (left < 0) == (right < 0):
        return ""
    below, above = (reached[gain * (1 + side)] for side in (-1e-7, 1e-7))
    return (f"chi_1 jumps from {left + 1:.4g} to {right + 1:.4g} at gain {gain:.6g}: "
            f"the fixed point reached from q0 = {q0} switches from {below} to {above}")


def gain_forward(act) -> float | None:
    """``1 / sqrt(E[phi(z)^2])``: keeps q* = 1 (AutoInit, ALF, e3nn)."""
    act = _as_activation(act)
    second = expect(lambda x: act.phi(x) ** 2, 1.0, act.kinks)
    return 1.0 / math.sqrt(second) if second > 0 else None


GAIN_NAMES = ("forward", "backward", "centred", "critical")


@dataclass(frozen=True, eq=False)  # eq: Mapping's, so it equals the dict of the four gains
class GainDefinitions(Mapping):
    """docs/theory.md's four gains, each None where it does not exist; a read-only mapping from
    GAIN_NAMES to the gains, with ``critical_reason`` saying how the critical gain was found
    (or why there is none)."""

    forward: float | None
    backward: float | None
    centred: float | None
    critical: float | None
    critical_reason: str

    def __getitem__(self, key: str) -> float | None:
        if key not in GAIN_NAMES:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(GAIN_NAMES)

    def __len__(self) -> int:
        return len(GAIN_NAMES)


def gain_definitions(act) -> GainDefinitions:
    """The four gain conventions of docs/theory.md: forward, backward, centred (NFNet) and critical,
    with the critical gain's reason (:func:`critical_gain`)."""
    act = _as_activation(act)
    derivative = expect(lambda x: act.dphi(x) ** 2, 1.0, act.kinks)
    mean = expect(act.phi, 1.0, act.kinks)
    variance = expect(lambda x: act.phi(x) ** 2, 1.0, act.kinks) - mean**2
    critical, reason = critical_gain(act)
    return GainDefinitions(
        forward=gain_forward(act),
        backward=1.0 / math.sqrt(derivative) if derivative > 0 else None,
        centred=1.0 / math.sqrt(variance) if variance > 0 else None,
        critical=critical,
        critical_reason=reason,
    )
