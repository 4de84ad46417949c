"""data/conv_modes.toml against ConvGeometry, the single-layer model against a measured layer,
the verdict's sharpness and the report's table on real records."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
import torch

from gainkit.meanfield import conv_layer as layer_model
from gainkit.meanfield.conv import FAN_RULES, ConvGeometry
from gainkit.probe import conv_layer, mlp
from gainkit.reports import conv_modes as report
from gainkit.suite import conv_modes
from gainkit.suite.expectations import GAINS

CONV_NAMES = [case.nonlinearity for case in GAINS if case.nonlinearity.startswith("conv")]
# Other channels of each groups kind, where every formula must hold too.
OTHER_CHANNELS = {"plain": [(8, 24, 1), (24, 8, 1), (5, 5, 1)],
                  "grouped": [(12, 18, 3), (8, 16, 2), (16, 8, 4)],
                  "depthwise": [(4, 4, 4), (6, 18, 6), (3, 12, 3)]}


def test_every_conv_name_group_kind_and_fan_has_one_row():
    assert len(CONV_NAMES) == 6
    assert sorted(conv_modes.KERNELS) == sorted(CONV_NAMES)
    seen = [(layer, row.groups, row.fan) for row in conv_modes.ROWS for layer in row.layers]
    assert len(seen) == len(set(seen))
    assert set(seen) == set(itertools.product(CONV_NAMES, conv_modes.GROUPS, FAN_RULES))
    for row in conv_modes.ROWS:
        assert row.inits == conv_modes.FAN_INITS[row.fan]
        assert row.preserves in conv_modes.PRESERVES
        assert all(conv_modes.transposed(layer) == conv_modes.transposed(row.layers[0])
                   for layer in row.layers)


def test_groups_kinds_are_what_they_say():
    kinds = conv_modes.GROUPS
    assert kinds["plain"].groups == 1
    assert 1 < kinds["grouped"].groups < kinds["grouped"].in_channels
    assert kinds["depthwise"].groups == kinds["depthwise"].in_channels


@pytest.mark.parametrize("row", conv_modes.ROWS,
                         ids=[f"{row.layers[0]}-{row.groups}-{row.fan}" for row in conv_modes.ROWS])
def test_row_formulas_and_preserves_are_conv_geometry(row):
    kind = conv_modes.GROUPS[row.groups]
    for layer in row.layers:
        geometry = conv_modes.geometry_for(layer, kind, conv_modes.KERNELS[layer])
        factors = tuple(conv_modes.evaluate(row.formula(name), geometry)
                        for name in conv_modes.PASSES)
        assert factors == pytest.approx(geometry.pass_factors(row.fan), rel=1e-12)
        assert row.preserves == conv_modes.preserves_text(geometry.preserves(row.fan))
        # a deviation exactly where torch's fan is not the count its name promises
        assert bool(row.deviation) == geometry.fan_deviates(row.fan), layer
        assert bool(row.references) == bool(row.deviation)
        assert all(re.fullmatch(r"pytorch/pytorch#\d+", ref) for ref in row.references)
    for c_in, c_out, groups in OTHER_CHANNELS[row.groups]:
        geometry = ConvGeometry(c_in, c_out, (3, 2), groups, conv_modes.transposed(row.layers[0]))
        factors = tuple(conv_modes.evaluate(row.formula(name), geometry)
                        for name in conv_modes.PASSES)
        assert factors == pytest.approx(geometry.pass_factors(row.fan), rel=1e-12)


def test_torch_fans_and_module_layout_match_the_geometry():
    for case in conv_modes.CASES:
        weight = conv_layer.module(case.geometry).weight
        assert tuple(weight.shape) == case.geometry.weight_shape
        fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(weight)
        assert (case.geometry.torch_fan("fan_in"), case.geometry.torch_fan("fan_out")) == \
            (fan_in, fan_out)
        assert case.geometry.torch_fan("fan_avg") == (fan_in + fan_out) / 2


def test_true_fans_and_deviations():
    conv = ConvGeometry(8, 16, (3,), groups=4)
    assert conv.true_fan("fan_out") == 4 * 3 and conv.torch_fan("fan_out") == 16 * 3
    assert conv.fan_deviates("fan_out") and not conv.fan_deviates("fan_in")
    transposed = ConvGeometry(8, 16, (3,), transposed=True)
    assert transposed.fan_deviates("fan_in") and transposed.fan_deviates("fan_out")
    assert not transposed.fan_deviates("fan_avg")  # the sum of the fans is right
    with pytest.raises(ValueError, match="mode"):
        conv.true_fan("fan_sum")


def test_formulas_take_only_the_channel_names():
    geometry = ConvGeometry(4, 8, (3,))
    assert conv_modes.evaluate("C_out/(g*C_in)", geometry) == 2.0
    with pytest.raises(ValueError, match="__import__"):
        conv_modes.evaluate("__import__('os')", geometry)


def test_model_rejects_positions_where_shifts_coincide():
    geometry = ConvGeometry(4, 8, (3, 2))
    assert layer_model.minimal_positions(geometry) == (5, 3)
    with pytest.raises(ValueError, match="positions"):
        layer_model.relative_variance(geometry, "forward", 1, (4, 3), 3.0)
    with pytest.raises(ValueError, match="pass"):
        layer_model.relative_variance(geometry, "sideways", 1, (5, 3), 3.0)


@pytest.mark.parametrize("geometry, family", [
    (ConvGeometry(6, 12, (3, 2)), "normal"),
    (ConvGeometry(8, 8, (3,), groups=8), "uniform"),
    (ConvGeometry(4, 8, (5,), groups=2, transposed=True), "normal"),
])
def test_single_layer_variance_matches_measured_draws(geometry, family):
    # 1500 draws: the sample variance's own relative sd is about sqrt((kappa - 1) / 1500),
    # under 8% for these near-Gaussian factors; 25% leaves room without hiding a missing term
    # (dropping the input noise or the weight noise moves the variance by 30% or more here).
    init = mlp.torch_init(f"kaiming_{family}_fan_in", "conv1d")
    positions = layer_model.minimal_positions(geometry)
    measured = conv_layer.measure(geometry, init, 1500, 1, positions, dtype=torch.float64,
                                  seed=3)
    kurtosis = 3.0 if family == "normal" else 1.8
    for name, factors in zip(conv_modes.PASSES, (measured.forward[0], measured.backward[0])):
        ratio = factors.var() / factors.mean() ** 2
        model = layer_model.relative_variance(geometry, name, 1, positions, kurtosis)
        assert ratio / model == pytest.approx(1.0, abs=0.25), name
        wanted = geometry.pass_factors("fan_in")[conv_modes.PASSES.index(name)]
        assert factors.mean() == pytest.approx(wanted, rel=5 * math.sqrt(model / 1500))


def _case(case_id):
    return next(case for case in conv_modes.CASES if case.id == case_id)


def test_verdict_passes_torch_and_fails_a_five_percent_gain_error():
    case = _case("conv_transpose2d-plain-kaiming_normal_fan_in")
    design = conv_modes.plan(case, conv_modes.suite_z(2))
    measurement = conv_modes.measure(case, design, "cpu", torch.float32, seed=11)
    verdict = conv_modes.judge(case, design, measurement)
    assert not verdict.problems
    assert verdict.record["measured_preserves"] == "backward"
    assert verdict.record["preserves"] == "backward"
    for factor in (1.05, 0.95):
        scaled = type(measurement)(**dict(vars(measurement), forward=measurement.forward
                                          * factor ** 2, backward=measurement.backward))
        problems = conv_modes.judge(case, design, scaled).problems
        assert any(p.startswith("forward factor") for p in problems)


def test_a_torch_with_conv_fans_reads_as_deviation():
    # a transposed weight initialised as if it were a Conv's (#18182 "fixed"): the forward
    # factor becomes 1 and the data's C_in/C_out = 0.5 no longer holds
    case = _case("conv_transpose1d-plain-kaiming_normal_fan_in")
    design = conv_modes.plan(case, conv_modes.suite_z(2))
    measurement = conv_modes.measure(case, design, "cpu", torch.float32, seed=5)
    fixed = type(measurement)(**dict(vars(measurement), forward=measurement.forward * 2,
                                     backward=measurement.backward * 2))
    verdict = conv_modes.judge(case, design, fixed)
    assert verdict.record["verdict"] == "fail"
    assert verdict.record["measured_preserves"] == "forward"


def test_draws_resolve_the_controls():
    z = conv_modes.suite_z(2)
    for case in conv_modes.CASES:
        design = conv_modes.plan(case, z)
        gap = min(abs(2 * math.log(f)) for f in (1.05, 0.95))
        for name in conv_modes.PASSES:
            assert 2 * design.half_width(case, name) <= gap
        positions = layer_model.minimal_positions(case.geometry)
        assert all(p >= low for p, low in zip(design.positions, positions))


def test_report_table_from_real_records():
    z = conv_modes.suite_z(2)
    records = []
    for case_id in ("conv1d-grouped-kaiming_uniform_fan_out",
                    "conv_transpose3d-depthwise-xavier_normal"):
        case = _case(case_id)
        design = conv_modes.plan(case, z)
        verdict = conv_modes.judge(case, design,
                                   conv_modes.measure(case, design, "cpu", torch.float32, 2))
        records.append(dict(verdict.record, kind=conv_modes.RECORD_KIND, case_id=case.layer,
                            device="cpu", dtype="float32"))
    lines = report.table(records + [{"kind": "value", "case_id": "conv1d"}])
    assert lines[0].startswith("| layer | groups |")
    assert len(lines) == 2 + 2
    assert "Conv1d(32, 64, (5,), groups=4)" in lines[2] and "1/g = 0.25" in lines[2]
    assert "✅ neither" in lines[2] and "pytorch/pytorch#23854" in lines[2]
    assert "ConvTranspose3d(8, 128, (3, 2, 2), groups=8)" in lines[3]
    section = report.section([("old", []), ("2.13.0", records)])
    assert section[1].startswith("## What each fan mode preserves")
    assert any(line.startswith("- 2.13.0: 2/2 checks pass (cpu)") for line in section)
    assert report.section([("old", [])]) == []


def test_records_are_json_and_name_the_data():
    case = _case("conv3d-plain-xavier_uniform")
    design = conv_modes.plan(case, conv_modes.suite_z(2))
    record = conv_modes.judge(case, design,
                              conv_modes.measure(case, design, "cpu", torch.float32, 0)).record
    import json

    json.dumps(record)
    assert record["forward_formula"] == "2*C_in/(C_in + C_out)"
    assert record["weight_shape"] == [64, 32, 3, 2, 2]
    assert np.isfinite(record["forward_measured"])


def test_table_command_reads_results_and_rejects_bad_input(tmp_path, capsys):
    import json

    case = _case("conv1d-plain-kaiming_normal_fan_out")
    design = conv_modes.plan(case, conv_modes.suite_z(2))
    record = conv_modes.judge(case, design,
                              conv_modes.measure(case, design, "cpu", torch.float32, 4)).record
    results = tmp_path / "r.json"
    results.write_text(json.dumps({"torch": {"version": "2.13.0"}, "records": [
        dict(record, kind=conv_modes.RECORD_KIND, case_id="conv1d", device="cpu")]}))
    assert report.main([str(results)]) == 0
    assert "| conv1d: Conv1d(32, 64, (5,), groups=1) | plain |" in capsys.readouterr().out
    assert report.main([str(tmp_path / "missing.json")]) == 2
    assert "missing.json" in capsys.readouterr().err
    empty = tmp_path / "e.json"
    empty.write_text(json.dumps({"torch": {"version": "2.13.0"}, "records": []}))
    assert report.main([str(empty)]) == 2
