"""variants.stats' segment reductions against plain Python loops over the rows."""

from __future__ import annotations

import math

import pytest
import torch

from variants.stats import segment_mean, segment_moments


def _loop_stats(x: torch.Tensor, seg: torch.Tensor, n: int):
    """Count, mean and population std of each segment, one row and one dimension at a time."""
    rows = x.tolist()
    ids = seg.tolist()
    counts, means, stds = [], [], []
    for s in range(n):
        members = [r for r, i in zip(rows, ids, strict=True) if i == s]
        counts.append(len(members))
        if not members:
            means.append([0.0] * x.shape[1])
            stds.append([0.0] * x.shape[1])
            continue
        mean = [sum(r[d] for r in members) / len(members) for d in range(x.shape[1])]
        var = [
            sum((r[d] - mean[d]) ** 2 for r in members) / len(members) for d in range(x.shape[1])
        ]
        means.append(mean)
        stds.append([math.sqrt(v) for v in var])
    return counts, means, stds


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    x = 3.0 + torch.randn(41, 5, generator=g, dtype=torch.float64)
    seg = torch.randint(0, 7, (41,), generator=g)
    seg[seg == 4] = 6  # segment 4 is empty, and so is 7 (n = 8)
    return x, seg, 8


def test_segment_mean_matches_loop(data):
    x, seg, n = data
    counts, means, _ = _loop_stats(x, seg, n)
    count, mean = segment_mean(x, seg, n)
    assert count.tolist() == counts and counts[4] == counts[7] == 0
    assert mean.dtype == torch.float64 and mean.shape == (n, 5)
    for got_row, want_row in zip(mean.tolist(), means, strict=True):
        assert got_row == pytest.approx(want_row, rel=1e-12)


def test_segment_moments_matches_loop(data):
    x, seg, n = data
    counts, means, stds = _loop_stats(x, seg, n)
    count, mean, std = segment_moments(x, seg, n)
    assert count.tolist() == counts
    for got, want in ((mean, means), (std, stds)):
        for got_row, want_row in zip(got.tolist(), want, strict=True):
            assert got_row == pytest.approx(want_row, rel=1e-12, abs=1e-12)


def test_segment_mean_hand():
    x = torch.tensor([[1.0, 2.0], [3.0, 6.0], [10.0, -1.0]])
    count, mean = segment_mean(x, torch.tensor([0, 0, 2]), 3)
    assert count.tolist() == [2.0, 0.0, 1.0]
    assert mean.tolist() == [[2.0, 4.0], [0.0, 0.0], [10.0, -1.0]]
