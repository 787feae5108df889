"""The reference file and ``xbmbench verify`` (bench/verify.py) on a tiny reference made here:
one tiny cell run once and exported; verify trains it again and finds it identical, and a copy
with one number or one env field altered fails naming the cell, the epoch or the field."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench import verify as V
from bench.config import make_config
from bench.engine.metric import run
from cli import main
from commands import verify as commands
from common import UserError
from tests.conftest import TINY


@pytest.fixture(scope="module")
def made(tiny_data, tmp_path_factory):
    """(results folder with one done tiny cell, its reference, the config), at 2 threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    results = tmp_path_factory.mktemp("reference_run")
    cfg = make_config("fashion-mnist", "xbm", 0, "cpu", **TINY)
    assert run(cfg, tiny_data, results, progress=False)["status"] == "done"
    torch.set_num_threads(before)
    return results, V.export(results, study="tiny"), cfg


def _write(tmp_path: Path, ref: dict) -> Path:
    return V.write_reference(ref, tmp_path / "ref.json")


def _verify(tiny_data, ref_file, *args):
    return CliRunner().invoke(
        main, ["verify", "--reference", str(ref_file), "--data", tiny_data, *args]
    )


def test_export_holds_every_row_the_config_and_the_env(made):
    results, ref, cfg = made
    (cell,) = ref["cells"]
    rows = V.read_rows(results / "runs" / cfg.run_id)
    assert cell["run_id"] == cfg.run_id and cell["config"]["run_id"] == cfg.run_id
    assert cell["epochs"] == list(rows["epoch"]) == [-1, 0, 1, 2]  # init, warm-up, 2 epochs
    assert cell["recall@1"] == list(rows["recall@1"])
    assert cell["loss"][0] is None and cell["loss"][1:] == list(rows["loss"][1:])  # no init loss
    env = json.loads((results / "runs" / cfg.run_id / "env.json").read_text())
    assert V.cell_env(ref, cell) == {k: v for k, v in env.items() if k != "started_at"}
    assert V.load_reference(_write(results, ref)) == ref  # the file round-trips exactly


def test_verify_passes_on_its_own_reference_and_fails_on_an_altered_number(
    made, tiny_data, tmp_path
):
    _, ref, cfg = made
    ok = _verify(tiny_data, _write(tmp_path, ref), "--cells", "5")
    assert ok.exit_code == 0, ok.output
    assert f"xbm seed 0 ({cfg.run_id}): identical" in ok.output
    assert "1 of 1 cells identical" in ok.output
    bad = copy.deepcopy(ref)
    bad["cells"][0]["recall@1"][2] += 0.01  # epoch 1
    out = _verify(tiny_data, _write(tmp_path, bad))
    assert out.exit_code == 1
    assert f"xbm seed 0 ({cfg.run_id}): differs: recall@1 at epoch(s) 1 " in out.output
    assert "max |diff| 0.01" in out.output


def test_columns_the_reference_lacks_are_not_compared(made):
    """Runs now record MAP@R and R-Precision; a reference exported before them (the shipped
    one) names only Recall@1, Recall@10 and loss, and a run still checks identical."""
    results, ref, cfg = made
    rows = V.read_rows(results / "runs" / cfg.run_id)
    assert {"map@r", "r_precision"} <= set(rows.columns)
    (cell,) = copy.deepcopy(ref)["cells"]
    assert "map@r" not in cell and "r_precision" not in cell
    got = V.check(cell, V.cell_env(ref, cell), results / "runs" / cfg.run_id)
    assert got["identical"] and got["status"] == "identical"


def test_an_altered_deciding_env_field_fails_and_is_named(made):
    results, ref, _ = made
    bad = copy.deepcopy(ref)
    bad["env"]["cpu_capability"] = "AVX512_FAKE"
    bad["env"]["torch"] = "0.0.1"
    (check,) = V.check_results(bad, results)
    assert check["identical"] and V.failed([check]) == [check]  # same numbers, other settings
    line = V.check_line(check)
    assert "cpu_capability: 'AVX512_FAKE' (reference) vs" in line and "torch: '0.0.1'" in line


def test_an_informational_field_is_shown_but_does_not_fail(made):
    results, ref, _ = made
    other = copy.deepcopy(ref)
    other["env"]["host"] = "elsewhere"
    other["env"]["cpu_model"] = "Some Other CPU"
    (check,) = V.check_results(other, results)
    assert V.failed([check]) == []
    line = V.check_line(check)
    assert "also differs (informational): " in line and "host 'elsewhere' -> " in line
    assert "Some Other CPU" in line and "decides the numbers" not in line


def test_differences_name_each_metric_its_epochs_and_the_largest_gap(made):
    results, ref, _ = made
    bad = copy.deepcopy(ref)
    cell = bad["cells"][0]
    cell["loss"][3] += 1e-6
    cell["recall@10"][0] -= 0.5
    cell["recall@10"][3] += 0.25
    (check,) = V.check_results(bad, results)
    got = {d["metric"]: (d["epochs"], d["max_abs"]) for d in check["differences"]}
    assert got["recall@10"][0] == [-1, 2] and math.isclose(got["recall@10"][1], 0.5)
    assert got["loss"][0] == [2] and math.isclose(got["loss"][1], 1e-6, rel_tol=1e-6)
    assert "recall@1" not in got and check["status"] == "differs"


def test_a_missing_run_is_not_run(made, tmp_path):
    _, ref, _ = made
    (check,) = V.check_results(ref, tmp_path)
    assert check["status"] == "not run" and V.failed([check])


def test_select_spreads_over_variants_and_seeds():
    ref = {"cells": [{"variant": v, "seed": s, "run_id": f"{v}{s}"}
                     for v in "abcdefghij" for s in (2, 0, 1)]}  # fmt: skip
    got = [(c["variant"], c["seed"]) for c in V.select(ref, 3)]
    assert got == [("a", 0), ("d", 1), ("g", 2)]
    assert len({v for v, _ in got}) == 3 and len({s for _, s in got}) == 3
    assert len(V.select(ref, 99)) == 30


def test_export_of_a_study_needs_every_cell_done(made, tmp_path):
    results, _, cfg = made
    with pytest.raises(UserError, match="not done.*0123456789abcdef"):
        V.export(results, [cfg.run_id, "0123456789abcdef"], "demo")
    with pytest.raises(UserError, match="no done metric-learning run"):
        V.export(tmp_path)


def test_a_missing_or_malformed_reference_is_a_user_error(tmp_path, tiny_data):
    out = _verify(tiny_data, tmp_path / "none.json")
    assert out.exit_code == 2 and "none.json" in out.output and "--export" in out.output
    (tmp_path / "bad.json").write_text('{"format": 1, "cells": [{"run_id": "x"}]}')
    with pytest.raises(UserError, match="malformed reference file .*bad.json.*config"):
        V.load_reference(tmp_path / "bad.json")


def test_export_command_writes_the_reference(made, tmp_path):
    results, ref, _ = made
    out = CliRunner().invoke(main, ["verify", "--export", str(results), "--out",
                                    str(tmp_path / "r.json")])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert V.load_reference(tmp_path / "r.json")["cells"] == ref["cells"]


def test_the_demo_report_says_whether_it_equals_the_reference(made, tmp_path, monkeypatch):
    """`xbmbench reproduce` of the demo: REPORT.md gets the comparison, before its sections."""
    results, ref, _ = made
    demo = {**copy.deepcopy(ref), "study": "demo"}
    demo["cells"].append({**copy.deepcopy(ref["cells"][0]), "run_id": "f" * 16, "seed": 9})
    refs = tmp_path / "refs"
    refs.mkdir()
    V.write_reference(demo, refs / "demo.json")
    V.write_reference({**demo, "study": "demo-fashion"}, refs / "demo-fashion.json")
    monkeypatch.setattr(V, "REFERENCE_DIR", refs)  # bench/reference/<study>.json
    report = tmp_path / "REPORT.md"
    report.write_text("# xbmbench report\n\nintro\n\n## Claims\n\ntext\n")
    commands.compare_with_reference(("demo", "demo-moco"), str(results), str(report))
    text = report.read_text()
    line = "**Reference check:** 1 of 2 cells identical to"
    assert text.index("intro") < text.index(line) < text.index("## Claims")
    assert text.count("Reference check") == 1 and "([details](reference_check.md))" in text
    details = (tmp_path / "reference_check.md").read_text()  # the cell by cell comparison
    assert "**1 identical**" in details and "0 differ, 1 not run" in details
    assert f"xbm seed 9 ({'f' * 16}): not run" in details
    before = report.read_text()
    commands.compare_with_reference(("paper-table1",), str(results), str(report))
    assert report.read_text() == before  # a study without a reference: no comparison
    (refs / "demo-fashion.json").write_text((refs / "demo.json").read_text())  # study "demo"
    commands.compare_with_reference(("demo-fashion",), str(results), str(report))
    assert report.read_text() == before  # a reference made for another study is not used


def test_the_reference_ships_as_package_data():
    import configparser
    from fnmatch import fnmatch

    cfg = configparser.ConfigParser()
    cfg.read(Path(V.__file__).parents[1] / "setup.cfg")
    globs = cfg["options.package_data"]["bench"].split()
    assert any(fnmatch("reference/demo.json", g) for g in globs)
    assert Path(V.__file__).parent / "reference" / "demo.json" == V.DEMO_REFERENCE
