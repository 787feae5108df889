"""Augmentation draws as a function of (run seed, key), never of a global generator.

Every training sample of an epoch gets a key, ``pack(epoch, position)``: its position in that
epoch's sampler order and the epoch. Its random draws (the flip of the array path; every draw of
the timm and torchvision transforms of the loader path; MoCo's two views) come from
``draw_seed(seed, key)`` alone, so the memory can store the key beside each entry and the probe
re-create exactly the input the training forward saw, and the images do not depend on the number
of loader workers or on what else drew from the global generators.

The packing (int64, two's complement): ``key = epoch * 2**32 + position``, with ``epoch`` in
[-2**31, 2**31) and ``position`` in [0, 2**32 - 1); ``epoch = key >> 32`` (arithmetic shift) and
``position = key & (2**32 - 1)``. The epoch codes are the lifecycle's seeding epochs
(bench.engine.lifecycle.seed_everything): main epoch e = 0, 1, ... (0-based: the row of epoch
e + 1 in metrics.csv), warm-up epoch w -> -1 - w (``warmup_epoch``), and the memory prefill
``PREFILL_EPOCH`` = -2**31, so no two phases share a key. ``NO_KEY`` = -1 (epoch -1, position
2**32 - 1, which no sample has) marks a sample drawn without a key (``augment_draws="global"``).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

EPOCH_SHIFT = 32
POSITION_LIMIT = 2**EPOCH_SHIFT - 1  # positions 0 .. 2**32 - 2: NO_KEY is never a sample's key
EPOCH_RANGE = (-(2**31), 2**31)
PREFILL_EPOCH = -(2**31)  # the lowest code: below every warm-up epoch (-1 - w)
NO_KEY = -1

_MASK64 = (1 << 64) - 1


def warmup_epoch(w: int) -> int:
    """The key epoch of warm-up epoch ``w`` (0-based): its seeding epoch, -1 - w."""
    return -1 - w


def pack(epoch: int, positions: torch.Tensor) -> torch.Tensor:
    """The keys (int64) of ``positions`` in ``epoch``; see the module for the packing."""
    if not EPOCH_RANGE[0] <= epoch < EPOCH_RANGE[1]:
        raise ValueError(f"epoch must lie in [-2**31, 2**31), got {epoch}")
    positions = torch.as_tensor(positions, dtype=torch.long)
    if len(positions) and (positions.min() < 0 or positions.max() >= POSITION_LIMIT):
        raise ValueError(
            f"positions must lie in [0, 2**32 - 1), got {positions.min()}..{positions.max()}"
        )
    return epoch * 2**EPOCH_SHIFT + positions


def unpack(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(epochs, positions)`` of ``keys``: the inverse of ``pack``."""
    keys = torch.as_tensor(keys, dtype=torch.long)
    return keys >> EPOCH_SHIFT, keys & POSITION_LIMIT


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function (Steele, Lea & Flood 2014; the finaliser of Java's
    SplittableRandom), on uint64 arrays: a bijection of 64-bit words that mixes every bit."""
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps modulo 2**64, as intended
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _splitmix64_int(z: int) -> int:
    """``_splitmix64`` of one word in Python integers (a numpy call per item costs 30 us)."""
    z = (z + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def draw_seeds(seed: int, keys: torch.Tensor) -> np.ndarray:
    """The 64-bit draw seed of each key: splitmix64(splitmix64(seed) xor key), the key as its
    64-bit two's complement word. For one run seed, distinct keys give distinct draw seeds
    (both steps are bijections of the key)."""
    k = np.ascontiguousarray(torch.as_tensor(keys, dtype=torch.long).numpy()).view(np.uint64)
    return _splitmix64(k ^ np.uint64(_splitmix64_int(seed & _MASK64)))


def draw_seed(seed: int, key: int) -> int:
    """``draw_seeds`` of one key, as a Python int in [0, 2**64)."""
    return _splitmix64_int((key & _MASK64) ^ _splitmix64_int(seed & _MASK64))


def flips(seed: int, keys: torch.Tensor) -> torch.Tensor:
    """The horizontal flip of each key (the array path's augmentation): the top bit of its
    draw seed, so P(flip) = 1/2 exactly over the 2**64 seeds."""
    top = draw_seeds(seed, keys) >> np.uint64(63)
    return torch.from_numpy(top.astype(bool))


def generators(seed: int, keys: torch.Tensor) -> list[torch.Generator]:
    """One torch generator per key, seeded with its draw seed (MoCo's keyed tensor views)."""
    return [torch.Generator().manual_seed(int(s)) for s in draw_seeds(seed, keys)]


@contextlib.contextmanager
def keyed_rng(seed: int, key: int, restore: bool = True) -> Iterator[None]:
    """Python's ``random``, numpy's global generator and torch's CPU generator seeded from
    ``draw_seed(seed, key)`` inside the block (the three that timm's and torchvision's
    transforms draw from), and with ``restore`` each put back afterwards, so that the caller's
    generators do not move. CUDA generators are not touched."""
    s = draw_seed(seed, key)
    states = (random.getstate(), np.random.get_state(), torch.get_rng_state()) if restore else ()
    random.seed(s)
    np.random.seed([s & 0xFFFFFFFF, s >> 32])  # numpy's legacy seeds are 32-bit words
    torch.default_generator.manual_seed(s)  # not torch.manual_seed: that reseeds CUDA too
    try:
        yield
    finally:
        if restore:
            random.setstate(states[0])
            np.random.set_state(states[1])
            torch.set_rng_state(states[2])


class KeyedDataset(Dataset):
    """``dataset[index]`` drawn under ``keyed_rng(seed, key)``; items are ``(index, key)``
    pairs, as a DataLoader passes them from a sampler of such pairs. The generators are
    restored in the main process (num_workers=0, ``Data.images``), not in a loader worker,
    where nothing else draws and the restore would cost about 0.2 ms an item."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, item: tuple[int, int]) -> Any:
        index, key = item
        with keyed_rng(self.seed, key, restore=get_worker_info() is None):
            return self.dataset[index]
