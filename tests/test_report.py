"""gainkit report: merged verdicts across releases, deviations, bad input and the plots.

The results come from a real run of a slice of the conformance suite on the installed torch;
other releases and deviations are copies of that file with one thing changed.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gainkit.reports import judging
from gainkit.suite.expectations import GAINS, REFERENCES
from gainkit.tools import cli, report

ROOT = Path(__file__).resolve().parent.parent
STABILITY = ROOT / "conformance" / "test_stability.py"
# Every gain's value and docstring, one init check per gain, and one stability setup of tanh.
SUITE_SLICE = ["conformance/test_values.py", "conformance/test_docstring.py",
               "conformance/test_init_functions.py"] + (
    ["conformance/test_stability.py"] if STABILITY.exists() else []) + [
    "-k", "test_documented_value or test_table_row or test_selu_warning or "
          "(test_xavier_variance and normal and cpu-float32 and linear-700to300) or "
          "(stability and tanh and xavier_normal and cpu-float32 and not claim)"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_LIMIT = 200 * 1024


def run_suite_slice(folder: Path, *extra: str) -> tuple:
    path = folder / "results.json"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "--gainkit-device", "cpu", "--gainkit-json", str(path), *extra] + SUITE_SLICE
    finished = subprocess.run(command, cwd=str(ROOT), capture_output=True, text=True)
    return finished, json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def real_results(tmp_path_factory) -> dict:
    finished, results = run_suite_slice(tmp_path_factory.mktemp("suite"))
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    return results


def as_release(results: dict, version: str) -> dict:
    relabelled = copy.deepcopy(results)
    relabelled["torch"]["version"] = version
    return relabelled


def write(folder: Path, name: str, results: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(results), encoding="utf-8")
    return path


def value_record(results: dict, case_id: str) -> dict:
    return next(r for r in results["records"] if r["kind"] == "value" and r["case_id"] == case_id)


def stability_record(results: dict, case_id: str) -> dict:
    found = [r for r in results["records"] if r["kind"] == "stability" and r["case_id"] == case_id]
    if not found:
        pytest.skip("no stability records: conformance/test_stability.py is not there yet")
    return found[0]


@pytest.fixture
def matrix_dir(tmp_path, real_results) -> Path:
    """Three releases (as tox names them) that all conform."""
    folder = tmp_path / "results"
    for name, version in (("py311-torch2.13.0", real_results["torch"]["version"]),
                          ("py38-torch1.7.1", "1.7.1"), ("py310-torch2.0.1", "2.0.1")):
        write(folder, name, as_release(real_results, version))
    return folder


def run_report(capsys, *args) -> tuple:
    code = report.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def table_row(text: str, case_id: str) -> list:
    line = next(line for line in text.splitlines() if line.startswith(f"| {case_id} = "))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_real_run_conforms_and_names_every_gain(capsys, tmp_path, real_results):
    path = write(tmp_path, "py311-torch2.13.0", real_results)
    code, out, err = run_report(capsys, path)
    assert (code, err) == (0, "")
    assert "**The one release conforms.**" in out
    for case in GAINS:
        assert table_row(out, case.id)[1].startswith("✅ pass")
    for case in REFERENCES:
        assert table_row(out, case.id)


def test_merged_report_has_every_release_as_a_column_in_version_order(capsys, matrix_dir,
                                                                      real_results):
    output = matrix_dir / "report.md"
    code, out, err = run_report(capsys, matrix_dir, "--output", output)
    assert (code, out, err) == (0, "", "")
    text = output.read_text(encoding="utf-8")
    header = next(line for line in text.splitlines() if line.startswith("| gain |"))
    assert header.index("py38-torch1.7.1") < header.index("py310-torch2.0.1") < header.index(
        "py311-torch2.13.0")
    for case in GAINS + REFERENCES:
        assert len(table_row(text, case.id)) == 1 + 3
        assert f"### {case.id} (gain" in text
    selu_on_171 = table_row(text, "selu")[1]
    assert "0.75 (patched)" in selu_on_171
    tanh = table_row(text, "tanh")
    assert all("1.666666667" in cell for cell in tanh[1:])
    if any(r["kind"] == "stability" for r in real_results["records"]):
        chi_1 = stability_record(real_results, "tanh")["chi_1_measured"]
        assert all(f"χ₁ {judging.number(chi_1, 4)}" in cell for cell in tanh[1:])
        assert "Measured on 3 releases in 1 setup" in text
        assert "every release measured the same χ₁ to 6 digits" in text


def test_releases_that_drew_different_weights_are_not_called_identical(capsys, matrix_dir,
                                                                      real_results):
    other = as_release(real_results, "2.0.1")
    stability_record(other, "tanh")["chi_1_measured"] *= 1.001
    write(matrix_dir, "py310-torch2.0.1", other)
    code, out, _ = run_report(capsys, matrix_dir)
    assert code == 0
    assert "Measured on 3 releases" in out and "every release measured the same" not in out


def test_a_chi_1_of_exactly_one_is_an_infinite_depth_in_the_sentence(capsys, matrix_dir,
                                                                      real_results):
    # orthogonal weights in a linear net keep gradients exactly: chi_1 = 1, depth_10x = inf,
    # next to a release whose chi_1 is above 1 (the depths' span must sort as numbers)
    other = as_release(real_results, "2.0.1")
    stability_record(other, "tanh")["chi_1_measured"] = 1.0
    write(matrix_dir, "py310-torch2.0.1", other)
    output = matrix_dir / "report.md"
    code, _, err = run_report(capsys, matrix_dir, "--output", output)
    assert (code, err) == (0, "")
    assert "–∞ layers" in output.read_text(encoding="utf-8")


@pytest.mark.parametrize("inject, expected", [
    (lambda r: value_record(r, "tanh").update(measured=1.6), "returns 1.6 (float)"),
    (lambda r: value_record(r, "relu").update(measured_type="int"),
     "returns 1.4142135623730951 (int)"),
    (lambda r: value_record(r, "sigmoid").update(verdict="fail"), "value verdict 'fail'"),
    (lambda r: stability_record(r, "tanh").update(verdict="fail"),
     "tanh: stability verdict 'fail' ("),
], ids=["wrong-value-marked-pass", "wrong-type", "failed-verdict", "failed-stability"])
def test_one_deviating_release_makes_the_report_fail(capsys, matrix_dir, real_results, inject,
                                                     expected):
    broken = as_release(real_results, "2.0.1")
    inject(broken)
    write(matrix_dir, "py310-torch2.0.1", broken)
    code, out, err = run_report(capsys, matrix_dir)
    assert code == 1
    assert "**1 of 3 releases deviates: py310-torch2.0.1.**" in out
    deviations = out.split("## Deviations")[1].split("## Gains")[0]
    assert "### py310-torch2.0.1" in deviations and expected in deviations
    assert "py38-torch1.7.1" not in deviations
    assert err.startswith("gainkit report: py310-torch2.0.1 deviates: ")
    assert len(err.splitlines()) == 1


def test_a_release_run_with_a_wrong_gain_makes_the_report_fail(capsys, tmp_path, real_results):
    """Not an edited file: the suite itself runs with calculate_gain('tanh') 5% off."""
    finished, wrong = run_suite_slice(tmp_path, "-p", "gainkit.mutation.catalogue",
                                      "--gainkit-mutant", "gain-tanh-x1.05")
    assert finished.returncode == 1, finished.stdout[-3000:] + finished.stderr[-3000:]
    folder = tmp_path / "results"
    write(folder, "py311-torch2.13.0", real_results)
    write(folder, "py310-torch2.0.1", as_release(wrong, "2.0.1"))
    code, out, err = run_report(capsys, folder)
    assert code == 1
    assert "**1 of 2 releases deviates: py310-torch2.0.1.**" in out
    assert table_row(out, "tanh")[1].startswith("❌ deviates")
    assert table_row(out, "relu")[1].startswith("✅")
    assert err.startswith("gainkit report: py310-torch2.0.1 deviates: tanh")


def test_a_gain_missing_after_patching_is_reported_as_missing(capsys, matrix_dir, real_results):
    unpatched = as_release(real_results, "1.7.1")
    value_record(unpatched, "selu").update(measured=None, measured_type="NoneType",
                                           verdict="missing")
    # what a missing gain drags along: every test of it fails
    unpatched["outcomes"] += [
        {"nodeid": f"conformance/test_init_functions.py::test_kaiming_variance[normal-{mode}-"
                   f"selu-linear-700to300-cpu-{dtype}]", "when": "call", "outcome": "failed"}
        for mode in ("fan_in", "fan_out") for dtype in ("float32", "float64")] * 2
    write(matrix_dir, "py38-torch1.7.1", unpatched)
    code, out, err = run_report(capsys, matrix_dir)
    assert code == 1
    assert table_row(out, "selu")[1].startswith("⛔ missing")
    missing = "selu: calculate_gain('selu') does not exist in torch 1.7.1 (added in 1.8.0"
    assert err.startswith(f"gainkit report: py38-torch1.7.1 deviates: {missing}")
    assert err.rstrip().endswith("(and 8 more)")
    section = out.split("### py38-torch1.7.1 (torch 1.7.1)")[1].split("## Gains")[0]
    listed = section.strip().splitlines()
    assert listed[0].startswith(f"- {missing}")
    assert listed[1:5] == ["- selu: test failed: " + o["nodeid"] + " (call)"
                           for o in unpatched["outcomes"][-8:-4]]
    assert listed[5:] == ["- selu: … and 4 more"]


def test_a_gain_without_any_value_record_is_not_taken_as_conforming(capsys, tmp_path,
                                                                    real_results):
    partial = copy.deepcopy(real_results)
    partial["records"] = [r for r in partial["records"]
                          if not (r["kind"] == "value" and r["case_id"] == "relu")]
    code, out, _ = run_report(capsys, write(tmp_path, "partial", partial))
    assert code == 1
    assert table_row(out, "relu")[1].startswith("⚠️ not run")


def test_a_failed_test_is_a_deviation_of_the_gain_its_id_names(capsys, tmp_path, real_results):
    failing = copy.deepcopy(real_results)
    nodeid = ("conformance/test_init_functions.py::test_kaiming_variance"
              "[normal-fan_in-leaky_relu-0.2-linear-700to300-cpu-float32]")
    failing["outcomes"].append({"nodeid": nodeid, "when": "call", "outcome": "failed",
                                "duration": 0.1})
    code, out, _ = run_report(capsys, write(tmp_path, "failing", failing))
    assert code == 1
    assert table_row(out, "leaky_relu-0.2")[1].startswith("❌ deviates")
    assert table_row(out, "leaky_relu")[1].startswith("✅ pass")
    assert f"leaky_relu-0.2: test failed: {nodeid} (call)" in out


def test_an_init_record_outside_its_own_band_deviates_whatever_its_verdict(capsys, tmp_path,
                                                                           real_results):
    tampered = copy.deepcopy(real_results)
    record = next(r for r in tampered["records"] if r["kind"] == "init")
    record["ratio"] = record["band_hi"] + 0.01
    code, out, _ = run_report(capsys, write(tmp_path, "tampered", tampered))
    assert code == 1
    assert "variance ratio" in out and "outside" in out


def test_a_known_kernel_deviation_is_shown_and_does_not_count_against_the_release(
        capsys, tmp_path, real_results):
    # as the suite records a bfloat16 CPU normal_ of torch 1.8-2.11 (gains.toml's
    # [[kernel_deviation]]): kurtosis outside its band, the deviation named, verdict pass
    known = copy.deepcopy(real_results)
    record = next(r for r in known["records"] if r["kind"] == "init" and "kurtosis" in r)
    record["kurtosis"] = record["kurtosis_expected"] - 2 * record["kurtosis_half_width"]
    record["deviation"] = "kurtosis outside: known deviation (issue #166853)"
    code, out, _ = run_report(capsys, write(tmp_path, "known", known))
    assert code == 0
    assert "1 known kernel deviation" in table_row(out, record["case_id"])[1]
    assert "### Known kernel deviations in known" in out and "#166853" in out
    del record["deviation"]  # control: the same numbers without the deviation deviate
    code, out, _ = run_report(capsys, write(tmp_path, "known", known))
    assert code == 1 and "kurtosis" in out and "outside" in out


def test_unknown_record_kinds_are_shown_and_their_verdicts_count(capsys, tmp_path,
                                                                 real_results):
    extended = copy.deepcopy(real_results)
    extended["records"].append({"kind": "future-check", "case_id": "orthogonal", "score": 0.5})
    code, out, _ = run_report(capsys, write(tmp_path, "extended", extended))
    assert code == 0
    assert "## Other records" in out and "| orthogonal |" in out
    extended["records"][-1]["verdict"] = "fail"
    code, out, _ = run_report(capsys, write(tmp_path, "extended", extended))
    assert code == 1
    assert "orthogonal: future-check verdict 'fail'" in out


def test_attribute_takes_the_earliest_then_longest_gain_id():
    ids = [case.id for case in GAINS]
    assert judging.attribute("t.py::test[leaky_relu-5-cpu]", ids) == "leaky_relu-5"
    assert judging.attribute("t.py::test[float-leaky_relu]", ids) == "leaky_relu"
    assert judging.attribute("t.py::test[float-selu]", ids) == "selu"
    assert judging.attribute("t.py::test[normal-fan_in-selu-linear-700to300-cpu]", ids) == "selu"
    assert judging.attribute("t.py::test[cpu-conv3d-conv2d-32to64-k3]", ids) == "conv3d"
    assert judging.attribute("t.py::test[float32-leaky_relu-5-linear-700]", ids) == "leaky_relu-5"
    assert judging.attribute("t.py::test_plain", ids) is None
    assert judging.attribute("t.py::test[leaky]", ids) is None


def _not_results(folder: Path) -> Path:
    return write(folder, "other", {"name": "not gainkit"})


def _invalid_json(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "broken.json"
    path.write_text("{\"torch\": ", encoding="utf-8")
    return path


def _empty_dir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize("make_input, message", [
    (lambda folder: folder / "absent.json", "absent.json: no such file or directory"),
    (_empty_dir, "directory holds no *.json results"),
    (_invalid_json, "broken.json: not JSON"),
    (_not_results, "other.json: not gainkit results (no 'records' list)"),
], ids=["absent", "empty-dir", "invalid-json", "not-results"])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(capsys, tmp_path, make_input, message):
    given = make_input(tmp_path / "in")
    output, plots = tmp_path / "out" / "report.md", tmp_path / "out" / "plots"
    code, out, err = run_report(capsys, given, "--output", output, "--plots", plots)
    assert code == 2
    assert out == ""
    assert err.startswith("gainkit report: error: ") and message in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_output_that_is_a_directory_is_bad_input(capsys, tmp_path, real_results):
    code, _, err = run_report(capsys, write(tmp_path, "r", real_results), "--output", tmp_path)
    assert code == 2 and "is a directory" in err


def test_plots_without_matplotlib_is_bad_input(capsys, monkeypatch, tmp_path, real_results):
    monkeypatch.setitem(sys.modules, "gainkit.reports.plots", None)  # import raises ImportError
    code, out, err = run_report(capsys, write(tmp_path, "r", real_results), "--output",
                                tmp_path / "report.md", "--plots", tmp_path / "plots")
    assert (code, out) == (2, "")
    assert "pip install 'gainkit[report]'" in err
    assert not (tmp_path / "report.md").exists()


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exited:
        report.main([])
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith("gainkit report: error: ")


def test_markdown_needs_no_matplotlib():
    probe = ("import sys, gainkit.reports.markdown, gainkit.tools.report; "
             "sys.exit('matplotlib' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", probe]).returncode == 0


def test_report_renders_every_plot_it_links(capsys, matrix_dir, real_results):
    pytest.importorskip("matplotlib", reason="needs matplotlib (gainkit[report])")
    output = matrix_dir / "report.md"
    code = cli.main(["report", str(matrix_dir), "--output", str(output), "--plots",
                     str(matrix_dir / "plots")])
    assert code == 0
    text = output.read_text(encoding="utf-8")
    links = [line.split("](")[1].rstrip(")") for line in text.splitlines()
             if line.startswith("![")]
    assert "plots/matrix.png" in links and "plots/phase.png" in links
    for link in links:
        image = (output.parent / link).read_bytes()
        assert image.startswith(PNG_SIGNATURE)
        assert len(image) < PNG_LIMIT, link
    assert sorted(p.name for p in (matrix_dir / "plots").iterdir()) == sorted(
        Path(link).name for link in links)
    stability_record(real_results, "tanh")
    assert "plots/profile-tanh.png" in links


@pytest.mark.parametrize("releases", [3, 40])
def test_heat_map_puts_the_longer_axis_down_the_side(tmp_path, real_results, releases):
    plots = pytest.importorskip("gainkit.reports.plots",
                                reason="needs matplotlib (gainkit[report])")
    folder = tmp_path / "results"
    for minor in range(releases):
        write(folder, f"py311-torch2.{minor}.0", as_release(real_results, f"2.{minor}.0"))
    matrix = judging.build_matrix(judging.load_releases([str(folder)]))
    cells, (y_labels, _), (x_labels, _) = plots.heatmap_grid(matrix)
    release_labels, gain_labels = (y_labels, x_labels) if releases > len(matrix.rows) else (
        x_labels, y_labels)
    assert gain_labels == list(matrix.rows)
    assert len(release_labels) == releases and "py311-torch2.0.0" in release_labels[0]
    assert [len(line) for line in cells] == [len(x_labels)] * len(y_labels)
    tanh = matrix.rows.index("tanh")
    tanh_cells = [line[tanh] for line in cells] if releases > len(matrix.rows) else cells[tanh]
    assert [cell.value for cell in tanh_cells] == [pytest.approx(5 / 3)] * releases
    assert plots.matrix_heatmap(matrix, str(tmp_path / "m.png")).endswith("m.png")


def test_depth_profiles_draw_one_setup_per_release():
    def record(init, device, check="forward"):
        return {"kind": "stability", "case_id": "tanh", "depth": 2, "measured_q": [1, 1, 1],
                "init": init, "device": device, "dtype": "float32", "check": check}

    plots = pytest.importorskip("gainkit.reports.plots",
                                reason="needs matplotlib (gainkit[report])")
    records = [("a", record("kaiming_normal_fan_in", "cpu")), ("a", record("xavier_normal", "cpu")),
               ("b", record("xavier_normal", "cuda")), ("b", record("xavier_normal", "cpu")),
               ("b", record("xavier_normal", "cpu", "claim")), ("c", {"depth": 2})]
    picked = plots._representatives(records)
    assert [(name, r["init"], r["device"], r["check"]) for name, r in picked] == [
        ("a", "xavier_normal", "cpu", "forward"), ("b", "xavier_normal", "cpu", "forward")]


def test_releases_with_identical_profiles_share_one_line_and_legend_entry():
    plots = pytest.importorskip("gainkit.reports.plots",
                                reason="needs matplotlib (gainkit[report])")

    def record(q_last, grad_last=1.0):
        return {"measured_q": [1.0, 0.5, q_last], "measured_grad": [2.0, 1.5, grad_last]}

    usable = [(f"r{n}", record(0.25)) for n in range(5)] + [
        ("odd-q", record(0.26)), ("odd-grad", record(0.25, 1.1)), ("r5", record(0.25))]
    groups = plots._identical_profiles(usable, depth=2)
    assert [label for label, _ in groups] == [
        "r0, …, r5 (6 releases, identical)", "odd-q", "odd-grad"]
    assert [label for label, _ in plots._identical_profiles(usable[:2], depth=2)] == ["r0, r1"]


@pytest.mark.parametrize("option", ["--output", "--plots"])
def test_an_output_that_cannot_be_written_is_one_line_exit_2_before_anything(
        capsys, tmp_path, real_results, unwritable, monkeypatch, option):
    folder, reason = unwritable
    given = write(tmp_path / "in", "r", real_results)
    elsewhere = tmp_path / "elsewhere"
    bad = folder / ("report.md" if option == "--output" else "plots")
    other = (["--plots", elsewhere / "plots"] if option == "--output"
             else ["--output", elsewhere / "report.md"])
    monkeypatch.setattr(judging, "build_matrix", lambda *a, **k: pytest.fail("judged first"))
    code, out, err = run_report(capsys, given, option, bad, *other)
    assert (code, out) == (2, "")
    assert err == f"gainkit report: error: {option} {bad}: " + err.split(": ", 3)[-1]
    assert err.rstrip().endswith(reason) and len(err.splitlines()) == 1
    assert not elsewhere.exists()


def test_a_report_write_that_fails_midway_exits_3_and_leaves_no_half_file(
        capsys, tmp_path, real_results, monkeypatch):
    import errno
    import os

    from gainkit import outputs

    def disk_full(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(outputs.os, "fsync", disk_full)
    output = tmp_path / "out" / "report.md"
    code, out, err = run_report(capsys, write(tmp_path / "in", "r", real_results),
                                "--output", output)
    assert code == 3 and "Traceback" not in err
    assert err.startswith(f"gainkit report: error: --output {output}: writing failed: No "
                          "space left on device")
    assert not output.exists() and os.listdir(output.parent) == []


def test_a_results_file_named_twice_counts_once(capsys, tmp_path, real_results):
    path = write(tmp_path / "results", "py311-torch2.13.0", real_results)
    (tmp_path / "link.json").symlink_to(path)
    code, out, err = run_report(capsys, path.parent, path, tmp_path / "link.json")
    assert (code, err) == (0, "")
    assert "**The one release conforms.**" in out
    write(tmp_path / "results", "py38-torch1.7.1", as_release(real_results, "1.7.1"))
    code, out, _ = run_report(capsys, path.parent, path)
    assert code == 0 and "**All 2 releases conform.**" in out


def test_real_results_follow_the_published_schema(real_results):
    jsonschema = pytest.importorskip("jsonschema", reason="schema tests need jsonschema")
    from gainkit import schemas

    schema = schemas.load("results")
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(real_results, schema)
    kinds = {record["kind"] for record in real_results["records"]}
    assert {"value", "docstring", "init"} <= kinds
    # negative controls: what the schema must refuse
    broken = copy.deepcopy(real_results)
    del next(r for r in broken["records"] if r["kind"] == "init")["verdict"]
    with pytest.raises(jsonschema.ValidationError, match="'verdict' is a required property"):
        jsonschema.validate(broken, schema)
    broken = copy.deepcopy(real_results)
    broken["verdict"]["status"] = "fine"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
