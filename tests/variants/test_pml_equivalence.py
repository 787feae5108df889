"""The checks of PML's own CrossBatchMemory tests, rewritten for the variants, float32 and 64.

Each expectation is built here independently of the variant: the memory as a plain FIFO array
that wraps by index (as PML does), the pairs of the batch against it with a Python loop, self
comparisons removed by slot, then the inner loss called on the batch with the memory as reference.
"""

import pytest
import torch
from pytorch_metric_learning.losses import ContrastiveLoss, CrossBatchMemory, SupConLoss

import variants

from .conftest import batch_indices, build_any

TOL = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.float64: dict(rtol=1e-10, atol=1e-12)}
DTYPES = [torch.float32, torch.float64]
DIM = 8


def _batch(g, n, n_classes, dtype):
    x = torch.randn(n, DIM, generator=g, dtype=torch.float64)
    y = torch.randint(0, n_classes, (n,), generator=g)
    return x.to(dtype), y


class FifoReference:
    """The memory as PML defines it: slots (start + i) % size, the oldest overwritten first."""

    def __init__(self, size, dtype):
        self.emb = torch.zeros(size, DIM, dtype=dtype)
        self.lab = torch.zeros(size, dtype=torch.long)
        self.size, self.idx, self.filled = size, 0, False

    def add(self, x, y):
        slots = [(self.idx + i) % self.size for i in range(len(x))]
        for i, s in enumerate(slots):
            self.emb[s], self.lab[s] = x[i].detach(), y[i]
        new_idx = (self.idx + len(x)) % self.size
        self.filled = self.filled or new_idx <= self.idx
        self.idx = new_idx
        n = self.size if self.filled else self.idx
        return slots, self.emb[:n], self.lab[:n]


def _pairs(y, ref_y, self_slots=None):
    """All (anchor, positive) and (anchor, negative) pairs; an anchor never pairs with its own
    slot (its own just-enqueued copy)."""
    a1, p, a2, n = [], [], [], []
    for i in range(len(y)):
        for j in range(len(ref_y)):
            if self_slots is not None and j == self_slots[i]:
                continue
            if y[i] == ref_y[j]:
                a1.append(i), p.append(j)
            else:
                a2.append(i), n.append(j)
    return tuple(torch.tensor(v, dtype=torch.long) for v in (a1, p, a2, n))


INNER = {"contrastive": ContrastiveLoss, "supcon": SupConLoss}


@pytest.mark.parametrize("inner", sorted(INNER))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("memory_size,batch", [(25, 8), (16, 16), (30, 7)])
def test_loss_is_the_inner_loss_over_the_memory_as_it_wraps(inner, dtype, memory_size, batch):
    g = torch.Generator().manual_seed(memory_size * 100 + batch)
    mem = variants.build("xbm", INNER[inner](), DIM, memory_size)
    ref = FifoReference(memory_size, dtype)
    for step in range(9):  # 9 x 7 > 2 x 30: every case wraps at least twice, most mid-batch
        x, y = _batch(g, batch, 4, dtype)
        x.requires_grad_(True)
        got = mem(x, y)
        slots, e_mem, l_mem = ref.add(x, y)
        xr = x.detach().clone().requires_grad_(True)
        want = INNER[inner]()(xr, y, _pairs(y, l_mem, slots), e_mem, l_mem)
        assert got.dtype == dtype, step
        torch.testing.assert_close(got, want, **TOL[dtype])
        got.backward()
        want.backward()
        assert x.grad.dtype == dtype
        torch.testing.assert_close(x.grad, xr.grad, **TOL[dtype])
        # the queue: same contents, index and fill flag as the plain FIFO, in the caller's dtype
        assert mem.embedding_memory.dtype == dtype
        assert torch.equal(mem.embedding_memory, ref.emb), step
        assert torch.equal(mem.label_memory, ref.lab)
        assert (mem.queue_idx, mem.has_been_filled) == (ref.idx, ref.filled)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_memory_as_large_as_the_batch_is_the_plain_loss(dtype):
    """With memory_size = batch size the memory holds exactly the batch: the plain loss."""
    g = torch.Generator().manual_seed(1)
    mem = variants.build("xbm", ContrastiveLoss(), DIM, 12)
    for _ in range(3):
        x, y = _batch(g, 12, 3, dtype)
        torch.testing.assert_close(mem(x, y), ContrastiveLoss()(x, y), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_enqueue_mask_queues_the_masked_and_compares_the_rest(dtype):
    g = torch.Generator().manual_seed(2)
    mem = variants.build("xbm", ContrastiveLoss(), DIM, 20)
    ref = FifoReference(20, dtype)
    for step in range(7):
        x, y = _batch(g, 10, 3, dtype)
        mask = torch.rand(10, generator=g) < 0.5
        mask[0], mask[1] = True, False  # at least one of each
        got = mem(x, y, enqueue_mask=mask)
        _, e_mem, l_mem = ref.add(x[mask], y[mask])
        q, qy = x[~mask], y[~mask]
        want = ContrastiveLoss()(q, qy, _pairs(qy, l_mem), e_mem, l_mem)  # no self to remove
        assert got.dtype == dtype
        torch.testing.assert_close(got, want, **TOL[dtype])
        assert torch.equal(mem.embedding_memory, ref.emb), step
        assert (mem.queue_idx, mem.has_been_filled) == (ref.idx, ref.filled)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_xbm_equals_pml_in_the_callers_dtype(dtype):
    """PML keeps the memory in the embeddings' dtype; in float32 and float64 ours then agrees."""
    g = torch.Generator().manual_seed(3)
    ours = variants.build("xbm", SupConLoss(), DIM, 18)
    pml = CrossBatchMemory(SupConLoss(), DIM, memory_size=18)
    for _ in range(6):
        x, y = _batch(g, 8, 3, dtype)
        torch.testing.assert_close(ours(x, y), pml(x, y), **TOL[dtype])
    assert ours.embedding_memory.dtype == pml.embedding_memory.dtype == dtype


@pytest.mark.parametrize("name", sorted(variants.VARIANTS))
def test_every_variant_keeps_a_float64_caller_in_float64(name):
    g = torch.Generator().manual_seed(4)
    mem = build_any(name, SupConLoss(), DIM, 24)
    for step in range(4):
        x, y = _batch(g, 8, 3, torch.float64)
        x = torch.nn.functional.normalize(x, dim=1).requires_grad_(True)
        loss = mem(x, y, superclasses=y % 2, indices=batch_indices(step, 8))
        loss.backward()
        assert loss.dtype == x.grad.dtype == torch.float64 and torch.isfinite(loss)
    if name != "no_xbm":  # no_xbm never touches its memory
        assert mem.embedding_memory.dtype == torch.float64


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16], ids=str)
def test_half_precision_embeddings_keep_a_float32_memory(half):
    g = torch.Generator().manual_seed(5)
    mem = variants.build("xbn", SupConLoss(), DIM, 24)
    for _ in range(3):
        x, y = _batch(g, 8, 3, half)
        loss = mem(x, y)
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert mem.embedding_memory.dtype == torch.float32
    # under autocast too: a bf16 head output still leaves a float32 memory
    head = torch.nn.Linear(DIM, DIM)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        emb = head(torch.randn(8, DIM, generator=g))
        assert emb.dtype == torch.bfloat16
        mem(emb, y)
    assert mem.embedding_memory.dtype == torch.float32
