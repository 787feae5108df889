"""Delay, resume from a state_dict, and no NaN/inf on degenerate batches, for every variant."""

import io

import pytest
import torch
from pytorch_metric_learning.losses import SupConLoss
from pytorch_metric_learning.miners import PairMarginMiner

import variants

from .conftest import StepStream, batch_indices, build_any

NORMALISING = [v for v in variants.VARIANTS if "delay_epochs" in variants.variant_options(v)]


def _build(name, **kw):
    opts = {}
    if name in NORMALISING:
        opts["delay_epochs"] = 2
    if name == "axbn":
        opts["gain_interval"] = 3
    opts.update(kw)
    return build_any(name, SupConLoss(), 16, 40, PairMarginMiner(0.2, 0.8), **opts)


def _steps(mem, stream, n, start):
    losses = []
    for step in range(start, start + n):
        mem.set_epoch(step // 3)
        x, y, sc = stream()
        losses.append(mem(x, y, superclasses=sc, indices=batch_indices(step, len(x))).item())
    return losses


@pytest.mark.parametrize("name", variants.VARIANTS)
def test_resume_after_7_steps_gives_identical_next_10(name):
    whole = _build(name)
    full = _steps(whole, StepStream(seed=5), 17, 0)
    first = _build(name)
    s = StepStream(seed=5)
    _steps(first, s, 7, 0)
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    buf.seek(0)
    fresh = _build(name)
    fresh.load_state_dict(torch.load(buf, weights_only=False))
    assert fresh.queue_idx == first.queue_idx and fresh.has_been_filled == first.has_been_filled
    resumed = _steps(fresh, s, 10, 7)
    assert resumed == pytest.approx(full[7:], abs=1e-6)
    assert any(v > 0 for v in full[7:])


def test_delayed_xbn_is_xbm_before_and_xbn_after():
    delayed = variants.build(
        "delayed_xbn", SupConLoss(), 16, 40, PairMarginMiner(0.2, 0.8), delay_epochs=2
    )
    assert variants.build("delayed_xbn", SupConLoss(), 16, 40).delay_epochs == 15
    xbm = variants.build("xbm", SupConLoss(), 16, 40, PairMarginMiner(0.2, 0.8))
    sa, sb = StepStream(seed=2), StepStream(seed=2)
    for epoch in (0, 1):
        delayed.set_epoch(epoch)
        xbm.set_epoch(epoch)
        for _ in range(3):
            (xa, ya, _), (xb, yb, _) = sa(), sb()
            assert delayed(xa, ya).item() == pytest.approx(xbm(xb, yb).item(), abs=1e-7)
    assert torch.equal(delayed.embedding_memory, xbm.embedding_memory)
    xbn = variants.build("xbn", SupConLoss(), 16, 40, PairMarginMiner(0.2, 0.8))
    xbn.load_state_dict(delayed.state_dict())  # same memory at the switch
    differs = False
    for epoch in (2, 3):
        delayed.set_epoch(epoch)
        xbn.set_epoch(epoch)
        xbm.set_epoch(epoch)
        for _ in range(3):
            (xa, ya, _), (xb, yb, _) = sa(), sb()
            la = delayed(xa, ya).item()
            assert la == pytest.approx(xbn(xa, ya).item(), abs=1e-6)
            differs |= abs(la - xbm(xb, yb).item()) > 1e-4
    assert differs


def _degenerate_batches():
    g = torch.Generator().manual_seed(0)
    unit = lambda x: torch.nn.functional.normalize(x, dim=1)  # noqa: E731
    same = unit(torch.randn(1, 16, generator=g)).repeat(8, 1)
    return {
        "singletons": (unit(torch.randn(8, 16, generator=g)), torch.arange(8)),
        "identical": (same, torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])),
        "one_class": (unit(torch.randn(8, 16, generator=g)), torch.zeros(8, dtype=torch.long)),
        "one_sample": (unit(torch.randn(1, 16, generator=g)), torch.tensor([3])),
    }


@pytest.mark.parametrize("case", list(_degenerate_batches()))
@pytest.mark.parametrize("name", variants.VARIANTS)
def test_no_nan_or_inf(name, case):
    mem = _build(name, delay_epochs=0) if name in NORMALISING else _build(name)
    x, y = _degenerate_batches()[case]
    for step in range(4):  # first step: empty memory; later: the degenerate memory adapts
        idx = batch_indices(step, len(x))
        loss = mem(x.clone().requires_grad_(True), y, superclasses=y // 2, indices=idx)
        assert torch.isfinite(loss), (name, case, step)
        assert torch.isfinite(mem.embedding_memory).all(), (name, case, step)
