"""Sampling variance of one conv layer's measured pass factors (docs/conv-modes.md, "Single-layer
model").

For one stride-1 layer with circular padding, i.i.d. weights of variance v and standardised
fourth moment mu4 (3 normal, 9/5 uniform), and i.i.d. N(0, 1) inputs over a batch of B samples
and P positions per channel, the forward factor of one draw, ``T = mean(y^2) / mean(x^2)``, has

    E[T] = forward_terms * v                                          (exact up to O(1/(B P C)))
    Var[T] / E[T]^2 = (mu4 - 1) / n_w + 2 (1 + (mu4 - 2) / n) / (B P C_out)

with n = forward_terms, n_w the number of weights. The first term is the weight noise (every
output's sum of squared weights is a sum over the same n_w weights, whatever the sharing); the
second the input noise given the weights, ``2 tr(M^2) / tr(M)^2 - 2 / (B P C_in)`` for
``M = A^T A`` of the layer's linear map A. Expanding ``tr(M^2)`` over pairs of outputs: an
output's own sum gives ``n^2 + n (mu4 - 1)``, every other output of its group at every shift
where the kernels overlap gives ``(C_in / g) * overlap``, and the overlaps of all shifts sum
to ``k^2``, so ``E tr(M^2) = B P C_out v^2 n (n + m + mu4 - 2)``, m = backward_terms. The
``m`` part cancels against the denominator's noise (``m / n = C_out / C_in``). This needs every
shift |s_d| < k_d to land on a distinct position: ``P_d >= 2 k_d - 1``
(``minimal_positions``). The backward factor is the same with the roles of the passes
exchanged: n <-> m, C_out <-> C_in.
"""

from __future__ import annotations

from typing import Tuple

from gainkit.meanfield.conv import ConvGeometry

PASSES = ("forward", "backward")


def minimal_positions(geometry: ConvGeometry) -> Tuple[int, ...]:
    """The fewest positions per dimension at which no two kernel shifts coincide."""
    return tuple(2 * k - 1 for k in geometry.kernel)


def weight_count(geometry: ConvGeometry) -> int:
    count = 1
    for size in geometry.weight_shape:
        count *= size
    return count


def relative_variance(geometry: ConvGeometry, pass_name: str, batch: int,
                      positions: Tuple[int, ...], weight_kurtosis: float) -> float:
    """Var[T] / E[T]^2 of one draw's factor for ``pass_name``; ``weight_kurtosis`` is mu4."""
    if pass_name not in PASSES:
        raise ValueError(f"pass {pass_name!r}: expected one of {', '.join(PASSES)}")
    if any(p < low for p, low in zip(positions, minimal_positions(geometry))):
        raise ValueError(f"positions {tuple(positions)}: the model needs at least "
                         f"{minimal_positions(geometry)}")
    sites = batch
    for size in positions:
        sites *= size
    if pass_name == "forward":
        terms, channels = geometry.forward_terms, geometry.out_channels
    else:
        terms, channels = geometry.backward_terms, geometry.in_channels
    weights = (weight_kurtosis - 1.0) / weight_count(geometry)
    inputs = 2.0 * (1.0 + (weight_kurtosis - 2.0) / terms) / (sites * channels)
    return weights + inputs
