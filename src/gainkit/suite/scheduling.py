"""How the suite's tests are shared among pytest-xdist workers (gainkit/suite/plugin.py,
"Workers").

Several tests judge one measurement, cached in their module for that process: the forward and
backward checks of a stability run, every init of a gain (the pooled regime check reads them
all), every parameter of a module's default resets. Were they sent to different workers, each
worker would measure the run again. The scheduler is xdist's loadscope with a scope per shared
measurement instead of per module: a test's scope is its file and its parameter id less the
parts that vary among the tests sharing it (the init, for the stability files; the parameter
name, for the module defaults). The other tests are one scope per test function: each of them
is cheap, and a unit per test cost the controller about 1 s of scheduling and messages a run
(it sends every unit to a worker on its own), CPU the workers need.

The controller sees node ids only, so the scope is read from the id; the ids are the suite's
own (conformance/test_*.py), and tests/test_scheduling.py checks this against a collection.
"""

from __future__ import annotations

from typing import Callable, Dict

from xdist.scheduler import LoadScopeScheduling

# The init names as they appear in parameter ids (gainkit.probe.mlp.INITS and
# gainkit.probe.conv.INITS), spelled here so that the controller needs no torch.
INIT_IDS = frozenset((
    "xavier_normal", "xavier_uniform", "kaiming_normal_fan_in", "kaiming_normal_fan_out",
    "kaiming_uniform_fan_in", "kaiming_uniform_fan_out", "orthogonal", "module_default",
))


def _without_init(params: str) -> str:
    return "-".join(part for part in params.split("-") if part not in INIT_IDS)


def _without_parameter(params: str) -> str:
    # "cpu-float32-module:transformer.self_attn.in_proj_weight" -> "cpu-float32-module:transformer":
    # parameter names have dots of their own, module ids none (data/module_defaults.toml)
    head, marker, rest = params.partition("module:")
    return head + marker + rest.split(".", 1)[0]


SHARED: Dict[str, Callable[[str], str]] = {
    "test_stability.py": _without_init,
    "test_conv_stability.py": _without_init,
    "test_module_defaults.py": _without_parameter,
}


def scope(nodeid: str) -> str:
    """The scheduling unit of the test ``nodeid``."""
    path, _, name = nodeid.partition("::")
    rule = SHARED.get(path.replace("\\", "/").rsplit("/", 1)[-1])
    function, bracket, params = name.partition("[")
    if rule is None or not bracket:
        return f"{path}::{function}"
    return f"{path}::[{rule(params[:-1])}]"


class SharedRunScheduling(LoadScopeScheduling):
    """xdist's loadscope scheduling with the suite's scopes (module docstring)."""

    def _split_scope(self, nodeid: str) -> str:
        return scope(nodeid)
