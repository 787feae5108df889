"""A run record written before run ids were versioned (tests/fixtures/legacy_v0) is read and
reported by today's code as the demo cell it was: the demo cell with the augmentation draws of
before (``augment_draws="global"``); today's demo cell draws keyed, another
experiment, and the legacy run keeps a row of its own beside it."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from bench.config import RunConfig
from bench.run_schema import added_fields
from bench.studies import cells as study_configs
from bench.studies import study_cells
from reports.build import build_report, compute

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_v0"
LEGACY_ID = "662bc130c5aa3a45"  # fashion-mnist / xbm / seed 0 / cpu


def _demo_cells_as_before() -> list[dict]:
    """The demo's cells as every run before schema 2 was: each field added since at its absent
    value (the global draws, no memory probe and so the probe settings' defaults)."""
    absent = {name: value for name, (_, value) in added_fields(RunConfig).items()}
    configs = (dataclasses.replace(c, **absent) for c in study_configs("demo-fashion"))
    return [{"run_id": c.run_id, **c.to_dict()} for c in configs]


def test_the_legacy_record_is_reported_as_its_demo_cell(tmp_path):
    shutil.copytree(LEGACY / "runs", tmp_path / "runs")
    cells = _demo_cells_as_before()
    for epoch, r1, r10 in (("best", 65.5, 92.0), ("last", 64.0, 91.5)):  # its result.json
        report = compute(tmp_path, epoch, with_figures=False, cells=cells)
        table = report.tables["cpu runs on fashion-mnist"].set_index("metric")
        assert table["variant"].tolist() == ["xbm", "xbm"]  # a study run: no "(... differs)"
        assert table.loc["recall@1", ["n", "ours_mean", "run_ids"]].tolist() == [1, r1, LEGACY_ID]
        assert table.loc["recall@10", "ours_mean"] == r10
        assert (table["n_init"] == 0).all() and (table["n_warmup"] == 0).all()
        assert report.store.runs[f"{epoch}_phase"].tolist() == ["main"]  # from its metrics.csv
    assert report.store.epochs["recall@1"].tolist() == [40.0, 60.0, 65.5, 64.0]
    text = build_report(tmp_path, cells=cells).read_text()
    assert (
        "1 done" in text
        and LEGACY_ID in (tmp_path / "report/tables/cpu_runs_fashion-mnist.csv").read_text()
    )


def test_the_legacy_record_is_not_pooled_with_todays_keyed_demo_cell(tmp_path):
    shutil.copytree(LEGACY / "runs", tmp_path / "runs")
    report = compute(tmp_path, "best", with_figures=False, cells=study_cells(("demo-fashion",)))
    table = report.tables["cpu runs on fashion-mnist"].set_index("metric")
    assert table.loc["recall@1", ["n", "ours_mean", "run_ids"]].tolist() == [1, 65.5, LEGACY_ID]
    assert all("augment_draws" in v for v in table["variant"])  # its own row, labelled so
