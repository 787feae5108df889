"""CIFAR-100 (Krizhevsky 2009): ``cifar-100-python/{train,test,meta}``, read by torchvision.

Class = the fine label (100); superclass = the coarse label (20), which torchvision's reader drops,
so it is read from the same pickles here.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
from torchvision.datasets import CIFAR100 as TorchCIFAR100

from common import UserError
from data_prep.cifar10 import read_cifar
from data_prep.registry import Raw, Source, register


class _Local(TorchCIFAR100):
    """See ``data_prep.cifar10._Local``."""

    def _check_integrity(self) -> bool:
        return True

    def _load_meta(self) -> None:
        self.classes = []


def _unpickle(path: Path, key: str) -> list:
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")[key]
    except (KeyError, pickle.UnpicklingError, EOFError) as e:
        raise UserError(f"cifar100: {path} has no {key!r} ({e!r})")


@register
class CIFAR100(Source):
    name = "cifar100"
    splits = ("train", "test")
    official = {"train": (50_000, 100), "test": (10_000, 100)}
    official_superclasses = 20
    pixel_mode = "RGB"
    url = "https://www.cs.toronto.edu/~kriz/cifar.html"

    def read(self, root: Path, **options: Any) -> Raw:
        raw, _ = read_cifar(self, root, _Local)
        base = raw.root / _Local.base_folder
        coarse = np.concatenate(
            [_unpickle(base / f, "coarse_labels") for f, _ in _Local.train_list + _Local.test_list]
        ).astype(np.int64)
        if len(coarse) != len(raw.records):
            raise UserError(
                f"cifar100: {base} has {len(coarse)} coarse labels for {len(raw.records)} images"
            )
        raw.records["superclass_key"] = coarse
        meta = base / "meta"
        if meta.is_file():
            names = _unpickle(meta, "coarse_label_names")
            raw.superclass_names = {i: n for i, n in enumerate(names)}
        return raw
