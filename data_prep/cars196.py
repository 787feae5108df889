"""Stanford Cars (Krause, Stark, Deng and Fei-Fei 2013): 16,185 photographs of 196 car models.

https://ai.stanford.edu/~jkrause/cars/car_dataset.html ; either of the two official layouts,
MATLAB files read with ``scipy.io.loadmat``:

- ``cars_annos.mat`` with ``car_ims/``: one ``annotations`` struct per image
  (``relative_im_path``, ``class`` 1..196, a bounding box, the classification flag ``test``);
- the devkit: ``cars_meta.mat`` (``class_names``), ``cars_train_annos.mat`` and
  ``cars_test_annos_withlabels.mat`` (``fname``, ``class``, a bounding box), images under
  ``cars_train/`` and ``cars_test/``.

``cars_annos.mat`` is read when both are there. The metric-learning protocol (Song et al. 2016,
used since by most of the field): models 1-98 train (8,054 images), models 99-196 test (8,131),
the test set searched against itself. The files' own train/test division is the classification
split and is not used; the boxes are not used either (the protocol embeds whole images).
Superclass: none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common import UserError
from data_prep.registry import Raw, Source, register, require_dir
from data_prep.textfile import image_path

ANNOS = "cars_annos.mat"
DEVKIT = {  # annotation file -> image folder
    "cars_train_annos.mat": "cars_train",
    "cars_test_annos_withlabels.mat": "cars_test",
}
META = "cars_meta.mat"
TRAIN_CLASSES = 98  # models 1..98 train, 99..196 test
N_CLASSES = 196


def load_mat(path: Path, name: str) -> dict[str, Any]:
    """The variables of a .mat file; a ``UserError`` naming it when it is missing or unreadable."""
    import scipy.io

    if not path.is_file():
        why = "is not a file" if path.exists() else "is missing"
        raise UserError(f"{name}: expected file {path} {why}")
    try:
        return scipy.io.loadmat(path, squeeze_me=True)
    except NotImplementedError as e:  # MATLAB v7.3 (HDF5) files
        raise UserError(f"{name}: {path} is a MATLAB file scipy cannot read ({e})") from None
    except Exception as e:  # scipy's MatReadError, ValueError, OSError on a broken file
        raise UserError(f"{name}: {path} is not a readable MATLAB .mat file ({e})") from None


def structs(mat: dict[str, Any], path: Path, name: str, fields: tuple[str, ...]) -> np.ndarray:
    """The ``annotations`` struct array of a .mat file, one record per image, with ``fields``."""
    annos = mat.get("annotations")
    names = getattr(getattr(annos, "dtype", None), "names", None)
    if names is None:
        raise UserError(f"{name}: {path} holds no 'annotations' struct array")
    missing = [f for f in fields if f not in names]
    if missing:
        raise UserError(
            f"{name}: {path}: the annotations have no field {', '.join(map(repr, missing))} "
            f"(fields: {', '.join(names)})"
        )
    return np.atleast_1d(annos)


def field_value(record: np.void, field: str, path: Path, i: int, name: str, kind: type) -> Any:
    """One field of annotation ``i`` (0-based) as ``kind`` (int or str)."""
    value = np.asarray(record[field])
    try:
        if value.size != 1:
            raise ValueError(f"{value.size} values")
        item = value.item()
        if kind is int:
            if isinstance(item, (str, bytes)) or float(item) != int(item):
                raise ValueError(repr(item))
            return int(item)
        if not isinstance(item, str) or not item:
            raise ValueError(repr(item))
        return item
    except (ValueError, TypeError) as e:
        what = "an integer" if kind is int else "a file name"
        raise UserError(
            f"{name}: {path}: annotation {i + 1}: {field} is not {what} ({e})"
        ) from None


def check_class(class_id: int, path: Path, i: int, name: str) -> int:
    if not 1 <= class_id <= N_CLASSES:
        raise UserError(
            f"{name}: {path}: annotation {i + 1}: class {class_id} is outside 1..{N_CLASSES}"
        )
    return class_id


@register
class Cars196(Source):
    name = "cars196"
    splits = ("train", "test")
    official = {"train": (8_054, 98), "test": (8_131, 98)}
    url = "https://ai.stanford.edu/~jkrause/cars/car_dataset.html"

    def read(self, root: Path, **options: Any) -> Raw:
        root = require_dir(
            root, self.name, f"{ANNOS} and car_ims/, or the devkit's {META} and {', '.join(DEVKIT)}"
        )
        rows = self._annos(root) if (root / ANNOS).exists() else self._devkit(root)
        if not rows:
            raise UserError(f"{self.name}: the annotations under {root} list no image")
        records = pd.DataFrame(
            [("train" if c <= TRAIN_CLASSES else "test", p, c) for p, c in rows],
            columns=["split", "path", "class_key"],
        ).assign(superclass_key=None)
        return Raw(records=records, root=root)

    def _annos(self, root: Path) -> list[tuple[str, int]]:
        path = root / ANNOS
        annos = structs(load_mat(path, self.name), path, self.name, ("relative_im_path", "class"))
        rows = []
        for i, record in enumerate(annos):
            rel = field_value(record, "relative_im_path", path, i, self.name, str)
            rel = image_path(rel, path, i + 1, "relative_im_path")
            cls = field_value(record, "class", path, i, self.name, int)
            rows.append((rel, check_class(cls, path, i, self.name)))
        return rows

    def _devkit(self, root: Path) -> list[tuple[str, int]]:
        if not (root / META).exists() and not any((root / f).exists() for f in DEVKIT):
            raise UserError(
                f"{self.name}: {root} holds neither {ANNOS} nor the devkit's {META} and "
                f"{', '.join(DEVKIT)}"
            )
        meta = load_mat(root / META, self.name)
        names = np.atleast_1d(meta.get("class_names", np.array([])))
        if len(names) != N_CLASSES:
            raise UserError(
                f"{self.name}: {root / META}: class_names holds {len(names)} names, "
                f"expected {N_CLASSES}"
            )
        rows = []
        for file, folder in DEVKIT.items():
            path = root / file
            annos = structs(load_mat(path, self.name), path, self.name, ("fname", "class"))
            for i, record in enumerate(annos):
                fname = field_value(record, "fname", path, i, self.name, str)
                rel = image_path(f"{folder}/{fname}", path, i + 1, "fname")
                cls = field_value(record, "class", path, i, self.name, int)
                rows.append((rel, check_class(cls, path, i, self.name)))
        return rows
