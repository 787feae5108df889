"""CIFAR-10 (Krizhevsky 2009): the python pickles in ``cifar-10-batches-py/``, read by torchvision.

https://www.cs.toronto.edu/~kriz/cifar.html ; ``--root`` is the folder holding
``cifar-10-batches-py`` (as torchvision expects) or that folder itself. CIFAR-10 has no superclass
hierarchy and the thesis used none: superclass = -1 ("none"); SC-XBN then derives superclasses
from k-means over class means (DESIGN.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torchvision.datasets import CIFAR10 as TorchCIFAR10
from torchvision.datasets.utils import check_integrity

from common import UserError
from data_prep.registry import Raw, Source, register


class _Local(TorchCIFAR10):
    """torchvision's reader without its all-or-nothing MD5 gate: files that differ from the
    official ones (e.g. test fixtures) are read, and ``read_cifar`` warns about them instead."""

    def _check_integrity(self) -> bool:
        return True

    def _load_meta(self) -> None:
        self.classes = []


def find_base(root: Path, name: str, base_folder: str) -> Path:
    """The folder holding ``base_folder``: ``root`` itself or its parent."""
    root = Path(root).expanduser()
    if (root / base_folder).is_dir():
        return root
    if root.name == base_folder and root.is_dir():
        return root.parent
    raise UserError(f"{name}: expected folder {root / base_folder} (the extracted python version)")


def read_cifar(source: Source, root: Path, reader: type[TorchCIFAR10]) -> tuple[Raw, list]:
    """Read train and test through torchvision; returns the Raw records (superclass None) and the
    torchvision datasets (train, test) for callers that need more of the pickles."""
    root = find_base(root, source.name, reader.base_folder)
    base = root / reader.base_folder
    warnings = []
    for file, md5 in reader.train_list + reader.test_list:
        path = base / file
        if not path.is_file():
            raise UserError(f"{source.name}: expected file {path} is missing")
        if not check_integrity(str(path), md5):
            warnings.append(f"{path} differs from the official file (MD5 {md5})")
    loaded, frames = [], []
    offset = 0
    for split in source.splits:
        try:
            ds = reader(str(root), train=split == "train", download=False)
        except (KeyError, ValueError, EOFError, OSError) as e:
            raise UserError(f"{source.name}: cannot read the {split} pickles in {base}: {e!r}")
        loaded.append(ds)
        n = len(ds.data)
        frames.append(
            pd.DataFrame(
                {
                    "split": split,
                    "index": np.arange(offset, offset + n),
                    "class_key": np.asarray(ds.targets, dtype=np.int64),
                    "superclass_key": None,
                }
            )
        )
        offset += n
    pixels = np.concatenate([np.asarray(ds.data, dtype=np.uint8) for ds in loaded])
    raw = Raw(
        records=pd.concat(frames, ignore_index=True), root=root, pixels=pixels, warnings=warnings
    )
    return raw, loaded


@register
class CIFAR10(Source):
    name = "cifar10"
    splits = ("train", "test")
    official = {"train": (50_000, 10), "test": (10_000, 10)}
    pixel_mode = "RGB"
    url = "https://www.cs.toronto.edu/~kriz/cifar.html"

    def read(self, root: Path, **options: Any) -> Raw:
        return read_cifar(self, root, _Local)[0]
