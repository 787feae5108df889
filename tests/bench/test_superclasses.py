"""k-means superclasses: recovered blobs, determinism, and SC-XBN on a dataset without them."""

from __future__ import annotations

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


def _same_partition(a: torch.Tensor, b: torch.Tensor) -> bool:
    pairs = {(int(x), int(y)) for x, y in zip(a, b)}
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_kmeans_recovers_separated_blobs():
    g = torch.Generator().manual_seed(1)
    truth = torch.arange(4).repeat_interleave(25)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    x = centres[truth] + 0.5 * torch.randn(100, 2, generator=g)
    got = kmeans(x, 4, seed=0)
    assert _same_partition(got, truth)
    assert torch.equal(got, kmeans(x, 4, seed=0))  # deterministic


def test_class_superclasses_cluster_class_means_and_default_k():
    emb = torch.tensor([[0.0, 0.0], [0.2, 0.0], [9.0, 9.0], [9.2, 9.0], [0.1, 0.1], [9.1, 9.1]])
    labels = torch.tensor([0, 0, 1, 1, 2, 3])
    sup = class_superclasses(emb, labels, 2, seed=0)
    assert sup[0] == sup[2] and sup[1] == sup[3] and sup[0] != sup[1]
    assert default_k(10) == 3 and default_k(2) == 2
    with pytest.raises(ValueError, match="k must be in 1..4"):
        kmeans(torch.zeros(4, 2), 5)


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


def test_sc_xbn_runs_on_cifar10_with_kmeans_superclasses(tmp_path):
    torch.set_num_threads(2)
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
