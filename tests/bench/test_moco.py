"""MoCo with a memory queue (bench/engine/moco): the momentum update, the enqueue_mask mode against
PML and by hand, XBN's adaptation to the enqueued keys, records, resume, and the reports."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning.losses import CrossBatchMemory, NTXentLoss
from torch import nn

import variants
from bench.config import make_config
from bench.engine.metric import run
from bench.engine.moco.data import tensor_views
from bench.engine.moco.model import momentum_update, split_batchnorm
from bench.engine.moco.task import MOCO_VARIANTS, moco_step
from bench.profiles import MOCO_PROFILES
from bench.store import RunDir
from bench.studies import cells
from common import UserError

# a cpu MoCo run shrunk to seconds on the tiny dataset (240 train / 80 test images)
TINY_MOCO = dict(
    train_per_class=None,
    epochs=2,
    batch_size=16,
    m_per_class=16,
    embedding_size=16,
    memory_ratio=0.25,
    moco_bn_splits=4,
)


def tiny_cfg(variant="xbm", seed=0, **over):
    return make_config(
        "fashion-mnist", variant, seed, "cpu", **{**MOCO_PROFILES["cpu"], **TINY_MOCO, **over}
    )


def test_momentum_update_by_hand():
    query, key = nn.Linear(2, 1), nn.Linear(2, 1)
    with torch.no_grad():
        query.weight.copy_(torch.tensor([[1.0, 2.0]]))
        query.bias.fill_(3.0)
        key.weight.copy_(torch.tensor([[-1.0, 0.0]]))
        key.bias.fill_(1.0)
    momentum_update(key, query, 0.9)
    # 0.9 * key + 0.1 * query, entry by entry
    assert key.weight[0].tolist() == pytest.approx([-0.9 + 0.1, 0.0 + 0.2])
    assert key.bias.item() == pytest.approx(0.9 + 0.3)
    assert query.weight.tolist() == [[1.0, 2.0]]  # the query encoder is untouched
    momentum_update(key, query, 0.0)  # m = 0: the key encoder becomes the query encoder
    assert torch.equal(key.weight, query.weight) and torch.equal(key.bias, query.bias)


def test_momentum_update_leaves_buffers_alone():
    query, key = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    query.running_mean.fill_(5.0)
    momentum_update(key, query, 0.5)
    assert key.running_mean.tolist() == [0.0, 0.0, 0.0]


def _steps(n_steps=4, n=6, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n_steps):
        q = F.normalize(torch.randn(n, dim, generator=g), dim=1).requires_grad_()
        k = F.normalize(torch.randn(n, dim, generator=g), dim=1)
        yield q, k


def _call(memory, q, k):
    """One MoCo step's call, as moco_step makes it: labels offset past the stored ones."""
    n = len(q)
    offset = memory.label_memory.max().item() + 1
    labels = torch.arange(n).repeat(2) + offset
    return memory(torch.cat([q, k]), labels, enqueue_mask=torch.arange(2 * n) >= n)


def test_xbm_enqueue_mask_equals_pml():
    ours = variants.build("xbm", NTXentLoss(temperature=0.1), 8, 15)  # wraps after 2.5 steps
    pml = CrossBatchMemory(NTXentLoss(temperature=0.1), 8, memory_size=15)
    for q, k in _steps(5):
        q2 = q.detach().clone().requires_grad_()
        a, b = _call(ours, q, k), _call(pml, q2, k)
        a.backward()
        b.backward()
        assert a.item() == pytest.approx(b.item(), rel=1e-6, abs=1e-6)
        assert torch.allclose(q.grad, q2.grad, atol=1e-6)
    assert torch.allclose(ours.embedding_memory, pml.embedding_memory)


def test_enqueue_mask_loss_is_infonce_by_hand():
    """Step 2: each query against the queue (step 1's keys, then its own step's keys); its own
    key is the positive, every other entry a negative: -log(e^{s+/t} / sum_j e^{s_j/t})."""
    mem = variants.build("xbm", NTXentLoss(temperature=0.1), 8, 32)
    (q1, k1), (q2, k2) = _steps(2)
    _call(mem, q1, k1)
    loss = _call(mem, q2, k2).item()
    queue = torch.cat([k1, k2]).tolist()
    total = 0.0
    for i, qi in enumerate(q2.tolist()):
        sims = [sum(a * b for a, b in zip(qi, e)) / 0.1 for e in queue]
        total += -(sims[len(k1) + i] - math.log(sum(math.exp(s) for s in sims)))
    assert loss == pytest.approx(total / len(q2), rel=1e-5)


def test_xbn_adapts_queue_to_enqueued_keys():
    mem = variants.build("xbn", NTXentLoss(temperature=0.1), 8, 32)
    (q1, k1), (q2, k2) = _steps(2)
    _call(mem, q1, k1)
    assert torch.allclose(mem.embedding_memory[:6], k1)  # nothing to adapt in an empty queue
    _call(mem, q2 * 3 + 1, k2)  # the queries must play no part
    old = mem.embedding_memory[:6]
    # paper eq. 6 with population statistics of the stored keys and of the enqueued keys
    mu1, sd1 = k1.mean(0), k1.std(0, correction=0)
    mu2, sd2 = k2.mean(0), k2.std(0, correction=0)
    assert torch.allclose(old, (k1 - mu1) / sd1 * sd2 + mu2, atol=1e-5)
    assert torch.allclose(old.mean(0), mu2, atol=1e-5)
    assert torch.allclose(old.std(0, correction=0), sd2, atol=1e-5)
    assert torch.allclose(mem.embedding_memory[6:12], k2)


@pytest.mark.parametrize("variant", MOCO_VARIANTS)
def test_moco_step_runs_for_every_moco_variant(variant):
    torch.manual_seed(0)
    query = split_batchnorm(
        nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 8)),
        2,
    )
    key = nn.Sequential(*[m for m in query])  # shares modules: fine for one step
    queue = variants.build(variant, NTXentLoss(temperature=0.1), 8, 16)
    x = torch.randn(4, 1, 8, 8)
    for _ in range(3):
        loss = moco_step(query, key, queue, x, x + 0.1)
        assert torch.isfinite(loss)
    assert queue.label_memory[:12].tolist() == list(range(1, 13))  # offset past the stored labels


def test_split_batchnorm_matches_per_subbatch_batchnorm():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3)
    split = split_batchnorm(nn.Sequential(nn.BatchNorm2d(3)), 2)[0]
    x = torch.randn(8, 3, 2, 2)
    out = split(x)
    for part in (0, 1):  # interleaved sub-batches: rows 0, 2, 4, 6 and 1, 3, 5, 7
        sub = x[part::2]
        ref = (sub - sub.mean((0, 2, 3), keepdim=True)) / (
            sub.var((0, 2, 3), unbiased=False, keepdim=True) + bn.eps
        ).sqrt()
        assert torch.allclose(out[part::2], ref, atol=1e-5)
    # running statistics: the average of the sub-batches' updates (momentum 0.1)
    halves = [x[p::2].var((0, 2, 3)) for p in (0, 1)]
    assert torch.allclose(split.running_mean, 0.1 * x.mean((0, 2, 3)), atol=1e-6)
    assert torch.allclose(split.running_var, 0.9 + 0.1 * (halves[0] + halves[1]) / 2, atol=1e-6)
    bn.load_state_dict(split.state_dict())
    assert torch.allclose(split.eval()(x), bn.eval()(x))  # eval: plain BatchNorm


def test_tensor_views_shape_range_and_seed():
    x = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    torch.manual_seed(1)
    a = tensor_views(x)
    torch.manual_seed(1)
    b = tensor_views(x)
    assert a.shape == (5, 1, 28, 28) and a.dtype == torch.float32
    assert torch.equal(a, b) and a.min() >= -1 and a.max() <= 1
    assert not torch.equal(a, tensor_views(x))


def _record(results, cfg):
    rd = RunDir(results, cfg)
    metrics = pd.read_csv(rd.metrics).drop(columns=["seconds", "images_per_s"])
    result = rd.read_result()
    return metrics, {k: result[k] for k in ("status", "best", "last", "epochs_done", "moco")}


@pytest.mark.parametrize("variant", ["xbm", "xbn"])
def test_cpu_run_writes_complete_records(tiny_data, tmp_path, variant):
    cfg = tiny_cfg(variant)
    result = run(cfg, tiny_data, str(tmp_path), progress=False)
    rd = RunDir(tmp_path, cfg)
    assert result["status"] == "done" and result["epochs_done"] == 2
    assert set(result["best"]) == {"epoch", "knn_acc"} and result["last"]["epoch"] == 2
    assert result["moco"]["memory_size"] == 60 and result["moco"]["knn_k"] == 200
    config = json.loads(rd.config.read_text())
    assert config["task"] == "moco" and config["moco_momentum"] == 0.99
    assert json.loads(rd.env.read_text())["torch"] == torch.__version__
    metrics = pd.read_csv(rd.metrics)
    assert list(metrics.columns) == [
        "epoch",
        "phase",
        "loss",
        "knn_acc",
        "lr",
        "seconds",
        "images_per_s",
    ]
    assert metrics["phase"].tolist() == ["init", "main", "main"]
    assert metrics["knn_acc"].between(0, 100).all() and metrics["loss"][1:].notna().all()
    assert result["last"]["knn_acc"] == pytest.approx(metrics["knn_acc"].iloc[-1])
    assert not rd.checkpoint.exists()


@pytest.mark.slow
def test_resume_after_one_epoch_equals_uninterrupted(tiny_data, tmp_path):
    cfg = tiny_cfg("xbn", epochs=3)
    run(cfg, tiny_data, str(tmp_path / "a"), progress=False)
    first = run(cfg, tiny_data, str(tmp_path / "b"), progress=False, stop_after=1)
    assert first["status"] == "running" and RunDir(tmp_path / "b", cfg).checkpoint.exists()
    run(cfg, tiny_data, str(tmp_path / "b"), progress=False)
    (ma, ra), (mb, rb) = _record(tmp_path / "a", cfg), _record(tmp_path / "b", cfg)
    pd.testing.assert_frame_equal(ma, mb)
    assert ra == rb


@pytest.mark.slow
def test_pil_path_runs(tiny_data, tmp_path):
    """The paper profile's torchvision path (here on the tiny grey images, as RGB)."""
    cfg = tiny_cfg("xbm", augment="moco", epochs=1)
    assert run(cfg, tiny_data, str(tmp_path), progress=False)["status"] == "done"


@pytest.mark.parametrize(
    "over, match",
    [
        (dict(variant="pc_xbn"), "xbm, xbn"),
        (dict(moco_bn_splits=3), "multiple of moco_bn_splits"),
        (dict(augment="flip"), "augment must be one of moco, moco_tensor for task 'moco'"),
    ],
)
def test_errors_state_the_contract(tiny_data, tmp_path, over, match):
    with pytest.raises(UserError, match=match):  # by make_config or, at the latest, by run
        run(tiny_cfg(over.pop("variant", "xbm"), **over), tiny_data, str(tmp_path), progress=False)


def test_studies():
    paper = cells("paper-moco")
    assert {(c.dataset, c.variant) for c in paper} == {
        (d, v) for d in ("cifar10", "cifar100") for v in ("xbm", "xbn")
    }
    c = paper[0]
    assert (c.task, c.batch_size, c.moco_momentum, c.epochs, c.pretrained) == (
        "moco",
        128,
        0.99,
        200,
        False,
    )
    assert round(c.memory_ratio * 50000) == 4096 and c.deviations == ()
    demo = cells("demo-moco")
    assert len(demo) == 6 and {c.profile for c in demo} == {"cpu"}
    assert all(c.task == "metric" for c in cells("demo"))


@pytest.mark.slow
def test_report_keeps_moco_apart(tiny_data, tmp_path):
    from reports.build import build_report, compute
    from reports.tables import EARLY_EPOCH

    for variant in ("xbm", "xbn"):
        for seed in (0, 1):
            run(
                tiny_cfg(variant, seed, epochs=EARLY_EPOCH["cpu"]),
                tiny_data,
                str(tmp_path),
                progress=False,
            )
    report = compute(tmp_path)
    assert report.tables == {} and report.gain.empty  # no metric-learning table
    assert report.moco[["variant", "n"]].values.tolist() == [["xbm", 2], ["xbn", 2]]
    row = report.claims.iloc[0]
    assert row["claim"].startswith("XBN speeds up MoCo") and row["n_a"] == row["n_b"] == 2
    epochs = report.store.epochs
    early = epochs[(epochs["epoch"] == EARLY_EPOCH["cpu"]) & (epochs["phase"] == "main")]
    by_variant = early.merge(report.store.runs[["run_id", "variant"]]).groupby("variant")
    means = by_variant["knn_acc"].mean()
    assert row["diff"] == pytest.approx(means["xbn"] - means["xbm"])
    text = build_report(tmp_path).read_text()
    assert "figures/moco_knn.png" in text and (tmp_path / "report/tables/moco.md").exists()


def test_task_moco_on_the_command_line_gets_the_moco_protocol():
    from bench.config import make_config

    cfg = make_config("fashion-mnist", "xbn", 0, "cpu", task="moco")
    assert cfg.task == "moco" and cfg.augment == "moco_tensor" and cfg.moco_momentum == 0.99
    assert make_config("cifar10", "xbm", 0, "paper", task="moco").batch_size == 128
