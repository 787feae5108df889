"""The grouping rule (reports.load) and what it relies on in the studies."""

from __future__ import annotations

import json

import pytest

from bench.config import make_config
from bench.studies import study_cells
from reports.load import config_key, describe, differences
from reports.tables import load_reported, matches

from .conftest import make_run


def _record(cfg) -> dict:
    return {"run_id": cfg.run_id, **cfg.to_dict()}


def test_the_key_leaves_out_seed_names_and_notes_only():
    a = _record(make_config("fashion-mnist", "xbm", 0, "cpu"))
    b = _record(make_config("fashion-mnist", "xbm", 2, "cpu", deviations=("a note",)))
    assert a["run_id"] != b["run_id"] and config_key(a) == config_key(b)
    assert set(json.loads(config_key(a))) == set(a) - {"run_id", "schema", "seed", "deviations"}
    changes = [("num_workers", 2), ("epochs", 2), ("train_per_class", None), ("lr", 0.01),
               ("eval_ks", [1, 5, 10]), ("pretrained_file", "w.pt")]  # fmt: skip
    for field, value in changes:
        assert config_key({**a, field: value}) != config_key(a), field
    assert config_key({**a, "batch_size": 40.0}) == config_key(a)  # 40 and 40.0: one value


def test_differences_name_the_fields_outside_the_label_with_the_runs_values():
    a = _record(make_config("fashion-mnist", "xbm", 0, "cpu"))
    b = _record(make_config("fashion-mnist", "xbm", 0, "cpu", epochs=2, lr=0.01, batch_size=20))
    diff = differences(config_key(b), config_key(a))
    assert diff == {"epochs": 2.0, "lr": 0.01}  # batch_size has its own column
    assert describe(diff) == "epochs=2, lr=0.01"
    assert describe({"eval_ks": [1.0, 5.0], "pretrained_file": None}) == (
        "eval_ks=1,5, pretrained_file=None"
    )


def test_without_cells_every_config_under_one_label_says_what_sets_it_apart(results):
    from reports.load import label_runs, load_store

    make_run(results, dataset="fashion-mnist", variant="xbm", seed=0, best_r1=1, profile="cpu")
    make_run(results, dataset="fashion-mnist", variant="xbm", seed=0, best_r1=1, profile="cpu",
             epochs=2)  # fmt: skip
    make_run(results, dataset="fashion-mnist", variant="xbn", seed=0, best_r1=1, profile="cpu")
    labels = sorted(label_runs(load_store(results).done, None)["label"])
    assert labels == ["xbm (epochs=2)", "xbm (epochs=5)", "xbn"]
    cells = study_cells(("demo-fashion",))
    labels = sorted(label_runs(load_store(results).done, cells)["label"])
    assert labels == ["xbm", "xbm (epochs=2)", "xbn"]


@pytest.fixture(scope="module")
def every_cell():
    cells = study_cells()
    for c in cells:
        c["variant_options"] = json.dumps(c["variant_options"], sort_keys=True)
        c["status"] = "done"
    return cells


def test_each_reported_number_is_targeted_by_exactly_one_study_config(every_cell):
    """What makes 'the runs of the cell that targets a reported number' one group."""
    for rep in load_reported().to_dict("records"):
        keys = {config_key(c) for c in every_cell if matches(rep, c)}
        assert len(keys) == 1, (rep["key"], rep["dataset"], rep["variant"], len(keys))
