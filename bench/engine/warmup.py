"""What a metric-learning run does between building and its first main epoch: the warm-up of
the head, k-means superclasses for SC-XBN where a dataset has none, and the memory prefill."""

from __future__ import annotations

import numpy as np
import torch

from bench.config import RunConfig
from bench.engine.data import Data, embed
from bench.engine.draws import PREFILL_EPOCH, warmup_epoch
from bench.engine.lifecycle import seed_everything
from bench.engine.registry import build_loss, build_miner


def warmup(model, data: Data, cfg: RunConfig, device) -> float:
    """The head alone, SGD, the plain minibatch loss (no memory); returns the mean loss."""
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    opt = torch.optim.SGD(model.head_parameters(), lr=cfg.warmup_lr, momentum=0.9)
    loss_fn, miner = build_loss(cfg), build_miner(cfg)
    losses = []
    for epoch in range(cfg.warmup_epochs):
        seed_everything(cfg.seed, warmup_epoch(epoch))
        model.train()
        for batch in data.batches(warmup_epoch(epoch)):
            x, y = batch.x.to(device), batch.y.to(device)
            emb = model(x)
            loss = loss_fn(emb, y, miner(emb, y))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    for p in model.backbone.parameters():
        p.requires_grad_(True)
    return float(np.mean(losses)) if losses else float("nan")


@torch.no_grad()
def kmeans_superclasses(model, data: Data, cfg: RunConfig, device) -> list[str]:
    """SC-XBN on a dataset without superclass labels: superclasses from k-means over the class
    means of the warmed-up model's training embeddings (thesis 6.1.1); returns record notes."""
    if cfg.variant != "sc_xbn" or (data.superclasses >= 0).all():
        return []
    from bench.engine.superclasses import class_superclasses, default_k

    labels = torch.from_numpy(data.labels)
    k = default_k(int(labels.max()) + 1)
    emb = embed(model, data.train_split(), device, data)
    data.superclasses = class_superclasses(emb, labels, k, cfg.seed)[labels].numpy()
    return [
        f"sc_xbn superclasses: k-means (k={k}) over the class means of the warmed-up "
        f"model's training embeddings ({cfg.dataset} has no superclass labels)"
    ]


@torch.no_grad()
def prefill(model, memory, data: Data, device) -> None:
    """Fill the memory with the warmed-up model's embeddings of a random training subset
    (the xbm.py of seed 001); msight-tech/research-xbm itself starts empty (``queue``)."""
    model.eval()
    for b in data.batches(PREFILL_EPOCH):
        if memory.has_been_filled:
            break
        memory.enqueue(
            model(b.x.to(device)).float(),
            b.y.to(device),
            b.sc.to(device),
            indices=b.idx.to(device),
            keys=b.keys.to(device),
        )
