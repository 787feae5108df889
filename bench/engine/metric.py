"""One run of any variant on any dataset: warm-up, main phase with the memory, evaluation,
diagnostics and a durable record (DESIGN.md, "The protocol"). Reads top to bottom.

Determinism: every RNG (python, numpy, torch) is re-seeded from (seed, epoch) at the start of
each epoch, so a run resumed from the checkpoint of epoch e draws exactly what the
uninterrupted run drew; deterministic algorithms are switched on for CPU runs.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from pytorch_metric_learning.losses import SupConLoss
from pytorch_metric_learning.miners import PairMarginMiner
from tqdm import tqdm

import variants
from bench.config import RunConfig
from bench.engine.data import Data, embed
from bench.engine.env import environment
from bench.engine.model import build_model
from bench.measure import diagnostics as diag
from bench.measure.evaluate import recall_at_k
from bench.store import RunDir


def pick_device(device: str | None) -> torch.device:
    """``device`` or CUDA where present; deterministic algorithms on a CPU (reproducible runs)."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cpu":
        torch.use_deterministic_algorithms(True)
    return dev


def seed_everything(seed: int, epoch: int) -> None:
    s = (seed * 1_000_003 + epoch + 1) % (2**31)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


def build_memory(cfg: RunConfig, n_train: int):
    loss = SupConLoss(temperature=cfg.temperature)
    miner = PairMarginMiner(pos_margin=cfg.pos_margin, neg_margin=cfg.neg_margin)
    size = max(cfg.batch_size, int(round(cfg.memory_ratio * n_train)))
    return variants.build(
        cfg.variant,
        loss,
        cfg.embedding_size,
        size,
        miner,
        miner_distance=cfg.miner_distance,
        **cfg.options,
    )


def evaluate(model, data: Data, cfg: RunConfig, device) -> dict[str, float]:
    """Recall@K on the eval protocol, and the embedding-space diagnostics of the eval set."""
    if "test" in data.eval:
        split = data.eval["test"]
        emb = embed(model, split, device, data)
        recall = recall_at_k(emb, split.labels, cfg.eval_ks)
    else:
        split = data.eval["query"]
        emb = embed(model, split, device, data)
        gallery = data.eval["gallery"]
        recall = recall_at_k(
            emb, split.labels, cfg.eval_ks, embed(model, gallery, device, data), gallery.labels
        )
    row: dict[str, float] = {f"recall@{k}": v for k, v in recall.items()}
    row["inter_dist"] = diag.inter_distance(emb, max_points=5000)
    row["intra_dist"] = diag.intra_distance(emb, split.labels)
    sc = split.superclasses
    top = diag.superclass_topk(emb, sc) if (sc >= 0).all() and len(sc.unique()) > 1 else {}
    for k in range(1, 6):
        row[f"superclass_top{k}"] = top.get(k, float("nan"))
    return row


def warmup(model, data: Data, cfg: RunConfig, device) -> float:
    """The head alone, SGD, the plain minibatch loss (no memory); returns the mean loss."""
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    opt = torch.optim.SGD(model.head_parameters(), lr=cfg.warmup_lr, momentum=0.9)
    loss_fn = SupConLoss(temperature=cfg.temperature)
    miner = PairMarginMiner(pos_margin=cfg.pos_margin, neg_margin=cfg.neg_margin)
    losses = []
    for epoch in range(cfg.warmup_epochs):
        seed_everything(cfg.seed, -1 - epoch)
        model.train()
        for x, y, _ in data.batches():
            x, y = x.to(device), y.to(device)
            emb = model(x)
            loss = loss_fn(emb, y, miner(emb, y))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    for p in model.backbone.parameters():
        p.requires_grad_(True)
    return float(np.mean(losses)) if losses else float("nan")


class NonFinite(Exception):
    def __init__(self, step: int, value: float) -> None:
        super().__init__(
            f"loss became {value} at step {step}; the run is stopped, not trained through"
        )
        self.step = step


def train_epoch(
    model, memory, opt, scaler, data: Data, cfg: RunConfig, device, probe, step0: int, bar
) -> tuple[dict[str, float], int]:
    """One main-phase epoch; returns its metrics and the global step reached."""
    use_amp = cfg.amp and device.type == "cuda"
    losses, drift_mean, drift_max, pos, neg, images, step = [], [], [], [], [], 0, step0
    with torch.no_grad():
        model.eval()
        z_prev = model(probe).float()
    z_start = z_prev
    start = time.perf_counter()
    for x, y, sc in data.batches():
        model.train()
        x, y, sc = x.to(device), y.to(device), sc.to(device)
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            emb = model(x)
            loss = memory(emb, y, superclasses=sc)
        step += 1
        if not torch.isfinite(loss):
            raise NonFinite(step, loss.item())
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(opt)
        scaler.update()
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


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    main = [r for r in rows if r["phase"] == "main"]
    best = max(main, key=lambda r: (r["recall@1"], -r["epoch"]))  # first epoch among equals

    def pick(r: dict[str, Any]) -> dict[str, Any]:
        return {
            "epoch": int(r["epoch"]),
            "recall@1": r["recall@1"],
            "recall@10": r.get("recall@10"),
        }

    return {
        "best": pick(best),
        "last": pick(main[-1]),
        "selection": "best: epoch of highest test Recall@1 (as the papers report); "
        "last: final epoch (no test-set selection)",
    }


@dataclass
class Run:
    """Everything a run carries from epoch to epoch, and what its checkpoint holds."""

    model: torch.nn.Module
    memory: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: Any
    scaler: Any
    rows: list[dict[str, Any]] = field(default_factory=list)
    epoch: int = 0  # main-phase epochs done
    step: int = 0
    wall: float = 0.0
    notes: list[str] = field(default_factory=list)  # run-time deviations for the record

    def checkpoint(self, data: Data) -> dict[str, Any]:
        state = {
            k: getattr(self, k).state_dict() for k in ("model", "memory", "opt", "sched", "scaler")
        }
        return {
            **state,
            "rows": self.rows,
            "epoch": self.epoch,
            "step": self.step,
            "wall": self.wall,
            "notes": self.notes,
            "superclasses": data.superclasses,
        }

    def restore(self, ckpt: dict[str, Any], data: Data) -> None:
        for k in ("model", "memory", "opt", "sched", "scaler"):
            getattr(self, k).load_state_dict(ckpt[k])
        self.rows, self.epoch, self.step = ckpt["rows"], ckpt["epoch"], ckpt["step"]
        self.wall, self.notes = ckpt["wall"], ckpt["notes"]
        data.superclasses = ckpt["superclasses"]


def build_run(cfg: RunConfig, data: Data, dev: torch.device) -> Run:
    model = build_model(
        cfg.model, cfg.embedding_size, cfg.head, data.in_chans, cfg.pretrained, cfg.pretrained_file
    ).to(dev)
    memory = build_memory(cfg, len(data.labels)).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, cfg.lr_step_epochs, cfg.lr_gamma)
    scaler = torch.amp.GradScaler(dev.type, enabled=cfg.amp and dev.type == "cuda")
    return Run(model, memory, opt, sched, scaler)


def start(r: Run, cfg: RunConfig, data: Data, dev: torch.device, t0: float) -> None:
    """Warm-up of the head, its evaluation (row 0), k-means superclasses and prefill if asked."""
    loss = warmup(r.model, data, cfg, dev)
    r.rows = [
        {
            "epoch": 0,
            "phase": "warmup",
            "loss": loss,
            **evaluate(r.model, data, cfg, dev),
            "lr": cfg.warmup_lr,
            "seconds": time.perf_counter() - t0,
        }
    ]
    r.wall = time.perf_counter() - t0
    r.notes = kmeans_superclasses(r.model, data, cfg, dev)
    if cfg.amp and dev.type != "cuda":
        r.notes.append(f"amp: asked for by the profile, not used on {dev.type} (CUDA only)")
    if cfg.memory_init == "prefill":
        prefill(r.model, r.memory, data, dev)


def record(r: Run, cfg: RunConfig, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": status,
        "error": None,
        "failed_step": None,
        "epochs_done": r.epoch,
        "wall_s": r.wall,
        "deviations": list(cfg.deviations) + r.notes,
        **extra,
    }


def run(
    cfg: RunConfig,
    data_dir: str,
    results: str,
    device: str | None = None,
    progress: bool = True,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Train and evaluate one cell, or return its record if already done.

    ``stop_after``: leave after that many main epochs in this call (status ``running``, the
    checkpoint kept), as an interrupted run would; calling again resumes.
    """
    if cfg.task == "moco":  # self-supervised MoCo with the memory as its queue (bench/engine/moco)
        from bench.engine.moco.task import run_moco

        return run_moco(cfg, data_dir, results, device, progress, stop_after)
    rd = RunDir(results, cfg)
    if rd.status() in ("done", "failed"):
        return rd.read_result()
    dev = pick_device(device)
    t0 = time.perf_counter()
    seed_everything(cfg.seed, -100)
    data = Data(cfg, data_dir)
    r = build_run(cfg, data, dev)
    probe = data.probe(cfg.drift_probe).to(dev)
    ckpt = rd.load_checkpoint()
    if ckpt is None:
        rd.start(environment(str(dev)))  # config and versions are on disk before any training
        start(r, cfg, data, dev, t0)
    else:
        r.restore(ckpt, data)
    first = r.epoch
    while r.epoch < cfg.epochs:
        t_epoch = time.perf_counter()
        bar = tqdm(  # one bar per epoch: loss and images per second
            total=len(data.labels) // cfg.batch_size,
            disable=not progress,
            desc=f"{cfg.variant}/{cfg.dataset}/s{cfg.seed} epoch {r.epoch + 1}/{cfg.epochs}",
            leave=False,
            mininterval=1.0,
        )
        seed_everything(cfg.seed, r.epoch)
        r.memory.set_epoch(r.epoch)
        lr = r.opt.param_groups[0]["lr"]
        try:
            row, r.step = train_epoch(
                r.model, r.memory, r.opt, r.scaler, data, cfg, dev, probe, r.step, bar
            )
        except NonFinite as e:  # never trained through: the record says where it stopped
            bar.close()
            rd.write_metrics(r.rows)
            r.wall += time.perf_counter() - t_epoch
            rd.write_result(record(r, cfg, "failed", error=str(e), failed_step=e.step))
            rd.checkpoint.unlink(missing_ok=True)
            return rd.read_result()
        bar.close()
        r.sched.step()
        r.epoch += 1
        row = {
            "epoch": r.epoch,
            "phase": "main",
            **row,
            **evaluate(r.model, data, cfg, dev),
            "lr": lr,
            "seconds": time.perf_counter() - t_epoch,
        }
        r.rows.append(row)
        r.wall += row["seconds"]
        rd.write_metrics(r.rows)
        rd.save_checkpoint(r.checkpoint(data))
        rd.write_result(record(r, cfg, "running"))
        if stop_after is not None and r.epoch - first >= stop_after and r.epoch < cfg.epochs:
            return rd.read_result()
    rd.write_result(record(r, cfg, "done", **summarise(r.rows)))
    rd.checkpoint.unlink(missing_ok=True)  # kept only while running
    return rd.read_result()


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
    for x, y, sc in data.batches():
        if memory.has_been_filled:
            break
        memory.enqueue(model(x.to(device)).float(), y.to(device), sc.to(device))
