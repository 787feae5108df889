"""Caltech-UCSD Birds-200-2011 (Wah, Branson, Welinder, Perona and Belongie 2011): the official
``CUB_200_2011`` folder, 11,788 photographs of 200 bird species.

https://www.vision.caltech.edu/datasets/cub_200_2011/ ; ``images.txt`` (``image_id path``, the
path relative to ``images/``), ``image_class_labels.txt`` (``image_id class_id``) and
``classes.txt`` (``class_id name``), ids from 1. ``--root``: the ``CUB_200_2011`` folder, or the
folder its archive was extracted into.

The metric-learning protocol (Song et al. 2016, used since by most of the field): species 1-100
train (5,864 images), species 101-200 test (5,924), the test set searched against itself, so
that no test species is seen in training. ``train_test_split.txt`` is the classification split
(about half the images of every species on each side) and is not used. Superclass: none (CUB
ships no file grouping its species).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from common import UserError
from data_prep.registry import Raw, Source, register, require_dir
from data_prep.textfile import image_path, read_records, to_int

FOLDER = "CUB_200_2011"
FILES = ("images.txt", "image_class_labels.txt", "classes.txt")
TRAIN_CLASSES = 100  # species 1..100 train, 101..200 test
N_CLASSES = 200


def find_root(root: Path, name: str, marker: str, folder: str) -> Path:
    """``root`` if it holds ``marker``, else ``root/folder`` if that does (the folder an archive
    extracts to); a ``UserError`` saying what was expected otherwise."""
    root = require_dir(root, name, f"{marker} (or the folder {folder}/ holding it)")
    if not (root / marker).exists() and (root / folder / marker).exists():
        return root / folder
    return root


def read_ids(path: Path, fields: list[str]) -> dict[int, tuple[int, str]]:
    """``first id -> (line, second field)`` of a two-column list; a repeated id is an error."""
    out: dict[int, tuple[int, str]] = {}
    for number, (key, value) in read_records(path, fields):
        key_id = to_int(key, path, number, fields[0])
        if key_id in out:
            raise UserError(
                f"{path}:{number}: {fields[0]} {key_id} is listed twice "
                f"(first on line {out[key_id][0]})"
            )
        out[key_id] = (number, value)
    if not out:
        raise UserError(f"{path}: empty file, expected lines '{' '.join(fields)}'")
    return out


@register
class CUB200(Source):
    name = "cub200"
    splits = ("train", "test")
    official = {"train": (5_864, 100), "test": (5_924, 100)}
    url = "https://www.vision.caltech.edu/datasets/cub_200_2011/"

    def read(self, root: Path, **options: Any) -> Raw:
        root = find_root(root, self.name, FILES[0], FOLDER)
        images_txt, labels_txt, classes_txt = (root / f for f in FILES)
        images = read_ids(images_txt, ["image_id", "path"])
        labels = read_ids(labels_txt, ["image_id", "class_id"])
        classes = read_ids(classes_txt, ["class_id", "name"])
        for class_id, (number, _) in classes.items():
            if not 1 <= class_id <= N_CLASSES:
                raise UserError(
                    f"{classes_txt}:{number}: class_id {class_id} is outside 1..{N_CLASSES} "
                    f"(the protocol trains on 1..{TRAIN_CLASSES} and tests on the rest)"
                )
        rows = []
        for image_id, (number, class_text) in labels.items():
            class_id = to_int(class_text, labels_txt, number, "class_id")
            if image_id not in images:
                raise UserError(
                    f"{labels_txt}:{number}: image_id {image_id} is not in {images_txt}"
                )
            if class_id not in classes:
                raise UserError(
                    f"{labels_txt}:{number}: class_id {class_id} is not in {classes_txt}"
                )
            line, rel = images[image_id]
            rel = image_path(rel, images_txt, line, "path")
            split = "train" if class_id <= TRAIN_CLASSES else "test"
            rows.append((image_id, split, f"images/{rel}", class_id))
        unlabelled = sorted(set(images) - set(labels))
        if unlabelled:
            raise UserError(
                f"{labels_txt}: no class for {len(unlabelled)} image(s) of {images_txt}, "
                f"e.g. image_id {unlabelled[0]}"
            )
        rows.sort()  # by image_id, the order of images.txt
        records = pd.DataFrame(
            [r[1:] for r in rows], columns=["split", "path", "class_key"]
        ).assign(superclass_key=None)
        return Raw(records=records, root=root)
