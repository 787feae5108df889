"""Model selection: the network as loaded (epoch -1, phase "init") and after the
warm-up (epoch 0) are candidates for "best", as XBN paper footnote 6 implies; "last" is unchanged;
the init evaluation does not shift what training draws."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
import torch

from bench.config import make_config
from bench.engine import metric
from bench.engine.metric import MetricTask, best_row, preserved_rng, run
from bench.store import BEST_PRE_MAIN, RunDir
from tests.conftest import TINY

pytestmark = pytest.mark.usefixtures("two_threads")  # tests/bench/conftest.py


def _cfg(**extra):
    return make_config("fashion-mnist", "xbn", 0, "cpu", **{**TINY, **extra})


def _patched_evaluate(monkeypatch, init_recall=None, draw=False):
    """MetricTask.evaluate whose first call (the init evaluation) may report ``init_recall`` and
    may draw from every RNG, as an evaluation through a DataLoader would."""
    real = MetricTask.evaluate
    calls = []

    def fake(self):
        row = real(self)
        if not calls:
            if init_recall is not None:
                row["recall@1"] = init_recall
            if draw:
                random.random(), np.random.rand(), torch.rand(3)
        calls.append(row["recall@1"])
        return row

    monkeypatch.setattr(MetricTask, "evaluate", fake)
    return calls


def test_the_untrained_network_wins_best_when_it_scores_highest(monkeypatch, tiny_data, tmp_path):
    _patched_evaluate(monkeypatch, init_recall=99.0)
    cfg = _cfg()
    result = run(cfg, tiny_data, tmp_path, progress=False)
    assert result["status"] == "done"
    assert result["best"]["epoch"] == -1 and result["best"]["phase"] == "init"
    assert result["best"]["recall@1"] == 99.0
    assert result[BEST_PRE_MAIN] is True
    assert result["last"]["epoch"] == cfg.epochs and result["last"]["phase"] == "main"
    metrics = pd.read_csv(RunDir(tmp_path, cfg).metrics)
    assert list(metrics["epoch"]) == [-1, 0, 1, 2]
    assert list(metrics["phase"]) == ["init", "warmup", "main", "main"]
    assert metrics["loss"].isna().iloc[0] and metrics["recall@1"].iloc[0] == 99.0


def test_init_evaluation_leaves_training_bit_for_bit_unchanged(monkeypatch, tiny_data, tmp_path):
    """The same run with an init evaluation that draws from every RNG and one that draws
    nothing: identical warm-up and main-phase rows. No warm-up epoch (which would re-seed) and a
    prefilled memory (whose sample comes from numpy's generator right after), so that any draw
    the init evaluation leaves behind would show."""
    cfg = _cfg(warmup_epochs=0, memory_init="prefill")
    plain = run(cfg, tiny_data, tmp_path / "a", progress=False)
    _patched_evaluate(monkeypatch, draw=True)
    drawn = run(cfg, tiny_data, tmp_path / "b", progress=False)
    assert plain["status"] == drawn["status"] == "done"
    timing = ["seconds", "images_per_s"]
    a = pd.read_csv(RunDir(tmp_path / "a", cfg).metrics).drop(columns=timing)
    b = pd.read_csv(RunDir(tmp_path / "b", cfg).metrics).drop(columns=timing)
    pd.testing.assert_frame_equal(a[a.epoch >= 0], b[b.epoch >= 0], check_exact=True)


def test_best_chooses_among_every_evaluated_epoch():
    nan = float("nan")
    rows = [
        {"epoch": -1, "phase": "init", "recall@1": 40.0},
        {"epoch": 0, "phase": "warmup", "recall@1": 50.0},
        {"epoch": 1, "phase": "main", "recall@1": 50.0},
        {"epoch": 2, "phase": "main", "recall@1": nan},
    ]
    assert best_row(rows)["epoch"] == 0  # the earliest among equals; NaN is no candidate
    rows[2]["recall@1"] = 50.5
    assert best_row(rows)["epoch"] == 1
    task = MetricTask.__new__(MetricTask)
    summary = task.summary(rows[:3])
    assert summary["best"]["phase"] == "main" and summary[BEST_PRE_MAIN] is False
    assert summary["last"] == {"epoch": 1, "phase": "main", "recall@1": 50.5, "recall@10": None}


def test_preserved_rng_restores_every_generator():
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    with preserved_rng():
        random.random(), np.random.rand(2), torch.rand(5)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    assert metric.preserved_rng is preserved_rng
