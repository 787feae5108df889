"""One bad cell never stops reproduce: failures recorded, busy cells skipped, the report built."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

import bench.engine.metric as trainer
import bench.launch as launch
from bench import studies
from bench.config import RunConfig
from bench.store import RunDir
from bench.studies import Block, Study, cells
from cli import main
from commands.reproduce import plan, reproduce
from common import UserError
from tests.conftest import TINY


@pytest.fixture
def three(monkeypatch):
    """Three tiny cells: xbm, xbn, centre_xbn on the tiny Fashion-MNIST, seed 0."""
    block = Block(
        ("fashion-mnist",), ("xbm", "xbn", "centre_xbn"), ({**TINY},), profile="cpu", seeds=(0,)
    )
    monkeypatch.setitem(studies.STUDIES, "three", Study("three", "a test", (block,)))
    assert [c.variant for c in cells("three")] == ["xbm", "xbn", "centre_xbn"]
    return "three"


def interrupted_record(rd: RunDir, checkpoint: bytes | dict) -> None:
    """What a run killed after its first epoch leaves: config, env, running, a checkpoint."""
    rd.start({"note": "written by the test"})
    rd.write_result({"status": "running"})
    if isinstance(checkpoint, bytes):
        rd.checkpoint.write_bytes(checkpoint)
    else:
        torch.save(checkpoint, rd.checkpoint)


def test_a_failing_cell_is_recorded_and_the_grid_goes_on(
    three, tiny_data, tmp_path, capsys, monkeypatch
):
    """First cell: a checkpoint of garbage (set aside, starts over, done). Middle cell: a
    checkpoint that loads but cannot be restored (from another code version): failed, with its
    error. Last cell: fresh. The report is written and lists the failure; a rerun with
    retry_failed runs the middle cell only."""
    first, middle, last = (RunDir(tmp_path, c) for c in cells(three))
    interrupted_record(first, b"\x00garbage\xff" * 100)
    interrupted_record(middle, {"epoch": 1, "note": "no model state in here"})
    with pytest.warns(UserWarning, match="corrupt checkpoint"):
        summary = reproduce(three, str(tmp_path), tiny_data, progress=False)
    assert summary["ran"] == 3 and summary["done"] == 2 and summary["failed"] == 1
    assert first.status() == "done" and last.status() == "done"
    (aside,) = first.path.glob("checkpoint.pt.corrupt-*")
    assert aside.read_bytes() == b"\x00garbage\xff" * 100
    # the network as loaded (-1), the warm-up (0) and TINY's 2 epochs
    assert list(pd.read_csv(first.metrics)["epoch"]) == [-1, 0, 1, 2]

    record = middle.read_result()
    assert record["status"] == "failed" and record["error"] == "KeyError: 'model'"
    assert record["error_type"] == "KeyError"
    assert record["traceback"].startswith("Traceback") and "load_state_dict" in record["traceback"]
    assert [f["run_id"] for f in summary["failures"]] == [middle.cfg.run_id]

    report = (tmp_path / "report" / "REPORT.md").read_text()
    assert middle.cfg.run_id in report and "KeyError" in report
    out = capsys.readouterr().out
    assert "1 cell(s) failed: xbn/fashion-mnist/seed 0 (KeyError)" in out

    again = reproduce(three, str(tmp_path), tiny_data, progress=False, report=False)
    assert again["ran"] == 0 and again["failed"] == 1
    assert "1 failed before and not retried" in capsys.readouterr().out

    stamps = {rd.cfg.run_id: rd.result.stat().st_mtime_ns for rd in (first, last)}
    real_run, calls = trainer.run, []

    def counted(cfg, *a, **k):
        calls.append(cfg.run_id)
        return real_run(cfg, *a, **k)

    monkeypatch.setattr(trainer, "run", counted)
    fixed = reproduce(
        three, str(tmp_path), tiny_data, progress=False, report=False, retry_failed=True
    )
    assert calls == [middle.cfg.run_id]
    assert fixed["ran"] == 1 and fixed["done"] == 3 and fixed["failed"] == 0
    assert middle.status() == "done" and "traceback" not in middle.read_result()
    assert {rd.cfg.run_id: rd.result.stat().st_mtime_ns for rd in (first, last)} == stamps


@pytest.mark.slow
def test_a_failing_cell_in_the_worker_pool(three, tiny_data, tmp_path):
    """--jobs 2: the failure happens in a spawned worker; every result comes back, the report
    is built."""
    middle = RunDir(tmp_path, cells(three)[1])
    interrupted_record(middle, {"epoch": 1})
    summary = reproduce(three, str(tmp_path), tiny_data, jobs=2, progress=False)
    assert summary["done"] == 2 and summary["failed"] == 1
    assert [f["run_id"] for f in summary["failures"]] == [middle.cfg.run_id]
    assert middle.read_result()["error"] == "KeyError: 'model'"
    assert (tmp_path / "report" / "REPORT.md").exists()


def done_without_training(cfg, data_dir, results, **k):
    """The engine's claim around a run (as bench/engine/metric.py will hold it), no training."""
    with RunDir(results, cfg).claim():
        return {"run_id": cfg.run_id, "status": "done"}


def test_a_cell_claimed_elsewhere_is_skipped_not_failed(three, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(trainer, "run", done_without_training)
    held = RunDir(tmp_path, cells(three)[1])
    with held.claim():  # another launcher is training the middle cell
        summary = reproduce(three, str(tmp_path), "data", progress=False, report=False)
    assert summary["done"] == 2 and summary["busy"] == 1 and summary["failed"] == 0
    out = capsys.readouterr().out
    assert "xbn/fashion-mnist/seed 0: skipped:" in out and "being trained by pid" in out
    assert "1 skipped: being trained by another process" in out


def test_a_failed_cell_claimed_elsewhere_is_not_reset(three, tmp_path):
    held = RunDir(tmp_path, cells(three)[1])
    held.start({})
    held.write_result({"status": "failed", "error": "boom"})
    with held.claim():
        todo, counts = plan(three, str(tmp_path), retry_failed=True)
        assert held.config.exists() and held.status() == "failed"  # left to its owner
    assert counts == {"missing": 2, "busy": 1}
    assert [c.run_id for c in todo] == [c.run_id for c in cells(three) if c != held.cfg]
    todo, counts = plan(three, str(tmp_path), retry_failed=True)  # free: reset, then run
    assert counts["failed"] == 1 and len(todo) == 3
    assert not held.result.exists() and not held.config.exists() and held.path.exists()


# ----- run_cell: every outcome a result ------------------------------------------------------
def test_run_cell_records_an_unexpected_error(three, tmp_path, monkeypatch):
    cfg = cells(three)[0]
    rd = RunDir(tmp_path, cfg)
    rd.start({})

    def bug(cfg, *a, **k):
        raise RuntimeError("a bug in epoch 2")

    monkeypatch.setattr(trainer, "run", bug)
    result = launch.run_cell(cfg.to_dict(), "data", str(tmp_path))
    assert result["status"] == "failed" and result["error"] == "RuntimeError: a bug in epoch 2"
    on_disk = rd.read_result()
    assert on_disk["status"] == "failed" and on_disk["error"] == "RuntimeError: a bug in epoch 2"
    assert 'raise RuntimeError("a bug in epoch 2")' in on_disk["traceback"]
    assert not rd.lock.exists()


def test_run_cell_without_a_config_records_nothing(three, tmp_path, monkeypatch):
    cfg = cells(three)[0]
    monkeypatch.setattr(trainer, "run", lambda *a, **k: 1 / 0)
    result = launch.run_cell(cfg.to_dict(), "data", str(tmp_path))
    assert result["status"] == "failed" and result["error"].startswith("ZeroDivisionError")
    assert not RunDir(tmp_path, cfg).result.exists()  # nothing to report; it runs next time


def test_run_cell_never_overwrites_a_done_record(three, tmp_path, monkeypatch):
    cfg = cells(three)[0]
    rd = RunDir(tmp_path, cfg)
    rd.start({})
    rd.write_result({"status": "done", "best": {"epoch": 1}})
    monkeypatch.setattr(trainer, "run", lambda *a, **k: 1 / 0)
    assert launch.run_cell(cfg.to_dict(), "data", str(tmp_path))["status"] == "failed"
    assert rd.read_result()["status"] == "done"


def test_run_cell_user_errors_leave_the_record_resumable(three, tmp_path, monkeypatch):
    cfg = cells(three)[0]
    rd = RunDir(tmp_path, cfg)
    rd.start({})
    rd.write_result({"status": "running"})

    def full(cfg, *a, **k):
        raise UserError("no space left on /results while writing checkpoint.pt")

    monkeypatch.setattr(trainer, "run", full)
    result = launch.run_cell(cfg.to_dict(), "data", str(tmp_path))
    assert result == {
        "run_id": cfg.run_id,
        "status": "error",
        "error": "no space left on /results while writing checkpoint.pt",
    }
    assert rd.status() == "running"  # resumes once space is freed, no --retry-failed needed


def test_a_dead_worker_is_reported_and_the_pool_goes_on(three, tmp_path, monkeypatch):
    """A worker killed mid-cell (its future raises BrokenProcessPool): the other results still
    come back. Threads stand in for processes so that the stand-in run_cell is seen."""
    dying = cells(three)[1].run_id

    def run_cell(cfg_dict, data_dir, results, threads, device):
        cfg = RunConfig.from_dict(cfg_dict)
        if cfg.run_id == dying:
            raise BrokenProcessPool("A process in the process pool was terminated abruptly")
        return {"run_id": cfg.run_id, "status": "done"}

    monkeypatch.setattr(launch, "run_cell", run_cell)
    monkeypatch.setattr(launch, "ProcessPoolExecutor", lambda n, **kw: ThreadPoolExecutor(n))
    seen = {}
    launch.launch_local(
        cells(three), "data", str(tmp_path), lambda c, r: seen.update({c.run_id: r}), jobs=2
    )
    assert {k: v["status"] for k, v in seen.items()} == {
        c.run_id: "error" if c.run_id == dying else "done" for c in cells(three)
    }
    assert "BrokenProcessPool" in seen[dying]["error"]


# ----- filters that match nothing ----------------------------------------------------------
def test_a_filter_matching_no_cell_is_a_user_error(three, tmp_path):
    """--dataset and --variant filter a study's cells; --seeds names the seeds to run
    (seeds beyond a study's own are generated), so only the first two can match nothing."""
    with pytest.raises(UserError) as info:
        plan(three, str(tmp_path), datasets=["cifar10"])
    assert info.value.message.startswith("no cell of study three matches --dataset cifar10")
    with pytest.raises(UserError, match="matches --dataset cifar10"):
        reproduce(three, str(tmp_path), "data", datasets=["cifar10"], seeds=[0], report=False)
    assert not (tmp_path / "runs").exists()
    todo, _ = plan(three, str(tmp_path), seeds=[99])  # a seed the study lacks: generated
    assert [(c.variant, c.seed) for c in todo] == [("xbm", 99), ("xbn", 99), ("centre_xbn", 99)]
    # a filter that matches in one of two studies is fine
    todo, _ = plan(("demo", "demo-moco"), str(tmp_path), variants=["pc_xbn"])
    assert {c.variant for c in todo} == {"pc_xbn"} and len(todo) == 3


def test_reproduce_command_with_a_filter_matching_nothing_exits_2(tmp_path):
    r = CliRunner().invoke(
        main, ["reproduce", "--study", "demo", "--dataset", "sop", "--results", str(tmp_path)]
    )
    assert r.exit_code == 2 and "no cell of study demo matches --dataset sop" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "runs").exists()


def test_the_failed_record_is_json_the_report_reads(three, tmp_path, monkeypatch):
    """The failed record keeps the report's contract: an object with status and error."""
    from reports.load import load_store

    cfg = cells(three)[0]
    RunDir(tmp_path, cfg).start({})
    monkeypatch.setattr(trainer, "run", lambda *a, **k: [][1])
    launch.run_cell(cfg.to_dict(), "data", str(tmp_path))
    runs = load_store(tmp_path).runs
    assert list(runs["status"]) == ["failed"]
    assert runs["error"].iloc[0] == "IndexError: list index out of range"
    assert json.loads(RunDir(tmp_path, cfg).result.read_text())["error_type"] == "IndexError"


def test_a_worker_pool_takes_the_longest_cells_first():
    """The Fashion-MNIST demo and MoCo's for a pool: the oracle's cells (6 epochs, each
    re-embedding the memory) first, then the study's order (metric cells of 6 epochs before
    MoCo's 4), each group as planned."""
    from bench.studies import cells as study_cells
    from commands.reproduce import longest_first

    planned = [c for s in ("demo-fashion", "demo-moco") for c in study_cells(s)]
    ordered = longest_first(planned)
    assert sorted(c.run_id for c in ordered) == sorted(c.run_id for c in planned)
    oracle = [c for c in planned if c.variant == "oracle_xbm"]
    assert len(oracle) == 3 and ordered[:3] == oracle
    rest = [c for c in planned if c.variant != "oracle_xbm"]
    metric = [c for c in rest if c.task == "metric"]
    moco = [c for c in rest if c.task == "moco"]
    assert ordered[3:] == metric + moco
