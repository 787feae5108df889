"""MAP@R and R-Precision of ``retrieval_metrics`` against pytorch-metric-learning's
AccuracyCalculator, a hand-computed example, and Recall@K unchanged by the longer search."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

import bench.measure.evaluate as evaluate
from bench.measure.evaluate import recall_at_k, retrieval_metrics

# the 16 vectors of {-0.5, 0.5}^4: every cosine a multiple of 0.25, so ties are exact ties
SIGNS = np.array(list(itertools.product([-0.5, 0.5], repeat=4)), dtype=np.float32)
METRICS = ("mean_average_precision_at_r", "r_precision")


def loop_knn(query, k, reference, ref_includes_query):
    """A plain loop as AccuracyCalculator's knn_func: rank by (-cosine, reference index) in
    float64, the query's own row left out when the reference holds the queries."""
    q = query.double().numpy()
    r = reference.double().numpy()
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    r = r / np.linalg.norm(r, axis=1, keepdims=True)
    rows = []
    for i in range(len(q)):
        cands = [j for j in range(len(r)) if not (ref_includes_query and j == i)]
        rows.append(sorted(cands, key=lambda j: (-float(q[i] @ r[j]), j))[:k])
    indices = torch.tensor(rows, dtype=torch.long)
    return torch.zeros(indices.shape), indices


def pml(q, ql, g=None, gl=None, knn_func=None) -> dict[str, float]:
    """AccuracyCalculator's MAP@R and R-Precision in percent (k = the largest class)."""
    calc = AccuracyCalculator(include=METRICS, k="max_bin_count", knn_func=knn_func)
    if g is None:
        got = calc.get_accuracy(q, ql)
    else:
        got = calc.get_accuracy(q, ql, g, gl, ref_includes_query=False)
    return {"map@r": 100 * got[METRICS[0]], "r_precision": 100 * got[METRICS[1]]}


def ours(q, ql, g=None, gl=None, ks=(1,), **kw) -> dict[str, float]:
    gallery = None if g is None else torch.as_tensor(g)
    labels = None if gl is None else torch.as_tensor(gl)
    return retrieval_metrics(torch.as_tensor(q), torch.as_tensor(ql), ks, gallery, labels, **kw)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_embeddings_self_protocol(seed):
    rng = np.random.default_rng(seed)
    emb = unit(rng.normal(size=(120, 8)))
    labels = rng.integers(0, 9, size=120)  # classes of very different sizes
    want = pml(emb, labels)  # PML's default knn (faiss L2 on unit vectors = cosine order)
    got = ours(emb, labels, chunk_size=17)
    for m in ("map@r", "r_precision"):
        assert got[m] == pytest.approx(want[m], rel=1e-12, abs=1e-12), m


@pytest.mark.parametrize("seed", [0, 1])
def test_random_embeddings_query_gallery(seed):
    rng = np.random.default_rng(seed)
    q, g = unit(rng.normal(size=(40, 6))), unit(rng.normal(size=(90, 6)))
    ql, gl = rng.integers(0, 6, size=40), rng.integers(0, 5, size=90)  # label 5: no gallery item
    assert (ql == 5).any()
    want = pml(q, ql, g, gl)
    got = ours(q, ql, g, gl, chunk_size=7)
    for m in ("map@r", "r_precision"):
        assert got[m] == pytest.approx(want[m], rel=1e-12, abs=1e-12), m


@pytest.mark.parametrize("chunk_size", [None, 3, 5, 16])
def test_tied_embeddings_self_protocol(chunk_size):
    rng = np.random.default_rng(3)
    emb = SIGNS[rng.integers(0, len(SIGNS), size=70)]  # many exact duplicates and equal cosines
    labels = rng.integers(0, 4, size=70)
    want = pml(emb, labels, knn_func=loop_knn)
    got = ours(emb, labels, chunk_size=chunk_size)
    for m in ("map@r", "r_precision"):
        assert got[m] == pytest.approx(want[m], rel=1e-12, abs=1e-12), m


@pytest.mark.parametrize("chunk_size", [None, 4])
def test_tied_embeddings_query_gallery(chunk_size):
    rng = np.random.default_rng(4)
    q = SIGNS[rng.integers(0, len(SIGNS), size=30)]
    g = SIGNS[rng.integers(0, len(SIGNS), size=55)]
    ql, gl = rng.integers(0, 4, size=30), rng.integers(0, 3, size=55)  # label 3: lone queries
    want = pml(q, ql, g, gl, knn_func=loop_knn)
    got = ours(q, ql, g, gl, chunk_size=chunk_size)
    for m in ("map@r", "r_precision"):
        assert got[m] == pytest.approx(want[m], rel=1e-12, abs=1e-12), m


def test_hand_computed_example():
    # gallery on a circle at angles 0, 10, 20, 30, 40 degrees; labels a a b a b
    angles = np.radians([0, 10, 20, 30, 40])
    g = np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)
    gl = np.array([0, 0, 1, 0, 1])
    # query at -5 degrees, label a: neighbours 0 (a), 1 (a), 2 (b), 3 (a); R = 3
    # relevant ranks 1, 2 within R: precisions 1/1, 2/2 -> MAP@R = 2/3, R-Precision = 2/3
    # query at 45 degrees, label b: neighbours 4 (b), 3 (a); R = 2 -> MAP@R = 1/2, R-Prec = 1/2
    q = np.array([[np.cos(-0.0873), np.sin(-0.0873)], [np.cos(0.785), np.sin(0.785)]])
    got = ours(q.astype(np.float32), np.array([0, 1]), g, gl)
    assert got["map@r"] == pytest.approx(100 * (2 / 3 + 1 / 2) / 2)
    assert got["r_precision"] == pytest.approx(100 * (2 / 3 + 1 / 2) / 2)


def test_map_at_r_below_r_precision_when_a_match_comes_late():
    # self protocol: class a = items 0, 1, 2 at 0, 0.8 and 3 degrees, class b = item 3 at 2
    angles = np.radians([0, 0.8, 3, 2])
    emb = np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)
    labels = np.array([0, 0, 0, 1])
    # R = 2 for items 0-2. item 0: 1 (a), 3 (b): MAP 1/2, RP 1/2; item 1: 0 (a), 3 (b): the
    # same; item 2: 3 (b), 1 (a): MAP (1/2) / 2 = 1/4, RP 1/2; item 3 (b, R = 0) left out
    got = ours(emb, labels)
    assert got["map@r"] == pytest.approx(100 * (1 / 2 + 1 / 2 + 1 / 4) / 3, rel=1e-9)
    assert got["r_precision"] == pytest.approx(100 * (1 / 2 + 1 / 2 + 1 / 2) / 3, rel=1e-9)


@pytest.mark.parametrize("chunk_size", [None, 2, 3, 7])
@pytest.mark.parametrize("self_protocol", [True, False])
def test_recall_bit_identical_with_the_longer_search(chunk_size, self_protocol):
    """Large classes make the search far longer than max(ks); on tied data the first max(ks)
    neighbours, hence Recall@K, are those of recall_at_k's shorter search and of a plain loop."""
    rng = np.random.default_rng(5)
    q = SIGNS[rng.integers(0, len(SIGNS), size=60)]
    ql = rng.integers(0, 2, size=60)  # two classes of ~30: k about 30, ks up to 4
    g, gl = (None, None) if self_protocol else (SIGNS[rng.integers(0, 16, size=50)], ql[:50])
    ks = (1, 2, 4)
    got = ours(q, ql, g, gl, ks=ks, chunk_size=chunk_size)
    before = recall_at_k(
        torch.as_tensor(q),
        torch.as_tensor(ql),
        ks,
        None if g is None else torch.as_tensor(g),
        None if gl is None else torch.as_tensor(gl),
        chunk_size=chunk_size,
    )
    ref = q if g is None else g
    ref_labels = ql if gl is None else gl
    _, rows = loop_knn(torch.as_tensor(q), max(ks), torch.as_tensor(ref), self_protocol)
    for k in ks:
        assert got[f"recall@{k}"] == before[k]  # bit for bit
        hits = sum(ql[i] in ref_labels[row[:k].numpy()] for i, row in enumerate(rows))
        assert got[f"recall@{k}"] == 100.0 * hits / len(q)


def test_classes_beyond_the_cap_give_nan(monkeypatch):
    monkeypatch.setattr(evaluate, "R_CAP", 3)
    labels = np.array([0] * 5 + [1] * 2)
    emb = unit(np.random.default_rng(0).normal(size=(7, 3)))
    got = ours(emb, labels, ks=(1, 2))
    assert math.isnan(got["map@r"]) and math.isnan(got["r_precision"])
    assert got["recall@2"] == recall_at_k(torch.as_tensor(emb), torch.as_tensor(labels), [2])[2]


def test_no_query_class_in_the_gallery_gives_nan():
    rng = np.random.default_rng(0)
    got = ours(unit(rng.normal(size=(4, 3))), [7] * 4, unit(rng.normal(size=(5, 3))), [1] * 5)
    assert math.isnan(got["map@r"]) and math.isnan(got["r_precision"])
    assert got["recall@1"] == 0.0
