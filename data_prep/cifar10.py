"""CIFAR-10 (Krizhevsky 2009): the python pickles in ``cifar-10-batches-py/``.

https://www.cs.toronto.edu/~kriz/cifar.html ; ``--root`` is the folder holding
``cifar-10-batches-py`` (as torchvision expects) or that folder itself. CIFAR-10 has no superclass
hierarchy and the thesis used none: superclass = -1 ("none"); SC-XBN then derives superclasses
from k-means over class means (bench/engine/superclasses.py).

The pickles are read here rather than by torchvision's reader, which checks nothing: a truncated
pickle, a string label, more labels than images or a label 10 gave a traceback or a manifest that
was silently wrong. The file names and MD5s are torchvision's; a file whose MD5 differs is read
(test fixtures, repaired copies) and reported as a warning.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common import UserError
from data_prep.registry import Raw, Source, register

ROW = 3 * 32 * 32  # one image: 1024 red, then 1024 green, then 1024 blue bytes


def find_base(root: Path, name: str, base_folder: str) -> Path:
    """The folder holding ``base_folder``: ``root`` itself or its parent."""
    root = Path(root).expanduser()
    if (root / base_folder).is_dir():
        return root
    if root.name == base_folder and root.is_dir():
        return root.parent
    raise UserError(f"{name}: expected folder {root / base_folder} (the extracted python version)")


def unpickle(path: Path, name: str) -> dict:
    """The dict stored in one CIFAR pickle; a ``UserError`` naming the file otherwise."""
    if not path.is_file():
        why = "is not a file" if path.exists() else "is missing"
        raise UserError(f"{name}: expected file {path} {why}")
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f, encoding="latin1")
    except OSError as e:
        raise UserError(f"{name}: cannot read {path} ({e.strerror or e})") from None
    except Exception as e:  # noqa: BLE001 (unpickling garbage can raise almost any type)
        raise UserError(
            f"{name}: {path} is not a CIFAR python pickle (truncated or corrupt: {e!r})"
        ) from None
    if not isinstance(obj, dict):
        raise UserError(
            f"{name}: {path} holds a {type(obj).__name__}, expected the dict of a CIFAR batch"
        )
    return obj


def check_labels(values: Any, k: int, n: int, where: str) -> np.ndarray:
    """``values`` as int64 if they are ``n`` integers in ``0..k-1`` (``where``: file and key)."""
    if not isinstance(values, (list, tuple, np.ndarray)):
        raise UserError(f"{where} is a {type(values).__name__}, expected a list of integers")
    for i, v in enumerate(values):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise UserError(f"{where}[{i}] is {v!r}, expected an integer in 0..{k - 1}")
        if not 0 <= v < k:
            raise UserError(f"{where}[{i}] is {v}, outside 0..{k - 1}")
    if len(values) != n:
        raise UserError(f"{where} has {len(values)} labels for {n} images")
    return np.asarray(values, dtype=np.int64)


def read_batch(path: Path, name: str, labels: dict[str, int]) -> tuple[np.ndarray, list]:
    """Pixels (N, 32, 32, 3) of one batch file and its label lists, one per key of ``labels``
    (key -> number of classes)."""
    obj = unpickle(path, name)
    data = obj.get("data")
    if not (
        isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.ndim == 2
        and data.shape[1] == ROW
    ):
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise UserError(f"{name}: {path}: 'data' must be a uint8 array (N, {ROW}), got {got}")
    lists = []
    for key, k in labels.items():
        if key not in obj:
            raise UserError(f"{name}: {path} has no {key!r} list")
        lists.append(check_labels(obj[key], k, len(data), f"{name}: {path}: {key}"))
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), lists


def read_cifar(source: Source, root: Path, files: type, labels: dict[str, int]) -> Raw:
    """Train and test records of the pickles named by ``files`` (torchvision's class, for its
    folder, names and MD5s). ``labels``: key -> number of classes, the class key first and, where
    the dataset has one, the superclass key second (superclass None otherwise)."""
    from torchvision.datasets.utils import check_integrity  # here: importing data_prep stays light

    root = find_base(root, source.name, files.base_folder)
    base = root / files.base_folder
    warnings, frames, pixels, offset = [], [], [], 0
    for split, listed in (("train", files.train_list), ("test", files.test_list)):
        for file, md5 in listed:
            path = base / file
            data, lists = read_batch(path, source.name, labels)
            if not check_integrity(str(path), md5):
                warnings.append(f"{path} differs from the official file (MD5 {md5})")
            n = len(data)
            frames.append(
                pd.DataFrame(
                    {
                        "split": split,
                        "index": np.arange(offset, offset + n),
                        "class_key": lists[0],
                        "superclass_key": lists[1] if len(lists) > 1 else None,
                    }
                )
            )
            pixels.append(data)
            offset += n
    records = pd.concat(frames, ignore_index=True)
    return Raw(records=records, root=root, pixels=np.concatenate(pixels), warnings=warnings)


@register
class CIFAR10(Source):
    name = "cifar10"
    splits = ("train", "test")
    official = {"train": (50_000, 10), "test": (10_000, 10)}
    pixel_mode = "RGB"
    url = "https://www.cs.toronto.edu/~kriz/cifar.html"

    def read(self, root: Path, **options: Any) -> Raw:
        from torchvision.datasets import CIFAR10 as TorchCIFAR10

        return read_cifar(self, root, TorchCIFAR10, {"labels": 10})
