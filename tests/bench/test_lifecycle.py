"""The run lifecycle shared by every task (bench/engine/lifecycle.py): failure, the warm-up
checkpoint, the write order, a resume with another thread count."""

from __future__ import annotations

import errno
import time

import pandas as pd
import pytest
import torch

import variants
from bench.config import make_config
from bench.engine import metric
from bench.engine.guards import ALLOW_THREAD_CHANGE
from bench.engine.metric import run
from bench.store import TIMING_COLUMNS, RunDir
from common import UserError
from tests.bench.test_moco import tiny_cfg as tiny_moco
from tests.conftest import TINY


def tiny(variant="xbn", **over):
    return make_config("fashion-mnist", variant, 3, "cpu", **{**TINY, **over})


pytestmark = pytest.mark.usefixtures("two_threads")  # tests/bench/conftest.py


def record(results, cfg):
    rd = RunDir(results, cfg)
    metrics = pd.read_csv(rd.metrics).drop(columns=list(TIMING_COLUMNS))
    result = rd.read_result()
    return metrics, {k: result[k] for k in ("status", "best", "last", "epochs_done")}


@pytest.fixture(scope="module")
def uninterrupted(tiny_data, tmp_path_factory):
    """The record of ``tiny()`` run in one call: what every interrupted run must end equal to."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        results = tmp_path_factory.mktemp("uninterrupted")
        run(tiny(), tiny_data, results, progress=False)
        return record(results, tiny())
    finally:
        torch.set_num_threads(before)


def assert_equal_records(a, b):
    pd.testing.assert_frame_equal(a[0], b[0])
    assert a[1] == b[1]


def on_call(monkeypatch, n, action, variant="xbn"):
    """Make the ``n``-th call of the memory's forward (= training step n) do ``action``."""
    cls = variants.get_variant(variant)
    original, calls = cls.forward, [0]

    def forward(self, *args, **kwargs):
        calls[0] += 1
        loss = original(self, *args, **kwargs)
        return action(loss) if calls[0] == n else loss

    monkeypatch.setattr(cls, "forward", forward)


def interrupt(loss):
    raise KeyboardInterrupt  # as a kill would, nothing of the lifecycle runs after it


@pytest.mark.parametrize("task", ["metric", "moco"])
def test_nan_at_step_2_fails_with_its_step_no_checkpoint_and_wall_counted_once(
    task, tiny_data, tmp_path, monkeypatch
):
    cfg = tiny() if task == "metric" else tiny_moco("xbn")
    on_call(monkeypatch, 2, lambda loss: loss * float("nan"))
    t = time.perf_counter()
    result = run(cfg, tiny_data, tmp_path, progress=False)
    measured = time.perf_counter() - t
    rd = RunDir(tmp_path, cfg)
    assert result["status"] == "failed" and result["failed_step"] == 2
    assert result["epochs_done"] == 0 and "nan" in result["error"]
    assert not rd.checkpoint.exists()
    assert abs(result["wall_s"] - measured) <= 0.1 * measured, (result["wall_s"], measured)
    # epoch 1 never ended: the rows before training only (the metric task evaluates the network
    # as loaded, epoch -1, and after the warm-up, epoch 0; MoCo's row 0 is its untrained encoder)
    before = [-1, 0] if task == "metric" else [0]
    assert pd.read_csv(rd.metrics)["epoch"].tolist() == before
    assert run(cfg, tiny_data, tmp_path, progress=False) == result  # not retried


def test_a_kill_in_epoch_1_resumes_from_the_warmup_checkpoint(
    tiny_data, tmp_path, monkeypatch, uninterrupted
):
    cfg = tiny()
    with monkeypatch.context() as m:
        on_call(m, 1, interrupt)
        with pytest.raises(KeyboardInterrupt):
            run(cfg, tiny_data, tmp_path, progress=False)
    rd = RunDir(tmp_path, cfg)
    ckpt = rd.load_checkpoint()
    assert ckpt["epoch"] == 0 and [r["phase"] for r in ckpt["rows"]] == ["init", "warmup"]
    assert rd.read_result()["status"] == "running" and rd.read_result()["epochs_done"] == 0
    monkeypatch.setattr(metric, "warmup", lambda *a, **k: pytest.fail("the warm-up ran again"))
    assert run(cfg, tiny_data, tmp_path, progress=False)["status"] == "done"
    assert_equal_records(record(tmp_path, cfg), uninterrupted)


def test_writes_go_checkpoint_metrics_result_and_the_last_epoch_saves_no_checkpoint(
    tiny_data, tmp_path, monkeypatch, uninterrupted
):
    events = []
    real = {k: getattr(RunDir, k) for k in ("save_checkpoint", "write_metrics", "write_result")}

    def spy(name, describe):
        def method(self, arg):
            events.append(describe(arg))
            real[name](self, arg)

        monkeypatch.setattr(RunDir, name, method)

    spy("save_checkpoint", lambda state: ("checkpoint", state["epoch"]))
    spy("write_metrics", lambda rows: ("metrics", rows[-1]["epoch"]))
    spy("write_result", lambda result: ("result", result["status"], result["epochs_done"]))
    cfg = tiny()  # 2 main epochs
    run(cfg, tiny_data, tmp_path, progress=False)
    assert events == [
        ("checkpoint", 0),  # the warm-up, row 0
        ("metrics", 0),
        ("result", "running", 0),
        ("checkpoint", 1),
        ("metrics", 1),
        ("result", "running", 1),
        ("metrics", 2),  # the last epoch: no checkpoint, the old one deleted after the record
        ("result", "done", 2),
    ]
    assert not RunDir(tmp_path, cfg).checkpoint.exists()
    assert_equal_records(record(tmp_path, cfg), uninterrupted)


def test_a_failed_metrics_write_after_the_checkpoint_resumes_to_a_consistent_record(
    tiny_data, tmp_path, monkeypatch, uninterrupted
):
    cfg = tiny()
    real, calls = RunDir.write_metrics, []

    def full_disk_at_epoch_1(self, rows):
        calls.append(rows[-1]["epoch"])
        if rows[-1]["epoch"] == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, rows)

    with monkeypatch.context() as m:
        m.setattr(RunDir, "write_metrics", full_disk_at_epoch_1)
        with pytest.raises(OSError, match="No space"):
            run(cfg, tiny_data, tmp_path, progress=False)
    assert calls == [0, 1]
    rd = RunDir(tmp_path, cfg)
    assert rd.load_checkpoint()["epoch"] == 1  # saved before the metrics failed
    assert pd.read_csv(rd.metrics)["epoch"].tolist() == [-1, 0]
    assert rd.read_result()["epochs_done"] == 0  # result and metrics still agree
    assert run(cfg, tiny_data, tmp_path, progress=False)["status"] == "done"
    assert_equal_records(record(tmp_path, cfg), uninterrupted)


def test_resume_with_another_thread_count_is_refused_unless_forced(
    tiny_data, tmp_path, monkeypatch
):
    cfg = tiny()
    monkeypatch.delenv(ALLOW_THREAD_CHANGE, raising=False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert run(cfg, tiny_data, tmp_path, progress=False, stop_after=1)["status"] == "running"
        assert RunDir(tmp_path, cfg).load_checkpoint()["torch_threads"] == 2
        torch.set_num_threads(1)
        with pytest.raises(UserError) as err:
            run(cfg, tiny_data, tmp_path, progress=False)
        message = err.value.message
        assert "written with 2 torch threads and this process has 1" in message
        assert f"{ALLOW_THREAD_CHANGE}=1" in message
        assert RunDir(tmp_path, cfg).read_result()["epochs_done"] == 1  # nothing was touched
        monkeypatch.setenv(ALLOW_THREAD_CHANGE, "1")
        result = run(cfg, tiny_data, tmp_path, progress=False)
    finally:
        torch.set_num_threads(before)
    assert result["status"] == "done" and result["epochs_done"] == 2
    note = "torch threads changed on resume: 2 up to epoch 1, 1 from epoch 2"
    assert [d for d in result["deviations"] if d.startswith("torch threads")] == [
        f"{note} ({ALLOW_THREAD_CHANGE}=1)"
    ]
