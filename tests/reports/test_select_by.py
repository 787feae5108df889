"""``select_by``: which metric picks a run's "best" epoch in the report layer (Recall@1, as the
papers and result.json do, or MAP@R from metrics.csv), against a plain loop over the records."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from click.testing import CliRunner

from reports.load import SELECT_BY, SELECTED_BY, load_store, select_epoch

from .conftest import make_run

# per seed: MAP@R of each metrics.csv row (epochs -1 to 4), peaking away from Recall@1's best
# (epoch 3)
MAP_R = {
    0: [5.0, 10.0, 20.0, 35.0, 30.0, 25.0],  # peak at epoch 2
    1: [5.0, 10.0, 40.0, 40.0, 30.0, 25.0],  # a tie at epochs 1 and 2: the earliest, 1
    2: [50.0, 10.0, 20.0, 35.0, 30.0, 25.0],  # the network as loaded (epoch -1) is the best
}
RUN = {"dataset": "sop", "variant": "xbn", "epochs": 4, "best_epoch": 3, "superclass": True}


def _write_map_r(results, run_id: str, values: list[float] | None) -> None:
    """metrics.csv's MAP@R and R-Precision set to ``values`` (R-Precision = MAP@R + 1); None:
    the columns dropped, as in a record written before them."""
    path = results / "runs" / run_id / "metrics.csv"
    frame = pd.read_csv(path)
    if values is None:
        frame = frame.drop(columns=["map@r", "r_precision"])
    else:
        frame["map@r"], frame["r_precision"] = values, [v + 1 for v in values]
    frame.to_csv(path, index=False)


@pytest.fixture
def store(results):
    """Three xbn runs on sop whose Recall@1 peaks at epoch 3 of 4 and MAP@R elsewhere, and one
    older record without MAP@R."""
    for seed, values in MAP_R.items():
        run = make_run(results, seed=seed, best_r1=80.0 + seed, phases=True, **RUN)
        _write_map_r(results, run, values)
    old = make_run(results, seed=3, best_r1=70.0, **RUN)
    _write_map_r(results, old, None)
    return load_store(results)


def plain_choice(results, run_id: str, metric: str) -> dict:
    """The best row of one run's metrics.csv by ``metric``, read with the csv module's plain
    loop: the highest value among the evaluated rows, the earliest epoch among equals."""
    import csv

    path = results / "runs" / run_id / "metrics.csv"
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    best = None
    for row in rows:
        if not row.get(metric):
            continue
        if best is None or float(row[metric]) > float(best[metric]):
            best = row  # rows are in epoch order: an equal later one never replaces it
    return best


def test_map_r_picks_its_own_epoch_and_that_epochs_numbers(store, results):
    picked = select_epoch(store.done, "best", "map@r", store.epochs).set_index("run_id")
    by_r1 = select_epoch(store.done, "best").set_index("run_id")
    for run_id, run in picked.iterrows():
        row = plain_choice(results, run_id, "map@r")
        if row is None:  # the older record: Recall@1's best epoch, said in selected_by
            assert run[SELECTED_BY] == "recall@1"
            assert run["epoch"] == by_r1.loc[run_id, "epoch"] == 3
            assert run["recall@1"] == by_r1.loc[run_id, "recall@1"] == 70.0
            assert math.isnan(run["map@r"])
            continue
        assert run[SELECTED_BY] == "map@r"
        assert int(run["epoch"]) == int(row["epoch"])
        for f in ("recall@1", "recall@10", "map@r", "r_precision", "superclass_top1"):
            mine, plain = float(run[f]), float(row[f] or "nan")  # "": not evaluated there
            assert mine == plain or math.isnan(mine) and math.isnan(plain), (run_id, f)
        assert run["phase"] == row["phase"]
    seeds = picked.set_index("seed")
    assert list(seeds.loc[[0, 1, 2], "epoch"]) == [2, 1, -1]  # not Recall@1's epoch 3
    assert seeds.loc[2, "phase"] == "init"
    assert set(by_r1["epoch"]) == {3}


def test_recall_at_1_is_the_default_and_unchanged(store):
    default = select_epoch(store.done)
    same = select_epoch(store.done, "best", "recall@1", store.epochs)
    pd.testing.assert_frame_equal(default, same)
    done = store.done
    assert list(default["epoch"]) == list(done["best_epoch"])
    assert list(default["recall@1"]) == list(done["best_recall@1"])
    assert set(default[SELECTED_BY]) == {"recall@1"}


def test_last_is_the_last_epoch_whatever_the_metric(store):
    last = select_epoch(store.done, "last", "map@r", store.epochs)
    pd.testing.assert_frame_equal(last, select_epoch(store.done, "last"))
    assert set(last["epoch"]) == {4} and set(last[SELECTED_BY]) == {""}


def test_bad_values(store):
    assert SELECT_BY == ("recall@1", "map@r")
    with pytest.raises(ValueError, match="select_by must be one of"):
        select_epoch(store.done, "best", "recall@10", store.epochs)
    with pytest.raises(ValueError, match="needs the per-epoch table"):
        select_epoch(store.done, "best", "map@r")


def test_the_commands_choices_are_the_report_layers():
    from commands.report import SELECT_BY as CHOICES

    assert CHOICES == SELECT_BY


@pytest.mark.parametrize("command", ["report", "compare", "export"])
def test_a_bad_select_by_is_exit_2(command, results):
    from commands import report as commands

    res = CliRunner().invoke(
        getattr(commands, command), ["--results", str(results), "--select-by", "recall@5"]
    )
    assert res.exit_code == 2 and "recall@5" in res.output


def test_compare_json_selects_by_map_r(store, results):
    from commands.report import compare

    def numbers(*args: str) -> list[dict]:
        res = CliRunner().invoke(
            compare, ["--results", str(results), "--format", "json", "--study", "sop", *args]
        )
        assert res.exit_code in (0, 1), res.output
        return json.loads(res.output)

    (r1,) = [r for r in numbers() if r["metric"] == "recall@1"]
    (mapr,) = [r for r in numbers("--select-by", "map@r") if r["metric"] == "recall@1"]
    assert (r1["select_by"], mapr["select_by"]) == ("recall@1", "map@r")
    # Recall@1's best: 80, 81, 82 and the older record's 70. MAP@R's epochs 2, 1 and -1 hold
    # Recall@1 77, 79 and 60 (conftest.metric_rows), the older record keeps its 70
    assert r1["n"] == mapr["n"] == 4
    assert r1["ours_mean"] == pytest.approx((80 + 81 + 82 + 70) / 4)
    assert mapr["ours_mean"] == pytest.approx((77 + 79 + 60 + 70) / 4)
    assert mapr["map@r_mean"] == pytest.approx((35 + 40 + 50) / 3) and mapr["map@r_n"] == 3


def test_export_best_columns_by_map_r(store, results):
    from commands.report import export

    res = CliRunner().invoke(export, ["--results", str(results), "--select-by", "map@r"])
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(results / "export" / "runs.csv").set_index("run_id")
    picked = select_epoch(store.done, "best", "map@r", store.epochs).set_index("run_id")
    for run_id, run in picked.iterrows():
        assert frame.loc[run_id, "best.epoch"] == run["epoch"]
        assert frame.loc[run_id, "best.selected_by"] == run[SELECTED_BY]
        if run[SELECTED_BY] == "map@r":
            assert frame.loc[run_id, "best.map@r"] == run["map@r"]
    res = CliRunner().invoke(export, ["--results", str(results)])
    assert "best.selected_by" not in pd.read_csv(results / "export" / "runs.csv").columns


def test_compare_study_standard_keeps_the_paper_rows_of_its_datasets(store, results):
    from commands.report import compare

    def rows(study: str) -> list[dict]:
        args = ["--results", str(results), "--format", "json", "--study", study]
        res = CliRunner().invoke(compare, args)
        assert res.exit_code in (0, 1), res.output
        return json.loads(res.output)

    assert rows("standard") == rows("sop") and len(rows("standard")) == 2
