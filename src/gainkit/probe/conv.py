"""Measure signal propagation through deep, bias-free, linear stacks of Conv / ConvTranspose layers.

The network is ``h^{l+1} = conv(h^l; W^{l+1})`` for l = 0..depth-1, every layer the same
``meanfield.conv.ConvGeometry`` (square: in = out channels), stride 1, no bias, no activation:
the six convolution names of ``calculate_gain`` are linear gains (value 1), and this is the
network they are the gain of. (A relu conv net would test calculate_gain('relu'), which the MLP
suite already judges; relu also couples the frequency modes the finite-width model relies on.)

Boundaries: circular padding. Every output then sums exactly ``forward_terms`` products and every
input feeds exactly ``backward_terms`` outputs, at every position, so the layer's second-moment
factor is the same everywhere -- zero padding would give edge positions fewer terms and blur the
per-layer factor by an amount that depends on the spatial size. Padding is ``torch.cat`` of
slices (``F.pad(mode='circular')`` is newer than torch 1.0). A transposed layer is
``conv_transpose`` of the input with its k - 1 overhanging outputs wrapped back onto the first
ones (``circular_fold``): output o then sums input i times tap t over every (i, t) with
i + t = o modulo the size, again the same count everywhere.

Weights: every (layer, draw) weight is a tensor of torch's own weight shape, initialised by the
init under test called on it (fans are torch's), or by ``reset_parameters`` of a real
``nn.ConvNd`` / ``nn.ConvTransposeNd`` module (``"module_default"``), whose weight is copied in.
The draws run at once as one grouped conv: draw d is groups ``d*G .. d*G+G-1`` of a conv with
``draws * G`` groups, which is the same arithmetic as ``draws`` separate convs.

Backward: the explicit chain rule from ``delta^depth = r``, r ~ N(0, 1) fixed, each layer's
adjoint computed by the other op of its pair (``conv_transpose`` for a Conv layer, ``conv`` for a
ConvTranspose one) and the adjoint of the circular padding: the gradient autograd returns for
``loss = sum(h^depth * r)`` (tests/test_conv_probe.py checks it against autograd), at every
layer in one sweep, without a graph. Autograd itself would do: on CPU its grouped-conv backward
kernels cost ~1.7x the forward convs, most of this probe's time.

Scales: every ``scales`` entry reruns the same draws and inputs with the weights multiplied by
that factor (the product ``conv(h; W)`` scaled: the same network); scales are the batch dimension,
so a negative control shares everything with the nominal run.

Determinism: weights, inputs and r are drawn after ``seed_rng(seed, device)`` inside
``forked_rng`` (``gainkit.probe.determinism``); only torch APIs present in torch 1.0 are used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from gainkit.meanfield.conv import ConvGeometry
from gainkit.probe.determinism import forked_rng, seed_rng, torch_cpu_threads
from gainkit.probe.mlp import torch_init

MODULE_DEFAULT = "module_default"
# The inits a conv stack is built with: torch's random inits (orthogonal_ is a matrix init and
# has no conv meaning worth a stack), then the module's own reset_parameters.
INITS = ("xavier_normal", "xavier_uniform", "kaiming_normal_fan_in", "kaiming_normal_fan_out",
         "kaiming_uniform_fan_in", "kaiming_uniform_fan_out", MODULE_DEFAULT)

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_TRANSPOSED = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def module_class(geometry: ConvGeometry):
    """The torch module whose layer ``geometry`` describes (nn.Conv2d, nn.ConvTranspose3d ...)."""
    name = ("ConvTranspose" if geometry.transposed else "Conv") + f"{geometry.dims}d"
    return getattr(torch.nn, name)


def conv_name(geometry: ConvGeometry) -> str:
    """calculate_gain's name for the layer: conv2d, conv_transpose1d ..."""
    return ("conv_transpose" if geometry.transposed else "conv") + f"{geometry.dims}d"


def initialiser(name: str, geometry: ConvGeometry) -> Callable[[torch.Tensor], None]:
    """``name`` (one of INITS) as a callable filling one weight of torch's shape in place.

    The nonlinearity is the layer's own calculate_gain name (``conv2d`` ...), so a wrong conv
    gain changes what xavier_* (gain=calculate_gain(name)) and kaiming_* (which call it) draw.
    """
    if name == MODULE_DEFAULT:
        module = module_class(geometry)(geometry.in_channels, geometry.out_channels,
                                        geometry.kernel, groups=geometry.groups, bias=False)

        def reset(weight):
            module.reset_parameters()
            weight.copy_(module.weight.detach())

        return reset
    if name not in INITS:
        raise ValueError(f"unknown init {name!r}; expected one of {INITS}")
    return torch_init(name, conv_name(geometry))


def _wrap_pad(h: torch.Tensor, dim: int, before: int, after: int) -> torch.Tensor:
    size = h.shape[dim]
    if before + after > size:
        raise ValueError(f"a kernel wrapping {before + after} positions around size {size}")
    parts = ([h.narrow(dim, size - before, before)] if before else []) + [h] + (
        [h.narrow(dim, 0, after)] if after else [])
    return torch.cat(parts, dim=dim) if len(parts) > 1 else h


def circular_pad(h: torch.Tensor, kernel: Sequence[int], centred: bool = True) -> torch.Tensor:
    """``h`` (batch, channels, *spatial) padded circularly in each spatial dimension by
    (k-1)//2 before and k//2 after (``centred``), or by k - 1 after (needs k - 1 <= size)."""
    for axis, k in enumerate(kernel):
        before = (k - 1) // 2 if centred else 0
        h = _wrap_pad(h, 2 + axis, before, k - 1 - before)
    return h


def circular_fold(out: torch.Tensor, spatial: Sequence[int],
                  kernel: Sequence[int] | None = None) -> torch.Tensor:
    """A transposed conv's full output (size + k - 1 a dimension) wrapped onto ``spatial``:
    index j lands on j modulo the size. With ``kernel``: on j - (k-1)//2 instead, the adjoint of
    ``circular_pad(centred=True)``."""
    for axis, size in enumerate(spatial):
        dim = 2 + axis
        extra = out.shape[dim] - size
        if extra:
            head = out.narrow(dim, 0, extra) + out.narrow(dim, size, extra)
            out = torch.cat([head, out.narrow(dim, extra, size - extra)], dim=dim)
        shift = 0 if kernel is None else (kernel[axis] - 1) // 2
        if shift:
            out = torch.cat([out.narrow(dim, shift, size - shift), out.narrow(dim, 0, shift)],
                            dim=dim)
    return out


def layer(h: torch.Tensor, weight: torch.Tensor, geometry: ConvGeometry,
          groups: int) -> torch.Tensor:
    """One stride-1 circular layer; ``weight`` is the draws' weights concatenated along dim 0.

    Conv: the circularly padded input, convolved. ConvTranspose: the input transposed-convolved
    as it is, then folded circularly (``circular_fold``), which computes 3^3 and not 5^3 outputs
    for a 2x2x2 kernel on 2x2x2 positions."""
    spatial = h.shape[2:]
    if not geometry.transposed:
        return _CONV[geometry.dims](circular_pad(h, geometry.kernel), weight, groups=groups)
    if any(k - 1 > size for k, size in zip(geometry.kernel, spatial)):
        raise ValueError(f"kernel {geometry.kernel} wraps more than once around {tuple(spatial)}")
    return circular_fold(_TRANSPOSED[geometry.dims](h, weight, groups=groups), spatial)


def adjoint(delta: torch.Tensor, weight: torch.Tensor, geometry: ConvGeometry,
            groups: int) -> torch.Tensor:
    """The gradient at a layer's input from the gradient ``delta`` at its output: the transpose
    of ``layer``, by the other conv op of the pair (conv_transpose for Conv, conv for
    ConvTranspose) and the adjoint of its padding or fold."""
    spatial = delta.shape[2:]
    if not geometry.transposed:
        full = _TRANSPOSED[geometry.dims](delta, weight, groups=groups)
        return circular_fold(full, spatial, geometry.kernel)
    return _CONV[geometry.dims](circular_pad(delta, geometry.kernel, centred=False), weight,
                                groups=groups)


@dataclass(frozen=True)
class ConvMeasurement:
    """Per-draw layer statistics, each shaped (scales, draws, depth + 1), float64.

    ``q[..., l]``: mean over channels and positions of ``h_l^2``; ``grad``: of the squared
    gradient ``(dL/dh_l)^2`` (``grad[..., depth]`` is the output gradient's, ~1).
    """

    q: np.ndarray
    grad: np.ndarray
    scales: Tuple[float, ...]
    geometry: ConvGeometry
    spatial: Tuple[int, ...]
    depth: int
    draws: int
    device: str
    dtype: str
    seed: int


def draw_weights(init: Callable[[torch.Tensor], None], geometry: ConvGeometry, depth: int,
                 draws: int, dtype, device) -> torch.Tensor:
    """(depth, draws, *weight_shape) weights, each slice filled by ``init`` (RNG as it is)."""
    weights = torch.empty((depth, draws) + geometry.weight_shape, dtype=dtype, device=device)
    with torch.no_grad():
        for index in range(depth):
            for draw in range(draws):
                init(weights[index, draw])
    return weights


def measure(geometry: ConvGeometry, init: str, depth: int, draws: int,
            spatial: Sequence[int] | None = None, scales: Sequence[float] = (1.0,),
            device="cpu", dtype=torch.float32, seed: int = 0,
            cpu_threads: int | None = 1) -> ConvMeasurement:
    """Run ``draws`` independent stacks of ``depth`` layers of ``geometry`` (square), initialised
    by ``init`` (one of INITS), on inputs of ``spatial`` size (default: the kernel's)."""
    if geometry.in_channels != geometry.out_channels:
        raise ValueError("a stack needs in_channels == out_channels")
    spatial = tuple(geometry.kernel if spatial is None else spatial)
    if len(spatial) != geometry.dims:
        raise ValueError(f"spatial size {spatial} for a {geometry.dims}-d kernel")
    with torch_cpu_threads(cpu_threads):
        return _measure(geometry, init, depth, draws, spatial,
                        tuple(float(s) for s in scales), torch.device(device), dtype, seed)


def _measure(geometry, init, depth, draws, spatial, scales, device, dtype, seed):
    channels = geometry.in_channels
    shape = (len(scales), draws * channels) + spatial
    with forked_rng(device):
        # Built inside: a module default's module draws once as it is constructed.
        init = initialiser(init, geometry)
        seed_rng(seed, device)
        x = torch.randn((1, draws * channels) + spatial, dtype=dtype, device=device)
        r = torch.randn((1, draws * channels) + spatial, dtype=dtype, device=device)
        weights = draw_weights(init, geometry, depth, draws, dtype, device)
    stacked = [weights[index].reshape((draws * geometry.weight_shape[0],)
                                      + geometry.weight_shape[1:]) for index in range(depth)]
    column_scale = torch.tensor(scales, dtype=dtype, device=device).reshape(
        (len(scales),) + (1,) * (1 + len(spatial)))
    groups = draws * geometry.groups
    with torch.no_grad():
        h = x.expand(shape)
        outputs = [h]
        for index in range(depth):
            h = layer(h, stacked[index], geometry, groups) * column_scale
            outputs.append(h)
        delta = r.expand(shape)
        grads = [delta]
        for index in reversed(range(depth)):
            delta = adjoint(delta, stacked[index], geometry, groups) * column_scale
            grads.append(delta)
        grads.reverse()

    def per_draw(tensors) -> np.ndarray:
        # (scales, draws * C, *spatial) -> (scales, draws) mean squares, squared in float64
        stats = [(t.detach().double() ** 2).reshape(len(scales), draws, -1).mean(dim=2)
                 for t in tensors]
        return torch.stack(stats, dim=-1).cpu().numpy()

    return ConvMeasurement(per_draw(outputs), per_draw(grads), scales, geometry, spatial,
                           depth, draws, str(device), str(dtype).replace("torch.", ""), seed)
