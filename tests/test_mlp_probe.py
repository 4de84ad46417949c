"""The MLP probe against an independent computation: each draw, input column and weight scale
of a measurement is the network autograd differentiates, built from the same draws
(``mlp.draw_weights`` replayed after the probe's seeding)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gainkit.probe import mlp

WIDTH, DEPTH, DRAWS, SEED = 6, 4, 3, 11
Q0 = (1.0, 2.5)
SCALES = (1.0, 1.05, 0.95)
PHI = {"tanh": torch.tanh, "relu": torch.relu}


def _weights_and_biases(weight, bias):
    # A biased init of the shape a module's reset_parameters has: weight and bias both drawn.
    torch.nn.init.normal_(weight, 0.0, 1.3 / math.sqrt(WIDTH))
    torch.nn.init.uniform_(bias, -0.2, 0.2)


def _replayed_draws(init, biased):
    # The probe's draws in its order: inputs, output gradient, then every (layer, draw) slice.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        x = torch.randn(DRAWS, WIDTH, len(Q0), dtype=torch.float64)
        x = x * torch.tensor([math.sqrt(q) for q in Q0], dtype=torch.float64)
        r = torch.randn(DRAWS, WIDTH, len(Q0), dtype=torch.float64)
        weights, biases = mlp.draw_weights(init, WIDTH, DEPTH, DRAWS, torch.float64, "cpu",
                                           biased)
    return x, r, weights, biases


def _autograd_network(phi, x, r, weights, biases, scale):
    # h^{l+1} = scale W^{l+1} phi(h^l) + b^{l+1}; gradients of sum(h^depth * r) at every h^l.
    h = x.clone().requires_grad_(True)
    pre = [h]
    for layer in range(DEPTH):
        pre.append(scale * (weights[layer] @ phi(pre[-1])) + biases[layer][:, 0])
    grads = torch.autograd.grad((pre[-1] * r).sum(), pre[:-1])
    q = [float((t.detach() ** 2).mean()) for t in pre]
    post = [float((phi(t.detach()) ** 2).mean()) for t in pre]
    grad = [float((t ** 2).mean()) for t in grads] + [float((r ** 2).mean())]
    return q, post, grad


@pytest.mark.parametrize("activation,biased", [("tanh", False), ("relu", False),
                                               ("tanh", True)])
def test_every_draw_column_and_scale_is_the_network_autograd_differentiates(activation,
                                                                           biased):
    init = (_weights_and_biases if biased
            else mlp.torch_init("kaiming_normal_fan_in", activation))
    measured = mlp.measure(activation, init, WIDTH, DEPTH, DRAWS, q0=Q0, scales=SCALES,
                           dtype=torch.float64, seed=SEED, biased=biased)
    x, r, weights, biases = _replayed_draws(init, biased)
    assert biased or not biases.any()
    for s, scale in enumerate(SCALES):
        for draw in range(DRAWS):
            for column in range(len(Q0)):
                q, post, grad = _autograd_network(
                    PHI[activation], x[draw, :, column], r[draw, :, column],
                    weights[:, draw], biases[:, draw], scale)
                np.testing.assert_allclose(measured.q[s, draw, column], q, rtol=1e-12)
                np.testing.assert_allclose(measured.post[s, draw, column], post, rtol=1e-12)
                np.testing.assert_allclose(measured.grad[s, draw, column], grad, rtol=1e-12)


def test_draws_are_layer_major_and_each_slice_is_one_init_call():
    calls = []

    def numbered(weight):
        weight.fill_(len(calls))
        calls.append(tuple(weight.shape))

    weights, _ = mlp.draw_weights(numbered, WIDTH, DEPTH, DRAWS, torch.float64, "cpu")
    assert calls == [(WIDTH, WIDTH)] * (DEPTH * DRAWS)
    for layer in range(DEPTH):
        for draw in range(DRAWS):
            assert (weights[layer, draw] == layer * DRAWS + draw).all()


def test_a_seed_decides_the_measurement_and_the_callers_rng_is_left_alone():
    init = mlp.torch_init("xavier_uniform", "tanh")
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = mlp.measure("tanh", init, WIDTH, DEPTH, DRAWS, seed=SEED)
    assert torch.equal(torch.rand(3), expected_next)
    again = mlp.measure("tanh", init, WIDTH, DEPTH, DRAWS, seed=SEED)
    other = mlp.measure("tanh", init, WIDTH, DEPTH, DRAWS, seed=SEED + 1)
    np.testing.assert_array_equal(first.q, again.q)
    assert not np.array_equal(first.q, other.q)
