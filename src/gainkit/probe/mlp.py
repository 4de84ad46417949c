"""Measure signal propagation through deep, bias-free, square MLPs built by torch's own init.

The network is ``h^{l+1} = W^{l+1} phi(h^l)`` for l = 0..depth-1, with ``h^0 = x`` the input
(units i.i.d. N(0, q0)). Every weight matrix is one 2-D slice of a (draws, N, N) tensor,
initialised by calling the torch init function under test on that slice, so fans and
gains are torch's own. All independent draws run at once through ``torch.bmm``, with the
activations held as rows (draws, columns, N) so each product is ``phi(h)^T W^T``: the
(N, N) weight then streams through row-major at 4x the speed of ``W phi(h)`` with
phi(h) as (N, columns) columns (64 x 64 weights, 6 columns, one CPU thread).

Backward pass: the explicit chain rule ``delta^l = phi'(h^l) * (W^{l+1 T} delta^{l+1})`` from
``delta^depth = r``, r ~ N(0, 1) fixed. This is exactly the gradient autograd returns for
``loss = sum(h^depth * r)`` (an output gradient of unit second moment), without storing a graph,
and it yields the gradient at every layer's pre-activations in one sweep.

One input column per entry of ``q0``; every ``scales`` entry reruns the same draws with the
initialised weights multiplied by that factor (applied to the product ``W phi(h)`` and, in the
backward pass, to ``W^T delta``: the same network as scaling the weights). Scales and inputs
are columns of one batch, so a negative control shares weights and inputs with the nominal run.

Biases (``biased=True``): ``h^{l+1} = W^{l+1} phi(h^l) + b^{l+1}``, the init then called as
``init(weight, bias)`` on a weight slice and its (N, 1) bias column -- how a module's own
default (``reset_parameters``) is measured. The scales multiply the weights only.

Determinism: the weights, inputs and r are drawn after ``seed_rng(seed, device)`` (what
``torch.manual_seed(seed)`` does for that device) inside ``forked_rng`` (the caller's RNG
state is restored; ``gainkit.probe.determinism``), so a run is a function of the seed. On
CUDA this holds as well: Philox draws are fixed by seed and call order, and bmm and the
reductions used here do not use atomics; the suite's conftest switches TF32 off.
Only torch APIs present in torch 1.0 are used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence, Tuple

import numpy as np
import torch

from gainkit import activations
from gainkit.probe.determinism import forked_rng, seed_rng, torch_cpu_threads

Init = Callable[[torch.Tensor], object]
# The init functions the probe can build (torch_init), named as in test ids and records.
INITS = (
    "xavier_normal",
    "xavier_uniform",
    "kaiming_normal_fan_in",
    "kaiming_normal_fan_out",
    "kaiming_uniform_fan_in",
    "kaiming_uniform_fan_out",
    "orthogonal",
)


def autograd_pair(function: Callable) -> Tuple[Callable, Callable]:
    """``(phi, phi')`` for any elementwise torch function, phi' by autograd. Both evaluate
    in float64 on a copy of their input (an in-place function leaves it alone, a module with
    float64 parameters fits) and return the input's dtype."""
    def phi(h):
        return function(h.detach().double().clone()).to(h.dtype)

    def dphi(h):
        with torch.enable_grad():
            inputs = h.detach().double().clone().requires_grad_(True)
            derivative, = torch.autograd.grad(function(inputs).sum(), inputs)
        return derivative.to(h.dtype)

    return phi, dphi


def torch_init(name: str, nonlinearity: str, param=None, gain: float | None = None) -> Init:
    """The torch init ``name`` (one of INITS) as a callable on one 2-D weight.

    xavier_* and orthogonal: ``gain`` if given, else ``calculate_gain(nonlinearity[, param])``
    -- called here, so a gain missing from this torch raises its ValueError. kaiming_*:
    ``a=param`` (0 when None), ``mode`` and ``nonlinearity`` go to torch, which calls
    calculate_gain itself.
    """
    init = torch.nn.init
    if name.startswith("xavier_") or name == "orthogonal":
        if gain is None:
            arguments = (nonlinearity,) if param is None else (nonlinearity, param)
            gain = init.calculate_gain(*arguments)
        function = {"xavier_normal": init.xavier_normal_, "xavier_uniform": init.xavier_uniform_,
                    "orthogonal": init.orthogonal_}.get(name)
        if function is None:
            raise ValueError(f"unknown init {name!r}; expected one of {INITS}")
        return lambda weight: function(weight, gain=gain)
    if name.startswith("kaiming_"):
        family, _, mode = name.partition("_fan_")
        if family not in ("kaiming_normal", "kaiming_uniform") or mode not in ("in", "out"):
            raise ValueError(f"unknown init {name!r}; expected one of {INITS}")
        function = init.kaiming_normal_ if family == "kaiming_normal" else init.kaiming_uniform_
        slope = 0 if param is None else param
        return lambda weight: function(weight, a=slope, mode="fan_" + mode,
                                       nonlinearity=nonlinearity)
    raise ValueError(f"unknown init {name!r}; expected one of {INITS}")


@dataclass(frozen=True)
class Measurement:
    """Per-draw layer statistics, each shaped (scales, draws, inputs, depth + 1), float64.

    ``q[..., l]``: mean over units of ``h_l^2``; ``post``: of ``phi(h_l)^2``; ``grad``: of
    ``delta_l^2`` (``grad[..., depth]`` is the output gradient's, ~1).
    """

    q: np.ndarray
    post: np.ndarray
    grad: np.ndarray
    scales: Tuple[float, ...]
    q0: Tuple[float, ...]
    width: int
    depth: int
    draws: int
    device: str
    dtype: str
    seed: int


def _mean_square(tensor: torch.Tensor) -> torch.Tensor:
    # Squares in float64: a float32 gradient of 1e-20 would underflow when squared.
    return (tensor.double() ** 2).mean(dim=2)


def measure(activation, init: Init, width: int, depth: int, draws: int,
            slope: float | None = None, q0: Sequence[float] = (1.0,),
            scales: Sequence[float] = (1.0,), device="cpu", dtype=torch.float32,
            seed: int = 0, cpu_threads: int | None = 1, biased: bool = False) -> Measurement:
    """Run ``draws`` independent networks of ``depth`` layers and ``width`` units.

    ``activation``: a name of ``activations.names("torch")`` (with ``slope``), or a
    ``(phi, phi')`` pair of torch functions for any other (see :func:`autograd_pair`).
    ``cpu_threads``: torch CPU threads while measuring (restored after); None leaves them.
    """
    with torch_cpu_threads(cpu_threads):
        return _measure(activation, init, width, depth, draws, slope, q0, scales,
                        torch.device(device), dtype, seed, biased)


def draw_weights(init: Init, width: int, depth: int, draws: int, dtype, device,
                 biased: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """(depth, draws, N, N) weights and (depth, draws, N, 1) biases (zero unless ``biased``),
    slice (layer, draw) filled by ``init`` in layer-major order (RNG as it is)."""
    weights = torch.empty(depth, draws, width, width, dtype=dtype, device=device)
    biases = torch.zeros(depth, draws, width, 1, dtype=dtype, device=device)
    # Slice k is (layer k // draws, draw k % draws). One index into a flat view costs ~1 us
    # against ~4 us for weights[layer, draw].
    flat_weights = weights.view(depth * draws, width, width)
    flat_biases = biases.view(depth * draws, width, 1)
    with torch.no_grad():
        for k in range(depth * draws):
            if biased:
                init(flat_weights[k], flat_biases[k])
            else:
                init(flat_weights[k])
    return weights, biases


def _measure(activation, init, width, depth, draws, slope, q0, scales, device, dtype,
             seed, biased=False) -> Measurement:
    phi, dphi = (activations.get(activation, "torch").torch_pair(slope)
                 if isinstance(activation, str) else activation)
    scales, q0 = tuple(float(s) for s in scales), tuple(float(q) for q in q0)
    inputs = len(q0)
    # Column k (row k of each draw's (columns, N) activations) is input k % inputs at scale
    # k // inputs.
    column_scale = torch.tensor([[s] for s in scales for _ in q0], dtype=dtype, device=device)
    input_scale = torch.tensor([math.sqrt(q) for q in q0], dtype=dtype, device=device)

    with forked_rng(device):
        seed_rng(seed, device)
        x = torch.randn(draws, width, inputs, dtype=dtype, device=device) * input_scale
        r = torch.randn(draws, width, inputs, dtype=dtype, device=device)
        weights, biases = draw_weights(init, width, depth, draws, dtype, device, biased)

    with torch.no_grad():
        # Rows: (draws, columns, N); h_row^{l+1} = phi(h_row^l) W^T, delta_row^l = delta_row W.
        h = x.transpose(1, 2).repeat(1, len(scales), 1)
        pre = [h]
        for layer in range(depth):
            h = torch.bmm(phi(h), weights[layer].transpose(1, 2)) * column_scale
            if biased:
                h = h + biases[layer].transpose(1, 2)
            pre.append(h)
        delta = r.transpose(1, 2).repeat(1, len(scales), 1)
        grads = [delta]
        for layer in reversed(range(depth)):
            delta = dphi(pre[layer]) * (torch.bmm(delta, weights[layer]) * column_scale)
            grads.append(delta)
        grads.reverse()
        stats = [torch.stack([_mean_square(t) for t in tensors], dim=-1)
                 for tensors in (pre, [phi(t) for t in pre], grads)]

    def per_scale(stat: torch.Tensor) -> np.ndarray:
        # (draws, columns, layers) -> (scales, draws, inputs, layers)
        array = stat.cpu().numpy().reshape(draws, len(scales), inputs, depth + 1)
        return np.ascontiguousarray(array.transpose(1, 0, 2, 3))

    q, post, grad = (per_scale(stat) for stat in stats)
    return Measurement(q, post, grad, scales, q0, width, depth, draws, str(device),
                       str(dtype).replace("torch.", ""), seed)


def measure_design(design, init: Init, scales: Sequence[float], device="cpu",
                   dtype=torch.float32, seed: int = 0) -> Measurement:
    """``measure`` with the sizes and input columns of a ``stability.Design``."""
    return measure(design.activation, init, design.width, design.depth, design.draws,
                   slope=design.slope, q0=design.inputs, scales=scales, device=device,
                   dtype=dtype, seed=seed)
