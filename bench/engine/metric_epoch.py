"""One main-phase epoch of metric learning with the memory, and the evaluation after it."""

from __future__ import annotations

import time

import numpy as np
import torch

from bench.config import RunConfig
from bench.engine.data import Data, embed
from bench.engine.lifecycle import check_finite
from bench.measure import diagnostics as diag
from bench.measure.evaluate import retrieval_metrics


def optimizer_step(loss, model, opt, scaler, grad_clip: float) -> None:
    """One step of the protocol: scaled backward (AMP), unscale, clip the gradient norm, step."""
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(opt)
    scaler.update()


def train_epoch(
    model,
    memory,
    opt,
    scaler,
    data: Data,
    cfg: RunConfig,
    device,
    probe,
    step0: int,
    bar,
    *,
    epoch: int,
    memory_probe=None,
) -> tuple[dict[str, float], int]:
    """One main-phase epoch (``epoch``: 0-based, its augmentation keys' epoch); returns its
    metrics and the global step reached. ``memory_probe`` (bench.engine.memory_probe) measures
    the memory's error after the step's loss and before its optimizer step; it changes nothing
    of the run."""
    use_amp = cfg.amp and device.type == "cuda"
    losses, drift_mean, drift_max, pos, neg, images, step = [], [], [], [], [], 0, step0
    with torch.no_grad():
        model.eval()
        z_prev = model(probe).float()
    z_start = z_prev
    start = time.perf_counter()
    for i, batch in enumerate(data.batches(epoch), 1):
        model.train()
        x, y, sc = batch.x.to(device), batch.y.to(device), batch.sc.to(device)
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            emb = model(x)
            loss = memory(
                emb, y, superclasses=sc, indices=batch.idx.to(device), keys=batch.keys.to(device)
            )
        step += 1
        check_finite(loss, step)
        if memory_probe is not None:
            memory_probe.maybe(epoch + 1, i, step, emb, y)
        optimizer_step(loss, model, opt, scaler, cfg.grad_clip)
        with torch.no_grad():  # paper eq. 5 with delta k = 1 step, on a fixed probe batch
            model.eval()
            z = model(probe).float()
            d_mean, d_max = diag.drift(z, z_prev)
            z_prev = z
        losses.append(loss.item())
        drift_mean.append(d_mean)
        drift_max.append(d_max)
        pos.append(memory.last_mined[0])
        neg.append(memory.last_mined[1])
        images += len(x)
        bar.update(1)
        bar.set_postfix(
            loss=f"{losses[-1]:.3f}", img_s=f"{images / (time.perf_counter() - start):.0f}"
        )
    seconds = time.perf_counter() - start
    epoch_mean, epoch_max = diag.drift(z_prev, z_start)  # delta k = one epoch
    return {
        "loss": float(np.mean(losses)),
        "drift_mean": float(np.mean(drift_mean)),
        "drift_max": float(np.mean(drift_max)),
        "drift_epoch_mean": epoch_mean,
        "drift_epoch_max": epoch_max,
        "mined_pos": float(np.mean(pos)),
        "mined_neg": float(np.mean(neg)),
        "images_per_s": images / seconds,
    }, step


def evaluate(model, data: Data, cfg: RunConfig, device) -> dict[str, float]:
    """Recall@K, MAP@R and R-Precision on the eval protocol (one search,
    ``bench.measure.evaluate.retrieval_metrics``), and the embedding-space diagnostics of the
    eval set."""
    if "test" in data.eval:
        split = data.eval["test"]
        emb = embed(model, split, device, data)
        retrieval = retrieval_metrics(emb, split.labels, cfg.eval_ks)
    else:
        split = data.eval["query"]
        emb = embed(model, split, device, data)
        gallery = data.eval["gallery"]
        retrieval = retrieval_metrics(
            emb, split.labels, cfg.eval_ks, embed(model, gallery, device, data), gallery.labels
        )
    row: dict[str, float] = dict(retrieval)
    row["inter_dist"] = diag.inter_distance(emb, max_points=5000)
    row["intra_dist"] = diag.intra_distance(emb, split.labels)
    sc = split.superclasses
    top = diag.superclass_topk(emb, sc) if (sc >= 0).all() and len(sc.unique()) > 1 else {}
    for k in range(1, 6):
        row[f"superclass_top{k}"] = top.get(k, float("nan"))
    return row
