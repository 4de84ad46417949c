"""orthogonal_(tensor, gain) fills a (semi-)orthogonal matrix times gain, exactly.

Torch flattens the tensor to (rows, cols) = (size(0), numel / size(0)) and fills it with the Q of
a QR decomposition (signs fixed by diag(R)) times ``gain``, so W W^T = gain^2 I when rows <= cols
and W^T W = gain^2 I otherwise. These are exact identities up to rounding: no sampling band, so
they are outside every Bonferroni count. The rounding allowance is the first-order bound of
Householder QR's loss of orthogonality, ``length * eps`` with ``length`` the flattened long
side (plus the rounding of the product), and each test first asserts that a 5% gain error
(a Gram off by 9.75% of gain^2 or more) stays far outside it. Deep-network stability at
``calculate_gain``'s values is in test_stability.py (init ``orthogonal``).
"""

from __future__ import annotations

import pytest
import torch

from gainkit.probe.determinism import seed_rng
from gainkit.suite import torchinfo
from gainkit.suite.expectations import GAINS, first_per_value

GAIN_ERROR_EFFECT = 1 - 0.95 ** 2  # the smallest relative change of gain^2 a 5% error makes
# Weight shapes and how torch flattens them: wide, tall, square, conv (wide and tall). Every
# shape at relu's gain, every distinct calculate_gain value on the square one: the gain only
# scales the matrix, the shape decides the flattening and which Gram is the identity.
SHAPES = {
    "linear-160to96": (96, 160),
    "linear-48to160": (160, 48),
    "square-64": (64, 64),
    "conv1d-16to24-k5": (24, 16, 5),
    "conv2d-8to32-k3": (32, 8, 3, 3),
    "conv2d-4to96-k3": (96, 4, 3, 3),
}
SQUARE = "square-64"
DEPTH = 100  # the deep linear network
WIDTH = 32


CASES = first_per_value(GAINS)


def require_qr(device: str, dtype) -> None:
    """Skip, saying why, where this torch has no QR kernel for ``dtype`` on ``device`` (asked of
    torch's linear algebra directly: a fault in torch.nn.init cannot cause the skip)."""
    qr = getattr(getattr(torch, "linalg", None), "qr", None) or torch.qr
    try:
        qr(torch.eye(2, device=device, dtype=dtype))
    except RuntimeError as error:
        pytest.skip(f"torch {torch.__version__} has no {device} {torchinfo.dtype_name(dtype)} QR"
                    f" (orthogonal_ cannot run): {str(error).splitlines()[0]}")


def gram_error(weight: torch.Tensor, gain: float) -> float:
    """max |G - gain^2 I| / gain^2, G the Gram of the flattened weight's short side."""
    rows = weight.size(0)
    flat = weight.detach().to("cpu", torch.float64).reshape(rows, -1)
    gram = flat @ flat.t() if rows <= flat.size(1) else flat.t() @ flat
    identity = torch.eye(gram.size(0), dtype=torch.float64)
    return float((gram - gain ** 2 * identity).abs().max()) / gain ** 2


def allowance(shape, dtype) -> float:
    numel = 1
    for size in shape:
        numel *= size
    length = max(shape[0], numel // shape[0])
    return (length + 4) * torch.finfo(dtype).eps


def check_gram(case, shape_id, device, dtype, seed, results) -> None:
    shape = SHAPES[shape_id]
    tolerance = allowance(shape, dtype)
    assert tolerance < GAIN_ERROR_EFFECT / 10, (
        f"rounding allowance {tolerance:.3g} could hide a 5% gain error in {dtype}")
    seed_rng(seed, device)
    weight = torch.empty(shape, device=device, dtype=dtype)
    torch.nn.init.orthogonal_(weight, gain=case.value)
    error = gram_error(weight, case.value)
    rows = shape[0]
    cols = weight.numel() // rows
    identity = "W W^T" if rows <= cols else "W^T W"
    results.record("orthogonal", case.id, shape=shape_id, device=device,
                   dtype=torchinfo.dtype_name(dtype), gain=case.value, gram_error=error,
                   allowance=tolerance, verdict="pass" if error <= tolerance else "fail")
    assert error <= tolerance, (
        f"orthogonal_(gain={case.value:.6g}) on {shape} ({rows} x {cols} flattened): {identity} "
        f"is off gain^2 I by {error:.3g} of gain^2, allowance {tolerance:.3g}")


RELU = next(case for case in GAINS if case.id == "relu")


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_gram_is_gain_squared_identity(case, device, dtype, node_seed, results):
    require_qr(device, dtype)
    check_gram(case, SQUARE, device, dtype, node_seed, results)


@pytest.mark.parametrize("shape_id", sorted(SHAPES))
def test_gram_of_every_shape_as_torch_flattens_it(shape_id, device, dtype, node_seed, results):
    require_qr(device, dtype)
    check_gram(RELU, shape_id, device, dtype, node_seed, results)


@pytest.mark.parametrize("shape_id", ["linear-160to96", "conv2d-4to96-k3"])
def test_gram_in_half_precision(shape_id, device, reduced_dtype, node_seed, results):
    require_qr(device, reduced_dtype)
    check_gram(RELU, shape_id, device, reduced_dtype, node_seed, results)


def test_deep_linear_orthogonal_network_preserves_norms(device, dtype, node_seed, results):
    """gain 1, 100 linear layers: ||h_L|| = ||x|| to rounding (each layer's matrix-vector
    product rounds the squared norm by at most about 2 WIDTH eps of itself)."""
    require_qr(device, dtype)
    seed_rng(node_seed, device)
    x = torch.randn(WIDTH, 8, device=device, dtype=dtype)
    h = x
    for _ in range(DEPTH):
        weight = torch.empty(WIDTH, WIDTH, device=device, dtype=dtype)
        torch.nn.init.orthogonal_(weight, gain=1)
        h = weight @ h
    drift = (h.double().norm(dim=0) / x.double().norm(dim=0)).log().abs().max().item()
    tolerance = 2 * DEPTH * WIDTH * torch.finfo(dtype).eps
    results.record("orthogonal", "deep-linear", device=device, dtype=torchinfo.dtype_name(dtype),
                   depth=DEPTH, width=WIDTH, log_norm_drift=drift, allowance=tolerance,
                   verdict="pass" if drift <= tolerance else "fail")
    assert drift <= tolerance, (
        f"a {DEPTH}-layer linear net of orthogonal_ weights (gain 1) changed ||x|| by "
        f"exp({drift:.3g}), more than rounding allows ({tolerance:.3g})")
