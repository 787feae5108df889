"""Reading the run store: tidy frames, best vs last, malformed records."""

from __future__ import annotations

import json

import pytest

from reports.load import load_store, select_epoch

from .conftest import make_run


def test_one_row_per_run_and_long_epochs(results):
    a = make_run(results, dataset="sop", variant="xbn", seed=0, best_r1=80.0, last_r1=78.5,
                 epochs=4, best_epoch=3, superclass=True)  # fmt: skip
    make_run(results, dataset="sop", variant="xbn", seed=1, best_r1=1, status="failed")
    store = load_store(results)
    assert len(store.runs) == 2 and len(store.done) == 1
    row = store.done.iloc[0]
    assert row["run_id"] == a
    assert (row["best_epoch"], row["best_recall@1"], row["best_recall@10"]) == (3, 80.0, 90.0)
    assert (row["last_epoch"], row["last_recall@1"]) == (4, 78.5)
    assert row["best_superclass_top2"] == 50 + 20 + 3  # superclass top-k of the best epoch
    assert row["last_superclass_top2"] == 50 + 20 + 4
    assert json.loads(row["variant_options"]) == {}
    assert set(store.epochs["run_id"]) == set(store.runs["run_id"])
    assert len(store.epochs) == (1 + 4) + (1 + 1)  # warm-up row + epochs, for both runs
    assert {"run_id", "epoch", "drift_mean", "recall@1"} <= set(store.epochs.columns)


def test_select_epoch(results):
    make_run(results, dataset="sop", variant="xbn", seed=0, best_r1=80.0, last_r1=78.5)
    done = load_store(results).done
    assert select_epoch(done, "best")["recall@1"].iloc[0] == 80.0
    assert select_epoch(done, "last")["recall@1"].iloc[0] == 78.5
    with pytest.raises(ValueError, match="epoch must be"):
        select_epoch(done, "median")


def test_retrieval_columns_read_and_older_records_without_them(results):
    """metrics.csv and result.json of runs since MAP@R and R-Precision carry them; a record
    written before (no such columns, no such summary fields) is still a done run, with NaN."""
    import math

    import pandas as pd

    new = make_run(results, dataset="sop", variant="xbn", seed=0, best_r1=80.0, epochs=2)
    old = make_run(results, dataset="sop", variant="xbn", seed=1, best_r1=70.0, epochs=2)
    folder = results / "runs" / new
    metrics = pd.read_csv(folder / "metrics.csv")
    metrics["map@r"], metrics["r_precision"] = [1.0, 5.0, 3.0], [2.0, 6.0, 4.0]
    metrics.to_csv(folder / "metrics.csv", index=False)
    record = json.loads((folder / "result.json").read_text())
    record["best"].update({"map@r": 5.0, "r_precision": 6.0})
    record["last"].update({"map@r": None, "r_precision": None})  # NaN is written as null
    (folder / "result.json").write_text(json.dumps(record))
    folder = results / "runs" / old
    pd.read_csv(folder / "metrics.csv").drop(columns=["map@r", "r_precision"]).to_csv(
        folder / "metrics.csv", index=False
    )
    store = load_store(results)
    assert len(store.done) == 2
    runs = store.done.set_index("run_id")
    assert (runs.loc[new, "best_map@r"], runs.loc[new, "best_r_precision"]) == (5.0, 6.0)
    assert math.isnan(runs.loc[new, "last_map@r"]) and math.isnan(runs.loc[old, "best_map@r"])
    assert select_epoch(store.done, "best").set_index("run_id").loc[new, "map@r"] == 5.0
    epochs = store.epochs
    assert list(epochs[epochs.run_id == new]["map@r"]) == [1.0, 5.0, 3.0]
    assert epochs[epochs.run_id == old]["r_precision"].isna().all()


def test_missing_runs_dir_is_empty(results):
    store = load_store(results)
    assert store.runs.empty and store.epochs.empty


def test_running_without_result_json(results):
    rid = make_run(results, dataset="sop", variant="xbn", seed=0, best_r1=1, status="running")
    (results / "runs" / rid / "result.json").unlink()
    assert load_store(results).runs["status"].tolist() == ["running"]


@pytest.mark.parametrize("name, damage, needle", [
    ("result.json", lambda p: p.write_text("{not json"), "result.json"),
    ("config.json", lambda p: p.write_text(json.dumps({"run_id": "x"})), "dataset"),
    ("metrics.csv", lambda p: p.write_text("epoch,phase\n1,main\n"), "recall@1"),
    ("metrics.csv", lambda p: p.unlink(), "metrics.csv"),
    ("result.json", lambda p: p.write_text(json.dumps({"status": "done"})), "best"),
])  # fmt: skip
def test_malformed_record_names_the_file(results, name, damage, needle):
    """Listed as damaged, the file and the problem named; the other run is read as usual and
    none of the damaged run's rows are (one record never stops the report)."""
    rid = make_run(results, dataset="sop", variant="xbn", seed=0, best_r1=80.0)
    other = make_run(results, dataset="sop", variant="xbn", seed=1, best_r1=70.0)
    path = results / "runs" / rid / name
    damage(path)
    store = load_store(results)
    row = store.runs.set_index("run_id").loc[rid]
    assert row["status"] == "damaged"
    assert str(path) in row["error"] and needle in row["error"]
    assert store.done["run_id"].tolist() == [other]
    assert set(store.epochs["run_id"]) == {other}


def test_running_run_with_only_its_warmup_row(results):
    rid = make_run(results, dataset="sop", variant="xbn", seed=0, best_r1=1, status="running")
    (results / "runs" / rid / "metrics.csv").write_text("epoch,phase,loss\n0,warmup,1.5\n")
    store = load_store(results)
    assert store.runs["status"].tolist() == ["running"] and len(store.epochs) == 1


def test_the_phase_of_each_summary(results):
    """A record of today's engine names its summaries' phases; one written before the init
    evaluation takes them from metrics.csv, so a best at the warm-up is still seen as one."""
    init = make_run(results, dataset="sop", variant="xbn", seed=0, best_r1=81.0, last_r1=79.0,
                    best_epoch=-1, phases=True)  # fmt: skip
    warm = make_run(results, dataset="sop", variant="xbn", seed=1, best_r1=82.0, best_epoch=0)
    main = make_run(results, dataset="sop", variant="xbn", seed=2, best_r1=83.0, phases=True)
    runs = load_store(results).done.set_index("run_id")
    got = runs[["best_epoch", "best_phase", "best_recall@1", "best_recall@10", "last_phase"]]
    assert got.loc[init].tolist() == [-1, "init", 81.0, 91.0, "main"]
    assert got.loc[warm].tolist() == [0, "warmup", 82.0, 92.0, "main"]
    assert got.loc[main].tolist() == [2, "main", 83.0, 93.0, "main"]
    record = json.loads((results / "runs" / warm / "result.json").read_text())
    assert "phase" not in record["best"]  # the old format: the phase came from metrics.csv
    epochs = load_store(results).epochs
    assert epochs[epochs["run_id"] == init]["epoch"].tolist()[:3] == [-1, 0, 1]
    best = select_epoch(load_store(results).done, "best").set_index("run_id")
    assert best.loc[init, ["phase", "recall@1"]].tolist() == ["init", 81.0]
    last = select_epoch(load_store(results).done, "last").set_index("run_id")
    assert last.loc[init, ["phase", "recall@1"]].tolist() == ["main", 79.0]
