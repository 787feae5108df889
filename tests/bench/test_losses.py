"""``loss="xbm_contrastive"``: the official XBM objective (msight-tech/research-xbm), against a
plain loop written from the official code's rule, for the batch term, the memory term and XBM*."""

from __future__ import annotations

import pytest
import torch

import variants
from bench.config import make_config
from bench.engine.metric import build_memory
from bench.engine.registry import (
    build_loss,
    build_miner,
    xbm_contrastive_loss,
    xbm_contrastive_miner,
)
from tests.conftest import TINY

DIM = 8
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-10)}


def official(q, qy, ref, refy):
    """For each anchor i of the batch and each j of the reference set, on cosine similarity s:
    a positive (same label, s < 1 - 1e-5, which leaves out the anchor itself) adds 1 - s, a
    negative (other label, s > 0.5) adds s. The total is divided by the batch size. Also returns
    the numbers of pairs, so that a test can show it is not vacuous."""
    q = torch.nn.functional.normalize(q.double(), dim=1)
    ref = torch.nn.functional.normalize(ref.double(), dim=1)
    total, n_pos, n_neg = 0.0, 0, 0
    for i in range(len(q)):
        for j in range(len(ref)):
            s = float(q[i] @ ref[j])
            if qy[i] == refy[j] and s < 1 - 1e-5:
                total, n_pos = total + (1 - s), n_pos + 1
            elif qy[i] != refy[j] and s > 0.5:
                total, n_neg = total + s, n_neg + 1
    return total / len(q), n_pos, n_neg


def random_batch(g, n, dtype, dim=DIM):
    return torch.randn(n, dim, generator=g).to(dtype), torch.randint(0, 4, (n,), generator=g)


def clustered_batch(g, n, dtype, dim=DIM):
    """4 classes around nearby fixed centres: many positives, negatives on both sides of 0.5."""
    fixed = torch.Generator().manual_seed(dim)
    common = torch.randn(dim, generator=fixed)
    centres = common + 0.6 * torch.randn(4, dim, generator=fixed) * common.norm() / dim**0.5
    y = torch.arange(n) % 4
    noise = 0.25 * torch.randn(n, dim, generator=g) * centres[y].norm(dim=1, keepdim=True)
    x = centres[y] + noise
    return x.to(dtype), y


BATCHES = {"random": random_batch, "clustered": clustered_batch}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("kind", sorted(BATCHES))
def test_batch_term_equals_the_official_loop(kind, dtype):
    g = torch.Generator().manual_seed(0)
    loss_fn, miner = xbm_contrastive_loss(), xbm_contrastive_miner()
    pairs = [0, 0]
    for _ in range(4):
        x, y = BATCHES[kind](g, 16, dtype)
        got = loss_fn(x, y, miner(x, y))
        want, n_pos, n_neg = official(x, y, x, y)
        assert got.dtype == dtype
        torch.testing.assert_close(got, torch.tensor(want, dtype=dtype), **TOL[dtype])
        pairs[0], pairs[1] = pairs[0] + n_pos, pairs[1] + n_neg
    assert pairs[0] > 0 and pairs[1] > 0  # both kinds of pairs contributed


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("kind", sorted(BATCHES))
def test_memory_term_equals_the_official_loop(kind, dtype):
    """The plain memory over the official loss: reference = the memory (the batch included, as
    the official code enqueues before its memory loss), the last ``size`` embeddings enqueued."""
    g = torch.Generator().manual_seed(1)
    size = 40
    mem = variants.build("xbm", xbm_contrastive_loss(), DIM, size, xbm_contrastive_miner())
    seen_x, seen_y, n_neg = [], [], 0
    for _ in range(6):  # 6 x 12 > 40: the memory wraps
        x, y = BATCHES[kind](g, 12, dtype)
        got = mem(x, y)
        seen_x.append(x), seen_y.append(y)
        ref_x, ref_y = torch.cat(seen_x)[-size:], torch.cat(seen_y)[-size:]
        want, _, neg = official(x, y, ref_x, ref_y)
        torch.testing.assert_close(got, torch.tensor(want, dtype=dtype), **TOL[dtype])
        n_neg += neg
    assert n_neg > 0


@pytest.mark.parametrize("weight", [1.0, 0.5])
def test_xbm_star_is_batch_plus_memory_term(weight):
    g = torch.Generator().manual_seed(2)
    size = 30
    mem = variants.build(
        "xbm_star", xbm_contrastive_loss(), DIM, size, xbm_contrastive_miner(), memory_weight=weight
    )
    seen_x, seen_y = [], []
    for _ in range(5):
        x, y = clustered_batch(g, 12, torch.float32)
        got = mem(x, y)
        seen_x.append(x), seen_y.append(y)
        batch, _, _ = official(x, y, x, y)
        memory, _, _ = official(x, y, torch.cat(seen_x)[-size:], torch.cat(seen_y)[-size:])
        torch.testing.assert_close(got, torch.tensor(batch + weight * memory), rtol=1e-5, atol=1e-5)


def test_no_pair_is_a_zero_loss_with_a_gradient():
    x = torch.nn.functional.normalize(torch.eye(4, DIM), dim=1).requires_grad_(True)
    y = torch.arange(4)  # one sample per class, orthogonal: no positive, no negative above 0.5
    loss = xbm_contrastive_loss()(x, y, xbm_contrastive_miner()(x, y))
    loss.backward()
    assert loss.item() == 0 and torch.equal(x.grad, torch.zeros_like(x))


def _cfg(**over):
    return make_config("fashion-mnist", "xbm_star", 0, "cpu", None, **{**TINY, **over})


def test_the_config_name_builds_the_official_loss_and_selection():
    cfg = _cfg(loss="xbm_contrastive")
    loss, miner = build_loss(cfg), build_miner(cfg)  # what the warm-up uses
    assert (loss.pos_margin, loss.neg_margin) == (1.0, 0.0)
    assert (miner.pos_margin, miner.neg_margin) == (1 - 1e-5, 0.5)
    assert type(miner.distance).__name__ == type(loss.distance).__name__ == "CosineSimilarity"


@pytest.mark.parametrize("miner_distance", ["euclidean", "cosine"])
def test_the_engine_memory_equals_the_official_batch_plus_memory_loss(miner_distance):
    """Through build_memory, with the profile's miner_distance converting the selection: on unit
    vectors (every distance here normalises) it is the official one."""
    cfg = _cfg(loss="xbm_contrastive", miner_distance=miner_distance)
    mem = build_memory(cfg, 240)
    g = torch.Generator().manual_seed(3)
    seen_x, seen_y = [], []
    for _ in range(4):
        x, y = clustered_batch(g, 12, torch.float32, cfg.embedding_size)
        got = mem(x, y)
        seen_x.append(x), seen_y.append(y)
        rx, ry = torch.cat(seen_x)[-mem.memory_size :], torch.cat(seen_y)[-mem.memory_size :]
        want = official(x, y, x, y)[0] + official(x, y, rx, ry)[0]
        torch.testing.assert_close(got, torch.tensor(want), rtol=1e-5, atol=1e-5)
