"""Each memory entry knows its image: index, augmentation key and enqueue step kept
beside the embedding, through wrap-around, enqueue_mask, state_dict and a raw (un-adapted) copy.

The expectations come from a plain FIFO written here: slot (start + i) % size, one Python loop.
"""

import io

import pytest
import torch
from pytorch_metric_learning.losses import ContrastiveLoss, SupConLoss

import variants

DIM = 6


class Slots:
    """The queue as PML defines it, holding (index, key, step, embedding) per slot."""

    def __init__(self, size):
        self.size, self.idx, self.count = size, 0, 0
        self.index = [-1] * size
        self.key = [-1] * size
        self.step = [-1] * size
        self.emb = torch.zeros(size, DIM, dtype=torch.float64)

    def add(self, x, index, key):
        self.count += 1
        for i in range(len(x)):
            s = (self.idx + i) % self.size
            self.index[s] = -1 if index is None else int(index[i])
            self.key[s] = -1 if key is None else int(key[i])
            self.step[s] = self.count
            self.emb[s] = x[i]
        self.idx = (self.idx + len(x)) % self.size


def _assert_records(mem, ref, where):
    assert mem.index_memory.tolist() == ref.index, where
    assert mem.key_memory.tolist() == ref.key, where
    assert mem.step_memory.tolist() == ref.step, where
    assert mem.enqueue_count == ref.count, where


def _batch(g, n):
    x = torch.nn.functional.normalize(torch.randn(n, DIM, generator=g, dtype=torch.float64), dim=1)
    return x, torch.randint(0, 3, (n,), generator=g)


def test_records_follow_the_fifo_through_wraps_masks_and_prefill():
    """memory 10, a prefill of 4, then batches of 7: the first forward already wraps mid-batch,
    and every later one does; a masked step stores only
    its masked rows' records; a step without indices stores -1; a prefill counts as a step."""
    g = torch.Generator().manual_seed(0)
    mem = variants.build("xbm", ContrastiveLoss(), DIM, 10)
    ref = Slots(10)
    assert mem.index_memory.tolist() == [-1] * 10 and mem.enqueue_count == 0
    x, _ = _batch(g, 4)
    mem.enqueue(x, torch.zeros(4, dtype=torch.long), indices=torch.arange(100, 104))  # prefill
    ref.add(x, torch.arange(100, 104), None)
    _assert_records(mem, ref, "prefill")
    for step in range(8):
        x, y = _batch(g, 7)
        idx = torch.randperm(1000, generator=g)[:7]
        keys = (step + 1) * 10_000 + torch.arange(7)
        if step % 3 == 1:  # MoCo's way: the masked rows are queued, the others compared
            mask = torch.rand(7, generator=g) < 0.5
            mask[0], mask[1] = True, False
            mem(x, y, enqueue_mask=mask, indices=idx, keys=keys)
            ref.add(x[mask], idx[mask], keys[mask])
        elif step == 4:  # a caller that passes neither
            mem(x, y)
            ref.add(x, None, None)
        else:
            mem(x, y, indices=idx, keys=keys)
            ref.add(x, idx, keys)
        _assert_records(mem, ref, step)
        assert torch.equal(mem.embedding_memory.double(), ref.emb), step
    ages = (mem.enqueue_count - mem.step_memory).tolist()
    assert ages == [ref.count - s for s in ref.step] and min(ages) == 0
    assert mem.queue_idx == ref.idx and mem.has_been_filled


def test_mismatched_indices_or_keys_are_refused():
    mem = variants.build("xbm", SupConLoss(), DIM, 10)
    x, y = _batch(torch.Generator().manual_seed(1), 4)
    with pytest.raises(ValueError, match=r"indices must have the shape of labels \(4,\), got \(3"):
        mem(x, y, indices=torch.arange(3))
    with pytest.raises(ValueError, match=r"keys must have the shape of labels \(4,\), got \(4, 1"):
        mem.enqueue(x, y, keys=torch.zeros(4, 1, dtype=torch.long))
    assert mem.enqueue_count == 0  # refused before anything was stored


def _run(mem, g, steps, start=0):
    for step in range(start, start + steps):
        x, y = _batch(g, 5)
        idx = torch.arange(5) + 5 * step
        mem(x.float(), y, indices=idx, keys=-idx - 2)


def test_state_dict_round_trip_restores_records_raw_copy_and_count():
    g = torch.Generator().manual_seed(2)
    mem = variants.build("xbn", SupConLoss(), DIM, 12)
    mem.track_raw()
    _run(mem, g, 5)  # 25 rows into 12 slots: wrapped twice
    buf = io.BytesIO()
    torch.save(mem.state_dict(), buf)
    buf.seek(0)
    fresh = variants.build("xbn", SupConLoss(), DIM, 12)
    fresh.track_raw()
    fresh.load_state_dict(torch.load(buf, weights_only=False))
    for name in ("index_memory", "key_memory", "step_memory", "raw_memory", "embedding_memory"):
        assert torch.equal(getattr(fresh, name), getattr(mem, name)), name
    assert fresh.enqueue_count == mem.enqueue_count == 5
    assert not torch.equal(fresh.raw_memory, fresh.embedding_memory)  # xbn adapted the memory
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    _run(mem, g1, 2, start=5)
    _run(fresh, g2, 2, start=5)
    for name in ("index_memory", "key_memory", "step_memory", "raw_memory", "embedding_memory"):
        assert torch.equal(getattr(fresh, name), getattr(mem, name)), name
    assert fresh.step_memory.max().item() == fresh.enqueue_count == 7


def test_a_state_dict_from_before_the_records_loads_them_as_unknown():
    """Decision: an older checkpoint (no index/key/step buffers, no enqueue_count) still loads,
    strictly; its entries read as unknown (-1), the count restarts at 0, and a tracked raw copy
    starts as the loaded memory (for entries with no image, nothing can be compared anyway)."""
    g = torch.Generator().manual_seed(4)
    mem = variants.build("xbm", SupConLoss(), DIM, 12)
    _run(mem, g, 3)
    old = mem.state_dict()
    for name in ("index_memory", "key_memory", "step_memory"):
        del old[name]
    old["_extra_state"] = {k: v for k, v in old["_extra_state"].items() if k != "enqueue_count"}
    fresh = variants.build("xbm", SupConLoss(), DIM, 12)
    fresh.track_raw()
    result = fresh.load_state_dict(old)  # strict
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert torch.equal(fresh.embedding_memory, mem.embedding_memory)
    assert torch.equal(fresh.raw_memory, mem.embedding_memory)
    assert fresh.index_memory.tolist() == fresh.step_memory.tolist() == [-1] * 12
    assert fresh.enqueue_count == 0 and (fresh.queue_idx, fresh.has_been_filled) == (3, True)
    x, y = _batch(g, 5)
    fresh(x.float(), y, indices=torch.arange(5))  # slots 3..7 now known, enqueued at step 1
    assert fresh.index_memory.tolist() == [-1] * 3 + list(range(5)) + [-1] * 4
    assert fresh.step_memory.tolist() == [-1] * 3 + [1] * 5 + [-1] * 4


def test_a_tracked_state_loads_into_an_untracked_memory():
    mem = variants.build("xbn", SupConLoss(), DIM, 12)
    mem.track_raw()
    _run(mem, torch.Generator().manual_seed(5), 3)
    plain = variants.build("xbn", SupConLoss(), DIM, 12)
    assert not plain.tracks_raw
    plain.load_state_dict(mem.state_dict())
    assert plain.tracks_raw and torch.equal(plain.raw_view(), mem.raw_view())


def _xbn_eq6(r, b):
    """Paper eq. 6, written out: (R - E[R]) / sigma[R] * sigma[B] + E[B], population std."""
    return (r - r.mean(0)) / r.std(0, correction=0) * b.std(0, correction=0) + b.mean(0)


def test_raw_view_is_what_was_enqueued_while_xbn_adapts_the_memory():
    """Known inputs: batches of 4 whose values are set by hand (a shift and a scale per step),
    memory 10 (wraps on the third step). The adapted memory follows eq. 6 step by step; the raw
    view holds every entry exactly as it was enqueued."""
    base = torch.tensor(
        [[1.0, 0.0, 2.0, -1.0, 0.5, 3.0], [0.0, 1.0, -2.0, 1.0, 1.5, 2.0],
         [2.0, -1.0, 0.0, 0.0, -0.5, 1.0], [-1.0, 2.0, 1.0, 3.0, 0.0, 0.0]],
        dtype=torch.float64,
    )  # fmt: skip
    labels = torch.tensor([0, 0, 1, 1])
    mem = variants.build("xbn", SupConLoss(), DIM, 10)
    mem.track_raw()
    assert mem.raw_view().shape == (0, DIM)
    raw, adapted = Slots(10), Slots(10)
    for step in range(5):
        x = base * (1.0 + 0.5 * step) + 0.25 * step
        n = mem.num_stored
        if n:
            adapted.emb[:n] = _xbn_eq6(adapted.emb[:n], x)
        mem(x, labels, indices=torch.arange(4) + 4 * step)
        raw.add(x, None, None)
        adapted.add(x, None, None)
        n = mem.num_stored
        assert mem.adapted_this_step is (step > 0)
        assert torch.equal(mem.raw_view(), raw.emb[:n]), step
        want = adapted.emb[:n]
        torch.testing.assert_close(mem.embedding_memory[:n], want, rtol=1e-12, atol=1e-12)
    # the adaptation did change what the loss sees: raw and adapted differ on the old entries
    assert not torch.allclose(mem.raw_view(), mem.embedding_memory[:n])
    untracked = variants.build("xbn", SupConLoss(), DIM, 10)
    untracked(base, labels)
    assert torch.equal(untracked.raw_view(), untracked.embedding_memory[:4])


def test_adapted_this_step_follows_the_delay():
    mem = variants.build("xbn", SupConLoss(), DIM, 20, delay_epochs=1)
    g = torch.Generator().manual_seed(6)
    seen = []
    for epoch in (0, 0, 1, 1):
        mem.set_epoch(epoch)
        mem(*_batch(g, 4))
        seen.append(mem.adapted_this_step)
    assert seen == [False, False, True, True]
    plain = variants.build("xbm", SupConLoss(), DIM, 20)
    plain(*_batch(g, 4))
    plain(*_batch(g, 4))
    assert plain.adapted_this_step is False


def test_reset_queue_clears_the_records():
    mem = variants.build("xbm", SupConLoss(), DIM, 8)
    mem.track_raw()
    _run(mem, torch.Generator().manual_seed(7), 2)
    mem.reset_queue()
    assert mem.enqueue_count == 0 and mem.num_stored == 0
    assert mem.index_memory.tolist() == mem.key_memory.tolist() == [-1] * 8
    assert mem.tracks_raw and mem.raw_memory.abs().sum() == 0
