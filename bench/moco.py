"""MoCo with a memory variant on its queue (the XBN paper, appendix B and figure 2).

A query encoder (``build_model``, L2 head) and a momentum key encoder see two augmented views
of each image; the keys are enqueued, the queries compared with the queue through PML's
``NTXentLoss`` in the memory's ``enqueue_mask`` mode. ``xbm`` is plain MoCo (PML's
``CrossBatchMemory`` as in PML's MoCo example); ``xbn`` adapts the queue before each enqueue.
k-NN accuracy of the test set against the training set (query encoder, eval mode) is logged
every epoch. Same store, resume and determinism rules as ``bench.trainer``.

Choices (written into each result.json under ``moco``): labels never reach training; batches
are uniform shuffles (no class-balanced sampler); BatchNorm in ``moco_bn_splits`` sub-batches
with the keys shuffled across them, PML's single-GPU stand-in for MoCo's shuffle-BN; the EMA
moves parameters only (BatchNorm buffers of the key encoder follow its own batches, as in
MoCo); SGD momentum 0.9, cosine LR over the epochs stepped per epoch, no gradient clipping, as
PML's example; a ResNet's 7x7/stride-2 stem and max-pool become 3x3/stride 1 and identity for
images <= 64 px (the CIFAR ResNet of PML's example).
"""

from __future__ import annotations

import copy
import time
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_metric_learning.losses import NTXentLoss
from torch import nn
from torch.utils.data import DataLoader

import variants
from data_prep import ManifestDataset
from data_prep.fileio import UserError

from .config import RunConfig
from .data import Split, embed, stratified_subset
from .evaluate import knn_accuracy
from .model import build_model
from .store import RunDir
from .trainer import NonFinite, seed_everything

# memory-only variants with global statistics: no minibatch loss (no_xbm, xbm_star) and no
# per-class statistics (every query/key pair is its own class here)
MOCO_VARIANTS = ("xbm", "xbn", "axbn", "delayed_xbn", "centre_xbn", "scaled_xbn")
KNN_K, KNN_T = 200, 0.1  # the MoCo k-NN monitor (PML's example: knn_k 200, knn_t 0.1)
QUEUE_RATIO = 4096 / 50000  # PML's queue of 4096 on CIFAR's 50,000 training images
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)

# Config overrides of a MoCo run per profile (bench.studies uses them). ``paper``: PML's MoCo
# example with every value kept except the batch size, 128, as the XBN paper says (so lr 0.03,
# not the 0.06 of the official MoCo CIFAR demo at batch 512); trained from scratch. ``cpu``:
# the same path on Fashion-MNIST in minutes on two cores. m_per_class is unused by MoCo; it is
# set to the batch size so that the metric sampler's check has nothing to adapt.
MOCO_PROFILES: dict[str, dict[str, Any]] = {
    "paper": dict(
        task="moco",
        model="resnet18",
        pretrained=False,
        embedding_size=128,
        image_size=32,
        augment="moco",
        batch_size=128,
        m_per_class=128,
        memory_ratio=QUEUE_RATIO,
        optimizer="sgd",
        lr=0.03,
        weight_decay=5e-4,
        temperature=0.1,
        epochs=200,
        warmup_epochs=0,
        amp=False,
        train_per_class=None,
        moco_momentum=0.99,
        moco_bn_splits=8,
        num_workers=8,
    ),
    "cpu": dict(
        task="moco",
        model="test_resnet",
        pretrained=False,
        embedding_size=128,
        image_size=28,
        augment="moco_tensor",
        batch_size=64,
        m_per_class=64,
        memory_ratio=QUEUE_RATIO,
        optimizer="sgd",
        lr=0.06,
        weight_decay=5e-4,
        temperature=0.1,
        epochs=10,
        warmup_epochs=0,
        amp=False,
        train_per_class=400,
        moco_momentum=0.99,
        moco_bn_splits=4,
        num_workers=0,
    ),
}


# ----- data: two views of each image -----------------------------------------------------------
def tensor_views(x: torch.Tensor) -> torch.Tensor:
    """One random view per uint8 image (N, C, H, W) -> normalised float: random resized crop
    (area 0.2-1, aspect 3/4-4/3) with horizontal flip as one affine resampling, then brightness
    and contrast x U(0.6, 1.4) with p = 0.8 and Gaussian noise (std 0.03). Uses torch's RNG."""
    n = len(x)
    area = torch.empty(n).uniform_(0.2, 1.0)
    ratio = torch.empty(n).uniform_(np.log(3 / 4), np.log(4 / 3)).exp()
    w, h = (area * ratio).sqrt().clamp(max=1.0), (area / ratio).sqrt().clamp(max=1.0)
    tx, ty = (torch.rand(n) * 2 - 1) * (1 - w), (torch.rand(n) * 2 - 1) * (1 - h)
    flip = torch.where(torch.rand(n) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w * flip, tx, h, ty
    img = x.float() / 255.0
    grid = F.affine_grid(theta, list(img.shape), align_corners=False)
    img = F.grid_sample(img, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    jitter = (torch.rand(n, 1, 1, 1) < 0.8).float()
    bright = 1 + jitter * torch.empty(n, 1, 1, 1).uniform_(-0.4, 0.4)
    contrast = 1 + jitter * torch.empty(n, 1, 1, 1).uniform_(-0.4, 0.4)
    mean = img.mean(dim=(1, 2, 3), keepdim=True)
    img = ((img - mean) * contrast + mean) * bright + 0.03 * torch.randn_like(img)
    return (img.clamp(0, 1) - 0.5) / 0.5


def _to_rgb(image):  # module level, so that DataLoader workers can pickle it
    return image.convert("RGB")


class TwoViews:
    """A PIL transform returning two independent views (query, key) of one image."""

    def __init__(self, transform) -> None:
        self.transform = transform

    def __call__(self, image):
        return self.transform(image), self.transform(image)


def pil_transforms(cfg: RunConfig):
    """MoCo's CIFAR transforms (PML's example): train and eval, RGB, CIFAR normalisation."""
    from torchvision import transforms as T

    norm = [T.ToTensor(), T.Normalize(CIFAR_MEAN, CIFAR_STD)]
    rgb = T.Lambda(_to_rgb)
    train = T.Compose(
        [
            rgb,
            T.RandomResizedCrop(cfg.image_size),
            T.RandomHorizontalFlip(),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
            *norm,
        ]
    )
    return TwoViews(train), T.Compose([rgb, T.Resize(cfg.image_size), *norm])


class MocoData:
    """The training subset as two-view batches, and the train/test splits for the k-NN monitor.

    ``augment="moco_tensor"``: array datasets held as uint8 tensors, views made by
    ``tensor_views`` (fast on a CPU); ``augment="moco"``: PIL transforms and a DataLoader."""

    def __init__(self, cfg: RunConfig, data_dir: str) -> None:
        if cfg.augment not in ("moco", "moco_tensor"):
            raise UserError(
                f"a MoCo run needs augment 'moco' or 'moco_tensor', got {cfg.augment!r}"
            )
        self.cfg = cfg
        full = ManifestDataset(cfg.dataset, data_dir, "train")
        subset = stratified_subset(full.labels, cfg.train_per_class)
        self.tensor = cfg.augment == "moco_tensor"
        train_tf, eval_tf = (None, None) if self.tensor else pil_transforms(cfg)
        self.train = ManifestDataset(cfg.dataset, data_dir, "train", train_tf, subset)
        splits = [
            ManifestDataset(cfg.dataset, data_dir, "train", eval_tf, subset),
            ManifestDataset(cfg.dataset, data_dir, "test", eval_tf),
        ]
        if self.tensor:
            if self.train.array is None or self.train.array.shape[1] != cfg.image_size:
                raise UserError(
                    f"augment 'moco_tensor' needs an array dataset at "
                    f"{cfg.image_size} px; {cfg.dataset} is not"
                )
            self.pixels = self._pixels(self.train)
            self.in_chans = self.pixels.shape[1]
        self.eval_train, self.eval_test = (
            Split(ds, self._pixels(ds) if self.tensor else None) for ds in splits
        )
        if not self.tensor:
            self.in_chans = 3
        self.n = len(self.train)

    @staticmethod
    def _pixels(ds: ManifestDataset) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(ds.array))
        return x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)

    @staticmethod
    def normalise(x: torch.Tensor) -> torch.Tensor:  # the eval path of ``bench.data.embed``
        return (x.float() / 255.0 - 0.5) / 0.5

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of (query views, key views): a uniform shuffle, full batches only."""
        b = self.cfg.batch_size
        if self.tensor:
            order = torch.randperm(self.n)
            for s in range(0, self.n - b + 1, b):
                x = self.pixels[order[s : s + b]]
                yield tensor_views(x), tensor_views(x)
            return
        loader = DataLoader(
            self.train, batch_size=b, shuffle=True, drop_last=True, num_workers=self.cfg.num_workers
        )
        for (xq, xk), _, _ in loader:
            yield xq, xk


# ----- the two encoders ------------------------------------------------------------------------
class SplitBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose training statistics come from ``splits`` interleaved sub-batches (as if
    the batch were spread over that many devices); running statistics are their average."""

    splits = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.splits == 1:
            return super().forward(x)
        n, c, h, w = x.shape
        s = self.splits
        mean, var = self.running_mean.repeat(s), self.running_var.repeat(s)
        out = F.batch_norm(
            x.reshape(-1, c * s, h, w),
            mean,
            var,
            self.weight.repeat(s),
            self.bias.repeat(s),
            True,
            self.momentum,
            self.eps,
        )
        self.running_mean.copy_(mean.view(s, c).mean(0))
        self.running_var.copy_(var.view(s, c).mean(0))
        return out.view(n, c, h, w)


def split_batchnorm(model: nn.Module, splits: int) -> nn.Module:
    """Turn every BatchNorm2d of ``model`` into a SplitBatchNorm2d (weights kept), in place."""
    for module in model.modules():
        if type(module) is nn.BatchNorm2d:
            module.__class__ = SplitBatchNorm2d
            module.splits = splits
    return model


def cifar_stem(backbone: nn.Module, image_size: int) -> str:
    """Small images: a timm ResNet's 7x7/2 conv and max-pool become 3x3/1 and identity."""
    conv = getattr(backbone, "conv1", None)
    if image_size > 64 or not isinstance(conv, nn.Conv2d) or conv.kernel_size != (7, 7):
        return "timm default"
    backbone.conv1 = nn.Conv2d(conv.in_channels, conv.out_channels, 3, 1, 1, bias=False)
    backbone.maxpool = nn.Identity()
    return "cifar (conv1 3x3 stride 1, no max-pool)"


def build_encoders(cfg: RunConfig, in_chans: int) -> tuple[nn.Module, nn.Module, str]:
    query = build_model(
        cfg.model, cfg.embedding_size, cfg.head, in_chans, cfg.pretrained, cfg.pretrained_file
    )
    stem = cifar_stem(query.backbone, cfg.image_size)
    split_batchnorm(query, cfg.moco_bn_splits)
    key = copy.deepcopy(query)  # starts equal to the query encoder
    for p in key.parameters():
        p.requires_grad_(False)
    return query, key, stem


@torch.no_grad()
def momentum_update(key: nn.Module, query: nn.Module, m: float) -> None:
    """key = m * key + (1 - m) * query, parameter by parameter (MoCo eq. 2); buffers untouched."""
    for pk, pq in zip(key.parameters(), query.parameters()):
        pk.mul_(m).add_(pq.detach(), alpha=1 - m)


def build_queue(cfg: RunConfig, n_train: int):
    """The variant over PML's NTXentLoss; the queue is memory_ratio x the training set."""
    size = max(cfg.batch_size, int(round(cfg.memory_ratio * n_train)))
    return variants.build(
        cfg.variant,
        NTXentLoss(temperature=cfg.temperature),
        cfg.embedding_size,
        size,
        None,
        **cfg.options,
    )


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
    ``bench.trainer.run``, whose ``stop_after`` it shares)."""
    from tqdm import tqdm

    rd = RunDir(results, cfg)
    if rd.status() in ("done", "failed"):
        return rd.read_result()
    _check(cfg)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cpu":
        torch.use_deterministic_algorithms(True)
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
        rd.start(str(dev))
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
