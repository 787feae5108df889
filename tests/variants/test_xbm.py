"""XBM must equal PML's CrossBatchMemory: same losses and same embedding gradients."""

import pytest
import torch
from pytorch_metric_learning.losses import CrossBatchMemory, SupConLoss
from pytorch_metric_learning.miners import PairMarginMiner

import variants

from .conftest import StepStream


@pytest.mark.parametrize("use_miner", [True, False])
def test_xbm_equals_pml_over_30_steps_wrapping_twice(use_miner):
    memory_size, batch = 44, 12  # 30 x 12 / 44 > 8 wraps, and batches straddle the end
    ours = variants.build(
        "xbm", SupConLoss(), 16, memory_size, PairMarginMiner(0.2, 0.8) if use_miner else None
    )
    ref = CrossBatchMemory(
        SupConLoss(),
        16,
        memory_size=memory_size,
        miner=PairMarginMiner(0.2, 0.8) if use_miner else None,
    )
    stream = StepStream(batch=batch)
    nonzero = 0
    for step in range(30):
        x, y, _ = stream()
        a = x.clone().requires_grad_(True)
        b = x.clone().requires_grad_(True)
        la, lb = ours(a, y), ref(b, y)
        la.backward()
        lb.backward()
        assert torch.allclose(la, lb, atol=1e-6, rtol=0), step
        assert torch.allclose(a.grad, b.grad, atol=1e-6, rtol=0), step
        nonzero += int(lb.item() > 0)
        assert ours.queue_idx == ref.queue_idx and ours.has_been_filled == ref.has_been_filled
    assert torch.equal(ours.label_memory, ref.label_memory)
    assert torch.allclose(ours.embedding_memory, ref.embedding_memory)
    assert nonzero >= 20  # the comparison is not vacuous: the loss is mostly non-zero


def test_enqueue_mask_mode_equals_pml():
    ours = variants.build("xbm", SupConLoss(), 16, 40)
    ref = CrossBatchMemory(SupConLoss(), 16, memory_size=40)
    stream = StepStream(batch=12)
    for _ in range(8):
        x, y, _ = stream()
        mask = torch.zeros(12, dtype=torch.bool)
        mask[6:] = True  # second half enqueued (the keys), first half compared (the queries)
        la, lb = ours(x, y, enqueue_mask=mask), ref(x, y, enqueue_mask=mask)
        assert torch.allclose(la, lb, atol=1e-6, rtol=0)


def test_memory_stays_float32_under_half_embeddings():
    mem = variants.build("xbn", SupConLoss(), 16, 40, PairMarginMiner(0.2, 0.8))
    stream = StepStream()
    for _ in range(3):
        x, y, _ = stream()
        loss = mem(x.half(), y)
        assert torch.isfinite(loss)
    assert mem.embedding_memory.dtype == torch.float32
