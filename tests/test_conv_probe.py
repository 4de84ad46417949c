"""The conv probe: circular layers sum the counted terms, batched draws are separate runs, the
explicit backward is autograd's, and weight scales are the nominal run scaled."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gainkit.meanfield.conv import ConvGeometry
from gainkit.probe import conv

GEOMETRIES = [
    ConvGeometry(4, 4, (3,)),
    ConvGeometry(4, 4, (8,), transposed=True),
    ConvGeometry(6, 6, (3, 2), groups=2),
    ConvGeometry(6, 6, (2, 3), groups=3, transposed=True),
    ConvGeometry(4, 4, (2, 2, 2)),
    ConvGeometry(4, 4, (3, 1, 2), transposed=True),
]
IDS = [f"{conv.conv_name(g)}-k{'x'.join(map(str, g.kernel))}-g{g.groups}" for g in GEOMETRIES]


def _stacked(geometry, draws, fill=None, dtype=torch.float64):
    shape = (draws * geometry.weight_shape[0],) + geometry.weight_shape[1:]
    return torch.full(shape, fill, dtype=dtype) if fill is not None else torch.randn(
        shape, dtype=dtype)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=IDS)
@pytest.mark.parametrize("spatial_extra", [0, 2])
def test_every_output_sums_forward_terms_and_every_input_feeds_backward_terms(
        geometry, spatial_extra):
    # Ones everywhere: an output is its number of terms, an input's gradient its fan-out.
    spatial = tuple(k + spatial_extra for k in geometry.kernel)
    draws = 2
    ones = torch.ones((1, draws * geometry.in_channels) + spatial, dtype=torch.float64)
    weight = _stacked(geometry, draws, 1.0)
    groups = draws * geometry.groups
    out = conv.layer(ones, weight, geometry, groups)
    assert out.shape == ones.shape
    assert torch.all(out == geometry.forward_terms)
    back = conv.adjoint(torch.ones_like(out), weight, geometry, groups)
    assert torch.all(back == geometry.backward_terms)


def _reference_circular(x, weight, geometry):
    """One draw's layer by F.pad(mode='circular') (torch >= 1.1) and the op itself: Conv directly;
    ConvTranspose as the adjoint of the circular Conv that shares its weight's layout."""
    kernel = geometry.kernel
    pad = []
    for k in reversed(kernel):
        pad += [(k - 1) // 2, k // 2]
    if not geometry.transposed:
        conv_op = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[geometry.dims]
        return conv_op(F.pad(x, pad, mode="circular"), weight, groups=geometry.groups)
    # y = fold(conv_transpose(x)) is the transpose of u -> conv(pad_after(u)): autograd of that.
    conv_op = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[geometry.dims]
    after = []
    for k in reversed(kernel):
        after += [0, k - 1]
    u = torch.zeros((x.shape[0], geometry.out_channels) + x.shape[2:], dtype=x.dtype,
                    requires_grad=True)
    image = conv_op(F.pad(u, after, mode="circular"), weight, groups=geometry.groups)
    grad, = torch.autograd.grad((image * x).sum(), u)
    return grad


@pytest.mark.skipif(not hasattr(F, "pad"), reason="no F.pad")
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=IDS)
def test_batched_layer_is_each_draw_run_alone(geometry):
    torch.manual_seed(1)
    draws = 3
    spatial = tuple(k + 1 for k in geometry.kernel)
    x = torch.randn((2, draws * geometry.in_channels) + spatial, dtype=torch.float64)
    weight = _stacked(geometry, draws)
    out = conv.layer(x, weight, geometry, draws * geometry.groups)
    rows, channels = geometry.weight_shape[0], geometry.in_channels
    for draw in range(draws):
        alone = _reference_circular(x[:, draw * channels:(draw + 1) * channels],
                                    weight[draw * rows:(draw + 1) * rows], geometry)
        assert torch.allclose(out[:, draw * channels:(draw + 1) * channels], alone, atol=1e-12)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=IDS)
def test_explicit_backward_is_autograd(geometry):
    torch.manual_seed(2)
    draws = 2
    spatial = tuple(k + 1 for k in geometry.kernel)
    x = torch.randn((2, draws * geometry.in_channels) + spatial, dtype=torch.float64,
                    requires_grad=True)
    weight = _stacked(geometry, draws)
    out = conv.layer(x, weight, geometry, draws * geometry.groups)
    delta = torch.randn_like(out)
    expected, = torch.autograd.grad((out * delta).sum(), x)
    assert torch.allclose(conv.adjoint(delta, weight, geometry, draws * geometry.groups),
                          expected, atol=1e-12)


@pytest.mark.parametrize("init", ["kaiming_normal_fan_out", "module_default"])
@pytest.mark.parametrize("transposed", [False, True])
def test_measure_per_draw_equals_separate_single_draw_stacks(init, transposed):
    geometry = ConvGeometry(5, 5, (3, 3), transposed=transposed)
    depth, draws, seed = 4, 3, 7
    measured = conv.measure(geometry, init, depth, draws, spatial=(4, 3),
                            dtype=torch.float64, seed=seed)
    # The probe's draws, replayed: inputs, output gradient, then every (layer, draw) weight.
    with torch.random.fork_rng(devices=[]):
        initialise = conv.initialiser(init, geometry)
        torch.manual_seed(seed)
        x = torch.randn((1, draws * 5, 4, 3), dtype=torch.float64)
        r = torch.randn((1, draws * 5, 4, 3), dtype=torch.float64)
        weights = conv.draw_weights(initialise, geometry, depth, draws, torch.float64, "cpu")
    for draw in range(draws):
        h = x[:, draw * 5:(draw + 1) * 5].clone().requires_grad_(True)
        outputs = [h]
        for layer in range(depth):
            outputs.append(conv.layer(outputs[-1], weights[layer, draw], geometry, 1))
        grads = torch.autograd.grad(
            (outputs[-1] * r[:, draw * 5:(draw + 1) * 5]).sum(), outputs[:-1])
        q = [float((t.detach() ** 2).mean()) for t in outputs]
        g = [float((t ** 2).mean()) for t in grads] + [float((r[:, draw * 5:(draw + 1) * 5]
                                                               ** 2).mean())]
        np.testing.assert_allclose(measured.q[0, draw], q, rtol=1e-12)
        np.testing.assert_allclose(measured.grad[0, draw], g, rtol=1e-12)


def test_weight_scales_are_the_nominal_stack_scaled():
    # Linear layers: weights x c multiply layer l's output by c^l and its gradient by
    # c^(depth - l), so the controls measure exactly 2 l ln c away from the nominal.
    geometry = ConvGeometry(4, 4, (2, 2, 2), transposed=True)
    depth = 5
    measured = conv.measure(geometry, "xavier_uniform", depth, 2, scales=(1.0, 1.05, 0.95),
                            dtype=torch.float64, seed=3)
    layers = np.arange(depth + 1)
    for index, scale in enumerate((1.05, 0.95), start=1):
        np.testing.assert_allclose(np.log(measured.q[index] / measured.q[0]),
                                   np.broadcast_to(2 * layers * np.log(scale), (2, depth + 1)),
                                   atol=1e-12)
        np.testing.assert_allclose(np.log(measured.grad[index] / measured.grad[0]),
                                   np.broadcast_to(2 * (depth - layers) * np.log(scale),
                                                   (2, depth + 1)), atol=1e-12)


def test_measure_leaves_the_callers_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    conv.measure(ConvGeometry(3, 3, (2,)), "module_default", 2, 2)
    assert torch.equal(torch.rand(3), expected)


def test_module_default_is_the_module_reset():
    # nn.ConvTranspose1d's reset: kaiming_uniform_(a=sqrt(5)) on the (in, out, k) weight, whose
    # torch fan_in is out * k: U(+-1/sqrt(out * k)), variance 1/(3 out k).
    geometry = ConvGeometry(6, 6, (3,), transposed=True)
    reset = conv.initialiser("module_default", geometry)
    weights = torch.empty((400,) + geometry.weight_shape, dtype=torch.float64)
    torch.manual_seed(4)
    for weight in weights:
        reset(weight)
    bound = 1.0 / (6 * 3) ** 0.5
    assert float(weights.abs().max()) <= bound
    assert float(weights.abs().max()) > 0.999 * bound
    # 43200 uniform draws: the variance's relative sd is sqrt(0.8 / 43200) = 0.4%
    assert float(weights.var()) == pytest.approx(bound ** 2 / 3, rel=0.02)
    assert len({float(w.sum()) for w in weights}) == 400  # every reset draws afresh


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="in_channels == out_channels"):
        conv.measure(ConvGeometry(4, 8, (3,)), "xavier_normal", 2, 2)
    with pytest.raises(ValueError, match="unknown init"):
        conv.initialiser("orthogonal", ConvGeometry(4, 4, (3,)))
    with pytest.raises(ValueError, match="wrap"):
        conv.measure(ConvGeometry(4, 4, (5,)), "xavier_normal", 2, 2, spatial=(3,))
