"""`xbmbench export`: one row per run (or per run and epoch) with every config field, the
summaries, the memory error, wall time, status and provenance; read back with pandas and
compared with the record's own files, read here with json and csv."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from bench.studies import cells
from commands.report import export
from reports.export import variant_label

from .conftest import make_run


@pytest.fixture
def grid(results):
    ids = [make_run(results, dataset="sop", variant="xbn", seed=s, best_r1=80.0 + s)
           for s in range(2)]  # fmt: skip
    ids.append(make_run(results, dataset="cifar100", variant="pc_xbn", seed=0, best_r1=71.0,
                        options={"lambda_mu": 0.3}, superclass=True))  # fmt: skip
    demo = cells("demo")[0]  # a demo cell's own config: the export names its study
    ids.append(make_run(results, demo, best_r1=33.0))
    probe = results / "runs" / ids[0] / "memory_error.csv"
    probe.write_text(
        "epoch,point,err_l2_mean,raw_l2_mean,gain\n1,1,0.5,0.6,1.2\n2,1,0.25,0.5,2.0\n"
    )
    (results / "runs" / ids[1] / "result.json").write_text("{")  # damaged, still listed
    return results, ids, demo


def test_one_row_per_run_with_the_records_values(grid):
    results, ids, demo = grid
    res = CliRunner().invoke(export, ["--results", str(results)])
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(results / "export" / "runs.csv")
    assert sorted(frame["run_id"]) == sorted(ids)
    by_id = frame.set_index("run_id")
    for rid in (ids[0], ids[2], ids[3]):
        folder = results / "runs" / rid
        config = json.loads((folder / "config.json").read_text())
        result = json.loads((folder / "result.json").read_text())
        row = by_id.loc[rid]
        for key in ("dataset", "variant", "seed", "profile", "batch_size", "lr", "epochs"):
            assert row[key] == config[key]
        assert row["best.recall@1"] == pytest.approx(result["best"]["recall@1"])
        assert row["last.recall@10"] == pytest.approx(result["last"]["recall@10"])
        assert row["status"] == result["status"] and row["env.host"] == "test"
    assert by_id.loc[ids[0], "memory.err_l2_mean"] == 0.25  # the last probe point
    assert by_id.loc[ids[0], "memory.gain"] == 2.0
    assert pd.isna(by_id.loc[ids[2], "memory.gain"])
    assert by_id.loc[ids[2], "variant_label"] == "pc_xbn[lambda_mu=0.3]"
    assert by_id.loc[ids[2], "opt.lambda_mu"] == 0.3
    assert by_id.loc[ids[1], "status"] == "damaged" and "result.json" in by_id.loc[ids[1], "error"]
    assert "demo" in by_id.loc[ids[3], "study_cells"].split(";")
    assert pd.isna(by_id.loc[ids[2], "study_cells"])  # lambda 0.3: no study sweeps it
    table1 = {c.run_id for c in cells("paper-table1")}
    assert (ids[0] in table1) == ("paper-table1" in by_id.loc[ids[0], "study_cells"].split(";"))


def test_epoch_level_holds_every_metrics_row(grid):
    results, ids, _ = grid
    res = CliRunner().invoke(export, ["--results", str(results), "--level", "epochs"])
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(results / "export" / "epochs.csv")
    with (results / "runs" / ids[0] / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    mine = frame[frame["run_id"] == ids[0]].reset_index(drop=True)
    assert len(mine) == len(rows)
    assert [float(r["recall@1"] or "nan") for r in rows][1:] == list(mine["epoch.recall@1"])[1:]


def test_parquet_round_trip(grid):
    pytest.importorskip("pyarrow")
    results, ids, _ = grid
    out = results / "x.parquet"
    res = CliRunner().invoke(export, ["--results", str(results), "--format", "parquet",
                                      "--out", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    back = pd.read_parquet(out)
    csv_frame = CliRunner().invoke(export, ["--results", str(results)])
    assert csv_frame.exit_code == 0
    assert sorted(back["run_id"]) == sorted(ids)
    assert list(back.columns) == list(pd.read_csv(results / "export" / "runs.csv").columns)


def test_no_records_is_a_user_error(tmp_path):
    res = CliRunner().invoke(export, ["--results", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "no run records" in res.output


def test_variant_label():
    assert variant_label("xbn", {}) == "xbn"
    assert variant_label("sc_xbn", {"b": 1, "a": 0.5}) == "sc_xbn[a=0.5,b=1]"


def test_the_pandas_lines_of_the_docs_give_the_table(grid, monkeypatch):
    """docs/report.md's pandas lines, run on an export: mean, std and count per variant, as a
    plain loop over the done rows computes them."""
    import re
    import statistics

    results, _, _ = grid
    assert CliRunner().invoke(export, ["--results", str(results)]).exit_code == 0
    page = (Path(__file__).resolve().parents[2] / "docs" / "report.md").read_text()
    code = re.search(r"## One table of every run.*?```python\n(.*?)```", page, re.S).group(1)
    *body, last = code.strip().splitlines()
    monkeypatch.chdir(results.parent)
    scope: dict = {}
    exec("\n".join(body), scope)  # noqa: S102  (the documented lines, as a reader runs them)
    got = eval(last, scope)  # noqa: S307
    runs = pd.read_csv(results / "export" / "runs.csv")
    done = runs[runs["status"] == "done"]
    for (dataset, label), group in done.groupby(["dataset", "variant_label"]):
        values = list(group["best.recall@1"])
        row = got.loc[(dataset, label)]
        assert row["count"] == len(values) and row["mean"] == pytest.approx(
            statistics.fmean(values)
        )
