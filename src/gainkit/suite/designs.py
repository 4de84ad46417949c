"""Probe designs of the stability suite: the bands a run is judged by, the sizes it runs at,
and the reduction of a measurement to the judged statistics.

The finite-width model (``gainkit.meanfield.finitewidth``) gives each statistic's mean and
single-draw variance; the suite's coverage (``gainkit.suite.coverage``) says which gains and inits
get a design.

Bands. The mean of a statistic T over S independent draws gets ``E[T] +- z sqrt(Var[T] / S)``,
with z from a Bonferroni bound on the whole suite's family-wise false-alarm probability
(``gainkit.suite.coverage.suite_z``).

Design (``plan``). One input per draw and column: samples sharing weights do not average the
weight noise away (docs/theory.md), and a batch's variance would depend on input correlations the
model does not track; cost is dominated by drawing weights, not by the batch. Width 64: where
the model was validated; narrower widths would be cheaper (the bands need S N L, the probe
pays S N^2 L) but push the neglected O(1/N^2) terms towards the band's scale. Depth 24,
fewer where the squared gradient would span over 1e18 (sigmoid: 14). Draws: the fewest that
put every +-5% negative control outside its band with the same confidence z
(``sharpness_draws``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Sequence, Tuple

import numpy as np
from scipy import interpolate, special

from gainkit.meanfield import theory
from gainkit.meanfield.finitewidth import FiniteWidth, finite_width, window_weights

CONTROL_FACTORS = (1.05, 0.95)  # negative controls: the gain off by +-5%
CONVERGED = 0.01  # |ln q - ln q*| below which the profile has reached the fixed point
GRADIENT_RANGE = math.log(1e18)  # largest change of the squared gradient a probe may span
NEAR_CRITICAL_RATE = math.log(10.0) / theory.NEAR_CRITICAL_DEPTH  # |ln chi_1| boundary
DEFAULT_WIDTH = 64
DEFAULT_DEPTH = 24
ROUNDING_EPS = 2.0 ** -23  # float32's machine epsilon


@lru_cache(maxsize=None)
def _derivative_curve(name: str, slope: float | None):
    # ln E[phi'(sqrt(q) z)^2] on a ln q grid; the residual needs it at every measured q.
    act = theory.activation(name, slope)
    if act.homogeneous:
        value = math.log(theory.expect(lambda u: act.dphi(u) ** 2, 1.0, act.kinks))
        return None, value
    grid = np.arange(math.log(1e-6), math.log(1e4) + 0.1, 0.2)  # cubic error ~1e-6
    values = [math.log(theory.expect(lambda u: act.dphi(u) ** 2, math.exp(x), act.kinks))
              for x in grid]
    return interpolate.CubicSpline(grid, values), (grid[0], grid[-1])


def log_chi(name: str, slope: float | None, gain: float, q: np.ndarray) -> np.ndarray:
    """``ln chi(q)`` elementwise for measured second moments (spline, error < 1e-6)."""
    curve, extent = _derivative_curve(name, slope)
    log_q = np.log(np.asarray(q, dtype=float))
    if curve is None:
        return np.full(log_q.shape, 2 * math.log(gain) + extent)
    inside = (log_q >= extent[0]) & (log_q <= extent[1])
    if not inside.all():
        outside = np.flatnonzero(~inside.ravel())
        value = float(np.exp(log_q.ravel()[outside[0]]))
        raise ValueError(f"measured q {value:.3g} outside the tabulated range 1e-6..1e4")
    return 2 * math.log(gain) + curve(log_q)


def upper_z(probability: float) -> float:
    """z with ``P(Z > z) = probability`` for a standard normal Z (``scipy.stats.norm.isf``,
    computed as scipy.stats does, by ``-ndtri``: scipy.special loads in a third of the time)."""
    return float(-special.ndtri(probability))


def upper_tail(z: float) -> float:
    """``P(Z > z)`` for a standard normal Z (``scipy.stats.norm.sf``, as ``ndtr(-z)``)."""
    return float(special.ndtr(-z))


def bonferroni_z(comparisons: int, alpha: float) -> float:
    """Two-sided z with ``comparisons * P(|Z| > z) = alpha``: the band width that keeps the
    probability of any false alarm among ``comparisons`` two-sided checks below ``alpha``."""
    return upper_z(alpha / (2.0 * comparisons))


@dataclass(frozen=True)
class Band:
    """``centre +- half_width`` on a log scale."""

    centre: float
    half_width: float

    @property
    def low(self) -> float:
        return self.centre - self.half_width

    @property
    def high(self) -> float:
        return self.centre + self.half_width

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Design:
    """What the probe runs for one gain, and the statistics it is judged by.

    Two input columns share the weights: ``inputs[0] = 1`` (the forward check: the profile
    from a unit input) and ``inputs[1] = q*`` (the backward check: chi_1 is defined at the
    fixed point, so there is no transient to discard). ``forward_layers``: the layers whose
    mean ``ln q`` is the forward summary (the endpoint for a neutral map, where a wrong gain
    compounds; the converged layers for an attracting one). ``backward_layers``: the layers
    ``l`` whose ratios ``g_l / g_{l+1}`` form the gradient slope.
    """

    activation: str
    slope: float | None
    gain: float
    width: int
    depth: int
    draws: int
    z: float
    inputs: Tuple[float, float]
    forward_layers: Tuple[int, ...]
    backward_layers: Tuple[int, ...]
    mean_field: theory.MeanField
    weight_kurtosis: float = 0.0
    weights: str = "gaussian"  # the weight ensemble (finitewidth.WEIGHTS)

    def model(self, column: int, factor: float = 1.0) -> FiniteWidth:
        """Model of input column ``column`` with the gain multiplied by ``factor``."""
        return finite_width(self.activation, self.slope, self.gain * factor,
                            self.inputs[column], self.depth, self.width, self.gain,
                            self.weight_kurtosis, self.weights)

    @property
    def rounding(self) -> float:
        """Bound on the rounding error of a measured log statistic: a layer rounds a squared
        norm by at most ~2 N eps of itself, compounding over the depth (float32, the coarsest
        dtype the suite probes). Negligible next to sampling bands, except where the model
        predicts no noise at all (orthogonal weights, linear: norms kept exactly)."""
        return 2.0 * self.depth * self.width * ROUNDING_EPS

    def forward_weights(self) -> np.ndarray:
        return window_weights(self.depth, self.forward_layers)

    def backward_weights(self) -> np.ndarray:
        return window_weights(self.depth, self.backward_layers)

    def forward_statistic(self, factor: float = 1.0) -> Tuple[float, float]:
        return self.model(0, factor).statistic(q=self.forward_weights())

    def slope_statistic(self, factor: float = 1.0) -> Tuple[float, float]:
        return self.model(1, factor).statistic(ratio=self.backward_weights())

    def residual_statistic(self, factor: float = 1.0) -> Tuple[float, float]:
        return self.model(1, factor).statistic(residual=self.backward_weights())

    def post_statistic(self, factor: float = 1.0) -> Tuple[float, float]:
        """Mean ``ln p`` (post-activation second moment) over the forward layers."""
        return self.model(0, factor).statistic(post=self.forward_weights())

    def growth_statistic(self, factor: float = 1.0) -> Tuple[float, float]:
        """Mean ``ln r`` over the forward layers of the unit-input column (the forum's net)."""
        return self.model(0, factor).statistic(ratio=self.growth_weights())

    def growth_weights(self) -> np.ndarray:
        return window_weights(self.depth, [k for k in self.forward_layers if k < self.depth]
                              or [self.depth - 1])

    def statistic(self, name: str, factor: float = 1.0) -> Tuple[float, float]:
        return getattr(self, name + "_statistic")(factor)

    def band(self, statistic: Tuple[float, float]) -> Band:
        mean, variance = statistic
        return Band(mean, self.z * math.sqrt(variance / self.draws) + self.rounding)

    def layer_bands(self) -> Tuple[np.ndarray, np.ndarray]:
        """``E[mean over draws of ln q_l]`` and the band half-widths, l = 0..depth."""
        mean, variance = self.model(0).per_layer("q")
        return mean, self.z * np.sqrt(variance / self.draws) + self.rounding

    def slope_bias(self) -> float:
        """Finite-width shift of the gradient slope: measured slope minus this = ln chi_1."""
        weights = self.backward_weights()
        mean_field = float(weights @ self.model(1).mean_field["ratio"])
        return self.slope_statistic()[0] - mean_field


def default_depth(mean_field: theory.MeanField) -> int:
    """DEFAULT_DEPTH, or fewer layers where the squared gradient would span over 1e18
    (sigmoid: 14 layers), which keeps float32 gradients far from underflow."""
    rate = abs(math.log(mean_field.chi_1)) if mean_field.chi_1 > 0 else math.inf
    if rate == 0.0:
        return DEFAULT_DEPTH
    return max(2, min(DEFAULT_DEPTH, int(GRADIENT_RANGE / rate)))


def forward_layers(name: str, slope: float | None, gain: float, depth: int,
                   q_star: float) -> Tuple[int, ...]:
    """Endpoint for a neutral map; else the layers where the profile is within CONVERGED of
    q* (the endpoint when it gets there only after ``depth``)."""
    act = theory.activation(name, slope)
    if act.homogeneous or not 0.0 < q_star < math.inf:
        return (depth,)
    profile, _ = theory.profile(act, gain, 1.0, depth)
    close = np.abs(np.log(profile[1:]) - math.log(q_star)) <= CONVERGED
    for start in range(depth):
        if close[start:].all():
            return tuple(range(start + 1, depth + 1))
    return (depth,)


JUDGED = ("forward", "residual")  # the statistics every negative control must leave


def sharpness_draws(design: Design, judged: Sequence[str] = JUDGED,
                    rate: str | None = "slope") -> int:
    """Fewest draws for which every negative control lands outside its band.

    For each control factor c and each judged statistic T (forward summary, gradient residual)
    the requirement is ``|E_c[T] - E_1[T]| >= z (sd_1 + sd_c) / sqrt(S)``: the nominal stays
    within its band and the control outside it, each with the per-comparison confidence that
    z encodes. With a ``rate`` (``slope`` at q*, or ``growth`` from a unit input), ordered and
    chaotic gains add ``regime_margin >= 2 z sd / sqrt(S)`` (sd of that statistic) so that the
    design's own chi_1 band cannot reach the near-critical boundary; None leaves the regime to
    a pooled check (``pool_for_regime``).
    """
    requirements = []
    for name in judged:
        mean, variance = design.statistic(name)
        for factor in CONTROL_FACTORS:
            other_mean, other_variance = design.statistic(name, factor)
            spread = math.sqrt(variance) + math.sqrt(other_variance)
            gap = abs(other_mean - mean) - 2 * design.rounding
            requirements.append((design.z * spread / gap) ** 2)
    margin = regime_margin(design.mean_field)
    if rate is not None and margin is not None:
        _, variance = design.statistic(rate)
        requirements.append((2 * design.z * math.sqrt(variance) / margin) ** 2)
    return max(2, int(math.ceil(max(requirements))))


def regime_margin(mean_field: theory.MeanField) -> float | None:
    """How far ``ln chi_1`` lies beyond the near-critical boundary, for the regimes that a
    measurement must tell from near-critical (ordered, chaotic); None for the others."""
    if mean_field.regime not in ("ordered", "chaotic"):
        return None
    return abs(math.log(mean_field.chi_1)) - NEAR_CRITICAL_RATE


def pooled_weights(designs: Sequence[Design]) -> np.ndarray:
    """Each design's weight in the pooled slope: the inverse of its mean's variance
    ``Var_i / S_i`` (Var_i: single-draw variance of the slope at q*), normalised, with the
    rounding allowance squared as a floor (linear orthogonal nets: a model variance of 0).
    Inverse-variance weights give the pooled mean of the smallest variance."""
    weights = np.array([1.0 / (d.slope_statistic()[1] / d.draws + d.rounding ** 2)
                        for d in designs])
    return weights / weights.sum()


def pooled_statistic(designs: Sequence[Design], name: str = "slope",
                     factor: float = 1.0) -> Tuple[float, float]:
    """Mean and sd of the pooled statistic ``sum_i w_i T_i`` (``pooled_weights``; each T_i the
    mean over its design's draws of ``name``), with the gain multiplied by ``factor``."""
    weights = pooled_weights(designs)
    mean = variance = 0.0
    for weight, design in zip(weights, designs):
        design_mean, design_variance = design.statistic(name, factor)
        mean += weight * design_mean
        variance += weight ** 2 * design_variance / design.draws
    return mean, math.sqrt(variance)


def pooled_bias(designs: Sequence[Design]) -> float:
    """Finite-width shift of the pooled slope: pooled slope minus this estimates ln chi_1."""
    return float(pooled_weights(designs) @ np.array([d.slope_bias() for d in designs]))


def pooled_band(designs: Sequence[Design], name: str = "slope") -> Band:
    """Band of a pooled statistic: its mean +- z sd, plus the rounding allowance (the designs
    of one gain share depth and width, hence the allowance)."""
    mean, sd = pooled_statistic(designs, name)
    return Band(mean, designs[0].z * sd + max(design.rounding for design in designs))


def pool_for_regime(designs: Sequence[Design]) -> Tuple[Design, ...]:
    """The designs of one gain's inits, with draws raised where needed for the regime check,
    judged once on their pooled slope (``pooled_statistic``, the slope at q*):

    - ordered and chaotic gains: ``regime_margin - rounding >= 2 z sd``, so the band of the
      pooled ln chi_1 cannot reach the near-critical boundary;
    - each negative control's pooled residual lands outside the nominal one's band with the
      suite's confidence, ``|E_c - E_1| - 2 rounding >= z (sd_1 + sd_c)`` (the residual, as
      per init: a gain error moves chi_1 little where the activation saturates, tanh).

    Every design's draws are scaled by one factor (rounded up), which keeps the weights. This
    replaces a per-init regime requirement (``sharpness_draws`` with a ``rate``): selu at
    gain 1, whose ln chi_1 lies 0.023 beyond the boundary, needed 140 draws an init for it,
    against 24 for its negative controls.
    """
    designs = tuple(designs)
    for _ in range(8):  # one step solves it but for the rounding floor of the weights
        factor = _pooling_shortfall(designs)
        if factor <= 1.0:
            return designs
        designs = tuple(replace(d, draws=int(math.ceil(d.draws * factor))) for d in designs)
    raise ValueError(f"{designs[0].activation} at gain {designs[0].gain}: pooled draws do not "
                     "converge")


def _pooling_shortfall(designs: Tuple[Design, ...]) -> float:
    # The factor on every design's draws that meets each requirement (variances ~ 1 / draws).
    z, rounding = designs[0].z, max(d.rounding for d in designs)
    factors = [0.0]
    margin = regime_margin(designs[0].mean_field)
    if margin is not None:
        _, sd = pooled_statistic(designs)
        factors.append((2 * z * sd / (margin - rounding)) ** 2)
    mean, sd = pooled_statistic(designs, "residual")
    for control in CONTROL_FACTORS:
        other_mean, other_sd = pooled_statistic(designs, "residual", control)
        factors.append((z * (sd + other_sd) / (abs(other_mean - mean) - 2 * rounding)) ** 2)
    return max(factors)


def plan(name: str, slope: float | None, gain: float, z: float,
         width: int | None = None, depth: int | None = None,
         draws: int | None = None, weight_kurtosis: float = 0.0,
         judged: Sequence[str] = JUDGED, rate: str | None = "slope",
         weights: str = "gaussian") -> Design:
    """The probe design for ``gain``; None sizes are chosen from theory (see module doc).

    ``judged``, ``rate``: the statistics whose negative controls must be resolved, and the one
    the regime is read from (``sharpness_draws``; None: the regime is judged on pooled designs,
    ``pool_for_regime``). ``weights``: the weight ensemble.
    Cached: a Design is immutable, and every dtype and device of the suite runs the same one.
    """
    return _plan(name, slope, float(gain), float(z), width, depth, draws,
                 float(weight_kurtosis), tuple(judged), rate, weights)


@lru_cache(maxsize=None)
def _plan(name, slope, gain, z, width, depth, draws, weight_kurtosis, judged, rate,
          weights) -> Design:
    act = theory.activation(name, slope)
    mean_field = theory.analyse(act, gain)
    width = DEFAULT_WIDTH if width is None else int(width)
    depth = default_depth(mean_field) if depth is None else int(depth)
    q_star = mean_field.q_star
    if not 0.0 < q_star < math.inf:
        raise ValueError(f"gain {gain} of {name} has no finite fixed point (q* = {q_star}); "
                         "nothing to probe at")
    design = Design(name, slope, float(gain), width, depth, 2, float(z), (1.0, q_star),
                    forward_layers(name, slope, gain, depth, q_star), tuple(range(depth)),
                    mean_field, float(weight_kurtosis), weights)
    chosen = sharpness_draws(design, judged, rate) if draws is None else int(draws)
    return replace(design, draws=chosen)


def clear_plans() -> None:
    """Forget the cached designs (a benchmark's fresh start)."""
    _plan.cache_clear()


SLOW_SETTLING = 10.0  # xi_q (layers) beyond which a settling run needs a wider network


def settling_width(mean_field: theory.MeanField) -> int:
    """Width for a run that must settle at q*: DEFAULT_WIDTH, doubled for slow settling.

    Near-critical forward maps (selu at 3/4: xi_q = 12.6) accumulate Var[ln s] ~ kappa /
    (N (1 - lambda^2)), and the linear model misses that the relaxation rate 1 - lambda itself
    moves with s (lambda -> 1 below q*). Monte Carlo of selu 3/4's 90-layer settling run: the
    plateau variance is 1.37x the model's at N = 64, 1.13x at N = 128, 0.97x at N = 256.
    """
    return 2 * DEFAULT_WIDTH if mean_field.xi_q > SLOW_SETTLING else DEFAULT_WIDTH


def settling_depth(name: str, slope: float | None, gain: float, window: int = DEFAULT_DEPTH,
                   limit: int = 1000) -> int:
    """Depth whose last ``window`` layers have converged (CONVERGED) to q* from q0 = 1."""
    act = theory.activation(name, slope)
    q_star = theory.fixed_point(act, gain)
    q, layer = 1.0, 0
    while abs(math.log(q / q_star)) > CONVERGED:
        if layer == limit:
            raise ValueError(f"{name} at gain {gain} does not settle within {limit} layers")
        q, layer = theory.length_map(act, gain, q), layer + 1
    return layer + window


@dataclass(frozen=True)
class Observed:
    """The judged statistics of one run (one weight scale), averaged over draws.

    ``log_q[l]``: mean over draws of ``ln q_l`` (forward column); ``log_grad[l]``: of
    ``ln g_l`` (backward column); the rest as in ``Design``.
    """

    log_q: np.ndarray
    log_grad: np.ndarray
    forward: float
    slope: float
    residual: float
    post: float
    growth: float


def observe(design: Design, measurement, scale: int = 0) -> Observed:
    """Reduce a ``probe.Measurement`` (columns ``design.inputs``) to ``Observed``."""
    q = np.log(measurement.q[scale])  # (draws, inputs, layers)
    post = np.log(measurement.post[scale])
    grad = np.log(measurement.grad[scale])
    ratio = np.zeros_like(grad)
    ratio[..., :-1] = grad[..., :-1] - grad[..., 1:]
    residual = np.zeros_like(grad[:, 1])
    residual[:, :-1] = ratio[:, 1, :-1] - log_chi(design.activation, design.slope, design.gain,
                                                  measurement.q[scale][:, 1, :-1])
    forward, backward = design.forward_weights(), design.backward_weights()
    return Observed(
        log_q=q[:, 0].mean(axis=0), log_grad=grad[:, 1].mean(axis=0),
        forward=float((q[:, 0] @ forward).mean()), slope=float((ratio[:, 1] @ backward).mean()),
        residual=float((residual @ backward).mean()),
        post=float((post[:, 0] @ forward).mean()),
        growth=float((ratio[:, 0] @ design.growth_weights()).mean()))


def compatible_regimes(low: float, high: float) -> Tuple[str, ...]:
    """Regimes whose ``ln chi_1`` range meets the band ``[low, high]`` of a measured ln chi_1."""
    found = []
    if low < -NEAR_CRITICAL_RATE:
        found.append("ordered")
    if low <= 0.0 <= high:
        found.append("critical")
    if low < NEAR_CRITICAL_RATE and high > -NEAR_CRITICAL_RATE:
        found.append("near-critical")
    if high > NEAR_CRITICAL_RATE:
        found.append("chaotic")
    return tuple(found)
