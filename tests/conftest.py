"""A tiny, learnable Fashion-MNIST-shaped dataset, written by the tests and prepared through
data_prep (nothing is downloaded): 10 classes, each a fixed random 28 x 28 pattern plus noise."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from bench import pinning
from data_prep import prepare

# The tests run pinned, as the command line does (bench/pinning.py): set before anything imports
# torch (nothing above does; tests/bench/test_pinning.py checks that it took effect).
PINNING = pinning.apply()


def _idx(array: np.ndarray) -> bytes:
    magic = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    return magic + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def write_tiny_fashion(root, n_train=24, n_test=8, seed=0):
    rng = np.random.default_rng(seed)
    patterns = rng.integers(0, 256, size=(10, 28, 28))
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.repeat(np.arange(10), n)
        noise = rng.normal(0, 60, size=(len(labels), 28, 28))
        images = np.clip(patterns[labels] + noise, 0, 255).astype(np.uint8)
        (root / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(images)))
        (root / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(_idx(labels.astype(np.uint8)))
        )
    return root


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    base = tmp_path_factory.mktemp("tiny")
    raw = write_tiny_fashion(base / "raw")
    prepare("fashion-mnist", raw, base / "data", log=lambda text, warning=False: None)
    return str(base / "data")


# a cpu-profile run shrunk to seconds: 12 images per class, batch 40, 1 warm-up + 2 main epochs
TINY = dict(
    train_per_class=12,
    epochs=2,
    warmup_epochs=1,
    embedding_size=16,
    drift_probe=8,
    lr_step_epochs=1,
)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` are skipped, with the reason, on a machine without CUDA."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (torch.cuda.is_available() is False)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
