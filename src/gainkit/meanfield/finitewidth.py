"""Finite-width noise model of the stability probe: what its statistics average to, and
how much they scatter, at width N.

Mean-field theory (``gainkit.meanfield.theory``) gives the infinite-width profile. A finite network
of width N, measured on one input per weight draw, fluctuates around it; this module carries
those fluctuations to first order in 1/N so that bands and sample sizes follow from theory
(``gainkit.suite.designs`` turns them into probe designs).

Model (one input per draw). Given the layers below, the pre-activations ``h_l`` are i.i.d.
N(0, s_l) with ``s_0 = q0`` and ``s_{l+1} = g^2 p_l``. With ``u = sqrt(s_l) z`` the probe measures

    ln q_l = ln s_l + eta_l                    q_l = mean h_l^2,   eta_l = ln mean z^2
    ln p_l = ln E[phi(u)^2] + eps_l            p_l = mean phi(h_l)^2
    ln r_l = ln chi(s_l) + xi_l                r_l = g_l / g_{l+1} (squared-gradient ratio)

where each noise is the log of a mean of N i.i.d. terms, hence ~Gaussian with covariance
C_l / N, C_l computed below from Gaussian moments at s_l (Var eta = 2, Var eps = kappa_forward,
Var xi = kappa_backward). Noises of different layers are independent; ``ln s_l`` feeds them
forward with the log-log slope ``lambda_l = d ln E[phi^2] / d ln s`` of the length map.
Beyond that: the O(1/N) failure of gradient independence (``_projection_bias``), the
non-Gaussian pre-activations of uniform weights (``FiniteWidth``), and the O(1/N^2) diagonal
terms of each log-mean (``_noise_covariance``).

Bias of log-averages. ``E[ln mean Y] = ln E[Y] - Var[Y] / (2 E[Y]^2) + O(N^-2)``: every noise
above has mean ``-C_ii / (2N)``. For a critical homogeneous map (lambda = 1) these add up:
``E[ln q_L] = ln q_0 - (kappa L + 2) / (2N)`` although ``E[q_L] = q_0`` -- the geometric mean
over draws sits below the mean-field value by O(kappa L / N) (relu at N = 64, L = 24: 0.98
in ln q, comparable to the band; ignoring it fails a 3000-draw Monte Carlo at z = 38). The
model therefore predicts ``E[ln q_l]`` including this bias and the second-order term
``lambda' Var[ln s] / 2``, and compares it with the mean over draws of
``ln q_l`` (not with ln of an arithmetic mean, whose heavy right tail needs wider bands).

Statistics. A statistic T is a linear combination of the measured logs; its single-draw variance
is ``c' Sigma c`` in this linear model (for a critical map it reduces to docs/theory.md's
``sum_l kappa / N``; at an attracting fixed point it saturates at ``kappa / (N (1 - lambda^2))``).
Checked against 3000-draw Monte Carlo at N = 64 for every stability gain, normal and uniform
weights: means agree within 0.08 single-draw SD, variances within about 10%
(``gainkit.suite.designs.settling_width`` for the one exception).

Orthogonal weights (``weights="orthogonal"``: ``orthogonal_``'s Haar matrices times g). The
length map is the same, the noise is not: ``||W phi|| = g ||phi||`` exactly, so for l >= 1
``q_l = s_l`` (no eta), and ``h_l`` is uniform on the sphere of that radius: ``h = sqrt(s / m) z``
with ``m = mean z^2`` for Gaussian z. Hence ``ln p_l = ln E[phi^2](s_l) + eps_l - lambda_l eta_l``
(eta_l now the unmeasured ``ln m``), and, with the backward signal ``W^T delta`` uniform on the
sphere of radius ``g ||delta||`` (``zeta = ln mean`` of its Gaussian parent's squares: Var 2,
Cov(zeta, xi) = 2), ``ln r_l = ln chi(s_l) + xi_l - beta_l eta_l - zeta_l``. The input layer is
Gaussian (eta_0, eps_0 as before; ``xi_0 - zeta_0``). ``_orthogonal_noise`` builds these
effective noises; the rest of the model is shared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Dict, Sequence, Tuple

import numpy as np

from gainkit.meanfield import theory

_STEP = 1e-3  # ln s step of the finite differences
_ETA, _EPS, _XI = range(3)
WEIGHTS = ("gaussian", "orthogonal")  # the weight ensembles the model describes
_COVARIANCE_STEP = 0.05  # ln s step of the derivative of the noise covariance (orthogonal)


@dataclass(frozen=True)
class LayerNoise:
    """Log-moments at pre-activation variance s and the per-unit noise covariance C."""

    log_post: float  # ln E[phi(u)^2]
    post_slope: float  # lambda: d ln E[phi^2] / d ln s
    post_curvature: float  # d^2 ln E[phi^2] / d (ln s)^2
    log_dphi: float  # ln E[phi'(u)^2]
    chi_slope: float  # beta: d ln chi / d ln s
    chi_curvature: float
    covariance: Tuple[Tuple[float, ...], ...]  # over (eta, eps, xi), per unit (divide by N)
    projection: float  # rho = E[u phi phi']^2 / (s E[phi^2] E[phi'^2])
    skewness: Tuple[float, float, float]  # E[(Y / E[Y] - 1)^3] of each noise's per-unit term
    # d ln E[f(h)] / d(excess kurtosis of h) = E[f He4(z)] / (24 E[f]), f = phi^2 and phi'^2
    kurtosis_post: float
    kurtosis_dphi: float


def _log_derivatives(function, s: float) -> Tuple[float, float, float]:
    below, centre, above = (math.log(function(s * math.exp(t))) for t in (-_STEP, 0.0, _STEP))
    return centre, (above - below) / (2 * _STEP), (above - 2 * centre + below) / _STEP**2


def _activation(name, slope: float | None) -> theory.Activation:
    # ``name`` is a theory.Activation (any activation, e.g. one resolved from torch) or the
    # name of one of theory's built-ins, with ``slope``.
    return name if isinstance(name, theory.Activation) else theory.activation(name, slope)


@lru_cache(maxsize=None)
def _layer_noise(name, slope: float | None, s: float) -> LayerNoise:
    act = _activation(name, slope)
    phi, dphi = act.phi, act.dphi

    def expect(function, scale=s):
        return theory.expect(function, scale, act.kinks)

    log_post, post_slope, post_curvature = _log_derivatives(lambda v: expect(
        lambda u: phi(u) ** 2, v), s)
    log_dphi, chi_slope, chi_curvature = _log_derivatives(lambda v: expect(
        lambda u: dphi(u) ** 2, v), s)
    post, derivative = math.exp(log_post), math.exp(log_dphi)
    eta_eps = expect(lambda u: u * u * phi(u) ** 2) / (s * post) - 1.0
    eta_xi = expect(lambda u: u * u * dphi(u) ** 2) / (s * derivative) - 1.0
    eps_xi = expect(lambda u: (phi(u) * dphi(u)) ** 2) / (post * derivative) - 1.0
    kappa_f = expect(lambda u: phi(u) ** 4) / post**2 - 1.0
    kappa_b = 3.0 * expect(lambda u: dphi(u) ** 4) / derivative**2 - 1.0
    covariance = ((2.0, eta_eps, eta_xi), (eta_eps, kappa_f, eps_xi), (eta_xi, eps_xi, kappa_b))
    projection = expect(lambda u: u * phi(u) * dphi(u)) ** 2 / (s * post * derivative)
    # third moments: E[z^6] = 15 for eta (Y = z^2) and the w^6 factor of xi (Y = phi'^2 w^2)
    skew_f = expect(lambda u: phi(u) ** 6) / post**3 - 3.0 * (kappa_f + 1.0) + 2.0
    skew_b = 15.0 * expect(lambda u: dphi(u) ** 6) / derivative**3 - 3.0 * (kappa_b + 1.0) + 2.0
    hermite = expect(lambda u: phi(u) ** 2 * _hermite4(u, s)) / (24.0 * post)
    hermite_d = expect(lambda u: dphi(u) ** 2 * _hermite4(u, s)) / (24.0 * derivative)
    return LayerNoise(log_post, post_slope, post_curvature, log_dphi, chi_slope,
                      chi_curvature, covariance, projection, (8.0, skew_f, skew_b),
                      hermite, hermite_d)


def _hermite4(u, s):
    z2 = u * u / s
    return z2 * z2 - 6.0 * z2 + 3.0


def layer_noise(name, slope: float | None, s: float) -> LayerNoise:
    """``LayerNoise`` of activation ``name`` (or a theory.Activation) at pre-activation
    variance ``s`` (cached)."""
    if _activation(name, slope).homogeneous:
        # Every ratio and log-derivative is scale-free; only E[phi^2] scales, with s.
        unit = _layer_noise(name, slope, 1.0)
        return replace(unit, log_post=unit.log_post + math.log(s))
    # Moments are smooth in ln s: interpolate cubically between lattice points, which every
    # profile of this activation shares (16 quadratures a point; error ~ LATTICE^4 / 24).
    position = math.log(s) / LATTICE
    first = math.floor(position) - 1
    nodes = range(first, first + 4)
    weights = []
    for node in nodes:  # Lagrange weights of the 4 nodes at ``position``
        weight = 1.0
        for other in nodes:
            if other != node:
                weight *= (position - other) / (node - other)
        weights.append(weight)
    return _noise_from_vector(np.dot(weights, _noise_block(name, slope, first)))


@lru_cache(maxsize=None)
def _noise_block(name, slope: float | None, first: int) -> np.ndarray:
    # The 4 lattice vectors from node ``first`` on, as the rows of one array (read-only).
    block = np.array([_noise_vector(name, slope, node) for node in range(first, first + 4)])
    block.flags.writeable = False
    return block


LATTICE = 0.1  # ln s spacing of the interpolation lattice


# How each LayerNoise field lies in the flat vector the lattice interpolates: (name, shape),
# with shape () for a float. Fields are packed and unpacked by name, never by position.
_VECTOR_LAYOUT = (("log_post", ()), ("post_slope", ()), ("post_curvature", ()),
                  ("log_dphi", ()), ("chi_slope", ()), ("chi_curvature", ()),
                  ("covariance", (3, 3)), ("projection", ()), ("skewness", (3,)),
                  ("kurtosis_post", ()), ("kurtosis_dphi", ()))


@lru_cache(maxsize=None)
def _noise_vector(name, slope: float | None, node: int) -> Tuple[float, ...]:
    noise = _layer_noise(name, slope, math.exp(node * LATTICE))
    return tuple(float(value) for field, _ in _VECTOR_LAYOUT
                 for value in np.ravel(getattr(noise, field)))


def _field_offsets() -> Tuple[Tuple[str, Tuple[int, ...], int], ...]:
    offsets, at = [], 0
    for field, shape in _VECTOR_LAYOUT:
        offsets.append((field, shape, at))
        at += int(np.prod(shape))
    return tuple(offsets)


_FIELD_OFFSETS = _field_offsets()  # (field, shape, where it starts in the vector)


def _noise_from_vector(vector: np.ndarray) -> LayerNoise:
    part = vector.tolist()  # Python floats, as float() of each entry
    values = {}
    for field, shape, at in _FIELD_OFFSETS:
        if not shape:
            values[field] = part[at]
        elif len(shape) == 1:
            values[field] = tuple(part[at:at + shape[0]])
        else:
            rows, columns = shape
            values[field] = tuple(tuple(part[at + row * columns:at + (row + 1) * columns])
                                  for row in range(rows))
    return LayerNoise(**values)


def window_weights(depth: int, layers: Sequence[int]) -> np.ndarray:
    """Weights of the mean over ``layers`` as a vector over l = 0..depth."""
    weights = np.zeros(depth + 1)
    weights[list(layers)] = 1.0 / len(layers)
    return weights


class FiniteWidth:
    """First-order finite-width statistics of ``ln q_l``, ``ln p_l``, ``ln r_l`` (l = 0..depth).

    ``reference_gain``: the gain whose chi the residual ``ln r_l - ln chi(q_l)`` uses (the
    nominal gain when this model describes a negative control); default ``gain``.
    ``weight_kurtosis``: excess kurtosis of the weight distribution (0 normal, -1.2 uniform).
    It makes ``h = W phi`` non-Gaussian with excess kurtosis ``k (1 + kappa_forward) / N``,
    which shifts ``E[phi(h)^2]`` and ``E[phi'(h)^2]`` at O(1/N) (first Edgeworth term; zero
    for homogeneous maps). ``weights``: the ensemble, ``"gaussian"`` (i.i.d. entries, of any
    kurtosis) or ``"orthogonal"`` (Haar times g; kurtosis does not apply). Everything else is
    as in the module docstring.
    """

    def __init__(self, name, slope: float | None, gain: float, q0: float, depth: int,
                 width: int, reference_gain: float | None = None,
                 weight_kurtosis: float = 0.0, weights: str = "gaussian") -> None:
        if weights not in WEIGHTS:
            raise ValueError(f"unknown weight ensemble {weights!r}; expected one of {WEIGHTS}")
        if weights == "orthogonal" and weight_kurtosis:
            raise ValueError("orthogonal weights have no entry kurtosis to set")
        self.gain, self.depth, self.width = float(gain), int(depth), int(width)
        self.weights = weights
        reference = self.gain if reference_gain is None else float(reference_gain)
        noise, s = [], [float(q0)]
        for layer in range(depth + 1):  # p_depth needs s_{depth+1}
            noise.append(layer_noise(name, slope, s[layer]))
            s.append(self.gain**2 * math.exp(noise[-1].log_post))
        self.s, self.noise = np.array(s), noise
        if weights == "orthogonal":
            self.covariance, log_bias = _orthogonal_noise(name, slope, noise, s, width)
        else:
            self.covariance, log_bias = _noise_covariance(noise, width)
        variance_of = np.diag(self.covariance)
        kurtosis = np.array([0.0] + [weight_kurtosis * (1.0 + m.covariance[_EPS][_EPS]) / width
                                     for m in noise[:-1]])  # of h_l; the input is Gaussian

        # ln s_l = mean_s[l] + sensitivity[l] . noise, to first order in the noise
        count, n = 3 * (depth + 1), depth + 1
        sensitivity = np.zeros((depth + 2, count))
        mean_s = np.empty(depth + 2)
        mean_s[0] = math.log(q0)
        var_s = 0.0
        for layer, moments in enumerate(noise):
            lam = moments.post_slope
            sensitivity[layer + 1] = lam * sensitivity[layer]
            sensitivity[layer + 1, 3 * layer + _EPS] = 1.0
            mean_s[layer + 1] = (math.log(self.gain**2) + moments.log_post
                                 + lam * (mean_s[layer] - math.log(s[layer]))
                                 + 0.5 * moments.post_curvature * var_s
                                 + kurtosis[layer] * moments.kurtosis_post
                                 + log_bias[3 * layer + _EPS])
            var_s = lam**2 * var_s + variance_of[3 * layer + _EPS]
        var_s_of = np.einsum("ij,jk,ik->i", sensitivity, self.covariance, sensitivity)

        unit = np.eye(count)
        beta = np.array([m.chi_slope for m in noise])
        curvature = np.array([m.chi_curvature for m in noise])
        log_chi = np.array([2 * math.log(self.gain) + m.log_dphi for m in noise])
        # E[ln chi(s_l)] beyond mean field, plus what gradient independence misses
        chi_shift = (beta * (mean_s[:n] - np.log(s[:n])) + 0.5 * curvature * var_s_of[:n]
                     + kurtosis * np.array([m.kurtosis_dphi for m in noise])
                     + _projection_bias(noise, width, weight_kurtosis, weights)
                     + log_bias[_XI::3])
        self.rows: Dict[str, np.ndarray] = {
            "q": sensitivity[:n] + unit[_ETA::3],
            "post": sensitivity[1:n + 1],
            "ratio": beta[:, None] * sensitivity[:n] + unit[_XI::3],
            # ln r_l - ln chi_ref(q_l) = xi_l - beta eta_l - curvature eta_l^2 / 2
            "residual": unit[_XI::3] - beta[:, None] * unit[_ETA::3],
        }
        self.means: Dict[str, np.ndarray] = {
            "q": mean_s[:n] + log_bias[_ETA::3],
            "post": mean_s[1:n + 1] - math.log(self.gain**2),
            "ratio": log_chi + chi_shift,
            "residual": (2 * math.log(self.gain / reference) + chi_shift
                         - beta * (mean_s[:n] - np.log(s[:n])) - 0.5 * curvature * var_s_of[:n]
                         - beta * log_bias[_ETA::3] - 0.5 * curvature * variance_of[_ETA::3]),
        }
        self.mean_field = {"q": np.log(s[:n]), "post": np.log(self.s[1:n + 1] / self.gain**2),
                           "ratio": log_chi,
                           "residual": np.full(n, 2 * math.log(self.gain / reference))}

    def statistic(self, **weights: Sequence[float]) -> Tuple[float, float]:
        """``(E[T], Var[T])`` for one draw of ``T = sum_kind weights[kind] . ln kind``.

        Kinds: ``q``, ``post`` (length depth + 1), ``ratio``, ``residual`` (length depth + 1;
        entry ``depth`` has no next layer and must be 0).
        """
        row = np.zeros(self.covariance.shape[0])
        mean = 0.0
        for kind, weight in weights.items():
            weight = np.asarray(weight, dtype=float)
            if kind in ("ratio", "residual") and weight[-1] != 0:
                raise ValueError(f"{kind}[depth] does not exist")
            row += weight @ self.rows[kind]
            mean += float(weight @ self.means[kind])
        # A quadratic form of the (positive semi-definite) covariance: rounding can take it a
        # few ulps below 0 where the model predicts no noise (linear, orthogonal weights).
        return mean, max(0.0, float(row @ self.covariance @ row))

    def per_layer(self, kind: str) -> Tuple[np.ndarray, np.ndarray]:
        """Mean and single-draw variance of ``ln kind_l`` for every layer."""
        rows = self.rows[kind]
        variance = np.einsum("ij,jk,ik->i", rows, self.covariance, rows)
        return self.means[kind].copy(), np.maximum(variance, 0.0)  # as in ``statistic``


def _noise_covariance(noise: Sequence[LayerNoise], width: int) -> Tuple[np.ndarray, np.ndarray]:
    """Covariance of all (eta, eps, xi) and their means, to O(1/N^2) on the diagonal.

    For ``x = mean Y / E[Y] - 1`` with ``E[x^2] = a/N`` and ``E[x^3] = b/N^2``:
    ``E[ln(1 + x)] = -a/(2N) + (b/3 - 3a^2/4)/N^2`` and ``Var = a/N + (5a^2/2 - b)/N^2``.
    Cross-covariances are first order.
    """
    count = 3 * len(noise)
    covariance, mean = np.zeros((count, count)), np.empty(count)
    for layer, moments in enumerate(noise):
        block = slice(3 * layer, 3 * layer + 3)
        first = np.array(moments.covariance)
        a, b = np.diag(first), np.array(moments.skewness)
        covariance[block, block] = first / width + np.diag(2.5 * a * a - b) / width**2
        mean[block] = -a / (2.0 * width) + (b / 3.0 - 0.75 * a * a) / width**2
    return covariance, mean


def _orthogonal_noise(name, slope: float | None, noise: Sequence[LayerNoise],
                      s: Sequence[float], width: int) -> Tuple[np.ndarray, np.ndarray]:
    """Covariance and means of the effective noises of orthogonal weights, first order.

    Per layer the measured logs carry ``(0, eps - lambda eta, xi - beta eta - zeta)`` (layer 0,
    the Gaussian input: ``(eta, eps, xi - zeta)``), a linear map A of (eta, eps, xi, zeta)
    whose covariance is C_l extended by ``Var zeta = 2``, ``Cov(zeta, xi) = 2``: A C A' / N.
    Their means, from ``E[ln m] = -1/N``, ``E[(ln m)^2] = 2/N`` and
    ``E[eps'(s) ln m] = d Cov(eta, eps) / d ln s / N`` (the noise at the sphere's radius
    ``s / m``, expanded in ``ln m``):

        E[eps_l - lambda eta_l]        = (lambda + lambda' - kappa_f / 2 - dC_eta,eps) / N
        E[xi_l - beta eta_l - zeta_l]  = (beta + beta' - kappa_b / 2 - dC_eta,xi + 1) / N

    (primes: d / d ln s). Linear at gain 1 gives zero noise and zero bias: norms are kept.
    """
    count = 3 * len(noise)
    covariance, mean = np.zeros((count, count)), np.zeros(count)
    for layer, moments in enumerate(noise):
        extended = np.zeros((4, 4))
        extended[:3, :3] = moments.covariance
        extended[3, 3] = extended[_XI, 3] = extended[3, _XI] = 2.0
        kappa_f, kappa_b = moments.covariance[_EPS][_EPS], moments.covariance[_XI][_XI]
        block = slice(3 * layer, 3 * layer + 3)
        if layer == 0:
            transform = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, -1.0]])
            mean[block] = np.array([-1.0, -kappa_f / 2, 1.0 - kappa_b / 2]) / width
        else:
            lam, beta = moments.post_slope, moments.chi_slope
            d_eps, d_xi = _covariance_slopes(name, slope, s[layer])
            transform = np.array([[0.0, 0, 0, 0], [-lam, 1.0, 0, 0], [-beta, 0, 1.0, -1.0]])
            mean[block] = np.array([
                0.0, lam + moments.post_curvature - kappa_f / 2 - d_eps,
                beta + moments.chi_curvature - kappa_b / 2 - d_xi + 1.0]) / width
        covariance[block, block] = transform @ extended @ transform.T / width
    return covariance, mean


def _covariance_slopes(name, slope: float | None, s: float) -> Tuple[float, float]:
    """``d Cov(eta, eps) / d ln s`` and ``d Cov(eta, xi) / d ln s`` at s (central difference;
    zero for homogeneous maps, whose noise is scale-free)."""
    if _activation(name, slope).homogeneous:
        return 0.0, 0.0
    below, above = (layer_noise(name, slope, s * math.exp(step)).covariance
                    for step in (-_COVARIANCE_STEP, _COVARIANCE_STEP))
    return tuple((above[_ETA][k] - below[_ETA][k]) / (2 * _COVARIANCE_STEP) for k in (_EPS, _XI))


def _projection_bias(noise: Sequence[LayerNoise], width: int,
                     weight_kurtosis: float = 0.0, weights: str = "gaussian") -> np.ndarray:
    """O(1/N) shift of ``E[ln r_l]`` beyond the gradient-independence assumption.

    ``W = W^{l+1}`` enters both ``h^{l+1} = W phi^l`` and ``u = W^T delta^{l+1}``. Gaussian W
    splits into its part along ``phi^l`` (which fixes h^{l+1}) and an independent rest, so u is
    fresh except along ``phi^l``, where it equals ``c = h^{l+1} . delta^{l+1} / |phi^l|``:

        E[g_l] / (chi_l g_{l+1}) = 1 + (1 + C_eps,xi[l]) D_l / N,
        D_l = E[c^2] / (g^2 g_{l+1}) - 1 = C_eta,xi[l+1] + rho[l+1] D_{l+1},

    with ``D_{depth-1} = 0`` (the output gradient r does not depend on ``h^depth``); the second
    term is ``delta^{l+1}`` carrying the same structure from one layer up. Expanding in the
    weights instead shows that the first term comes from ``E[W_ji^2 f(W_ji phi_i + b)]`` and
    scales with ``(E[W^4]/sigma^4 - 1) / 2`` (1 Gaussian, 0.4 uniform), while the carried term
    needs only second moments. Zero for linear, relu, leaky_relu (C_eta,xi = 0); about
    -0.3 / N a layer for tanh at 5/3.

    Orthogonal W: u is ``c`` along ``phi^l`` and uniform on the rest of the sphere of radius
    ``g ||delta||``, so the rest carries ``g^2 ||delta||^2 - c^2`` instead of a fresh amount;
    conditioning on both gives ``E[g_l] / (chi_l g_{l+1}) = 1 + C_eps,xi[l] D_l / N`` with
    the same D_l (diagonal factor 1).
    """
    depth = len(noise) - 1
    orthogonal = weights == "orthogonal"
    diagonal = 1.0 if orthogonal else (2.0 + weight_kurtosis) / 2.0
    shift = np.zeros(depth + 1)
    carried = 0.0  # D_{l+1} (Gaussian form), built from the output down
    for layer in range(depth - 2, -1, -1):
        above = noise[layer + 1]
        own = diagonal * above.covariance[_ETA][_XI] + above.projection * carried
        factor = noise[layer].covariance[_EPS][_XI] + (0.0 if orthogonal else 1.0)
        shift[layer] = factor * own / width
        carried = above.covariance[_ETA][_XI] + above.projection * carried
    return shift


@lru_cache(maxsize=None)
def finite_width(name, slope: float | None, gain: float, q0: float, depth: int,
                 width: int, reference_gain: float | None = None,
                 weight_kurtosis: float = 0.0, weights: str = "gaussian") -> FiniteWidth:
    """Cached ``FiniteWidth``: the suite evaluates each model for several inits and dtypes.
    ``name``: a built-in activation's name (with ``slope``) or any theory.Activation."""
    return FiniteWidth(name, slope, gain, q0, depth, width, reference_gain, weight_kurtosis,
                       weights)
