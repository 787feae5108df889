"""MoCo with a memory variant on its queue (the XBN paper, appendix B and figure 2).

A query encoder (``build_model``, L2 head) and a momentum key encoder see two augmented views
of each image; the keys are enqueued, the queries compared with the queue through PML's
``NTXentLoss`` in the memory's ``enqueue_mask`` mode. ``xbm`` is plain MoCo (PML's
``CrossBatchMemory`` as in PML's MoCo example); ``xbn`` adapts the queue before each enqueue.
k-NN accuracy of the test set against the training set (query encoder, eval mode) is logged
every epoch. Same store, resume and determinism rules as ``bench.engine.metric``.

Choices (written into each result.json under ``moco``): labels never reach training; batches
are uniform shuffles (no class-balanced sampler); BatchNorm in ``moco_bn_splits`` sub-batches
with the keys shuffled across them, PML's single-GPU stand-in for MoCo's shuffle-BN; the EMA
moves parameters only (BatchNorm buffers of the key encoder follow its own batches, as in
MoCo); SGD momentum 0.9, cosine LR over the epochs stepped per epoch, no gradient clipping, as
PML's example; a ResNet's 7x7/stride-2 stem and max-pool become 3x3/stride 1 and identity for
images <= 64 px (the CIFAR ResNet of PML's example).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.config import MOCO_PROFILES, MOCO_QUEUE_RATIO, RunConfig  # noqa: F401
from bench.engine.data import embed
from bench.engine.env import environment
from bench.engine.metric import NonFinite, pick_device, seed_everything
from bench.engine.moco.data import MocoData, TwoViews, pil_transforms, tensor_views  # noqa: F401
from bench.engine.moco.model import (  # noqa: F401
    SplitBatchNorm2d,
    build_encoders,
    build_queue,
    cifar_stem,
    momentum_update,
    split_batchnorm,
)
from bench.measure.evaluate import knn_accuracy
from bench.store import RunDir
from common import UserError

# memory-only variants with global statistics: no minibatch loss (no_xbm, xbm_star) and no
# per-class statistics (every query/key pair is its own class here)
MOCO_VARIANTS = ("xbm", "xbn", "axbn", "delayed_xbn", "centre_xbn", "scaled_xbn")
KNN_K, KNN_T = 200, 0.1  # the MoCo k-NN monitor (PML's example: knn_k 200, knn_t 0.1)
QUEUE_RATIO = MOCO_QUEUE_RATIO


# ----- training --------------------------------------------------------------------------------
def moco_step(
    query: nn.Module, key: nn.Module, queue, xq: torch.Tensor, xk: torch.Tensor
) -> torch.Tensor:
    """The loss of one batch: queries against the queue, their own keys as the positives.

    Query i and key i share a label that no queue entry has (PML's MoCo example: offset by the
    largest stored label), so each key is the positive of its query only and every other entry
    a negative. The keys are enqueued (``enqueue_mask``), the queries compared with the queue.
    A normalising variant adapts the queue to the statistics of the keys being enqueued: they
    come from the same (momentum) encoder as the queue entries, one step newer, so they are the
    current distribution that the stale entries should be moved to (XBN paper, eq. 6); the
    queries come from the other encoder and would mix in its shift.
    """
    q = query(xq)
    with torch.no_grad():  # no gradient to keys; shuffled so their BN sub-batches differ
        perm = torch.randperm(len(xk), device=xk.device)
        k = key(xk[perm])[torch.argsort(perm)]
    n = len(q)
    offset = queue.label_memory.max().item() + 1
    labels = torch.arange(n, device=q.device).repeat(2) + offset
    enqueue = torch.arange(2 * n, device=q.device) >= n
    return queue(torch.cat([q, k]), labels, enqueue_mask=enqueue)


def train_epoch(
    query, key, queue, opt, data: MocoData, cfg: RunConfig, device, step0: int, bar
) -> tuple[dict[str, float], int]:
    losses, images, step = [], 0, step0
    start = time.perf_counter()
    query.train()
    key.train()  # batch statistics for the keys too, as in MoCo
    for xq, xk in data.batches():
        loss = moco_step(query, key, queue, xq.to(device), xk.to(device))
        step += 1
        if not torch.isfinite(loss):
            raise NonFinite(step, loss.item())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        momentum_update(key, query, cfg.moco_momentum)  # after every step
        losses.append(loss.item())
        images += len(xq)
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    seconds = time.perf_counter() - start
    return {"loss": float(np.mean(losses)), "images_per_s": images / seconds}, step


def knn_monitor(query: nn.Module, data: MocoData, device) -> float:
    """Weighted k-NN accuracy (k = 200, t = 0.1) of the test set against the training set."""
    train = embed(query, data.eval_train, device, data)
    test = embed(query, data.eval_test, device, data)
    k = min(KNN_K, len(train))
    return knn_accuracy(
        train, data.eval_train.labels, test, data.eval_test.labels, k=k, temperature=KNN_T
    )


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    main = [r for r in rows if r["phase"] == "main"]
    best = max(main, key=lambda r: (r["knn_acc"], -r["epoch"]))  # first epoch among equals
    pick = lambda r: {"epoch": int(r["epoch"]), "knn_acc": r["knn_acc"]}  # noqa: E731
    return {
        "best": pick(best),
        "last": pick(main[-1]),
        "selection": "best: epoch of highest test k-NN accuracy; last: final epoch",
    }


def choices(cfg: RunConfig, n_train: int, memory_size: int, stem: str) -> dict[str, Any]:
    """What a MoCo run chose beyond its config (result.json, ``moco``)."""
    return {
        "memory_size": memory_size,
        "n_train": n_train,
        "knn_k": min(KNN_K, n_train),
        "knn_temperature": KNN_T,
        "key_momentum": cfg.moco_momentum,
        "bn_splits": cfg.moco_bn_splits,
        "stem": stem,
        "loss": "NTXentLoss",
        "lr_schedule": "cosine over the epochs, stepped per epoch",
        "sampler": "uniform shuffle, full batches",
        "grad_clip": None,
        "momentum_update": "parameters only, after every optimiser step",
        "adapted_with": "statistics of the keys being enqueued",
    }


def _optimizer(cfg: RunConfig, params):
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise UserError(f"unknown optimizer {cfg.optimizer!r}; valid: sgd, adamw")


def _check(cfg: RunConfig) -> None:
    if cfg.variant not in MOCO_VARIANTS:
        raise UserError(
            f"a MoCo run needs one of the variants {', '.join(MOCO_VARIANTS)} "
            f"(xbm = plain MoCo), got {cfg.variant!r}"
        )
    if cfg.moco_bn_splits < 1 or cfg.batch_size % cfg.moco_bn_splits:
        raise UserError(
            f"batch_size must be a multiple of moco_bn_splits, got "
            f"{cfg.batch_size} and {cfg.moco_bn_splits}"
        )
    if not 0 <= cfg.moco_momentum <= 1:
        raise UserError(f"moco_momentum must lie in [0, 1], got {cfg.moco_momentum}")


def run_moco(
    cfg: RunConfig,
    data_dir: str,
    results: str,
    device: str | None = None,
    progress: bool = True,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Train and monitor one MoCo cell, or return its record if already done (as
    ``bench.engine.metric.run``, whose ``stop_after`` it shares)."""
    from tqdm import tqdm

    rd = RunDir(results, cfg)
    if rd.status() in ("done", "failed"):
        return rd.read_result()
    _check(cfg)
    dev = pick_device(device)
    t0 = time.perf_counter()
    seed_everything(cfg.seed, -100)
    data = MocoData(cfg, data_dir)
    query, key, stem = build_encoders(cfg, data.in_chans)
    query, key = query.to(dev), key.to(dev)
    queue = build_queue(cfg, data.n).to(dev)
    opt = _optimizer(cfg, query.parameters())
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(cfg.epochs, 1))
    extra = {
        "deviations": list(cfg.deviations),
        "moco": choices(cfg, data.n, queue.memory_size, stem),
    }
    ckpt = rd.load_checkpoint()
    if ckpt is None:
        rd.start(environment(str(dev)))
        rows = [
            {
                "epoch": 0,
                "phase": "init",
                "loss": float("nan"),
                "knn_acc": knn_monitor(query, data, dev),
                "lr": cfg.lr,
                "seconds": time.perf_counter() - t0,
                "images_per_s": float("nan"),
            }
        ]
        start_epoch, step, wall = 0, 0, time.perf_counter() - t0
    else:
        for name, part in (
            ("query", query),
            ("key", key),
            ("opt", opt),
            ("sched", sched),
            ("memory", queue),
        ):
            part.load_state_dict(ckpt[name])
        rows, start_epoch, step, wall = ckpt["rows"], ckpt["epoch"], ckpt["step"], ckpt["wall"]
    bar = tqdm(
        total=(data.n // cfg.batch_size) * (cfg.epochs - start_epoch),
        disable=not progress,
        desc=f"moco/{cfg.variant}/{cfg.dataset}/s{cfg.seed}",
        leave=False,
        mininterval=1.0,
    )
    for epoch in range(start_epoch, cfg.epochs):
        t_epoch = time.perf_counter()
        seed_everything(cfg.seed, epoch)
        queue.set_epoch(epoch)
        lr = opt.param_groups[0]["lr"]
        try:
            train_row, step = train_epoch(query, key, queue, opt, data, cfg, dev, step, bar)
        except NonFinite as e:
            bar.close()
            rd.write_metrics(rows)
            rd.write_result(
                {
                    "status": "failed",
                    "error": str(e),
                    "failed_step": e.step,
                    "epochs_done": epoch,
                    "wall_s": wall + time.perf_counter() - t0,
                    **extra,
                }
            )
            return rd.read_result()
        sched.step()
        row = {
            "epoch": epoch + 1,
            "phase": "main",
            "loss": train_row["loss"],
            "knn_acc": knn_monitor(query, data, dev),
            "lr": lr,
            "seconds": time.perf_counter() - t_epoch,
            "images_per_s": train_row["images_per_s"],
        }
        rows.append(row)
        wall += time.perf_counter() - t_epoch
        rd.write_metrics(rows)
        rd.save_checkpoint(
            {
                "query": query.state_dict(),
                "key": key.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "memory": queue.state_dict(),
                "rows": rows,
                "epoch": epoch + 1,
                "step": step,
                "wall": wall,
            }
        )
        rd.write_result(
            {
                "status": "running",
                "error": None,
                "failed_step": None,
                "epochs_done": epoch + 1,
                "wall_s": wall,
                **extra,
            }
        )
        stopped = stop_after is not None and epoch + 1 - start_epoch >= stop_after
        if stopped and epoch + 1 < cfg.epochs:
            bar.close()
            return rd.read_result()
    bar.close()
    rd.write_result(
        {
            "status": "done",
            "error": None,
            "failed_step": None,
            "epochs_done": cfg.epochs,
            "wall_s": wall,
            **extra,
            **summarise(rows),
        }
    )
    rd.checkpoint.unlink(missing_ok=True)  # kept only while running
    return rd.read_result()
