"""gainkit.activations: lookups, and its numbers against the installed torch and each other.

The registry is the one copy of torch's constants and defaults that theory, the probe, the
gains tool, the mutation catalogue and the suite compute with, so they are checked here against
torch itself rather than against a second copy.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gainkit import activations

WITH_DEFAULTS = [name for name in activations.names() if activations.get(name).defaults]


def test_registry_imports_neither_torch_nor_scipy():
    code = "import sys, gainkit.activations; print(sorted({'torch', 'scipy'} & set(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, check=True)
    assert run.stdout.decode().strip() == "[]"


def test_unknown_name_is_one_line_naming_the_known():
    with pytest.raises(activations.UnknownActivation) as raised:
        activations.get("nope")
    assert str(raised.value) == "unknown activation 'nope'; known: " + ", ".join(
        activations.names())


def test_a_name_without_the_kind_asked_for_names_those_with_it():
    assert activations.get("celu").formula
    with pytest.raises(ValueError, match="^unknown torch-probe activation 'celu'; known: "
                                         "linear, relu, leaky_relu, sigmoid, tanh, selu$"):
        activations.get("celu", "torch")
    with pytest.raises(ValueError, match="^unknown mean-field activation 'celu'; known: "):
        activations.get("celu").numpy_pair()


def test_unknown_kind():
    with pytest.raises(ValueError, match="^unknown kind 'jax'; known: mean_field, torch$"):
        activations.names("jax")


def test_torch_pairs_are_a_subset_of_the_mean_field_forms():
    assert set(activations.names("torch")) <= set(activations.names("mean_field"))


def test_selu_constants_are_torchs():
    selu = activations.get("selu").constants
    x = torch.tensor([1.0, -1.0, -30.0], dtype=torch.float64)
    expected = [selu["scale"], selu["scale"] * selu["alpha"] * math.expm1(-1.0),
                selu["scale"] * selu["alpha"] * math.expm1(-30.0)]
    assert F.selu(x).tolist() == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("name", WITH_DEFAULTS)
def test_defaults_are_those_of_the_torch_module(name):
    entry = activations.get(name)
    modules = [getattr(torch.nn, attribute) for attribute in dir(torch.nn)
               if attribute.lower() in entry.torch_names]
    assert modules, f"no torch.nn module for {name}"
    for module in modules:
        instance = module()
        for parameter, value in entry.defaults.items():
            assert getattr(instance, parameter) == value, (module.__name__, parameter)


def test_param_is_a_default():
    for name in activations.names():
        entry = activations.get(name)
        assert entry.param is None or entry.param in entry.defaults, name


@pytest.mark.parametrize("name", activations.names())
def test_torch_names_are_in_torch(name):
    classes = {attribute.lower() for attribute in dir(torch.nn)}
    for torch_name in activations.get(name).torch_names:
        assert hasattr(F, torch_name) or torch_name in classes, torch_name


def test_a_torch_name_finds_its_entry():
    assert activations.from_torch_name("leakyrelu").name == "leaky_relu"
    assert activations.from_torch_name("identity").name == "linear"
    assert activations.from_torch_name("linear") is None  # F.linear is a layer
    assert activations.from_torch_name("softmax") is None


@pytest.mark.parametrize("slope", [None, 0.2])
@pytest.mark.parametrize("name", activations.names("torch"))
def test_torch_pair_matches_the_numpy_pair(name, slope):
    entry = activations.get(name)
    x = np.linspace(-8.0, 8.0, 801)
    torch_phi, torch_dphi = entry.torch_pair(slope)
    numpy_phi, numpy_dphi = entry.numpy_pair(slope)
    h = torch.tensor(x, dtype=torch.float64)
    assert torch_phi(h).numpy() == pytest.approx(numpy_phi(x) * np.ones_like(x), rel=1e-13,
                                                 abs=1e-300)
    # abs: tanh's 1 - tanh^2 cancels, torch's and numpy's tanh differ by an ulp
    assert torch_dphi(h).numpy() == pytest.approx(numpy_dphi(x) * np.ones_like(x), rel=1e-13,
                                                  abs=1e-15)


@pytest.mark.parametrize("name", activations.names("torch"))
def test_torch_derivative_is_autograds(name):
    phi, dphi = activations.get(name).torch_pair()
    h = torch.linspace(-8.0, 8.0, 800, dtype=torch.float64).requires_grad_(True)
    derivative, = torch.autograd.grad(phi(h).sum(), h)
    assert dphi(h.detach()).numpy() == pytest.approx(derivative.numpy(), rel=1e-13)


def test_slope_reaches_only_the_parameter_it_names():
    assert activations.get("leaky_relu").parameters(0.2) == {"negative_slope": 0.2}
    assert activations.get("elu").parameters(0.5) == {"alpha": 0.5}
    assert activations.get("selu").parameters(0.5) == dict(activations.get("selu").constants)


def test_formulas_show_the_defaults_and_constants():
    assert "(0.01)" in activations.get("leaky_relu").formula
    assert "a = 1.6733, l = 1.0507" in activations.get("selu").formula


def test_a_name_registers_once():
    with pytest.raises(ValueError, match="registered twice"):
        activations.register("relu")
