"""XBN, AXBN, centre and scaled XBN against the equations, computed independently."""

import math

import pytest
import torch
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.losses import SupConLoss
from pytorch_metric_learning.miners import PairMarginMiner

import variants

from .conftest import StepStream, make_loss_miner


def _fill(mem, stream, steps):
    for _ in range(steps):
        x, y, sc = stream()
        mem(x, y, superclasses=sc)


def _pop_std(x):
    m = x.mean(0)
    return ((x - m) ** 2).mean(0).sqrt()


def test_xbn_adapts_memory_to_batch_moments(stream):
    mem = variants.build("xbn", *make_loss_miner()[:1], 16, 36, make_loss_miner()[1])
    _fill(mem, stream, 3)  # 36 stored, full
    before = mem.embedding_memory.clone()
    x, y, _ = stream()
    adapted = variants.get_variant("xbn").adapt(mem, before.clone(), None, x, y, None, None)
    # per dimension an increasing affine map of what was stored: slope > 0, residual ~ 0
    for j in range(16):
        A = torch.stack([before[:, j], torch.ones(36)], 1).double()
        sol = torch.linalg.lstsq(A, adapted[:, j].double().unsqueeze(1)).solution
        resid = A @ sol - adapted[:, j].double().unsqueeze(1)
        assert sol[0, 0] > 0 and resid.abs().max() < 1e-5
    assert torch.allclose(adapted.mean(0), x.mean(0), atol=1e-5)
    assert torch.allclose(_pop_std(adapted), _pop_std(x), atol=1e-5)
    # and the module does exactly that on its next call: adapted entries except those overwritten
    mem(x, y)
    kept = [i for i in range(36) if i not in range(mem.queue_idx - 12, mem.queue_idx)]
    assert torch.allclose(mem.embedding_memory[kept], adapted[kept], atol=1e-6)


def test_axbn_with_r0_equals_xbn_step_for_step():
    loss, miner = make_loss_miner()
    a = variants.build("axbn", loss, 16, 36, miner, r=0.0, gain_interval=1)
    b = variants.build("xbn", SupConLoss(), 16, 36, PairMarginMiner(0.2, 0.8))
    sa, sb = StepStream(seed=3), StepStream(seed=3)
    for _ in range(12):
        (xa, ya, _), (xb, yb, _) = sa(), sb()
        assert torch.allclose(a(xa, ya), b(xb, yb), atol=1e-6)
    assert torch.allclose(a.embedding_memory, b.embedding_memory, atol=1e-5)


def test_axbn_follows_the_kalman_recursion_by_hand(stream):
    p0, q, r, batch = 1.0, 1.0, 0.01, 12
    mem = variants.build("axbn", SupConLoss(), 16, 48, None, p0=p0, q=q, r=r, gain_interval=100)
    x1, y1, _ = stream()
    mem(x1, y1)  # empty memory: nothing to adapt, no filter step
    x2, y2, _ = stream()
    mem(x2, y2)  # step 1 of the filter: state starts at the first observation
    assert torch.allclose(mem.kalman_mean, x2.mean(0), atol=1e-6)
    p_pred = p0 + q  # eq. 19
    k1 = p_pred / (p_pred + r / batch)  # eq. 20
    assert math.isclose(mem.kalman_gain, k1, rel_tol=1e-12)
    assert math.isclose(mem.kalman_p, (1 - k1) * p_pred, rel_tol=1e-12)  # eq. 22
    stored_before = mem.embedding_memory[:24].clone()
    x3, y3, _ = stream()
    mem(x3, y3)  # step 2: gain held (interval 100), state moves by K (eq. 21)
    u_mean = x2.mean(0) + k1 * (x3.mean(0) - x2.mean(0))
    u_std = _pop_std(x2) + k1 * (_pop_std(x3) - _pop_std(x2))
    assert torch.allclose(mem.kalman_mean, u_mean, atol=1e-6)
    assert torch.allclose(mem.kalman_std, u_std, atol=1e-6)
    expected = (stored_before - stored_before.mean(0)) / _pop_std(stored_before) * u_std + u_mean
    assert torch.allclose(mem.embedding_memory[:24], expected, atol=1e-5)  # eq. 23
    assert k1 > 0.999  # the paper's values: AXBN is almost XBN
    assert 2 / (2 + 0.01 / 64) > 0.9999  # and at the paper's batch of 64, closer still


def test_centre_xbn_is_eq_4_5(stream):
    mem = variants.build("centre_xbn", SupConLoss(), 16, 36)
    _fill(mem, stream, 2)
    before = mem.embedding_memory[:24].clone()
    x, y, _ = stream()
    mem(x, y)
    expected = before - before.mean(0) + x.mean(0)
    assert torch.allclose(mem.embedding_memory[:24], expected, atol=1e-6)


def test_scaled_xbn_is_xbn_then_unit_norm(stream):
    mem = variants.build("scaled_xbn", SupConLoss(), 16, 36)
    _fill(mem, stream, 2)
    before = mem.embedding_memory[:24].clone()
    x, y, _ = stream()
    mem(x, y)
    z = (before - before.mean(0)) / _pop_std(before) * _pop_std(x) + x.mean(0)
    expected = z / z.norm(dim=1, keepdim=True)
    assert torch.allclose(mem.embedding_memory[:24], expected, atol=1e-6)


def _first_adapting_losses(distance):
    out = {}
    for name in ("xbn", "scaled_xbn"):
        s = StepStream(seed=1, spread=0.2, batch=24)
        mem = variants.build(
            name, SupConLoss(), 16, 96, PairMarginMiner(0.2, 0.8, distance=distance)
        )
        x, y, _ = s()
        mem(x, y)  # fills, no adaptation yet: both memories identical
        x, y, _ = s()
        out[name] = mem(x, y).item()  # first adapting step
    return out


def test_scaled_equals_xbn_on_first_step_with_normalising_distances():
    losses = _first_adapting_losses(LpDistance(normalize_embeddings=True))
    assert losses["xbn"] > 0
    assert losses["scaled_xbn"] == pytest.approx(losses["xbn"], abs=1e-6)


def test_scaled_differs_from_xbn_at_once_with_raw_euclidean_miner():
    losses = _first_adapting_losses(LpDistance(normalize_embeddings=False))
    assert losses["xbn"] > 0
    assert abs(losses["scaled_xbn"] - losses["xbn"]) > 1e-3


@pytest.mark.parametrize("name", ["xbn", "scaled_xbn"])
def test_miner_distance_option_converts_margins(name):
    m = variants.build(
        name, SupConLoss(), 16, 48, PairMarginMiner(0.2, 0.8), miner_distance="cosine"
    ).miner
    assert m.pos_margin == pytest.approx(0.98) and m.neg_margin == pytest.approx(0.68)
    # on unit vectors the cosine miner keeps exactly the pairs of the Euclidean one
    s = StepStream(seed=1, spread=0.5)
    x, y, _ = s()
    eu = PairMarginMiner(0.2, 0.8)(x, y)
    co = m(x, y)
    assert all(torch.equal(a, b) for a, b in zip(eu, co, strict=True))
    raw = variants.build(
        name, SupConLoss(), 16, 48, PairMarginMiner(0.2, 0.8), miner_distance="euclidean_raw"
    ).miner
    assert raw.distance.normalize_embeddings is False
    with pytest.raises(ValueError, match="miner_distance must be one of"):
        variants.build(name, SupConLoss(), 16, 48, PairMarginMiner(), miner_distance="manhattan")


@pytest.mark.parametrize("n", [1, 7, 2048, 5000])
def test_moments_equal_torch_population_std(n):
    from variants.stats import moments

    x = torch.randn(n, 9, dtype=torch.float64) * 3 + 2
    mean, std = moments(x, chunk=1000)
    assert torch.allclose(mean, x.mean(0)) and torch.allclose(std, x.std(0, correction=0))
