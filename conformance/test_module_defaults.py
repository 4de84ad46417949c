"""What torch.nn modules draw when nobody calls an init function, against
``src/gainkit/data/module_defaults.toml``.

Each module is built once, moved to the device and dtype (and memory format) under test, and
re-initialised again and again the way its constructor initialises it: every
``reset_parameters`` / ``_reset_parameters`` of its submodules, children first. Before each
reset every parameter is filled with nan, so a parameter a reset forgets cannot pass for drawn.
The pooled draws of each parameter are judged as ``test_init_functions.py`` judges init
functions (``gainkit.suite.variance``): second moment, kurtosis (normal vs uniform) and, for
uniform draws, max|w| against the bound. z is a Bonferroni bound over every statistical
assertion of the file on every device and dtype; the number of resets is the fewest that put a
5% scale error outside the band with probability 1 - MISS_RATE, and each test proves it: the
same draws scaled by 1.05 and 0.95 must land outside the variance band (negative controls).
Constant parameters (zeroed biases, LayerNorm's ones) must equal their value exactly.
"""

from __future__ import annotations

import inspect
import math
import warnings

import pytest
import torch

from gainkit.probe.determinism import seed_rng
from gainkit.suite import designs, torchinfo, variance
from gainkit.suite.default_stacks import reinitialise
from gainkit.suite.expectations import DEVICE_DTYPES, MODULE_DEFAULTS

FALSE_ALARM_RATE = 1e-4
MISS_RATE = 1e-4
CHECKS_PER_PARAMETER = 3  # second moment, kurtosis, max|w| (uniform only; counted for all)
CONTROL_FACTORS = designs.CONTROL_FACTORS

CASES = [(module, parameter) for module in MODULE_DEFAULTS for parameter in module.parameters]
STATISTICAL = [pair for pair in CASES if pair[1].distribution != "constant"]
Z_ALARM = designs.bonferroni_z(len(STATISTICAL) * len(DEVICE_DTYPES) * CHECKS_PER_PARAMETER,
                               FALSE_ALARM_RATE)
Z_POWER = designs.upper_z(MISS_RATE)


def missing_requirement(module) -> str:
    """Why this torch cannot run ``module``'s case ("" when it can)."""
    for requirement in module.requires:
        path, _, argument = requirement.partition("(")
        owner = torch
        for part in path.split("."):
            owner = getattr(owner, part, None)
            if owner is None:
                return f"torch {torch.__version__} has no torch.{path} (this case needs it)"
        argument = argument.rstrip(")")
        if argument and argument not in inspect.signature(owner.__init__).parameters:
            return (f"torch {torch.__version__}'s torch.{path} takes no {argument!r} argument "
                    "(this case needs it)")
    return ""


def parameter_of(module, name: str) -> torch.Tensor:
    value = module
    for part in name.split("."):
        value = getattr(value, part)
    return value


def judged_numel(parameter, tensor) -> int:
    rows = tensor.size(0) if parameter.zero_rows else 1
    return tensor.numel() * (rows - len(parameter.zero_rows)) // rows


class Draws:
    """The pooled draws of every parameter of one module case on one device and dtype."""

    def __init__(self, case, device, dtype, seed):
        self.values, self.zero_rows_max, self.formats_kept = {}, {}, True
        with warnings.catch_warnings():
            # nn.Transformer's advice on nested tensors for inference: not about its init
            warnings.filterwarnings("ignore", message=".*enable_nested_tensor")
            module = eval(case.build, case.namespace())  # noqa: S307 - the project's data
        module = module.to(device=device, dtype=dtype)
        memory_format = getattr(torch, case.memory_format) if case.memory_format else None
        if memory_format is not None:
            # Per tensor: 1.7.1's Module.to(memory_format=) converts 4-D tensors only.
            for tensor in module.parameters():
                if tensor.dim() > 2:
                    tensor.data = tensor.data.contiguous(memory_format=memory_format)
                    assert tensor.is_contiguous(memory_format=memory_format)
                    assert not tensor.is_contiguous(), "the reset would see a contiguous weight"
        # Constant parameters are judged on every value of one reset.
        needed = {p.name: (variance.draws_needed(p.distribution, Z_ALARM, Z_POWER)
                           if p.distribution != "constant" else 1) for p in case.parameters}
        resets = max(math.ceil(needed[p.name] / judged_numel(p, parameter_of(module, p.name)))
                     for p in case.parameters)
        pooled = {p.name: [] for p in case.parameters}
        count = {p.name: 0 for p in case.parameters}
        zero_rows = {p.name: 0.0 for p in case.parameters if p.zero_rows}
        seed_rng(seed, device)
        with torch.no_grad():
            for _ in range(resets):
                for tensor in module.parameters():
                    tensor.fill_(math.nan)
                reinitialise(module)
                for p in case.parameters:
                    if count[p.name] >= needed[p.name]:
                        continue  # enough draws: more would only cost time
                    tensor = parameter_of(module, p.name).detach()
                    if memory_format is not None and tensor.dim() > 2:
                        self.formats_kept &= tensor.is_contiguous(memory_format=memory_format)
                    # a copy: a float64 CPU parameter would otherwise be the tensor itself,
                    # which the next reset overwrites
                    values = tensor.to("cpu", torch.float64).clone()
                    if p.zero_rows:
                        rows = list(p.zero_rows)
                        zero_rows[p.name] = max(zero_rows[p.name],
                                                values[rows].abs().max().item())
                        keep = [r for r in range(values.size(0)) if r not in p.zero_rows]
                        values = values[keep]
                    pooled[p.name].append(values.reshape(-1))
                    count[p.name] += pooled[p.name][-1].numel()
        self.values = {name: torch.cat(chunks) for name, chunks in pooled.items()}
        self.zero_rows_max = zero_rows
        self.resets = resets


_DRAWS = {}


def draws_of(case, device, dtype, seed) -> Draws:
    """Cached: every parameter test of a module shares its resets."""
    key = (case.id, device, str(dtype), seed)
    if key not in _DRAWS:
        _DRAWS[key] = Draws(case, device, dtype, seed)
    return _DRAWS[key]


def case_seed(seed: int, case_id: str, device: str, dtype) -> int:
    import zlib

    key = "/".join((case_id, device, torchinfo.dtype_name(dtype)))
    return seed * 1000003 + zlib.crc32(key.encode("utf-8")) % 1000003


def record_id(case) -> str:
    """``module:<id>``: the report's row of a module default, and its tests' parameter id.
    Prefixed so that neither reads as a gain (``linear``, ``conv1d`` are gains.toml ids too)."""
    return "module:" + case.id


def skip_if_unsupported(case) -> None:
    reason = missing_requirement(case)
    if reason:
        pytest.skip(reason)


@pytest.mark.parametrize(("case", "parameter"), CASES,
                         ids=[record_id(module) + "." + parameter.name
                              for module, parameter in CASES])
def test_parameter_draws_its_default(case, parameter, device, dtype, seed, results):
    skip_if_unsupported(case)
    draws = draws_of(case, device, dtype, case_seed(seed, case.id, device, dtype))
    expected = case.expected(parameter.name, torchinfo.installed_version())
    values = draws.values[parameter.name]
    setting = dict(module=case.id, parameter=parameter.name, device=device,
                   dtype=torchinfo.dtype_name(dtype), resets=draws.resets,
                   distribution=expected.distribution)
    problems = []
    if torch.isnan(values).any():
        problems.append(f"{int(torch.isnan(values).sum())} of {values.numel()} values not "
                        "drawn: the reset left them as they were (nan)")
    row_max = draws.zero_rows_max.get(parameter.name, 0.0)
    if row_max != 0.0:
        problems.append(f"rows {list(parameter.zero_rows)} (padding_idx) are not 0: "
                            f"max |value| {row_max:.4g}")
    if expected.distribution == "constant":
        wrong = (values != expected.value).sum().item()
        if wrong:
            problems.append(f"{wrong} of {values.numel()} values differ from the constant "
                            f"{expected.value:g} (e.g. {values[values != expected.value][0]:.4g})")
        results.record("module_default", record_id(case), verdict="fail" if problems else "pass",
                       value=expected.value, **setting)
        assert not problems, "\n".join(problems)
        return
    if not problems:
        found, fields = variance.judge_draws(values, expected.variance, expected.distribution,
                                             dtype, Z_ALARM, Z_POWER)
        problems += found
        for factor in CONTROL_FACTORS:
            _, control = variance.judge_draws(values * factor, expected.variance,
                                              expected.distribution, dtype, Z_ALARM, Z_POWER)
            if control["band_lo"] <= control["ratio"] <= control["band_hi"]:
                problems.append(f"negative control not rejected: the draws x{factor} give "
                                f"variance ratio {control['ratio']:.4f} inside the band "
                                f"[{control['band_lo']:.4f}, {control['band_hi']:.4f}]")
        fields["verdict"] = "fail" if problems else "pass"
        results.record("module_default", record_id(case),
                       variance_formula=expected.variance_formula, fan=parameter.fan,
                       **setting, **fields)
    assert not problems, (f"{case.id}.{parameter.name} ({case.source}; expected "
                          f"{expected.distribution} with variance {expected.variance_formula}"
                          f" = {expected.variance:.6g}):\n" + "\n".join(problems))


FORMAT_CASES = [module for module in MODULE_DEFAULTS if module.memory_format]


@pytest.mark.parametrize("case", FORMAT_CASES, ids=[record_id(module) for module in FORMAT_CASES])
def test_reset_keeps_memory_format(case, device, seed):
    """A channels_last weight stays channels_last through reset_parameters (2.13.0 draws it in
    a contiguous temporary and copies it back)."""
    skip_if_unsupported(case)
    dtype = torch.float32
    draws = draws_of(case, device, dtype, case_seed(seed, case.id, device, dtype))
    assert draws.formats_kept, (f"{case.id}: after reset_parameters the weight is no longer "
                                f"{case.memory_format}")
