"""MoCo with a memory variant on its queue (the XBN paper, appendix B and figure 2).

A query encoder (``build_model``, L2 head) and a momentum key encoder see two augmented views
of each image; the keys are enqueued, the queries compared with the queue through PML's
``NTXentLoss`` in the memory's ``enqueue_mask`` mode. ``xbm`` is plain MoCo (PML's
``CrossBatchMemory`` as in PML's MoCo example); ``xbn`` adapts the queue before each enqueue.
k-NN accuracy of the test set against the training set (query encoder, eval mode) is logged
every epoch. The run itself (seeding, resume, failure, the record) is bench/engine/lifecycle.py.

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

from bench.config import RunConfig
from bench.engine.data import embed
from bench.engine.lifecycle import Task, check_finite
from bench.engine.moco.data import MocoData
from bench.engine.moco.model import build_encoders, build_queue, momentum_update
from bench.engine.registry import build_optimizer
from bench.measure.evaluate import knn_accuracy
from bench.store import MOCO_COLUMNS
from common import UserError

# memory-only variants with global statistics: no minibatch loss (no_xbm, xbm_star) and no
# per-class statistics (every query/key pair is its own class here)
MOCO_VARIANTS = ("xbm", "xbn", "axbn", "delayed_xbn", "centre_xbn", "scaled_xbn")
KNN_K, KNN_T = 200, 0.1  # the MoCo k-NN monitor (PML's example: knn_k 200, knn_t 0.1)


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
    query, key, queue, opt, data: MocoData, cfg: RunConfig, device, step0: int, bar, *, epoch: int
) -> tuple[dict[str, float], int]:
    losses, images, step = [], 0, step0
    start = time.perf_counter()
    query.train()
    key.train()  # batch statistics for the keys too, as in MoCo
    for xq, xk, _, _ in data.batches(epoch):
        loss = moco_step(query, key, queue, xq.to(device), xk.to(device))
        step += 1
        check_finite(loss, step)
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


class MocoTask(Task):
    columns = MOCO_COLUMNS
    first_phase = "init"
    parts = ("query", "key", "opt", "sched", "memory")  # what the checkpoint holds

    def build(self, data_dir: str, device: torch.device) -> None:
        cfg, self.device = self.cfg, device
        _check(cfg)
        self.data = MocoData(cfg, data_dir)
        query, key, self.stem = build_encoders(cfg, self.data.in_chans)
        self.query, self.key = query.to(device), key.to(device)
        self.memory = build_queue(cfg, self.data.n).to(device)
        self.opt = build_optimizer(cfg, self.query.parameters())
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, max(cfg.epochs, 1))

    def start(self) -> tuple[dict[str, Any], list[str]]:
        """Row 0: the untrained query encoder's k-NN accuracy."""
        return {"loss": float("nan"), "knn_acc": self.evaluate()["knn_acc"], "lr": self.cfg.lr}, []

    def steps_per_epoch(self) -> int:
        return self.data.n // self.cfg.batch_size

    def train_epoch(self, epoch: int, step: int, bar) -> tuple[dict[str, Any], int]:
        self.memory.set_epoch(epoch)
        lr = self.opt.param_groups[0]["lr"]
        row, step = train_epoch(
            self.query,
            self.key,
            self.memory,
            self.opt,
            self.data,
            self.cfg,
            self.device,
            step,
            bar,
            epoch=epoch,
        )
        self.sched.step()
        return {**row, "lr": lr}, step

    def evaluate(self) -> dict[str, float]:
        return {"knn_acc": knn_monitor(self.query, self.data, self.device)}

    def summary(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return summarise(rows)

    def state_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k).state_dict() for k in self.parts}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k in self.parts:
            getattr(self, k).load_state_dict(state[k])

    def extras(self) -> dict[str, Any]:
        return {"moco": choices(self.cfg, self.data.n, self.memory.memory_size, self.stem)}
