"""The conv sum counts against torch's fans and against a measured conv layer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gainkit.meanfield.conv import ConvGeometry

CASES = [
    # (geometry, forward factor, backward factor) with Var(w) = 1/fan_in
    (ConvGeometry(32, 48, (3, 3)), 1.0, 48 / 32),
    (ConvGeometry(32, 48, (3, 3), transposed=True), 32 / 48, 1.0),
    (ConvGeometry(16, 16, (3,), groups=16), 1.0, 1.0),
    (ConvGeometry(8, 12, (3, 1, 2), groups=4), 1.0, 12 / 8),
]


@pytest.mark.parametrize("geometry, forward, backward", CASES)
def test_fan_in_factors(geometry, forward, backward):
    assert geometry.pass_factors("fan_in") == pytest.approx((forward, backward))


def test_fan_out_overcounts_groups():
    depthwise = ConvGeometry(16, 16, (3, 3), groups=16)
    assert depthwise.torch_fan("fan_out") == 16 * 9
    assert depthwise.backward_terms == 9
    assert depthwise.pass_factors("fan_out") == pytest.approx((1 / 16, 1 / 16))


def test_transposed_modes_reverse_conv():
    transposed = ConvGeometry(32, 48, (3, 3), transposed=True)
    assert transposed.preserves("fan_out") == ("forward",)
    assert transposed.preserves("fan_in") == ("backward",)
    conv = ConvGeometry(32, 48, (3, 3))
    assert conv.preserves("fan_in") == ("forward",)
    assert conv.preserves("fan_out") == ("backward",)


def test_torch_fans_match_torch():
    for geometry, _, _ in CASES:
        weight = torch.empty(geometry.weight_shape)
        fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(weight)
        assert (geometry.torch_fan("fan_in"), geometry.torch_fan("fan_out")) == (fan_in, fan_out)


def test_bad_geometry_and_mode():
    with pytest.raises(ValueError, match="groups"):
        ConvGeometry(6, 4, (3,), groups=4)
    with pytest.raises(ValueError, match="mode"):
        ConvGeometry(4, 4, (3,)).torch_fan("fan_sum")


@pytest.mark.parametrize("geometry, forward, backward", CASES)
def test_measured_layer_matches_the_counts(geometry, forward, backward):
    # Unit-variance weights: E[y^2]/E[x^2] is forward_terms, E[dx^2]/E[dy^2] backward_terms.
    torch.manual_seed(0)
    dims = geometry.dims
    size = (12,) * dims if dims < 3 else (6,) * dims
    pad = []
    for k in reversed(geometry.kernel):
        pad += [(k - 1) // 2, k // 2]
    draws = 20
    forward_ratio = backward_ratio = 0.0
    for _ in range(draws):
        weight = torch.randn(geometry.weight_shape, dtype=torch.float64)
        x = torch.randn((4, geometry.in_channels) + size, dtype=torch.float64, requires_grad=True)
        padded = F.pad(x, pad, mode="circular")
        conv = [F.conv1d, F.conv2d, F.conv3d][dims - 1]
        if geometry.transposed:
            conv = [F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d][dims - 1]
            # a transposed conv of a circularly padded input: its outputs k-1 from either edge
            # sum every term, and are as many as the input has positions
            y = conv(padded, weight, groups=geometry.groups)
            for d, k in enumerate(geometry.kernel):
                y = y.narrow(2 + d, k - 1, size[d])
        else:
            y = conv(padded, weight, groups=geometry.groups)
        dy = torch.randn_like(y)
        (y * dy).sum().backward()
        forward_ratio += float(y.detach().pow(2).mean() / x.detach().pow(2).mean()) / draws
        backward_ratio += float(x.grad.pow(2).mean() / dy.pow(2).mean()) / draws
    assert forward_ratio == pytest.approx(geometry.forward_terms, rel=0.1)
    assert backward_ratio == pytest.approx(geometry.backward_terms, rel=0.1)
