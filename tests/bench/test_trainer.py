"""The shared trainer: complete records for every variant, determinism, resume, failures."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

import variants
from bench.config import make_config
from bench.engine.metric import run
from bench.store import TIMING_COLUMNS, RunDir
from tests.conftest import TINY

METRIC_COLUMNS = [
    "epoch",
    "phase",
    "loss",
    "recall@1",
    "recall@10",
    "map@r",
    "r_precision",
    "drift_mean",
    "drift_max",
    "drift_epoch_mean",
    "drift_epoch_max",
    "inter_dist",
    "intra_dist",
    "superclass_top1",
    "superclass_top2",
    "superclass_top3",
    "superclass_top4",
    "superclass_top5",
    "mined_pos",
    "mined_neg",
    "lr",
    "seconds",
    "images_per_s",
]


pytestmark = pytest.mark.usefixtures("two_threads")  # tests/bench/conftest.py


@pytest.mark.parametrize("variant", variants.VARIANTS)
def test_every_variant_writes_a_complete_record(variant, tiny_data, tmp_path):
    cfg = make_config(
        "fashion-mnist",
        variant,
        0,
        "cpu",
        epochs=1,
        **{k: v for k, v in TINY.items() if k != "epochs"},
    )
    result = run(cfg, tiny_data, tmp_path, progress=False)
    rd = RunDir(tmp_path, cfg)
    assert result["status"] == "done", result
    for f in (rd.config, rd.env, rd.metrics, rd.result):
        assert f.exists(), f
    assert not rd.checkpoint.exists()  # kept only while running
    config = json.loads(rd.config.read_text())
    assert config["run_id"] == cfg.run_id and config["variant"] == variant
    env = json.loads(rd.env.read_text())
    assert env["torch"] == torch.__version__ and "pytorch_metric_learning" in env
    metrics = pd.read_csv(rd.metrics)
    assert sorted(metrics.columns) == sorted(METRIC_COLUMNS)
    assert list(metrics["phase"]) == ["init", "warmup", "main"]
    main = metrics[metrics.phase == "main"].iloc[0]
    for col in METRIC_COLUMNS[2:]:
        assert pd.notna(main[col]), col
    assert 0 <= main["recall@1"] <= main["recall@10"] <= 100
    assert 0 <= main["map@r"] <= main["r_precision"] <= 100  # each AP@R term <= its R-Precision
    assert (
        result["best"]["map@r"]
        == metrics.loc[metrics.epoch == result["best"]["epoch"]]["map@r"].item()
    )
    assert result["best"]["recall@1"] == metrics["recall@1"].max()  # every evaluated epoch
    assert result["last"]["epoch"] == 1
    if variant != "no_xbm":
        assert main["mined_neg"] > 0


def _record(results, cfg):
    rd = RunDir(results, cfg)
    metrics = pd.read_csv(rd.metrics).drop(columns=list(TIMING_COLUMNS))
    result = json.loads(rd.result.read_text())
    return metrics, {k: result[k] for k in ("status", "best", "last", "epochs_done")}


@pytest.mark.parametrize("variant", ["xbn", "axbn"])
def test_same_config_twice_is_identical_and_resume_matches(variant, tiny_data, tmp_path):
    cfg = make_config("fashion-mnist", variant, 3, "cpu", **TINY)
    run(cfg, tiny_data, tmp_path / "a", progress=False)
    run(cfg, tiny_data, tmp_path / "b", progress=False)
    ma, ra = _record(tmp_path / "a", cfg)
    mb, rb = _record(tmp_path / "b", cfg)
    pd.testing.assert_frame_equal(ma, mb)
    assert ra == rb
    # interrupted after its first main epoch, then restarted: the same final record
    first = run(cfg, tiny_data, tmp_path / "c", progress=False, stop_after=1)
    assert first["status"] == "running" and RunDir(tmp_path / "c", cfg).checkpoint.exists()
    run(cfg, tiny_data, tmp_path / "c", progress=False)
    mc, rc = _record(tmp_path / "c", cfg)
    pd.testing.assert_frame_equal(ma, mc)
    assert ra == rc


def test_different_seeds_differ(tiny_data, tmp_path):
    a = run(
        make_config("fashion-mnist", "xbm", 0, "cpu", **TINY), tiny_data, tmp_path, progress=False
    )
    b = run(
        make_config("fashion-mnist", "xbm", 1, "cpu", **TINY), tiny_data, tmp_path, progress=False
    )
    ma = pd.read_csv(
        RunDir(tmp_path, make_config("fashion-mnist", "xbm", 0, "cpu", **TINY)).metrics
    )
    mb = pd.read_csv(
        RunDir(tmp_path, make_config("fashion-mnist", "xbm", 1, "cpu", **TINY)).metrics
    )
    assert a["status"] == b["status"] == "done"
    assert not ma["loss"].equals(mb["loss"])


def test_a_done_run_is_not_run_again(tiny_data, tmp_path, monkeypatch):
    cfg = make_config("fashion-mnist", "xbm", 0, "cpu", **TINY)
    run(cfg, tiny_data, tmp_path, progress=False)
    import bench.engine.metric as trainer

    monkeypatch.setattr(trainer, "Data", lambda *a, **k: pytest.fail("trained again"))
    assert run(cfg, tiny_data, tmp_path, progress=False)["status"] == "done"


def test_config_hash_is_stable_and_sensitive():
    a = make_config("fashion-mnist", "xbn", 0, "cpu")
    assert a.run_id == make_config("fashion-mnist", "xbn", 0, "cpu").run_id
    assert a.run_id != make_config("fashion-mnist", "xbn", 1, "cpu").run_id
    assert a.run_id != make_config("fashion-mnist", "pc_xbn", 0, "cpu").run_id
    b = make_config("fashion-mnist", "pc_xbn", 0, "cpu", variant_options={"lambda_mu": 0.6})
    assert b.options == {"lambda_mu": 0.6}
    assert b.run_id != make_config("fashion-mnist", "pc_xbn", 0, "cpu").run_id


def test_sampler_constraint_is_resolved_and_recorded():
    cfg = make_config("cifar10", "xbn", 0, "paper")
    assert cfg.batch_size == 64 and cfg.m_per_class == 8
    assert cfg.batch_size % cfg.m_per_class == 0 and cfg.m_per_class * 10 >= cfg.batch_size
    assert any("m_per_class raised from 4 to 8" in d for d in cfg.deviations)
    paper = make_config("deepfashion2", "xbn", 0, "paper")
    assert paper.memory_ratio == 1.0 and paper.model == "resnet50" and paper.epochs == 50
    assert make_config("sop", "no_xbm", 0, "paper").memory_ratio == 0.0


def test_delay_follows_the_profiles_first_lr_decay():
    cpu = make_config("fashion-mnist", "delayed_xbn", 0, "cpu")
    assert cpu.options == {"delay_epochs": cpu.lr_step_epochs} and cpu.lr_step_epochs == 2
    assert any("first LR decay" in d for d in cpu.deviations)
    paper = make_config("sop", "delayed_xbn", 0, "paper")
    assert paper.options == {} and paper.lr_step_epochs == 15  # the thesis' 15, the default
    explicit = make_config("fashion-mnist", "delayed_xbn", 0, "cpu", {"delay_epochs": 4})
    assert explicit.options == {"delay_epochs": 4}
