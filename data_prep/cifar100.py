"""CIFAR-100 (Krizhevsky 2009): ``cifar-100-python/{train,test,meta}``.

Class = the fine label (100); superclass = the coarse label (20), both read from the same pickles
and checked as CIFAR-10's are (``data_prep.cifar10``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common import UserError
from data_prep.cifar10 import read_cifar, unpickle
from data_prep.registry import Raw, Source, register


@register
class CIFAR100(Source):
    name = "cifar100"
    splits = ("train", "test")
    official = {"train": (50_000, 100), "test": (10_000, 100)}
    official_superclasses = 20
    pixel_mode = "RGB"
    url = "https://www.cs.toronto.edu/~kriz/cifar.html"

    def read(self, root: Path, **options: Any) -> Raw:
        from torchvision.datasets import CIFAR100 as TorchCIFAR100

        raw = read_cifar(self, root, TorchCIFAR100, {"fine_labels": 100, "coarse_labels": 20})
        meta = raw.root / TorchCIFAR100.base_folder / "meta"
        if meta.exists():  # optional: only the superclass names come from it
            names = unpickle(meta, self.name).get("coarse_label_names")
            if not (
                isinstance(names, list)
                and len(names) == 20
                and all(isinstance(n, str) for n in names)
            ):
                raise UserError(
                    f"{self.name}: {meta}: 'coarse_label_names' must be a list of 20 names, "
                    f"got {names!r:.80}"
                )
            raw.superclass_names = dict(enumerate(names))
        return raw
