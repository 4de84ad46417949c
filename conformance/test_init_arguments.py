"""Every random init draws from the generator it is given, and otherwise from the global RNG.

From torch 2.2 (gains.toml's [arguments]) the random inits take ``generator=``: with one, the
weights are a function of that generator's seed alone (the global RNG neither used nor
advanced); without one, of ``torch.manual_seed``. Torch's own tests check that the keyword is
accepted; a wrapper or refactor that stops forwarding it passes them and silently makes
seeded experiments irreproducible. These checks are exact (equal or different tensors), not
statistical, so they are outside every Bonferroni count.
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from gainkit.suite import torchinfo
from gainkit.suite.expectations import ARGUMENTS

CONV_WEIGHT = (16, 8, 3)  # nn.Conv1d(8, 16, 3)'s weight: fans 24 and 48
# Each init's arguments besides the tensor and the generator, and the weight it fills
# (sparse_ takes 2-D tensors only).
CALLS = {
    "uniform_": (CONV_WEIGHT, dict(a=-0.5, b=0.5)),
    "normal_": (CONV_WEIGHT, dict(mean=0.0, std=0.5)),
    "trunc_normal_": (CONV_WEIGHT, dict(mean=0.0, std=1.0, a=-2.0, b=2.0)),
    "xavier_uniform_": (CONV_WEIGHT, dict(gain=5.0 / 3.0)),
    "xavier_normal_": (CONV_WEIGHT, dict(gain=5.0 / 3.0)),
    "kaiming_uniform_": (CONV_WEIGHT, dict(a=0.2, mode="fan_out", nonlinearity="leaky_relu")),
    "kaiming_normal_": (CONV_WEIGHT, dict(a=0.2, mode="fan_out", nonlinearity="leaky_relu")),
    "orthogonal_": (CONV_WEIGHT, dict(gain=math.sqrt(2.0))),
    "sparse_": ((24, 16), dict(sparsity=0.5, std=0.1)),
}


def test_every_generator_init_has_a_call():
    assert set(ARGUMENTS.generator_inits) == set(CALLS)


def available(name: str):
    function = getattr(torch.nn.init, name, None)
    if function is None:
        pytest.skip(f"torch {torch.__version__} has no torch.nn.init.{name}")
    return function


def generator_init(name: str):
    """The init ``name``; fails where this torch should take ``generator=`` and it does not,
    skips (saying why) on a torch older than the keyword."""
    function = available(name)
    if "generator" in inspect.signature(function).parameters:
        return function
    if torchinfo.installed_version() >= ARGUMENTS.generator_since_tuple:
        pytest.fail(f"torch {torch.__version__} >= {ARGUMENTS.generator_since} but "
                    f"torch.nn.init.{name} takes no generator= ({ARGUMENTS.generator_source})",
                    pytrace=False)
    pytest.skip(f"generator= arrived in torch {ARGUMENTS.generator_since} "
                f"({ARGUMENTS.generator_source}); torch {torch.__version__}'s {name} takes none")


def global_rng_state(device: str) -> list:
    states = [torch.get_rng_state()]
    if device == "cuda":
        states.append(torch.cuda.get_rng_state())
    return states


def filled(function, name: str, device: str, **extra) -> torch.Tensor:
    shape, arguments = CALLS[name]
    weight = torch.empty(shape, device=device)
    with torch.no_grad():
        function(weight, **dict(arguments, **extra))
    return weight.cpu()


def seeded_generator(device: str, seed: int):
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


@pytest.mark.parametrize("name", sorted(CALLS))
def test_generator_alone_decides_the_draw(name, device, results):
    function = generator_init(name)
    torch.manual_seed(1)
    before = global_rng_state(device)
    first = filled(function, name, device, generator=seeded_generator(device, 7))
    after = global_rng_state(device)
    deviation = ARGUMENTS.generator_deviations.get(name)
    if deviation is not None:
        partly_followed(function, name, device, first, deviation, results)
        return
    assert all(torch.equal(old, new) for old, new in zip(before, after)), (
        f"{name}(generator=...) advanced the global RNG: it drew from it, not from the "
        "generator")
    torch.manual_seed(2)  # another global state: the draw must not notice
    again = filled(function, name, device, generator=seeded_generator(device, 7))
    assert torch.equal(first, again), (
        f"{name} with two generators seeded alike drew different weights")
    other = filled(function, name, device, generator=seeded_generator(device, 8))
    assert not torch.equal(first, other), f"{name} drew the same weights from seeds 7 and 8"


def partly_followed(function, name, device, first, deviation, results) -> None:
    """An init of gains.toml's generator_deviations: the values follow the generator, what the
    deviation names (sparse_'s zero mask) is recorded, not asserted."""
    torch.manual_seed(2)
    again = filled(function, name, device, generator=seeded_generator(device, 7))
    both = (first != 0) & (again != 0)
    results.record("arguments", name, device=device, deviation=deviation,
                   identical=bool(torch.equal(first, again)), verdict="pass")
    assert both.any() and torch.equal(first[both], again[both]), (
        f"{name}: the values two generators seeded alike drew differ")


@pytest.mark.parametrize("name", sorted(CALLS))
def test_without_generator_the_global_seed_decides(name, device):
    function = available(name)
    torch.manual_seed(5)
    first = filled(function, name, device)
    following = filled(function, name, device)
    torch.manual_seed(5)
    again = filled(function, name, device)
    assert torch.equal(first, again), f"{name}: torch.manual_seed(5) did not reproduce its draw"
    assert not torch.equal(first, following), (
        f"{name} drew the same weights twice in a row: the global RNG did not advance")
