"""``xbmbench bench train``: images per second of the training loop with each variant's memory.

The loop is the trainer's (forward, memory loss, backward, clipping, AdamW step) on synthetic
class-structured batches of the profile's shape, with the memory full (``--memory-size``,
default: the profile's ratio of SOP's 59,551 training images for ``paper``, of the 4,000-image
Fashion-MNIST subset for ``cpu``); ``no_xbm`` is the loop without memory. ``oracle_xbm``
re-embeds its whole memory every ``refresh_interval`` steps, one forward per stored batch in
train mode without gradients, as the trainer does (bench.engine.memory_probe.reembed); here each
of those forwards takes a fixed synthetic batch, so the timing holds the oracle's compute but
no data loading.
"""

from __future__ import annotations

import statistics
import time

import torch

import variants
from bench.config import make_config, profile_values
from bench.engine.memory_probe import reembed
from bench.engine.metric import build_memory
from bench.engine.metric_epoch import optimizer_step
from bench.engine.model import build_model

TRAIN_IMAGES = {"paper": 59551, "cpu": 4000}


def _batch(cfg, in_chans: int, n_classes: int, g: torch.Generator):
    k = cfg.batch_size // cfg.m_per_class
    labels = torch.randperm(n_classes, generator=g)[:k].repeat_interleave(cfg.m_per_class)
    x = torch.randn(cfg.batch_size, in_chans, cfg.image_size, cfg.image_size, generator=g)
    x += labels.view(-1, 1, 1, 1).float() / n_classes  # a little class signal
    return x, labels, labels % 12


def measure(
    variant: str, profile: str, steps: int, warmup: int, device: str, memory_size: int | None
) -> dict:
    """Median images per second over ``steps`` training steps after ``warmup`` steps, with the
    trainer's mixed precision (fp16 autocast + GradScaler) where the profile asks and on CUDA."""
    cfg = make_config("sop", variant, 0, profile, pretrained=False)
    dev = torch.device(device)
    in_chans = 1 if profile == "cpu" else 3
    model = build_model(cfg.model, cfg.embedding_size, cfg.head, in_chans).to(dev)
    n_train = TRAIN_IMAGES[profile]
    memory = build_memory(cfg, n_train).to(dev)
    if memory_size is not None and variant != "no_xbm":
        memory = variants.build(
            variant, memory.loss, cfg.embedding_size, memory_size, memory.miner, **cfg.options
        )
        memory = memory.to(dev)
    memory.set_epoch(10**6)  # adapting regime, also for delayed_xbn
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(0)
    n_classes = 1000
    if variant != "no_xbm":  # a full memory of unit class-structured embeddings
        centres = torch.nn.functional.normalize(
            torch.randn(n_classes, cfg.embedding_size, generator=g), dim=1
        )
        labels = torch.randint(0, n_classes, (memory.memory_size,), generator=g)
        emb = torch.nn.functional.normalize(
            centres[labels] + 0.3 * torch.randn(len(labels), cfg.embedding_size, generator=g), dim=1
        )
        n = len(labels)
        memory.enqueue(
            emb.to(dev), labels.to(dev), (labels % 12).to(dev), indices=torch.arange(n).to(dev)
        )
    if getattr(memory, "TRAINER_ONLY", False):  # oracle_xbm: re-embeds from the images
        fixed = _batch(cfg, in_chans, n_classes, g)[0]
        memory.reembed = _synthetic_reembed(model, fixed, cfg, dev)
    use_amp = cfg.amp and dev.type == "cuda"  # as the trainer: fp16 autocast + GradScaler
    scaler = torch.amp.GradScaler(dev.type, enabled=use_amp)
    times = []
    model.train()
    for i in range(warmup + steps):
        x, y, sc = (t.to(dev) for t in _batch(cfg, in_chans, n_classes, g))
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        idx = torch.arange(len(y), device=dev) + i * len(y)
        with torch.autocast(dev.type, dtype=torch.float16, enabled=use_amp):
            loss = memory(model(x), y, superclasses=sc, indices=idx)
        optimizer_step(loss, model, opt, scaler, cfg.grad_clip)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    step_s = statistics.median(times)
    return {
        "name": variant,
        "images_per_s": cfg.batch_size / step_s,
        "ms_per_step": 1e3 * step_s,
        "memory_size": 0 if variant == "no_xbm" else memory.memory_size,
        "amp_used": use_amp,  # fp16 autocast and GradScaler: the profile asks and on CUDA
    }


class _FixedImages:
    """Data.images for the timing: every stored batch is re-made from one fixed batch."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def images(self, idx, keys):
        return self.x[: len(idx)]


def _synthetic_reembed(model, fixed: torch.Tensor, cfg, dev):
    """The oracle's refresh with the trainer's re-embedding (one train-mode forward per stored
    batch, buffers untouched), on a fixed synthetic batch."""
    data, amp = _FixedImages(fixed), cfg.amp and dev.type == "cuda"

    def refresh(mem) -> torch.Tensor:
        n, b = mem.num_stored, cfg.batch_size
        groups = [torch.arange(s, min(s + b, n)) for s in range(0, n, b)]
        return reembed(model, data, mem, groups, dev, amp)

    return refresh


def run(
    names: tuple[str, ...], profile: str, steps: int, warmup: int, device: str, memory_size
) -> dict:
    """``{"config": ..., "rows": [...]}``: one row per variant (``names``, default every one),
    each with its overhead over ``no_xbm``'s images per second where no_xbm was measured."""
    rows = [
        measure(v, profile, steps, warmup, device, memory_size)
        for v in (names or variants.VARIANTS)
    ]
    base = next((r["images_per_s"] for r in rows if r["name"] == "no_xbm"), None)
    for r in rows:
        r["overhead_vs_no_xbm"] = None if base is None else base / r["images_per_s"] - 1
    config = {
        "profile": profile,
        "steps": steps,
        "warmup": warmup,
        "device": device,
        "threads": torch.get_num_threads(),
        "model": profile_values(profile)["model"],
        "batch_size": profile_values(profile)["batch_size"],
    }
    return {"config": config, "rows": rows}


def format_table(result: dict) -> str:
    lines = [
        f"training loop, {result['config']}",
        f"{'variant':12} {'memory':>7} {'img/s':>9} {'ms/step':>9} {'overhead':>9}",
    ]
    for r in result["rows"]:
        ov = "-" if r["overhead_vs_no_xbm"] is None else f"{100 * r['overhead_vs_no_xbm']:+.1f}%"
        lines.append(
            f"{r['name']:12} {r['memory_size']:7d} {r['images_per_s']:9.1f} "
            f"{r['ms_per_step']:9.2f} {ov:>9}"
        )
    return "\n".join(lines)
