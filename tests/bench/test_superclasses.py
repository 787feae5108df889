"""k-means superclasses: the optimal partition of a small set (by enumeration), recovered blobs,
class means from a plain loop, determinism, and SC-XBN on a dataset without superclasses."""

from __future__ import annotations

import itertools
import json
import pickle

import numpy as np
import pytest
import torch

from bench.config import make_config
from bench.engine.metric import run
from bench.engine.superclasses import class_superclasses, default_k, kmeans
from bench.store import RunDir
from data_prep import prepare

# three loose groups and one point (2.2, 1.6) between two of them: joining it to the first group
# gives the lowest sum of squares (9.5667), to the second 10.479
POINTS = [
    (0.0, 0.0),
    (1.0, 0.5),
    (0.5, 2.0),
    (3.0, 3.0),
    (4.0, 2.5),
    (3.5, 4.5),
    (7.0, 0.0),
    (6.0, 1.5),
    (2.2, 1.6),
]


def _sse(assign, k) -> float:
    """Within-cluster sum of squared distances to the cluster means (inf if a cluster is empty)."""
    total = 0.0
    for c in range(k):
        members = [p for p, a in zip(POINTS, assign, strict=True) if a == c]
        if not members:
            return float("inf")
        mean = [sum(p[d] for p in members) / len(members) for d in (0, 1)]
        total += sum((p[0] - mean[0]) ** 2 + (p[1] - mean[1]) ** 2 for p in members)
    return total


def _same_partition(a, b) -> bool:
    pairs = {(int(x), int(y)) for x, y in zip(a, b, strict=True)}
    return len(pairs) == len(set(list(a))) == len(set(list(b)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeans_finds_the_optimal_partition(seed):
    k = 3
    best = min(itertools.product(range(k), repeat=len(POINTS)), key=lambda a: _sse(a, k))
    assert _sse(best, k) == pytest.approx(9.566666666666666)  # the hand sum in POINTS' comment
    got = kmeans(torch.tensor(POINTS), k, seed=seed)
    assert got.dtype == torch.long and got.shape == (len(POINTS),)
    assert _same_partition(got.tolist(), best)


def test_kmeans_recovers_separated_blobs():
    g = torch.Generator().manual_seed(1)
    truth = torch.arange(4).repeat_interleave(25)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    x = centres[truth] + 0.5 * torch.randn(100, 2, generator=g)
    got = kmeans(x, 4, seed=0)
    assert _same_partition(got.tolist(), truth.tolist())
    assert torch.equal(got, kmeans(x, 4, seed=0))  # deterministic


def test_class_superclasses_cluster_the_class_means():
    """The superclasses of classes are k-means of their means, computed here by a plain loop."""
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 9, (60,), generator=g)
    emb = torch.tensor(POINTS)[labels] + 0.05 * torch.randn(60, 2, generator=g)
    means = torch.tensor(
        [
            [
                sum(float(emb[i, d]) for i in range(60) if labels[i] == c)
                / int((labels == c).sum())
                for d in (0, 1)
            ]
            for c in range(9)
        ]
    )
    sup = class_superclasses(emb, labels, 3, seed=0)
    assert sup.shape == (9,)
    assert torch.equal(sup, kmeans(means, 3, seed=0))
    assert _same_partition(sup.tolist(), [0, 0, 0, 1, 1, 1, 2, 2, 0])  # POINTS' optimum


def test_class_superclasses_hand_case_and_default_k():
    emb = torch.tensor([[0.0, 0.0], [0.2, 0.0], [9.0, 9.0], [9.2, 9.0], [0.1, 0.1], [9.1, 9.1]])
    labels = torch.tensor([0, 0, 1, 1, 2, 3])
    sup = class_superclasses(emb, labels, 2, seed=0)
    assert sup[0] == sup[2] and sup[1] == sup[3] and sup[0] != sup[1]
    assert default_k(10) == 3 and default_k(2) == 2 and default_k(100) == 10
    with pytest.raises(ValueError, match="k must be in 1..4"):
        kmeans(torch.zeros(4, 2), 5)


@pytest.fixture
def two_threads():
    """The trainer's thread count for the test; torch's global setting restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _write_cifar10(root, per_class=12, test_per_class=4, seed=0):
    rng = np.random.default_rng(seed)
    patterns = rng.integers(0, 256, size=(10, 3072))
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)

    def batch(n):
        labels = np.repeat(np.arange(10), n)
        data = np.clip(patterns[labels] + rng.normal(0, 40, (len(labels), 3072)), 0, 255)
        return {"data": data.astype(np.uint8), "labels": labels.tolist()}

    for b in range(1, 6):
        with open(base / f"data_batch_{b}", "wb") as f:
            pickle.dump(batch(per_class // 6 + 1 if b < 5 else per_class // 6), f)
    with open(base / "test_batch", "wb") as f:
        pickle.dump(batch(test_per_class), f)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    return root


@pytest.mark.slow  # a tiny training run, about 10 s
def test_sc_xbn_runs_on_cifar10_with_kmeans_superclasses(tmp_path, two_threads):
    raw = _write_cifar10(tmp_path / "raw")
    prepare("cifar10", raw, tmp_path / "data", log=lambda text, warning=False: None)
    cfg = make_config(
        "cifar10",
        "sc_xbn",
        0,
        "cpu",
        image_size=32,
        epochs=1,
        warmup_epochs=1,
        embedding_size=16,
        drift_probe=8,
        train_per_class=None,
        batch_size=20,
        m_per_class=2,
    )
    result = run(cfg, str(tmp_path / "data"), tmp_path / "results", progress=False)
    assert result["status"] == "done", result
    assert any("k-means (k=3)" in d for d in result["deviations"])
    assert json.loads(RunDir(tmp_path / "results", cfg).result.read_text())["status"] == "done"
