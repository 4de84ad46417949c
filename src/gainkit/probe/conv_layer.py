"""Measure what one conv layer, initialised by a torch init function, does to each pass.

One bias-free layer of torch's own module (``nn.Conv{1,2,3}d`` or ``nn.ConvTranspose{1,2,3}d``,
with its ``groups``), stride 1. Every draw re-initialises the module's own ``weight`` with the
init under test, so the fans torch computes are those of the real weight's shape. The draws run
at once: their weights are stacked along the output channels of one grouped functional conv
(``groups = scales x draws x groups``), each draw seeing its own input channels.

Forward factor of a draw: ``mean(y^2) / mean(x^2)``, x i.i.d. N(0, 1) over a batch and
``positions`` per dimension; backward factor: ``mean(dx^2) / mean(dy^2)``, dy i.i.d. N(0, 1),
dx the gradient autograd returns for ``loss = sum(y * dy)``.

Padding is circular, so that every output sums the full ``forward_terms`` and every input feeds
the full ``backward_terms`` (``gainkit.meanfield.conv``): the input is wrapped by (k-1)//2
before and k//2 after on each dimension. A Conv of the wrapped input has as many outputs as
positions; a transposed conv's outputs k-1 from either edge sum every term, and are as many as
positions (the crop). The wrapping is the conv stacks' ``gainkit.probe.conv.circular_pad``
(``narrow`` and ``cat``: torch 1.0 has no circular ``F.pad``).

Negative controls: every entry of ``scales`` multiplies the products of the same draws and
inputs (y, and in the backward pass dx), which is the same layer as multiplying its weights
(as the MLP probe does: ``gainkit.probe.mlp``).

Determinism: inputs, weights and output gradients are drawn after ``seed_rng(seed, device)``
inside ``forked_rng``, which restores the caller's RNG state (``gainkit.probe.determinism``).
Only torch 1.0 APIs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from gainkit.meanfield.conv import ConvGeometry
from gainkit.probe.conv import circular_pad, module_class
from gainkit.probe.determinism import forked_rng, seed_rng, torch_cpu_threads

Init = Callable[[torch.Tensor], object]


@dataclass(frozen=True)
class LayerMeasurement:
    """Per-draw pass factors, each shaped (scales, draws), float64."""

    forward: np.ndarray
    backward: np.ndarray
    scales: Tuple[float, ...]
    weight_shape: Tuple[int, ...]  # what the module's weight was: torch's layout
    draws: int
    batch: int
    positions: Tuple[int, ...]
    device: str
    dtype: str
    seed: int


def module(geometry: ConvGeometry):
    """torch's own bias-free module for ``geometry``."""
    return module_class(geometry)(geometry.in_channels, geometry.out_channels,
                                  tuple(geometry.kernel), groups=geometry.groups, bias=False)


def layer(geometry: ConvGeometry, x: torch.Tensor, weight: torch.Tensor,
          groups: int) -> torch.Tensor:
    """The stride-1 conv of ``x`` with every output summing its full count."""
    dims = geometry.dims
    wrapped = circular_pad(x, geometry.kernel)
    if not geometry.transposed:
        return (F.conv1d, F.conv2d, F.conv3d)[dims - 1](wrapped, weight, groups=groups)
    y = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[dims - 1](
        wrapped, weight, groups=groups)
    for axis, k in enumerate(geometry.kernel, start=2):
        y = y.narrow(axis, k - 1, x.size(axis))
    return y


def measure(geometry: ConvGeometry, init: Init, draws: int, batch: int,
            positions: Sequence[int], scales: Sequence[float] = (1.0,), device="cpu",
            dtype=torch.float32, seed: int = 0, cpu_threads: int | None = 1) -> LayerMeasurement:
    """Forward and backward factors of ``draws`` independent inits of the layer."""
    with torch_cpu_threads(cpu_threads):
        return _measure(geometry, init, draws, batch, tuple(positions),
                        tuple(float(s) for s in scales), torch.device(device), dtype, seed)


def _measure(geometry, init, draws, batch, positions, scales, device, dtype, seed):
    if len(positions) != geometry.dims:
        raise ValueError(f"{len(positions)} position sizes for a {geometry.dims}-d kernel")
    conv = module(geometry).to(device=device, dtype=dtype)
    weight = conv.weight
    shape = tuple(weight.shape)
    c_in, c_out = geometry.in_channels, geometry.out_channels
    with forked_rng(device):
        seed_rng(seed, device)
        x = torch.randn((batch, draws * c_in) + positions, dtype=dtype, device=device)
        dy = torch.randn((batch, draws * c_out) + positions, dtype=dtype, device=device)
        stack = torch.empty((draws,) + shape, dtype=dtype, device=device)
        with torch.no_grad():
            for draw in range(draws):
                init(weight)
                stack[draw].copy_(weight)
    # The leading dim of a conv weight is its output channels, of a transposed one its input
    # channels: either way the draws stack there, one group block each.
    grouped = stack.reshape((draws * shape[0],) + shape[1:])
    inputs = x.clone().requires_grad_(True)
    y = layer(geometry, inputs, grouped, draws * geometry.groups)
    dx, = torch.autograd.grad((y * dy).sum(), inputs)

    def per_draw(tensor: torch.Tensor) -> torch.Tensor:
        # mean square of each draw's channels: torch's CPU and CUDA sums are pairwise, so
        # float32 rounds them by ~1e-7, far below the bands
        split = tensor.detach().reshape((batch, draws, -1))
        return (split * split).mean(dim=2).mean(dim=0).double()

    forward = (per_draw(y) / per_draw(x)).cpu().numpy()
    backward = (per_draw(dx) / per_draw(dy)).cpu().numpy()
    squares = np.array(scales).reshape(-1, 1) ** 2  # (y c)^2 and (dx c)^2
    forward, backward = squares * forward, squares * backward
    return LayerMeasurement(forward, backward, scales, shape, draws, batch, positions,
                            str(device), str(dtype).replace("torch.", ""), seed)
