"""`gainkit gains`: values through torch callables + autograd, resolving, output, bad input.

Numbers quoted from docs/theory.md are the strings printed there and must match to half a unit of
their last digit (for 7 significant digits that is a relative error below 1e-6); the same
quantities must also agree with theory's numpy built-ins to 1e-9, which is the tool's claim
of exactness.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gainkit.gains import gainsheet
from gainkit.gains import torch_activations as acts
from gainkit.meanfield import theory
from gainkit.tools import gains

SQRT2 = math.sqrt(2.0)
LEAKY_GAIN = math.sqrt(2.0 / (1.0 + 0.01**2))
HERE = Path(__file__).parent


def stated(value):
    """A number as docs/theory.md prints it (str: to its last digit) or an exact value (float)."""
    if isinstance(value, str):
        decimals = len(value.partition(".")[2])
        return pytest.approx(float(value), abs=0.5 * 10.0**-decimals)
    return pytest.approx(value, rel=1e-6)


def at(report: dict, source: str) -> dict:
    (row,) = [row for row in report["at"] if row["source"] == source]
    return row


def needs(name: str):
    return pytest.mark.skipif(not hasattr(torch.nn.functional, name),
                              reason=f"torch {torch.__version__} has no F.{name}")


@pytest.fixture(scope="module")
def resolved():
    cache = {}

    def get(spec):
        if spec not in cache:
            cache[spec] = acts.resolve(spec)
        return cache[spec]
    return get


# --- docs/theory.md, through the torch callable and autograd ------------------------------------

@pytest.mark.parametrize("spec, forward, backward, centred", [
    ("sigmoid", "1.846229", "4.722646", "4.801313"),
    ("tanh", "1.592537", "1.467414", "1.592537"),
    ("relu", "1.414214", "1.414214", "1.712859"),
    ("leaky_relu", "1.414143", "1.414143", "1.704832"),
    ("leaky_relu:0.01", "1.414143", "1.414143", "1.704832"),
    ("selu", 1.0, "0.966026", 1.0),
])
def test_gain_definitions_match_theory_md(resolved, spec, forward, backward, centred):
    found = theory.gain_definitions(resolved(spec).theory)
    assert (found["forward"], found["backward"], found["centred"]) == (
        stated(forward), stated(backward), stated(centred))


@pytest.mark.parametrize("spec, gain, q_star, post_rms, chi_1, regime", [
    ("sigmoid", 1.0, "0.264687", "0.514477", "0.055721", "ordered"),
    ("tanh", 5 / 3, "1.178480", "0.651347", "1.209831", "chaotic"),
    ("selu", 3 / 4, "0.023034", "0.202358", "1.003670", "near-critical"),
    ("selu", 1.0, 1.0, 1.0, "1.071575", "chaotic"),
    ("relu", SQRT2, 1.0, math.sqrt(0.5), 1.0, "critical"),
    ("leaky_relu", LEAKY_GAIN, 1.0, 1.0 / LEAKY_GAIN, 1.0, "critical"),
])
def test_behaviour_matches_theory_md(resolved, spec, gain, q_star, post_rms, chi_1, regime):
    row = at(gainsheet.analyse(resolved(spec), [gain], 1.0, strict=True), "given")
    assert (row["q_star"], row["post_rms"], row["chi_1"], row["regime"]) == (
        stated(q_star), stated(post_rms), stated(chi_1), regime)


def test_selu_three_quarters_forward_depth_scale(resolved):
    assert at(gainsheet.analyse(resolved("selu"), [0.75], 1.0, True), "given")["xi_q"] == \
        stated("12.6")


@pytest.mark.parametrize("spec, critical, reason", [
    ("tanh", 1.0, "q* -> 0"),
    ("sigmoid", "10.1", "root"),
    ("relu", SQRT2, "homogeneous"),
    ("softplus", SQRT2, "q* -> inf"),
])
def test_critical_gains_match_theory_md(resolved, spec, critical, reason):
    found = gainsheet.analyse(resolved(spec), [], 1.0, True)["gains"]
    assert found["critical"] == stated(critical)
    assert reason in found["critical_reason"]


def test_pytorch_gains_are_those_of_the_installed_torch(resolved):
    init = torch.nn.init
    report = gainsheet.analyse(resolved("leaky_relu:0.2"), [], 1.0, True)
    assert report["pytorch_gain"] == init.calculate_gain("leaky_relu", 0.2)
    assert at(report, "pytorch")["regime"] == "critical"
    assert gainsheet.analyse(resolved("tanh"), [], 1.0, True)["pytorch_gain"] == 5 / 3
    assert gainsheet.analyse(resolved("elu"), [], 1.0, True)["pytorch_gain"] is None


def test_pytorch_gain_missing_from_this_torch_is_explained(resolved):
    try:
        expected = torch.nn.init.calculate_gain("selu")  # 1.8+
    except ValueError:
        expected = None
    value, note = acts.pytorch_gain(resolved("selu"))
    assert value == expected
    if expected is None:
        assert note.startswith(f"calculate_gain('selu') raises in torch {torch.__version__}: ")
    else:
        assert note == "calculate_gain('selu')"


# --- exactness: the torch path against theory's numpy built-ins -------------------------------

TORCH_TWINS = ["relu", "leaky_relu", "sigmoid", "tanh", "selu", "elu", "gelu", "silu",
               "softplus", "mish", "hardswish", "hardtanh", "softsign"]


@pytest.mark.parametrize("name", TORCH_TWINS)
def test_torch_path_equals_numpy_builtin(resolved, name):
    if not hasattr(torch.nn.functional, name):
        pytest.skip(f"torch {torch.__version__} has no F.{name}")
    mine, builtin = resolved(name).theory, theory.activation(name)
    found = theory.gain_definitions(mine)
    for key in ("forward", "backward", "centred"):
        assert found[key] == pytest.approx(theory.gain_definitions(builtin)[key], rel=1e-9)
    for gain in (0.9, 1.3, 2.0):
        for q in (0.01, 1.0, 50.0):
            assert theory.length_map(mine, gain, q) == pytest.approx(
                theory.length_map(builtin, gain, q), rel=1e-9)
            assert theory.chi(mine, gain, q) == pytest.approx(
                theory.chi(builtin, gain, q), rel=1e-9)


def test_definitions_are_theorys(resolved):
    act = resolved("elu:alpha=0.5").theory
    expected = theory.gain_definitions(act)
    found = gainsheet.analyse(resolved("elu:alpha=0.5"), [], 1.0, True)["gains"]
    assert {key: found[key] for key in expected} == pytest.approx(expected, rel=1e-12)
    assert found["critical_reason"] == expected.critical_reason


@needs("gelu")
def test_forward_gain_of_gelu_is_a_repelling_fixed_point(resolved):
    row = at(gainsheet.analyse(resolved("gelu"), ["forward"], 1.0, True), "forward")
    assert row["q_star"] == 1.0 and not row["stable"]
    assert row["slope"] > 1.0 and row["xi_q"] < 0.0
    definitions = theory.gain_definitions(resolved("gelu").theory)
    assert row["chi_1"] == pytest.approx(
        (definitions["forward"] / definitions["backward"]) ** 2, rel=1e-9)


# --- resolving ------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, kinks, homogeneous", [
    ("relu", (0.0,), True),
    ("leaky_relu:0.2", (0.0,), True),
    ("rrelu", (0.0,), True),
    ("PReLU:init=0.2", (0.0,), True),
    ("tanh", (), False),
    ("elu:alpha=0.5", (0.0,), False),
    ("hardtanh", (-1.0, 1.0), False),
    ("hardtanh:-2.5,0.75", (-2.5, 0.75), False),
    ("relu6", (0.0, 6.0), False),
    ("threshold:0.3,-0.2", (0.3,), False),
    ("hardshrink:lambd=0.25", (-0.25, 0.25), False),
    ("softshrink", (-0.5, 0.5), False),
    pytest.param("hardswish", (-3.0, 3.0), False, marks=needs("hardswish")),
    pytest.param("gelu", (), False, marks=needs("gelu")),
])
def test_kinks_and_homogeneity(resolved, spec, kinks, homogeneous):
    act = resolved(spec)
    assert act.kinks == pytest.approx(kinks, abs=1e-12)
    assert act.homogeneous is homogeneous


@pytest.mark.parametrize("spec, jumps", [
    ("hardshrink", (-0.5, 0.5)),
    ("threshold:0.3,-0.2", (0.3,)),
    ("softshrink", ()),
    ("relu", ()),
])
def test_jumps_of_phi(resolved, spec, jumps):
    assert resolved(spec).jumps == pytest.approx(jumps, abs=1e-12)
    assert resolved(spec).theory.jumps == resolved(spec).jumps  # theory's dV/dq needs them


def test_forward_slope_includes_the_jumps_of_phi(resolved):
    # V(q) = g^2 E[u^2; |u| > l]: at q = 1 and g = g_f, dV/dq = 1 + g^2 l^3 pdf(l), the last
    # term from the edges of the dead zone moving with q (Stein's lemma alone gives 1).
    lambd = 0.5
    row = at(gainsheet.analyse(resolved("hardshrink"), ["forward"], 1.0, True), "forward")
    pdf = math.exp(-0.5 * lambd**2) / math.sqrt(2.0 * math.pi)
    assert row["slope"] == pytest.approx(1.0 + row["gain"] ** 2 * lambd**3 * pdf, rel=1e-6)
    assert row["xi_q"] == pytest.approx(-1.0 / math.log(row["slope"]), rel=1e-5)
    assert not row["stable"]


@pytest.mark.parametrize("spec, definition, gain_args", [
    ("leaky_relu:0.2", "torch.nn.functional.leaky_relu(x, 0.2)", ("leaky_relu", 0.2)),
    ("F.leaky_relu:negative_slope=0.3", "torch.nn.functional.leaky_relu(x, negative_slope=0.3)",
     ("leaky_relu", 0.3)),
    ("nn.LeakyReLU:0.1", "torch.nn.LeakyReLU(0.1)(x)", ("leaky_relu", 0.1)),
    ("torch.nn.Tanh", "torch.nn.Tanh()(x)", ("tanh",)),
    ("elu:alpha=0.5", "torch.nn.functional.elu(x, alpha=0.5)", None),
    ("Softplus:beta=2", "torch.nn.Softplus(beta=2)(x)", None),
    ("relu_", "torch.nn.functional.relu_(x)", ("relu",)),
])
def test_specs(spec, definition, gain_args):
    act = acts.resolve(spec)
    assert (act.definition, act.gain_args) == (definition, gain_args)


def test_parameters_reach_the_function(resolved):
    assert resolved("elu:alpha=0.5").theory.phi(-1.0) == pytest.approx(0.5 * math.expm1(-1.0))
    assert resolved("Softplus:beta=2").theory.phi(0.0) == pytest.approx(math.log(2.0) / 2.0)


@pytest.mark.skipif(not hasattr(torch.nn, "Identity"), reason="torch.nn.Identity is from 1.1")
def test_identity_module_is_linear(resolved):
    act = resolved("Identity")
    assert (act.homogeneous, act.gain_args) == (True, ("linear",))
    assert gainsheet.analyse(act, [], 1.0, True)["pytorch_gain"] == 1.0


@pytest.mark.parametrize("text, args, kwargs", [
    ("0.2", (0.2,), {}),
    ("alpha=0.5", (), {"alpha": 0.5}),
    ("-1, 1, inplace=False", (-1, 1), {"inplace": False}),
    ("approximate=tanh", (), {"approximate": "tanh"}),
    ("approximate='tanh'", (), {"approximate": "tanh"}),
])
def test_parse_params(text, args, kwargs):
    assert acts.parse_params(text) == (args, kwargs)


@pytest.mark.parametrize("function, cause", [
    (lambda x: x - x.mean(), "depends on other elements"),
    (lambda x: torch.nn.functional.softmax(x, dim=-1), "permuting the inputs"),
    (lambda x: x.sum(), "shape"),
    (lambda x: torch.nn.functional.dropout(x, 0.5), "not deterministic"),
    (lambda x: x > 0, "it returns torch.(bool|uint8) values"),  # uint8 before torch 1.2
    (lambda x: 1.0, "not a tensor"),
])
def test_check_elementwise_rejects(function, cause):
    with pytest.raises(acts.ActivationError, match=cause):
        acts.check_elementwise(function, "f")


def test_in_place_functions_leave_the_input_alone():
    x = torch.linspace(-1.0, 1.0, 5, dtype=torch.float64)
    before = x.clone()
    act = acts.resolve("relu_")
    assert act.kinks == (0.0,)
    acts.check_elementwise(act.function, "relu_")
    assert torch.equal(x, before)


def test_the_table_interpolates_to_rounding(resolved):
    act, builtin = resolved("tanh").theory, theory.activation("tanh")
    x = [-37.1, -3.0001, -0.3, -1e-9, 0.0, 2e-7, 0.7, 5.5, 17.3, 123.4, 4.5e6, 3e8]
    for point in x:
        assert act.phi(point) == pytest.approx(float(builtin.phi(point)), rel=1e-11, abs=1e-300)
        assert act.dphi(point) == pytest.approx(float(builtin.dphi(point)), rel=1e-8, abs=1e-12)
    assert list(act.phi(np.array(x))) == pytest.approx(
        [act.phi(point) for point in x], rel=1e-15)


def test_all_lists_the_elementwise_functions_of_this_torch():
    found, skipped = acts.functional_activations()
    for name in ("relu", "tanh", "sigmoid", "leaky_relu", "elu", "softplus", "hardtanh"):
        assert name in found
    for name in ("softmax", "log_softmax", "glu", "normalize", "dropout", "linear", "conv2d",
                 "alpha_dropout", "relu_", "threshold"):
        assert name not in found and name in skipped
    assert skipped["relu_"] == "in-place variant of relu"


# --- the command line -----------------------------------------------------------------------

@pytest.fixture
def custom_path(tmp_path):
    shutil.copy(HERE / "custom_activations.py", tmp_path / "custom_activations.py")
    return tmp_path


def run_tool(*args, pythonpath=None):
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(pythonpath)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return subprocess.run([sys.executable, "-m", "gainkit.tools.gains"] + list(args),
                          capture_output=True, text=True, env=env)


def test_json_output():
    done = run_tool("tanh", "relu", "--gain", "1.2", "--gain", "forward", "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["torch"] == torch.__version__
    assert [item["name"] for item in report["activations"]] == ["tanh", "relu"]
    tanh = report["activations"][0]
    assert set(tanh["gains"]) == {"forward", "backward", "centred", "critical",
                                  "critical_reason"}
    assert [row["source"] for row in tanh["at"]] == ["pytorch", "given", "forward"]
    assert set(tanh["at"][0]) >= {"gain", "q_star", "chi_1", "xi_q", "xi_grad", "depth_10x",
                                  "regime", "stable"}
    assert tanh["at"][0]["chi_1"] == stated("1.209831")
    relu = report["activations"][1]
    assert relu["kinks"] == [0.0] and relu["homogeneous"] is True
    assert relu["at"][0]["xi_grad"] == "inf"  # JSON has no infinity: written as a string


def test_markdown_output():
    done = run_tool("sigmoid", "selu", "--gain", "1", "--format", "markdown")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    tables = [line for line in lines if line.startswith("|")]
    assert "## Gains" in lines and "## Depth behaviour (mean field)" in lines
    header = [cell.strip() for cell in tables[0].strip("|").split("|")]
    assert header == ["activation", "phi(x)", "g_f", "g_b", "g_c", "critical", "PyTorch"]
    width = {line.count("|") for line in tables[:4]}
    assert len(width) == 1
    assert any(line.startswith("| sigmoid | 1 | pytorch | 0.2646869 |") for line in lines)


def test_table_output_and_cli_entry():
    done = subprocess.run([sys.executable, "-m", "gainkit.tools.cli", "gains", "relu"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[2].split() == ["activation", "g_f", "g_b", "g_c",
                                                   "critical", "PyTorch"]
    assert done.stdout.splitlines()[3].split()[:2] == ["relu", "1.414214"]


def test_custom_callable_and_class(custom_path):
    done = run_tool("custom_activations:swish", "custom_activations:ScaledTanh:scale=2.0",
                    "--format", "json", pythonpath=custom_path)
    assert done.returncode == 0, done.stderr
    swish, scaled = json.loads(done.stdout)["activations"]
    sigmoid_x = theory.Activation.from_callables(
        "swish", lambda x: x / (1.0 + math.exp(-x)) if x > -700 else 0.0)
    assert swish["gains"]["forward"] == pytest.approx(theory.gain_forward(sigmoid_x), rel=1e-9)
    assert swish["pytorch_gain"] is None
    assert scaled["gains"]["forward"] == pytest.approx(
        theory.gain_forward(theory.activation("tanh")) / 2.0, rel=1e-9)
    assert scaled["gains"]["critical"] == pytest.approx(0.5, rel=1e-9)


@pytest.mark.parametrize("args, cause", [
    (["nope"], "unknown activation 'nope'"),
    (["softmax"], "not elementwise"),
    (["dropout"], "not deterministic"),
    (["glu"], "glu(x) fails on a tensor"),
    (["bilinear"], "fails on a tensor"),  # a layer; linear is the identity alias
    (["threshold"], "missing"),
    (["custom_activations:log"], "log(x) gives nan at x = -0.00195312"),
    (["custom_activations:step"], "not differentiable by autograd"),
    (["custom_activations:centred"], "not elementwise"),
    (["custom_activations:reduce"], "not elementwise: shape"),
    (["custom_activations:missing"], "has no callable 'missing'"),
    (["custom_activations:NOT_CALLABLE"], "is not callable"),
    (["no_such_module:f"], "cannot import module 'no_such_module'"),
    (["elu:alpha=oops"], "fails on a tensor"),
    (["relu", "--gain", "2"], "no fixed point at gain 2"),
    (["selu", "--gain", "1.5"], "no fixed point at gain 1.5"),
    (["silu", "--gain", "critical"], "silu has no critical gain: chi_1 jumps"),
    (["relu", "--gain", "-1"], "a gain must be positive"),
    (["relu", "--gain", "fast"], "is not a number"),
    (["relu", "--q0", "0"], "q0 must be"),
    ([], "name an ACTIVATION or use --all"),
    (["relu", "--format", "xml"], "invalid choice"),
    (["relu:("], "parameter '(' is neither a Python literal nor a bare word"),
    (["elu:alpha=1.0.0"], "parameter '1.0.0' is neither"),
    (["hardshrink", "--gain", "1.01"], "E[phi(u)^2] = 0 at q = 1e-10 (a dead signal)"),
])
def test_bad_input_is_one_line_and_exit_2(custom_path, args, cause):
    if args[:1] in (["silu"],) and not hasattr(torch.nn.functional, "silu"):
        pytest.skip("no F.silu in this torch")
    done = run_tool(*args, pythonpath=custom_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("gainkit gains: error: ")
    assert cause in done.stderr


def test_verify_measures_against_predicted():
    done = run_tool("tanh", "nn.LeakyReLU:0.2", "--gain", "1.2", "--verify", "--format", "json")
    assert done.returncode == 0, done.stderr
    tanh, leaky = json.loads(done.stdout)["activations"]
    assert [check["source"] for check in tanh["verify"]] == ["pytorch", "given"]
    assert [check["source"] for check in leaky["verify"]] == ["pytorch", "given"]
    for check in tanh["verify"] + leaky["verify"]:
        for key in ("q_out", "grad_growth"):
            assert check[key]["within"], check
    given = tanh["verify"][1]["q_out"]
    assert given["mean_field"] == pytest.approx(
        theory.profile("tanh", 1.2, 1.0, gainsheet.VERIFY_DEPTH)[0][-1], rel=1e-9)
    rate = 1.2**2 * (1.0 + 0.2**2) / 2.0  # below the critical gain q shrinks by this a layer
    assert leaky["verify"][1]["q_out"]["mean_field"] == pytest.approx(rate**20, rel=1e-9)


@pytest.mark.parametrize("spec", ["softsign", pytest.param("gelu", marks=needs("gelu")),
                                  "elu:alpha=0.5"])
def test_verify_measures_any_activation(spec):
    # mlp.measure takes torch's function with autograd's phi', stability a theory.Activation
    done = run_tool(spec, "--gain", "1.2", "--verify", "--format", "json")
    assert done.returncode == 0, done.stderr
    (item,) = json.loads(done.stdout)["activations"]
    (check,) = item["verify"]
    assert check["source"] == "given"
    for key in ("q_out", "grad_growth"):
        assert check[key]["within"], check
    assert check["q_out"]["mean_field"] == pytest.approx(
        theory.profile(acts.resolve(spec).theory, 1.2, 1.0, gainsheet.VERIFY_DEPTH)[0][-1],
        rel=1e-9)


def test_probe_and_noise_model_of_a_pair_equal_those_of_the_name():
    from gainkit.meanfield import finitewidth
    from gainkit.probe import mlp

    init = mlp.torch_init("xavier_normal", "tanh", gain=1.3)
    named = mlp.measure("tanh", init, 64, 6, 3, dtype=torch.float64)
    paired = mlp.measure(mlp.autograd_pair(torch.tanh), init, 64, 6, 3, dtype=torch.float64)
    for key in ("q", "post", "grad"):
        assert getattr(paired, key) == pytest.approx(getattr(named, key), rel=1e-12)
    last = np.eye(7)[-1]
    by_name = finitewidth.finite_width("tanh", None, 1.3, 1.0, 6, 64).statistic(q=last)
    by_model = finitewidth.finite_width(theory.activation("tanh"), None, 1.3, 1.0, 6, 64)
    assert by_model.statistic(q=last) == pytest.approx(by_name, rel=1e-12)


def test_verify_in_markdown():
    done = run_tool("sigmoid", "--verify", "--format", "markdown")
    assert done.returncode == 0, done.stderr
    assert "## Measured (gainkit.probe.mlp)" in done.stdout
    assert any(line.startswith("| sigmoid | 1 | pytorch |") and line.endswith("| yes |")
               for line in done.stdout.splitlines())


def test_a_reader_that_stops_early_ends_it_quietly():
    # `python -m gainkit.tools.gains relu | head -1`: no BrokenPipeError traceback.
    tool = subprocess.Popen([sys.executable, "-m", "gainkit.tools.gains", "relu", "tanh"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tool.stdout.close()  # closed before the tool writes
    error = tool.stderr.read().decode()
    assert tool.wait() == 141, error
    assert error == ""


def test_help_does_not_import_torch():
    code = ("import sys\nfrom gainkit.tools import gains\ntry:\n    gains.main(['--help'])\n"
            "except SystemExit:\n    pass\nsys.exit('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], stdout=subprocess.DEVNULL)
    assert done.returncode == 0


def test_help_documents_exit_codes():
    done = run_tool("--help")
    assert done.returncode == 0
    assert "Exit codes:" in done.stdout and "2   usage error, or an activation" in done.stdout


def test_all_reports_without_fixed_point_in_its_row():
    args = type("Args", (), {"all": True, "activations": [], "only_missing": False,
                             "gain": [3.0], "q0": 1.0, "verify": False, "argv": []})
    report = gains.collect(args)
    names = [item["name"] for item in report["activations"]]
    relu = report["activations"][names.index("relu")]
    assert [row.get("no_fixed_point") for row in relu["at"]] == [
        None, "q -> inf: the signal blows up"]
    assert "softmax" in report["skipped"] and "softmax" not in names


# -- names users type, several activations, the JSON schema ---------------------------------

@pytest.mark.parametrize("alias, canonical", [
    ("identity", "nn.Identity"), ("linear", "nn.Identity"), ("swish", "silu"),
    ("log_sigmoid", "logsigmoid"), ("hard_swish", "hardswish"), ("lrelu:0.2", "leaky_relu:0.2"),
])
def test_an_alias_is_the_activation_it_names(resolved, alias, canonical):
    if canonical.split(":")[0] in ("silu", "hardswish") and not hasattr(
            torch.nn.functional, canonical):
        pytest.skip(f"no F.{canonical} in this torch")
    meant, named = resolved(alias), resolved(canonical)
    assert (meant.name, meant.definition) == (alias, named.definition)
    assert (meant.gain_args, meant.kinks) == (named.gain_args, named.kinks)
    assert gainsheet.analyse(meant, [], 1.0, True)["gains"] == \
        gainsheet.analyse(named, [], 1.0, True)["gains"]


def test_linear_and_identity_are_calculate_gains_linear(resolved):
    for word in ("linear", "identity"):
        act = resolved(word)
        assert act.gain_args == ("linear",) and act.definition == "torch.nn.Identity()(x)"


def test_help_lists_every_alias_of_the_registry():
    from gainkit import activations

    done = run_tool("--help")
    listed = done.stdout.split("aliases (the torch name each stands for):", 1)[1]
    for word, spelling in activations.aliases().items():
        line = next(line for line in listed.splitlines() if f" -> {spelling}" in line)
        assert word in line.split(" -> ")[0].replace(",", " ").split()


def test_each_activation_gets_its_rows_or_its_own_error_line():
    done = run_tool("relu", "identity", "no_such_thing", "tanh", "--gain", "1.3")
    assert done.returncode == 2
    errors = done.stderr.splitlines()
    assert errors == [
        "gainkit gains: error: identity has no fixed point at gain 1.3 (given): q -> inf: "
        "the signal blows up",
        "gainkit gains: error: unknown activation 'no_such_thing': not a torch.nn.functional "
        "function, not a torch.nn module class, not package.module:callable"]
    rows = [line.split()[0] for line in done.stdout.splitlines()[3:] if line.strip()]
    assert {"relu", "tanh"} <= set(rows) and "identity" not in rows


def test_json_lists_the_failed_and_follows_the_schema():
    jsonschema = pytest.importorskip("jsonschema", reason="schema tests need jsonschema")
    from gainkit import schemas

    done = run_tool("relu", "selu", "identity", "--gain", "1.2", "--gain", "critical",
                    "--format", "json", "--verify")
    assert done.returncode == 2  # identity has no fixed point at 1.2
    report = json.loads(done.stdout)
    assert [item["name"] for item in report["activations"]] == ["relu", "selu"]
    assert [item["name"] for item in report["failed"]] == ["identity"]
    jsonschema.validate(report, schemas.load("gains"))
    assert report["activations"][0]["at"][0]["xi_grad"] == "inf"
    # the schema is what catches a wrong encoding: a bare string where a number belongs
    report["activations"][0]["at"][0]["xi_grad"] = "infinity"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(report, schemas.load("gains"))


def test_module_defaults_alone_print_and_follow_the_schema():
    jsonschema = pytest.importorskip("jsonschema", reason="schema tests need jsonschema")
    from gainkit import schemas

    table = run_tool("--module-defaults")
    assert table.returncode == 0, table.stderr
    assert "nn.Linear default, relu: ordered, the second moment shrinks 6x a layer" in table.stdout
    done = run_tool("--module-defaults", "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    jsonschema.validate(report, schemas.load("gains"))
    chaotic = [row for row in report["module_defaults"] if row["case_id"] == "leaky_relu-5"]
    assert chaotic[0]["q_star"] == "inf"
    chaotic[0]["q_star"] = "unbounded"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(report, schemas.load("gains"))
