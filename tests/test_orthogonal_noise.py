"""The finite-width model of orthogonal weights (finitewidth, ``weights="orthogonal"``):
exact where it must be, calibrated against the probe where it approximates.

Exact: a linear orthogonal network keeps norms, so the only noise left is the input's (eta_0);
relu's per-layer forward noise is kappa_f - 2 lambda C_eta,eps + 2 lambda^2 = 3 per unit (5 for
Gaussian weights). Calibrated: the probe, run with torch's orthogonal_ for many draws at fixed
seeds, must reproduce the model's mean and single-draw variance of every judged statistic
(forward summary, gradient slope, residual), and the same draws must reject the model of a 5%
wrong gain, so the calibration itself can fail.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from gainkit.meanfield.finitewidth import finite_width
from gainkit.suite import coverage, designs

torch = pytest.importorskip("torch")
from gainkit.probe import mlp  # noqa: E402 - needs torch

WIDTH, DEPTH = 64, 24
DRAWS = 240
Z = 4.0  # per comparison; the test makes 4 subjects x 3 statistics x 3 comparisons
CALIBRATED = ("linear", "relu", "tanh", "selu")


def test_linear_orthogonal_network_has_only_the_input_noise():
    model = finite_width("linear", None, 1.0, 1.0, DEPTH, WIDTH, weights="orthogonal")
    mean, variance = model.per_layer("q")
    assert np.allclose(variance, 2.0 / WIDTH) and np.allclose(mean, -1.0 / WIDTH)
    for kind in ("ratio", "residual"):
        mean, variance = model.per_layer(kind)
        assert np.allclose(variance, 0.0) and np.allclose(mean, 0.0)


def test_relu_orthogonal_forward_noise_is_three_per_unit_a_layer():
    gain = math.sqrt(2.0)
    orthogonal = finite_width("relu", None, gain, 1.0, DEPTH, WIDTH, weights="orthogonal")
    gaussian = finite_width("relu", None, gain, 1.0, DEPTH, WIDTH)
    _, variance = orthogonal.per_layer("q")
    assert np.allclose(np.diff(variance), 3.0 / WIDTH)
    assert gaussian.per_layer("q")[1][DEPTH] > 1.5 * variance[DEPTH]


def test_orthogonal_weights_have_no_entry_kurtosis():
    with pytest.raises(ValueError, match="kurtosis"):
        finite_width("relu", None, 1.4, 1.0, DEPTH, WIDTH, weight_kurtosis=-1.2,
                     weights="orthogonal")
    with pytest.raises(ValueError, match="unknown weight ensemble"):
        finite_width("relu", None, 1.4, 1.0, DEPTH, WIDTH, weights="haar")


def per_draw(design, measurement) -> dict:
    """Each judged statistic of every draw (what ``designs.observe`` averages)."""
    q, grad = np.log(measurement.q[0]), np.log(measurement.grad[0])
    ratio = grad[:, 1, :-1] - grad[:, 1, 1:]
    residual = ratio - designs.log_chi(design.activation, design.slope, design.gain,
                                       measurement.q[0][:, 1, :-1])
    backward = design.backward_weights()[:-1]
    return {"forward": q[:, 0] @ design.forward_weights(), "slope": ratio @ backward,
            "residual": residual @ backward}


@pytest.mark.parametrize("subject_id", CALIBRATED)
def test_probe_matches_the_orthogonal_model(subject_id):
    subject = next(s for s in coverage.subjects() if s.id == subject_id)
    design = coverage.suite_design(subject, "orthogonal", Z, WIDTH, DEPTH, DRAWS)
    assert design.weights == "orthogonal"
    init = mlp.torch_init("orthogonal", *subject.init_arguments("orthogonal"))
    measurement = mlp.measure_design(design, init, (1.0,), dtype=torch.float64, seed=20261201)
    for name, values in per_draw(design, measurement).items():
        mean, variance = design.statistic(name)
        floor = (design.rounding / Z) ** 2  # a statistic the model calls exact
        error = Z * math.sqrt((variance + floor) / DRAWS)
        assert abs(values.mean() - mean) <= error, (subject_id, name, values.mean(), mean)
        if variance > floor:
            # sample variance / model variance: chi-square, sd sqrt(2 / (S - 1)) at this S
            ratio = values.var(ddof=1) / variance
            assert abs(ratio - 1) <= Z * math.sqrt(2.0 / (DRAWS - 1)), (subject_id, name, ratio)
        else:
            assert values.std() <= design.rounding, (subject_id, name, values.std())
        if name == "forward":
            # the model of a 5% larger gain is out of reach of these draws
            control, _ = design.statistic(name, 1.05)
            assert abs(values.mean() - control) > error, (subject_id, values.mean(), control)
