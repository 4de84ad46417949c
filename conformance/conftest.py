"""Device x dtype parametrisation, seeds and fixtures of the conformance suite.

The library under test is whatever ``torch`` this interpreter imports; the expected
behaviour comes from ``gainkit.suite.expectations`` (``src/gainkit/data/gains.toml``); the
options, report header and JSON results from the plugin ``gainkit.suite.plugin``.
"""

from __future__ import annotations

import zlib

import pytest
import torch

from gainkit.probe import determinism
from gainkit.suite import plugin, torchinfo
from gainkit.suite.expectations import DEVICE_DTYPES, REDUCED_PRECISION


def pytest_configure(config):
    manager = config.pluginmanager
    if manager.get_plugin(plugin.RESULTS_PLUGIN) is not None:
        return
    if manager.has_plugin(plugin.__name__):
        # The plugin did not see this run as the suite's (a copy of the suite outside the
        # installed package, named by path): this conftest is an initial one then, early
        # enough for the header and results.
        manager.register(plugin.SuiteSession(config), plugin.RESULTS_PLUGIN)
        return
    # Without the plugin the suite would run with no options, seeds or results.
    raise pytest.UsageError(
        "gainkit's pytest plugin did not load for this run of the suite (plugin autoloading "
        "off?): add -p gainkit.suite.plugin")


def device_dtype_params(config, with_dtype: bool, pairs=DEVICE_DTYPES) -> list:
    params = []
    seen = set()
    for device, dtype_label in pairs:
        dtype = getattr(torch, dtype_label, None)
        if device not in plugin.selected_devices(config):
            continue
        marks = [pytest.mark.cuda] if device == "cuda" else []
        if device == "cuda" and not torch.cuda.is_available():
            marks.append(pytest.mark.skip(reason=plugin.CUDA_MISSING))
        if dtype is None:
            marks.append(pytest.mark.skip(
                reason=f"torch {torch.__version__} has no torch.{dtype_label}"))
        if with_dtype:
            params.append(pytest.param(device, dtype, marks=marks,
                                       id=f"{device}-{dtype_label}"))
        elif device not in seen:
            seen.add(device)
            params.append(pytest.param(device, marks=marks, id=device))
    return params


def pytest_generate_tests(metafunc):
    names = metafunc.fixturenames
    if "device" in names and "reduced_dtype" in names:
        devices = dict.fromkeys(device for device, _ in DEVICE_DTYPES)
        pairs = [(device, label) for device in devices for label in REDUCED_PRECISION]
        metafunc.parametrize(("device", "reduced_dtype"),
                             device_dtype_params(metafunc.config, True, pairs))
    elif "device" in names and "dtype" in names:
        metafunc.parametrize(("device", "dtype"), device_dtype_params(metafunc.config, True))
    elif "device" in names:
        metafunc.parametrize("device", device_dtype_params(metafunc.config, False))


@pytest.fixture(scope="session", autouse=True)
def one_cpu_thread():
    """The suite's tensors are small: one CPU thread runs its draws, QRs and products several
    times faster than OpenMP's fork/join over two (restored at the end)."""
    with determinism.torch_cpu_threads(1):
        yield


@pytest.fixture(scope="session")
def seed(request) -> int:
    return request.config.getoption("gainkit_seed")


@pytest.fixture
def node_seed(request, seed) -> int:
    """A seed for this test instance: stable across runs, processes and file moves."""
    return seed * 1000 + zlib.crc32(request.node.name.encode("utf-8")) % 1000


@pytest.fixture(scope="session")
def results(request) -> plugin.SuiteSession:
    return request.config.pluginmanager.get_plugin(plugin.RESULTS_PLUGIN)


@pytest.fixture(scope="session")
def probe_overrides(request) -> dict:
    """--gainkit-width/-depth/-draws; None where the probe should choose from theory."""
    return {name: request.config.getoption("gainkit_" + name)
            for name in ("width", "depth", "draws")}


@pytest.fixture(scope="session")
def require_gain():
    """``require_gain(case, *arguments)`` -> ``calculate_gain(*arguments)``.

    ``arguments`` default to ``case.call_args()``. Where the installed torch predates
    ``case.since`` and lacks the value, the test fails (it is not skipped) with the message
    naming the patch to apply.
    """

    def require(case, *arguments):
        try:
            return torch.nn.init.calculate_gain(*(arguments or case.call_args()))
        except ValueError:
            if not torchinfo.predates(case):
                raise
        # Outside the except block, so the report shows the hint, not a chained traceback.
        pytest.fail(torchinfo.missing_gain_message(case), pytrace=False)

    return require
