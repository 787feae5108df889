"""bench.diagnostics against plain Python loops and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.measure import diagnostics as D
from bench.measure.diagnostics import drift, inter_distance, intra_distance, superclass_topk


def _dist(a, b) -> float:
    return math.sqrt(sum((float(x) - float(y)) ** 2 for x, y in zip(a, b, strict=True)))


def _mean_vec(rows) -> list:
    return [sum(float(r[d]) for r in rows) / len(rows) for d in range(len(rows[0]))]


@pytest.fixture
def rand():
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((37, 5))
    labels = rng.integers(0, 6, 37)
    return emb, labels


def test_drift_matches_loop(rand):
    emb, _ = rand
    prev = emb + np.random.default_rng(1).normal(0, 0.1, emb.shape)
    d = [_dist(a, b) for a, b in zip(emb, prev, strict=True)]
    mean, mx = drift(torch.from_numpy(emb).float(), torch.from_numpy(prev).float())
    assert mean == pytest.approx(sum(d) / len(d), rel=1e-5)
    assert mx == pytest.approx(max(d), rel=1e-5)


def test_drift_hand():
    now = torch.tensor([[3.0, 4.0], [1.0, 1.0]])
    prev = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    assert drift(now, prev) == (3.0, 5.0)  # distances 5 and 1


@pytest.mark.parametrize("chunk_size", [None, 1, 5, 100])
def test_inter_distance_matches_loop(rand, chunk_size):
    emb, _ = rand
    pairs = [_dist(emb[i], emb[j]) for i in range(len(emb)) for j in range(i + 1, len(emb))]
    got = inter_distance(torch.from_numpy(emb).float(), chunk_size=chunk_size)
    assert got == pytest.approx(sum(pairs) / len(pairs), rel=1e-5)


@pytest.mark.parametrize("chunk_size", [None, 7, 64, 299])
def test_inter_distance_blocks_match_float64(chunk_size):
    """Row blocks (each computing only its columns >= its first row) cover every pair i < j
    once: 300 points with duplicates (zero distances) against numpy in float64."""
    rng = np.random.default_rng(2)
    emb = rng.standard_normal((300, 8)).astype(np.float32)
    emb[50:60] = emb[7]
    x = emb.astype(np.float64)
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    want = d[np.triu_indices(300, k=1)].mean()
    got = inter_distance(torch.from_numpy(emb), chunk_size=chunk_size)
    assert got == pytest.approx(want, rel=1e-6)


def test_inter_distance_hand():
    # unit square corners: 4 sides of 1, 2 diagonals of sqrt(2)
    sq = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert inter_distance(sq) == pytest.approx((4 + 2 * math.sqrt(2)) / 6)


def test_inter_distance_subsample_is_seeded(rand):
    emb = torch.from_numpy(rand[0])
    a = inter_distance(emb, max_points=10, seed=3)
    assert a == inter_distance(emb, max_points=10, seed=3)
    keep = torch.randperm(37, generator=torch.Generator().manual_seed(3))[:10].tolist()
    sub = [rand[0][i] for i in keep]  # the documented subset: first max_points of a seeded perm
    pairs = [_dist(sub[i], sub[j]) for i in range(10) for j in range(i + 1, 10)]
    assert a == pytest.approx(sum(pairs) / len(pairs), rel=1e-9)
    assert inter_distance(emb, max_points=37) == pytest.approx(inter_distance(emb), rel=1e-12)


def test_intra_distance_matches_loop(rand):
    emb, labels = rand
    labels = labels * 7 - 3  # arbitrary, non-contiguous label values
    total = 0.0
    for c in set(labels.tolist()):
        rows = [emb[i] for i in range(len(emb)) if labels[i] == c]
        mu = _mean_vec(rows)
        total += sum(_dist(r, mu) for r in rows)
    got = intra_distance(torch.from_numpy(emb).float(), torch.from_numpy(labels))
    assert got == pytest.approx(total / len(emb), rel=1e-5)


def test_intra_distance_hand():
    emb = torch.tensor([[0.0, 0.0], [2.0, 0.0], [5.0, 5.0]])
    # class 0 mean (1, 0): distances 1 and 1; class 1 is a singleton: 0
    assert intra_distance(emb, torch.tensor([0, 0, 1])) == pytest.approx(2 / 3)


def test_superclass_topk_matches_loop(rand):
    emb, sc = rand
    groups = sorted(set(sc.tolist()))
    means = {c: _mean_vec([emb[i] for i in range(len(emb)) if sc[i] == c]) for c in groups}
    ks = (1, 2, 3, 4, 5, 9)
    hits = dict.fromkeys(ks, 0)
    for i in range(len(emb)):
        order = sorted(groups, key=lambda c: (_dist(emb[i], means[c]), c))
        for k in ks:
            hits[k] += sc[i] in order[:k]
    got = superclass_topk(torch.from_numpy(emb), torch.from_numpy(sc), ks=ks)
    assert got == {k: pytest.approx(100.0 * hits[k] / len(emb)) for k in ks}
    assert got[9] == 100.0  # 6 superclasses: k = 9 is clipped to 6


def test_superclass_topk_hand():
    # superclass 0 = {(0,0), (2,0)} mean (1,0); superclass 1 = {(4,0), (10,0)} mean (7,0).
    # (0,0): 1 vs 7 -> own first. (2,0): 1 vs 5 -> own. (4,0): 3 to sc0, 3 to sc1: a tie, the
    # lower id (sc0) ranks first -> own is second. (10,0): own first.
    emb = torch.tensor([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0], [10.0, 0.0]])
    got = superclass_topk(emb, torch.tensor([0, 0, 1, 1]), ks=(1, 2, 3))
    assert got == {1: 75.0, 2: 100.0, 3: 100.0}


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: drift(torch.zeros(3, 2), torch.zeros(4, 2)),
            r"same shape, got \(3, 2\) and \(4, 2\)",
        ),
        (lambda: drift(torch.zeros(0, 2), torch.zeros(0, 2)), "at least 1 row"),
        (lambda: drift(torch.zeros(3), torch.zeros(3)), "2D tensor"),
        (lambda: inter_distance(torch.zeros(1, 2)), r"at least 2 row.*\(1, 2\)"),
        (lambda: inter_distance(torch.zeros(5, 2), max_points=1), "max_points .* got 1"),
        (lambda: inter_distance(torch.zeros(5, 2), chunk_size=0), "chunk_size .* got 0"),
        (lambda: intra_distance(torch.zeros(5, 2), torch.zeros(4)), "labels .* length 5"),
        (
            lambda: superclass_topk(torch.zeros(5, 2), torch.zeros(5), ks=(0,)),
            "positive int, got 0",
        ),
        (lambda: superclass_topk(torch.zeros(5, 2), torch.zeros(5), ks=()), "at least one k"),
        (
            lambda: superclass_topk(torch.zeros(5, 2), torch.zeros(2, 2)),
            "superclasses must be a 1D",
        ),
    ],
)
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("seed", range(5))
def test_group_means_against_a_loop(seed):
    """Mean per group by a plain Python loop (float64 sums), empty groups 0; and the same tensor
    bit for bit as the index_add_ / count form the records were made with."""
    g = torch.Generator().manual_seed(seed)
    n, d, k = 200 + seed, 7, 13
    x = torch.randn(n, d, generator=g)
    ids = torch.randint(0, k - 1, (n,), generator=g)  # group k - 1 stays empty
    got = D.group_means(x, ids, k)
    for c in range(k):
        rows = [x[i].double() for i in range(n) if ids[i] == c]
        want = sum(rows) / len(rows) if rows else torch.zeros(d, dtype=torch.float64)
        assert torch.allclose(got[c].double(), want, atol=1e-6)
    count = torch.bincount(ids, minlength=k).float().clamp_min(1).unsqueeze(1)
    assert torch.equal(got, torch.zeros(k, d).index_add_(0, ids, x) / count)
