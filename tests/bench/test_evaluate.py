"""bench.evaluate against faiss brute force and plain sorting loops."""

from __future__ import annotations

import itertools
import math

import faiss
import numpy as np
import pytest
import torch

from bench.measure.evaluate import MERGE_EVERY, knn, knn_accuracy, recall_at_k

# The 16 vectors of {-0.5, 0.5}^4: unit norm exactly, every dot product a multiple of 0.25, so
# similarities are exact in float32 whatever the summation order and ties are real ties.
SIGNS = np.array(list(itertools.product([-0.5, 0.5], repeat=4)), dtype=np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _loop_neighbours(q: np.ndarray, g: np.ndarray, k: int, self_excluded: bool) -> list:
    """Plain loop: rank by (-cosine, gallery index) in float64."""
    qn, gn = q.astype(np.float64), g.astype(np.float64)
    qn /= np.linalg.norm(qn, axis=1, keepdims=True)
    gn /= np.linalg.norm(gn, axis=1, keepdims=True)
    out = []
    for i in range(len(qn)):
        cands = [j for j in range(len(gn)) if not (self_excluded and j == i)]
        sims = {j: float(np.dot(qn[i], gn[j])) for j in cands}
        out.append(sorted(cands, key=lambda j: (-sims[j], j))[:k])
    return out


def _recall_from_neighbours(neigh: list, q_labels, g_labels, ks) -> dict:
    hits = {
        k: sum(any(g_labels[j] == q_labels[i] for j in row[:k]) for i, row in enumerate(neigh))
        for k in ks
    }
    return {k: 100.0 * hits[k] / len(neigh) for k in ks}


def _faiss_neighbours(q: np.ndarray, g: np.ndarray, k: int, self_excluded: bool) -> list:
    """faiss IndexFlatIP; rows re-sorted by (-similarity, index) since faiss lists ties by
    decreasing index; for the self protocol search k+1 and drop self (or the last item)."""
    index = faiss.IndexFlatIP(g.shape[1])
    index.add(_unit(g))
    sims, ids = index.search(_unit(q), k + int(self_excluded))
    out = []
    for i in range(len(q)):
        row = [int(j) for _, j in sorted(zip(-sims[i], ids[i]))]
        if self_excluded:
            row = [j for j in row if j != i][:k]
        out.append(row)
    return out


def _ours(q, ql, ks, g=None, gl=None, **kw) -> dict:
    def as_t(a):
        return None if a is None else torch.from_numpy(np.asarray(a))

    return recall_at_k(as_t(q), as_t(ql), ks, gallery=as_t(g), gallery_labels=as_t(gl), **kw)


def _assert_recall_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], abs=1e-9), (k, a, b)


@pytest.mark.parametrize("self_protocol", [True, False])
def test_matches_faiss_on_random_embeddings(self_protocol):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((300, 32)).astype(np.float32)
    ql = rng.integers(0, 40, 300)
    g = q if self_protocol else rng.standard_normal((500, 32)).astype(np.float32)
    gl = ql if self_protocol else rng.integers(0, 40, 500)
    ks = (1, 10)
    expected = _recall_from_neighbours(_faiss_neighbours(q, g, 10, self_protocol), ql, gl, ks)
    got = _ours(q, ql, ks) if self_protocol else _ours(q, ql, ks, g, gl)
    _assert_recall_equal(got, expected)
    assert 0 < expected[1] < expected[10] < 100  # the inputs are not degenerate


@pytest.mark.parametrize("chunk_size", [None, 1, 7, 1000])
@pytest.mark.parametrize("self_protocol", [True, False])
def test_ties_follow_lower_index_rule(self_protocol, chunk_size):
    """Few distinct vectors: ties everywhere, also straddling the k boundary."""
    rng = np.random.default_rng(1)
    q = SIGNS[rng.integers(0, 16, 60)]
    ql = rng.integers(0, 5, 60)
    g = q if self_protocol else SIGNS[rng.integers(0, 16, 90)]
    gl = ql if self_protocol else rng.integers(0, 5, 90)
    ks = (1, 2, 5, 10, 30)
    neigh = _loop_neighbours(q, g, 30, self_protocol)
    expected = _recall_from_neighbours(neigh, ql, gl, ks)
    got = _ours(
        q,
        ql,
        ks,
        None if self_protocol else g,
        None if self_protocol else gl,
        chunk_size=chunk_size,
    )
    _assert_recall_equal(got, expected)
    sims, idx = knn(
        torch.from_numpy(q),
        30,
        gallery=None if self_protocol else torch.from_numpy(g),
        chunk_size=chunk_size,
    )
    assert idx.tolist() == neigh
    assert torch.all(sims[:, :-1] >= sims[:, 1:])


@pytest.mark.parametrize("self_protocol", [True, False])
def test_ties_among_duplicates_match_faiss(self_protocol):
    """Each vector has >= 12 exact duplicates, so the tied group at the k boundary is the top
    group, where faiss keeps the lowest indices as we do."""
    rng = np.random.default_rng(2)
    base = SIGNS[rng.choice(16, 5, replace=False)]
    q = np.repeat(base, 14, axis=0)[rng.permutation(70)]
    ql = rng.integers(0, 6, 70)
    g = q if self_protocol else np.repeat(base, 13, axis=0)[rng.permutation(65)]
    gl = ql if self_protocol else rng.integers(0, 6, 65)
    ks = (1, 10)
    by_faiss = _faiss_neighbours(q, g, 10, self_protocol)
    assert by_faiss == _loop_neighbours(q, g, 10, self_protocol)
    expected = _recall_from_neighbours(by_faiss, ql, gl, ks)
    got = _ours(q, ql, ks, None if self_protocol else g, None if self_protocol else gl)
    _assert_recall_equal(got, expected)


def test_recall_at_1_with_ties_matches_faiss():
    """For k = 1 faiss keeps the first-seen (lowest-index) maximum, whatever the ties."""
    rng = np.random.default_rng(3)
    q, g = SIGNS[rng.integers(0, 16, 50)], SIGNS[rng.integers(0, 16, 40)]
    ql, gl = rng.integers(0, 3, 50), rng.integers(0, 3, 40)
    expected = _recall_from_neighbours(_faiss_neighbours(q, g, 1, False), ql, gl, (1,))
    _assert_recall_equal(_ours(q, ql, (1,), g, gl), expected)


def _sorted_product(q: np.ndarray, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The tie rule by its definition: one plain product of the whole (normalised) set, self
    set to -inf, a stable descending sort of each row."""
    x = torch.nn.functional.normalize(torch.from_numpy(q), dim=1)
    sims = x @ x.T
    sims.fill_diagonal_(float("-inf"))
    values, indices = torch.sort(sims, dim=1, descending=True, stable=True)
    return values[:, :k], indices[:, :k]


@pytest.mark.parametrize("chunk_size", [None, 4, 9, 50])
@pytest.mark.parametrize("data", ["ties", "random"])
def test_self_tiles_match_one_sorted_product(data, chunk_size):
    """The self protocol's tiles (only those on and above the diagonal, transposed for the
    blocks below it) and their merge give the rows of one sorted product: the same neighbours
    in the same order, ties included; with 150 rows, chunk_size 4 and 9 make more blocks than
    MERGE_EVERY, so candidates are merged along the way too."""
    rng = np.random.default_rng(6)
    if data == "ties":
        q = SIGNS[rng.integers(0, 16, 150)]
    else:
        q = rng.standard_normal((150, 12)).astype(np.float32)
    assert MERGE_EVERY < 150 / 4  # chunk_size 4 and 9 merge along the way
    want_v, want_i = _sorted_product(q, 20)
    got_v, got_i = knn(torch.from_numpy(q), 20, chunk_size=chunk_size)
    assert torch.equal(got_i, want_i)
    if data == "ties" or chunk_size is None:  # exact sums, or the same product shapes
        assert torch.equal(got_v, want_v)
    else:  # BLAS may sum small blocks in another order
        torch.testing.assert_close(got_v, want_v, rtol=0, atol=1e-6)


def _min_gap(q: np.ndarray, g: np.ndarray, k: int, self_excluded: bool) -> float:
    """Smallest difference between consecutive similarities among each row's first k+1, in
    float64: how far the inputs are from a tie."""
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    gn = g / np.linalg.norm(g, axis=1, keepdims=True)
    sims = qn.astype(np.float64) @ gn.astype(np.float64).T
    if self_excluded:
        np.fill_diagonal(sims, -np.inf)
    top = -np.sort(-sims, axis=1)[:, : k + 1]
    return float(np.min(top[:, :-1] - top[:, 1:]))


@pytest.mark.parametrize("metric", ["ip", "l2"])
@pytest.mark.parametrize("chunk_size", [None, 48])
@pytest.mark.parametrize("self_protocol", [True, False])
def test_neighbours_match_faiss_flat_indexes(self_protocol, chunk_size, metric):
    """Without ties, the neighbour lists are faiss' exact brute force ones: IndexFlatIP, and
    IndexFlatL2 on the normalised vectors (the same order for unit vectors), over several
    tiles (chunk_size 48: 17 blocks of 800 rows, more than MERGE_EVERY) or blocks of queries."""
    rng = np.random.default_rng(8)
    q = rng.standard_normal((800, 16)).astype(np.float32)
    g = q if self_protocol else rng.standard_normal((900, 16)).astype(np.float32)
    k = 10
    # no ties, nor near-ties that float32 rounding (~1e-7 here) could swap
    assert _min_gap(q, g, k, self_protocol) > 2e-6
    index = faiss.IndexFlatIP(16) if metric == "ip" else faiss.IndexFlatL2(16)
    index.add(_unit(g))
    _, ids = index.search(_unit(q), k + int(self_protocol))
    if self_protocol:
        assert (ids[:, 0] == np.arange(len(q))).all()  # each query's nearest is itself
        ids = ids[:, 1:]
    _, got = knn(
        torch.from_numpy(q),
        k,
        gallery=None if self_protocol else torch.from_numpy(g),
        chunk_size=chunk_size,
    )
    assert got.tolist() == ids.tolist()


def test_unnormalised_inputs_and_chunking():
    rng = np.random.default_rng(4)
    q = rng.standard_normal((120, 8)).astype(np.float32)
    scaled = q * rng.uniform(0.1, 50.0, (120, 1)).astype(np.float32)
    ql = rng.integers(0, 10, 120)
    expected = _recall_from_neighbours(_faiss_neighbours(q, q, 10, True), ql, ql, (1, 5, 10))
    for chunk_size in (None, 1, 13):
        _assert_recall_equal(_ours(scaled, ql, (1, 5, 10), chunk_size=chunk_size), expected)


def test_hand_computed_recall():
    # angles 0, 10, 90, 100 degrees; labels a a b a
    ang = np.radians([0.0, 10.0, 90.0, 100.0])
    x = np.stack([np.cos(ang), np.sin(ang)], axis=1).astype(np.float32)
    y = np.array([0, 0, 1, 0])
    # nearest (self excluded): 0->1 (hit), 1->0 (hit), 2->3 (miss), 3->2 (miss)
    # second nearest: 3 -> 1 (hit); 2 is the only b, so it never hits
    assert _ours(x, y, (1, 2, 3)) == {1: 50.0, 2: 75.0, 3: 75.0}
    # gallery protocol: query at 93 degrees, gallery = x: nearest is 2 (b), then 3 (a)
    qq = np.array([[math.cos(math.radians(93.0)), math.sin(math.radians(93.0))]], np.float32)
    assert _ours(qq, np.array([0]), (1, 2), x, y) == {1: 0.0, 2: 100.0}


def test_knn_accuracy_hand_example():
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    train_y = torch.tensor([0, 1, 1])
    test = torch.tensor([[2.0, 0.0], [0.0, 3.0]])  # unnormalised on purpose
    test_y = torch.tensor([0, 1])
    # test 0: sims 1, 0, 0.8. T=1: class 0 gets e^1 = 2.72 < class 1 e^0 + e^0.8 = 3.23 -> wrong.
    # T=0.1: e^10 = 22026 > 1 + e^8 = 2982 -> right. test 1: sims 0, 1, 0.8 -> class 1 either way.
    assert knn_accuracy(train, train_y, test, test_y, k=3, temperature=1.0) == 50.0
    assert knn_accuracy(train, train_y, test, test_y, k=3, temperature=0.1) == 100.0
    assert knn_accuracy(train, train_y, test, test_y, k=1) == 100.0


def test_knn_accuracy_matches_loop():
    rng = np.random.default_rng(5)
    tr, te = rng.standard_normal((80, 6)), rng.standard_normal((30, 6))
    tr_y, te_y = rng.integers(0, 4, 80), rng.integers(0, 4, 30)
    neigh = _loop_neighbours(te, tr, 15, False)
    trn, ten = _unit(tr).astype(np.float64), _unit(te).astype(np.float64)
    correct = 0
    for i, row in enumerate(neigh):
        votes = [0.0] * 4
        for j in row:
            votes[tr_y[j]] += math.exp(float(ten[i] @ trn[j]) / 0.1)
        correct += votes.index(max(votes)) == te_y[i]
    got = knn_accuracy(
        torch.from_numpy(tr),
        torch.from_numpy(tr_y),
        torch.from_numpy(te),
        torch.from_numpy(te_y),
        k=15,
        temperature=0.1,
    )
    assert got == pytest.approx(100.0 * correct / 30)


X = torch.randn(6, 4)
Y = torch.arange(6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(queries=X, query_labels=Y, ks=(6,)), "k must be <= .* 5, got 6"),
        (dict(queries=X, query_labels=Y, ks=(0,)), "k must be a positive int, got 0"),
        (dict(queries=X, query_labels=Y, ks=()), "ks must name at least one k"),
        (dict(queries=X, query_labels=Y[:5], ks=(1,)), "query_labels must be .* length 6"),
        (dict(queries=X[0], query_labels=Y, ks=(1,)), "queries must be a 2D tensor"),
        (dict(queries=X[:0], query_labels=Y[:0], ks=(1,)), "queries must be non-empty"),
        (dict(queries=X, query_labels=Y, ks=(1,), gallery=X), "given together"),
        (
            dict(
                queries=X,
                query_labels=Y,
                ks=(1,),
                gallery=torch.randn(3, 5),
                gallery_labels=torch.arange(3),
            ),
            "gallery dim must equal queries dim 4, got 5",
        ),
        (
            dict(queries=X, query_labels=Y, ks=(4,), gallery=X[:3], gallery_labels=Y[:3]),
            "k must be <= .* 3, got 4",
        ),
        (
            dict(queries=X, query_labels=Y, ks=(1,), gallery=X, gallery_labels=Y[:2]),
            "gallery_labels must be .* length 6",
        ),
        (dict(queries=X, query_labels=Y, ks=(1,), chunk_size=0), "chunk_size must be .* got 0"),
        (dict(queries=X * float("nan"), query_labels=Y, ks=(1,)), "queries must be finite"),
    ],
)
def test_recall_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        recall_at_k(**kwargs)


def test_knn_accuracy_errors():
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        knn_accuracy(X, Y, X, Y, k=2, temperature=0)
    with pytest.raises(ValueError, match="k must be <= .* 6, got 7"):
        knn_accuracy(X, Y, X, Y, k=7)
    with pytest.raises(ValueError, match="non-negative"):
        knn_accuracy(X, Y - 1, X, Y, k=2)
