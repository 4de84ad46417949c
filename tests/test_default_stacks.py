"""Module defaults: the data file, the biased mean field, the probe's biases, the stacks' verdict
and their `gainkit gains --module-defaults` rows.

Figures quoted here are derived by hand from the formulas in docs/theory.md ("Module
defaults"), not read back from the code under test.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from gainkit.meanfield import theory
from gainkit.probe import mlp
from gainkit.suite import default_stacks
from gainkit.suite.expectations import GAINS, MODULE_DEFAULTS
from gainkit.tools import gains

RELU = next(case for case in GAINS if case.id == "relu")
TANH = next(case for case in GAINS if case.id == "tanh")


def test_data_file_states_every_module_of_the_issue():
    builds = " ".join(module.build for module in MODULE_DEFAULTS)
    for name in ("Linear", "Bilinear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d",
                 "ConvTranspose2d", "ConvTranspose3d", "Embedding", "RNN", "LSTM", "GRU",
                 "MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer",
                 "Transformer("):
        assert "nn." + name in builds, name
    assert {module.memory_format for module in MODULE_DEFAULTS} >= {"channels_last",
                                                                   "channels_last_3d"}
    for module in MODULE_DEFAULTS:
        assert module.verified and module.source, module.id
        for parameter in module.parameters:
            assert parameter.distribution in ("uniform", "normal", "constant")
            if parameter.distribution == "constant":
                assert parameter.value is not None
            else:
                assert parameter.variance > 0 and parameter.variance_formula, parameter.name


def test_stacked_in_proj_gets_half_of_square_xavier():
    attention = next(m for m in MODULE_DEFAULTS if m.id == "multihead_attention")
    embed = dict(attention.sizes)["embed_dim"]
    assert attention.parameter("in_proj_weight").variance == pytest.approx(1 / (2 * embed))
    # 1.1's per-chunk xavier, recorded as a deviation
    assert attention.expected("in_proj_weight", (1, 1, 0)).variance == pytest.approx(1 / embed)
    assert attention.expected("in_proj_weight", (1, 2, 0)).variance == pytest.approx(
        1 / (2 * embed))


def test_data_matches_the_installed_torch_exactly_for_fixed_bounds():
    # U(+-1/sqrt(fan_in)) of nn.Linear: max|w| reaches the bound sqrt(3 Var) and never passes it
    linear = next(m for m in MODULE_DEFAULTS if m.id == "linear")
    torch.manual_seed(0)
    module = eval(linear.build, linear.namespace())
    bound = math.sqrt(3 * linear.parameter("weight").variance)
    assert module.weight.abs().max().item() <= bound * (1 + 1e-6)
    assert module.weight.abs().max().item() > bound * 0.99


def test_implied_gain_and_bias_variance_of_linear():
    assert default_stacks.implied_gain() == pytest.approx(1 / math.sqrt(3), rel=1e-12)
    assert default_stacks.bias_variance(64) == pytest.approx(1 / 192, rel=1e-12)


@pytest.mark.parametrize(("name", "rate"), [("relu", 1 / 6), ("linear", 1 / 3)])
def test_biased_fixed_point_of_homogeneous_maps(name, rate):
    width = 64
    bias = 1 / (3 * width)
    act = theory.activation(name)
    q_star = theory.fixed_point(act, 1 / math.sqrt(3), 1.0, bias)
    assert q_star == pytest.approx(bias / (1 - rate), rel=1e-9)  # relu: 2 / (5N)
    field = theory.analyse(act, 1 / math.sqrt(3), 1.0, bias)
    assert field.chi_1 == pytest.approx(rate, rel=1e-9) and field.regime == "ordered"
    assert field.post_rms == pytest.approx(math.sqrt((q_star - bias) * 3), rel=1e-9)


def test_biased_fixed_point_of_tanh_solves_the_length_map():
    bias = 1 / 192
    act = theory.activation("tanh")
    q_star = theory.fixed_point(act, 1 / math.sqrt(3), 1.0, bias)
    assert theory.length_map(act, 1 / math.sqrt(3), q_star, bias) == pytest.approx(q_star,
                                                                                  rel=1e-9)
    assert bias < q_star < 1.01 * bias / (1 - 1 / 3)  # tanh(x)^2 <= x^2


def test_bias_free_analysis_unchanged():
    act = theory.activation("tanh")
    assert theory.analyse(act, 5 / 3) == theory.analyse(act, 5 / 3, 1.0, 0.0)
    assert theory.fixed_point(act, 5 / 3) == pytest.approx(1.178480, abs=5e-7)  # docs/theory.md


def test_summary_sentence_for_relu():
    stack = default_stacks.summary(RELU, 64)
    assert stack.first_layer_factor == pytest.approx(1 / 6)
    assert stack.mean_field.q_star == pytest.approx(2 / (5 * 64))
    sentence = stack.sentence()
    assert sentence.startswith("nn.Linear default, relu: ordered, the second moment shrinks "
                               "6x a layer")
    assert "chi_1 = 0.1667" in sentence and "1.29 layers" in sentence


def test_every_default_stack_is_ordered_but_leaky_relu_at_slope_5():
    regimes = {stack.case_id: stack.mean_field.regime for stack in default_stacks.summaries()}
    assert regimes.pop("leaky_relu-5") == "chaotic"  # (1 + 25) / 2 / 3 = 13/3 > 1
    assert set(regimes.values()) == {"ordered"}


def test_probe_adds_the_biases_it_was_given():
    def init(weight, bias):
        weight.copy_(torch.eye(4))
        bias.fill_(2.0)

    measured = mlp.measure("linear", init, width=4, depth=2, draws=3, biased=True,
                           dtype=torch.float64)
    # h1 = x + 2, h2 = x + 4 per unit: E over units, not exact, so compare per draw
    q = measured.q[0][:, 0, :]
    assert np.all(q[:, 2] > q[:, 1]) and np.all(q[:, 1] > 1.0)
    bias_free = mlp.measure("linear", lambda weight: weight.copy_(torch.eye(4)), width=4,
                            depth=2, draws=3, dtype=torch.float64)
    assert np.allclose(bias_free.q[0][:, 0, 0], bias_free.q[0][:, 0, 2])


def test_stack_verdict_passes_and_its_controls_are_rejected():
    measurement = default_stacks.measure(RELU, "cpu", torch.float32, seed=5)
    verdict = default_stacks.judge(RELU, measurement, z=4.44)
    assert not verdict.problems, verdict.problems
    assert verdict.record["chi_1_measured"] == pytest.approx(1 / 6, rel=0.05)


def test_stack_verdict_fails_at_a_wrong_gain():
    # the x1.05 control's measurements judged as the nominal ones: a 5% gain error
    measurement = default_stacks.measure(TANH, "cpu", torch.float32, seed=5)
    scaled = type(measurement)(**dict(measurement.__dict__, q=measurement.q[[1, 0, 2]]))
    verdict = default_stacks.judge(TANH, scaled, z=4.44)
    assert any("layer 1" in problem for problem in verdict.problems)


def test_gains_tool_prints_the_module_default_rows(capsys):
    assert gains.main(["--module-defaults", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {row["case_id"]: row for row in report["module_defaults"]}
    assert rows["relu"]["regime"] == "ordered"
    assert rows["leaky_relu-5"]["q_star"] == "inf"
    assert gains.main(["--module-defaults", "--width", "1000"]) == 0
    assert "to q* = 0.0004 at width 1000" in capsys.readouterr().out  # 2 / (5 * 1000)


@pytest.mark.parametrize("argv", [["--module-defaults", "--width", "1"], ["relu", "--width", "8"],
                                  ["--module-defaults", "--width", "x"]])
def test_gains_tool_bad_width_is_one_line_and_exit_2(argv, capsys):
    try:
        code = gains.main(argv)
    except SystemExit as exiting:  # argparse's usage errors exit; the tool's own return
        code = exiting.code
    captured = capsys.readouterr()
    assert code == 2
    assert len(captured.err.strip().splitlines()) == 1 and "width" in captured.err
