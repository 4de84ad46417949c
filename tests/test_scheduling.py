"""The suite's xdist scopes (gainkit.suite.scheduling) against a real collection of the suite:
tests that share a cached measurement share a scope, one scope per measurement, and the other
tests are one scope per test function."""

from __future__ import annotations

import collections

import pytest

from gainkit.probe import conv, mlp
from gainkit.suite import plugin, scheduling


class _Collected:
    def __init__(self) -> None:
        self.items = []

    def pytest_collection_finish(self, session) -> None:
        self.items = list(session.items)


@pytest.fixture(scope="module")
def suite_items():
    collected = _Collected()
    code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "-c",
                        plugin.suite_config(), "--pyargs", plugin.SUITE_PACKAGE],
                       plugins=[collected])
    assert code == 0 and collected.items
    return collected.items


def _shared_key(item):
    """What the test's module caches its measurement by (conformance/test_*.py's _run and
    draws_of), less the init: the pooled checks read every init of a gain."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    params = callspec.params
    device_dtype = (params.get("device"), str(params.get("dtype")))
    name = item.path.name
    if name == "test_stability.py":
        return name, params["subject"].id, device_dtype
    if name == "test_conv_stability.py":
        return name, params["case"].id, device_dtype
    if name == "test_module_defaults.py" and "parameter" in params:
        return name, params["case"].id, device_dtype
    return None


def test_tests_sharing_a_measurement_share_a_scope_and_no_other_does(suite_items):
    scopes = collections.defaultdict(set)
    keys = collections.defaultdict(set)
    for item in suite_items:
        key = _shared_key(item)
        if key is None:
            if item.path.name in scheduling.SHARED:
                continue  # a file's rule applies to its every test; this one shares nothing
            key = (item.path.name, item.originalname)  # with its function's other tests
        scope = scheduling.scope(item.nodeid)
        scopes[key].add(scope)
        keys[scope].add(key)
    assert scopes, "no shared tests collected"
    assert {key: len(found) for key, found in scopes.items() if len(found) != 1} == {}
    assert {scope: len(found) for scope, found in keys.items() if len(found) != 1} == {}
    # The split is real: forward and backward stability checks of one gain are several tests.
    sizes = collections.Counter(scheduling.scope(item.nodeid) for item in suite_items
                                if item.path.name == "test_stability.py")
    assert min(sizes.values()) >= 2 * len(mlp.INITS)


def test_the_init_names_are_the_probes():
    assert set(mlp.INITS) | set(conv.INITS) == scheduling.INIT_IDS


@pytest.mark.parametrize("nodeid, expected", [
    ("conformance/test_stability.py::test_forward_second_moment_follows_profile"
     "[cpu-float32-xavier_normal-leaky_relu-0.2]",
     "conformance/test_stability.py::[cpu-float32-leaky_relu-0.2]"),
    ("test_conv_stability.py::test_conv_backward[cpu-float64-module_default-conv2d]",
     "test_conv_stability.py::[cpu-float64-conv2d]"),
    ("test_module_defaults.py::test_parameter_draws_its_default[cpu-float32-module:linear.bias]",
     "test_module_defaults.py::[cpu-float32-module:linear]"),
    ("test_values.py::test_documented_value_and_type[tanh]",
     "test_values.py::test_documented_value_and_type"),
    ("test_stability.py::test_not_parametrised", "test_stability.py::test_not_parametrised"),
])
def test_scope_of_a_node_id(nodeid, expected):
    assert scheduling.scope(nodeid) == expected
