"""The conformance suite is sharp and quiet: the slice of ``gainkit mutate`` CI runs.

The full evidence is ``gainkit mutate``: every mutant against the whole suite and a 50-seed
false-alarm sweep (last figures in docs/mutation.md). Here, on every change: the catalogue
covers every regression issue 6 names and its faults install faithfully; one mutant per
conformance file is killed by every file it names (run on those files, ``-k`` slice only);
the unmodified suite passes under a few seeds.
"""

from __future__ import annotations

import inspect

import pytest

from gainkit.mutation import runner
from gainkit.mutation.catalogue import (
    CATALOGUE,
    CONFORMANCE_FILES,
    MUTANTS,
    REQUIRED_TAGS,
    NotApplicable,
    lookup,
    restore,
    target,
)
from gainkit.suite.expectations import GAINS, MODULE_DEFAULTS
from gainkit.tools.check import conformance_dir

torch = pytest.importorskip("torch")

# One mutant caught by each conformance file; the first by all four gain files. Then the
# faults of the arguments and orthogonal_ files, a docstring lost (which must fail, not skip),
# the module defaults, the last by both module-default files; a fault of half precision
# only, which the float32/float64 checks cannot see; a conv fan fault; and a conv gain (the
# value file and the conv stacks).
SLICE_MUTANTS = ("gain-tanh-x1.05", "leaky_relu-bool-accepted", "docstring-selu-row-missing",
                 "kaiming-conv-fan-no-receptive-field", "reduced-precision-arguments-dropped",
                 "kaiming_normal_-generator-dropped",
                 "orthogonal_-gain-squared", "calculate_gain-docstring-lost",
                 "attention-in-proj-per-chunk", "linear-default-a0", "conv-transpose-fans-swapped",
                 "gain-conv_transpose2d-x1.05")
SLICE_SEEDS = (0, 1, 2)  # 0: every user's default run


def test_catalogue_covers_every_required_regression():
    assert len(CATALOGUE) >= 20
    covered = {tag for mutant in CATALOGUE for tag in mutant.tags}
    assert set(REQUIRED_TAGS) <= covered, sorted(set(REQUIRED_TAGS) - covered)


def test_catalogue_has_a_gain_mutant_for_every_stability_case():
    stability_names = {case.nonlinearity for case in GAINS if case.stability}
    for name in stability_names:
        assert f"gain-{name}-x1.05" in MUTANTS
    assert any(name.endswith("-x0.95") for name in MUTANTS)


def test_every_mutant_names_conformance_files_that_must_catch_it():
    files = {path.name for path in conformance_dir().glob("test_*.py")}
    assert set(CONFORMANCE_FILES) <= files
    for mutant in CATALOGUE:
        assert mutant.caught_by and set(mutant.caught_by) <= files, mutant.name
        assert mutant.description and mutant.tags, mutant.name


def test_slice_has_a_mutant_for_every_conformance_file():
    named = {name for mutant in SLICE_MUTANTS for name in MUTANTS[mutant].caught_by}
    assert named == set(CONFORMANCE_FILES)
    assert set(CONFORMANCE_FILES) == {path.name for path in conformance_dir().glob("test_*.py")}


def module_instance(owner):
    """A module of class ``owner`` (or a subclass) built as module_defaults.toml builds it."""
    for case in MODULE_DEFAULTS:
        module = eval(case.build, case.namespace())  # noqa: S307 - the project's own data
        if isinstance(module, owner):
            if case.memory_format:
                module = module.to(memory_format=getattr(torch, case.memory_format))
            return module
    raise AssertionError(f"module_defaults.toml builds no {owner.__name__}")


def original_call(name: str, original):
    """Arguments that call ``original``: its first argument, every other one by keyword; a
    module's reset method gets a module of its class."""
    if "." in name:
        return (module_instance(target(torch.nn.init, name)[0]),), {}
    first, *rest = inspect.signature(original).parameters.values()
    keywords = {parameter.name: parameter.default for parameter in rest
                if parameter.default is not inspect.Parameter.empty}
    if first.name == "nonlinearity":
        return ("relu",), keywords
    if name == "_calculate_correct_fan":
        return (torch.empty(8, 4, 3),), {"mode": "fan_in"}
    return (torch.empty(8, 4, 3),), keywords


@pytest.mark.parametrize("mutant", CATALOGUE, ids=[mutant.name for mutant in CATALOGUE])
def test_mutant_takes_every_call_of_this_torch_and_restores(mutant):
    init = torch.nn.init
    before = {name: lookup(init, name) for name in mutant.replacements}
    try:
        originals = mutant.apply(init)
    except NotApplicable as error:
        # only a torch older than a documented gain may lack text a mutant edits (SELU's row)
        missing = [case.id for case in GAINS if gain_missing(case)]
        if missing:
            pytest.skip(f"torch {torch.__version__} lacks {missing}: {error}")
        pytest.fail(f"{mutant.name} does not apply to torch {torch.__version__}: {error}")
    try:
        for name, original in originals.items():
            replacement = lookup(init, name)
            assert replacement is not original
            arguments, keywords = original_call(name, original)
            replacement(*arguments, **keywords)
    finally:
        restore(init, originals)
    assert {name: lookup(init, name) for name in mutant.replacements} == before


@pytest.mark.mutation
@pytest.mark.parametrize("name", SLICE_MUTANTS)
def test_suite_kills_mutant(name):
    # The faults are in Python, not in kernels: CPU runs are the whole evidence.
    options = runner.Options(suite=conformance_dir(), device="cpu", focused=True)
    result = runner.kill(MUTANTS[name], options)
    assert result.as_declared, (
        f"{name}: {result.verdict}\n{runner.reproduce(result.run)}\n{result.run.output_tail}")


@pytest.mark.mutation
@pytest.mark.parametrize("seed", SLICE_SEEDS)
def test_unmodified_suite_passes(seed):
    missing = [case.id for case in GAINS if gain_missing(case)]
    if missing:
        pytest.skip(f"torch {torch.__version__} lacks {missing}: the suite fails until patched")
    result = runner.sweep(seed, runner.Options(suite=conformance_dir(), device="cpu"))
    assert result.clean, (
        f"seed {seed}: {result.verdict}\n{runner.reproduce(result.run)}\n"
        f"{result.run.output_tail}")


def gain_missing(case) -> bool:
    try:
        torch.nn.init.calculate_gain(*case.call_args())
    except ValueError:
        return True
    return False
