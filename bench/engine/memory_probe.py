"""The memory probe: how far the stored embeddings are from what the current model
makes of the same inputs, and the re-embedding that ``oracle_xbm`` uses.

The XBN paper's premise (section 3, eqs. 3-6) is that an entry stored k steps ago is stale: the
model that made it has drifted since. The probe measures that staleness directly. At chosen
steps it takes whole stored batches, spread evenly over the memory's ages, and re-embeds them
with the current model exactly the way the training forward made them: the same images (the
memory keeps each entry's training-set position), the same augmentation draw (its key, see
bench/engine/data.py), the same batch composition, in train mode (BatchNorm normalises with the
statistics of the batch it saw). The comparison, per entry i:

    err_i = || m_i - f_theta_t(x_i) ||_2    (m_i: the stored entry as the loss sees it, adapted)
    raw_i = || r_i - f_theta_t(x_i) ||_2    (r_i: the entry as enqueued, what plain XBM holds)

and the adaptation gain mean(raw) / mean(err) (> 1: the variant's adaptation brought the memory
closer to the current embeddings). The probe changes nothing of the run: it calls the model
through ``torch.func.functional_call`` with copies of its buffers (BatchNorm's running
statistics are updated in the copies, never in the model, and the autograd graph of the
step's loss is not touched), under ``no_grad``, with every RNG restored afterwards.

Choices (docs/memory-error.md): the probe runs after the step's loss is computed and
before the optimizer step, so "current model" is the model that embedded this step's batch and
"stored entry" is what this step's loss saw; the current batch itself (age 0, made by this very
model) is not probed; a stored batch partly overwritten by the FIFO is re-embedded as the part
that remains (the probe prefers complete batches).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu
from torch.func import functional_call

from bench.engine.lifecycle import preserved_rng
from bench.engine.moco.model import SplitBatchNorm2d

AGE_BUCKETS = 4  # quarters of the memory's span


def probe_steps(steps_per_epoch: int, points: int) -> tuple[int, ...]:
    """The 1-based steps within an epoch at which the probe runs: ``points`` evenly spaced steps
    (i * S / (points + 1), rounded, i = 1..points) and the epoch's last step S."""
    s = steps_per_epoch
    inner = {round(i * s / (points + 1)) for i in range(1, points + 1)}
    return tuple(sorted({t for t in inner if 1 <= t < s} | {s})) if s > 0 else ()


def batch_order(positions: torch.Tensor, memory_size: int) -> torch.Tensor:
    """The storage positions of one enqueued batch (sorted) in the order the batch had: the FIFO
    writes a batch contiguously, wrapping from the last slot to slot 0, so a wrapped batch
    starts after the one gap in its sorted positions."""
    gaps = torch.nonzero(positions[1:] != positions[:-1] + 1).flatten()
    if len(gaps) == 0:
        return positions
    cut = int(gaps[0]) + 1
    return torch.cat([positions[cut:], positions[:cut]])


def stored_batches(memory, include_current: bool = False) -> list[torch.Tensor]:
    """The stored entries grouped by the step that enqueued them, oldest first, each group the
    storage positions of one enqueued batch in the batch's order; the current batch (age 0) is
    left out unless ``include_current``."""
    n = memory.num_stored
    steps = memory.step_memory[:n].cpu()
    current = memory.enqueue_count
    groups = []
    for step in torch.unique(steps).tolist():  # sorted: oldest first
        if step < 0 or (step == current and not include_current):
            continue  # never enqueued with a step (cannot be re-made), or the current batch
        groups.append(batch_order(torch.nonzero(steps == step).flatten(), memory.memory_size))
    return groups


def select_batches(groups: list[torch.Tensor], size: int, full: int) -> list[torch.Tensor]:
    """About ``size`` entries as whole batches spread evenly over the ages: complete batches
    (``full`` entries) are preferred; k batches taken at evenly spaced ranks of age."""
    complete = [g for g in groups if len(g) == full] or groups
    if not complete:
        return []
    k = min(len(complete), max(1, math.ceil(size / max(1, len(complete[0])))))
    ranks = np.unique(np.round(np.linspace(0, len(complete) - 1, k)).astype(int))
    return [complete[r] for r in ranks]


# at most this many images in one forward of the grouped re-embedding (memory bound)
MAX_GROUPED_IMAGES = 1024


def _splittable(model) -> bool:
    """Whether every BatchNorm of ``model`` is a plain BatchNorm2d, which
    bench.engine.moco.model.SplitBatchNorm2d can split into per-batch statistics."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    return all(type(m) is torch.nn.BatchNorm2d for m in norms)


@contextlib.contextmanager
def _split_batchnorm(model, splits: int) -> Iterator[None]:
    """Every BatchNorm2d normalises ``splits`` interleaved sub-batches with their own statistics
    for the block, then is a BatchNorm2d again."""
    swapped = [m for m in model.modules() if type(m) is torch.nn.BatchNorm2d]
    for m in swapped:
        m.__class__, m.splits = SplitBatchNorm2d, splits
    try:
        yield
    finally:
        for m in swapped:
            m.__class__ = torch.nn.BatchNorm2d
            del m.splits


def _chunks(groups: Sequence[torch.Tensor], grouped: bool) -> list[list[torch.Tensor]]:
    """Consecutive runs of groups forwarded together: equal-sized groups up to
    MAX_GROUPED_IMAGES images where the model allows it, else one group at a time."""
    if not grouped:
        return [[g] for g in groups]
    out: list[list[torch.Tensor]] = []
    for g in groups:
        last = out[-1] if out else None
        if last and len(last[0]) == len(g) and (len(last) + 1) * len(g) <= MAX_GROUPED_IMAGES:
            last.append(g)
        else:
            out.append([g])
    return out


@torch.no_grad()
def reembed(model, data, memory, groups: Sequence[torch.Tensor], device, amp: bool) -> torch.Tensor:
    """Fresh embeddings of the stored entries in ``groups`` (concatenated in that order), each
    group normalised in train mode as one batch, with the same images and augmentation draws it
    was made from; the model's buffers and every RNG are as they were before the call.

    Speed: equal-sized groups go through one forward together, interleaved, with every
    BatchNorm2d split into per-group statistics (the MoCo encoders' SplitBatchNorm2d): each
    group sees the statistics of its own batch, as in its training forward, at the cost of one
    large forward instead of many small ones (the same numbers to float rounding; a model with
    another kind of BatchNorm is re-embedded one group at a time)."""
    params = dict(model.named_parameters())
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    was_training = model.training
    dev = memory.index_memory.device
    out = []
    with preserved_rng():
        model.train()
        try:
            for chunk in _chunks(groups, _splittable(model)):
                xs = [
                    data.images(
                        memory.index_memory[p.to(dev)].cpu(), memory.key_memory[p.to(dev)].cpu()
                    )
                    for p in chunk
                ]
                x = torch.stack(xs, 1).flatten(0, 1)  # interleaved: sample i is in group i % G
                with (
                    _split_batchnorm(model, len(chunk)),
                    torch.autocast(device.type, dtype=torch.float16, enabled=amp),
                ):
                    emb = functional_call(model, {**params, **buffers}, (x.to(device),))
                emb = emb.view(len(xs[0]), len(chunk), -1).transpose(0, 1).flatten(0, 1)
                out.append(emb.to(memory.embedding_memory.dtype))
        finally:
            model.train(was_training)
    return torch.cat(out) if out else memory.embedding_memory[:0].clone()


def reembed_all(model, data, memory, device, amp: bool) -> torch.Tensor:
    """Fresh embeddings of every stored entry, in storage order (the oracle's refresh): each
    stored batch re-embedded as a batch (``reembed``), the current batch included."""
    groups = stored_batches(memory, include_current=True)
    order = torch.cat(groups) if groups else torch.zeros(0, dtype=torch.long)
    if len(order) != memory.num_stored or (memory.index_memory[: memory.num_stored] < 0).any():
        raise RuntimeError(
            "oracle_xbm can only re-embed entries enqueued with their images (indices= and "
            "keys=); this memory holds entries without them (a prefill?)"
        )
    fresh = reembed(model, data, memory, groups, device, amp)
    result = torch.empty_like(fresh)
    result[order.to(fresh.device)] = fresh
    return result


def _l2_cos(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = a.double(), b.double()
    return (a - b).norm(dim=1), F.cosine_similarity(a, b, dim=1)


def age_buckets(ages: torch.Tensor, span: int) -> torch.Tensor:
    """The quarter of the memory's span each age (>= 1 step) falls in: 0 = youngest quarter
    (ages 1 .. span/4), 3 = oldest; ages beyond the span (a prefilled entry) go to the last."""
    return torch.clamp(((ages - 1) * AGE_BUCKETS) // max(1, span), 0, AGE_BUCKETS - 1)


def mined_pairs(miner, emb, labels, ref, ref_labels) -> set[tuple[int, int, int]]:
    """The (anchor, reference, +1/-1) pairs the miner picks for ``emb`` against ``ref`` (all
    pairs without a miner); triplets count as their positive and negative pairs."""
    if miner is None:
        tup = lmu.get_all_pairs_indices(labels, ref_labels)
    else:
        tup = lmu.convert_to_pairs(miner(emb, labels, ref, ref_labels), labels, ref_labels)
    a1, p, a2, n = (t.tolist() for t in tup)
    return {(a, r, 1) for a, r in zip(a1, p)} | {(a, r, -1) for a, r in zip(a2, n)}


def jaccard(a: set, b: set) -> float:
    """|a & b| / |a | b|; NaN when both are empty."""
    union = len(a | b)
    return len(a & b) / union if union else float("nan")


def measure(
    memory, fresh: torch.Tensor, positions: torch.Tensor, batch_emb, batch_labels, span: int
) -> dict[str, Any]:
    """One probe row (bench.store.MEMORY_ERROR_COLUMNS without epoch/step/point): the stored
    entries at ``positions`` against their ``fresh`` re-embeddings."""
    dev = memory.embedding_memory.device
    pos = positions.to(dev)
    stored, raw = memory.embedding_memory[pos], memory.raw_view()[pos]
    fresh = fresh.to(dev)
    err, err_cos = _l2_cos(stored, fresh)
    raw_err, raw_cos = _l2_cos(raw, fresh)
    ages = (memory.enqueue_count - memory.step_memory[pos]).cpu()
    buckets = age_buckets(ages, span)
    row: dict[str, Any] = {
        "adapting": int(bool(memory.adapted_this_step)),
        "n_entries": len(pos),
        "err_l2_mean": err.mean().item(),
        "err_l2_median": err.median().item(),
        "err_cos_mean": err_cos.mean().item(),
        "raw_l2_mean": raw_err.mean().item(),
        "raw_l2_median": raw_err.median().item(),
        "raw_cos_mean": raw_cos.mean().item(),
    }
    row["gain"] = row["raw_l2_mean"] / row["err_l2_mean"] if row["err_l2_mean"] > 0 else math.nan
    for q in range(AGE_BUCKETS):
        sel = (buckets == q).to(dev)
        row[f"err_l2_age{q + 1}"] = err[sel].mean().item() if sel.any() else math.nan
        row[f"raw_l2_age{q + 1}"] = raw_err[sel].mean().item() if sel.any() else math.nan
    labels = memory.label_memory[pos]
    emb = batch_emb.detach().to(stored.dtype)
    ys = batch_labels.to(dev)
    with preserved_rng():
        a = mined_pairs(memory.miner, emb, ys, stored, labels)
        b = mined_pairs(memory.miner, emb, ys, fresh.to(stored.dtype), labels)
    row.update(pair_jaccard=jaccard(a, b), pairs_stored=len(a), pairs_fresh=len(b))
    return row


class MemoryProbe:
    """The probe of one run: when to measure, and the rows measured so far (kept in the
    checkpoint, written to memory_error.csv)."""

    def __init__(self, cfg, data, memory, model, device, steps_per_epoch: int) -> None:
        self.cfg, self.data, self.memory, self.model, self.device = cfg, data, memory, model, device
        self.at = probe_steps(steps_per_epoch, cfg.memory_probe_points)
        self.span = math.ceil(memory.memory_size / cfg.batch_size)
        self.amp = cfg.amp and device.type == "cuda"
        self.rows: list[dict[str, Any]] = []

    def maybe(self, epoch: int, step_in_epoch: int, step: int, batch_emb, batch_labels) -> None:
        """Measure if ``step_in_epoch`` (1-based) is a probe point; ``epoch`` as in metrics.csv."""
        if step_in_epoch not in self.at:
            return
        groups = select_batches(
            stored_batches(self.memory), self.cfg.memory_probe_size, self.cfg.batch_size
        )
        if not groups:
            return
        fresh = reembed(self.model, self.data, self.memory, groups, self.device, self.amp)
        row = measure(self.memory, fresh, torch.cat(groups), batch_emb, batch_labels, self.span)
        point = self.at.index(step_in_epoch) + 1
        self.rows.append(
            {"epoch": epoch, "step": step, "point": point, "n_batches": len(groups), **row}
        )
