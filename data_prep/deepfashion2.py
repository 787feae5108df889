"""DeepFashion2 (Ge et al. 2019), consumer-to-shop retrieval: ``{train,validation}/annos/*.json``.

https://github.com/switchablenorms/DeepFashion2 ; each annotation has ``source`` (user or shop),
``pair_id`` and items ``item1, item2, ...`` with ``category_id``, ``style`` and ``bounding_box``
[x1, y1, x2, y2]; the image is ``<subset>/image/<stem>.jpg``. Only items with style > 0 take part.
Class = (subset, pair_id, category_id, style): the subset is part of the key because pair ids are
numbered per subset. Superclass = category_id (13). query = user items of validation, gallery =
shop items of validation, train = all items of train. Boxes are clipped to the image.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image, UnidentifiedImageError

from common import UserError, atomic_write
from data_prep.registry import BOX, Raw, Source, register, require_dir

SUBSETS = {
    "train": {"user": "train", "shop": "train"},
    "validation": {"user": "query", "shop": "gallery"},
}
ITEM = re.compile(r"item\d+")
STYLE_0 = "style 0 (not a retrieval item)"
EMPTY_BOX = "box empty after clipping to the image"


@register
class DeepFashion2(Source):
    name = "deepfashion2"
    splits = ("train", "query", "gallery")
    official = {"train": (None, 31_517), "query": (12_377, 3_128), "gallery": (36_961, 7_059)}
    official_superclasses = 13
    has_boxes = True
    options = ("crop_to",)
    url = "https://github.com/switchablenorms/DeepFashion2"

    def read(self, root: Path, crop_to: Path | None = None, **options: Any) -> Raw:
        root = require_dir(root, self.name, "train/annos/ and validation/annos/")
        rows: list[tuple] = []
        skipped: Counter = Counter()
        names: dict[int, str] = {}
        for subset in SUBSETS:
            annos = root / subset / "annos"
            files = sorted(annos.glob("*.json")) if annos.is_dir() else []
            if not files:
                raise UserError(
                    f"{self.name}: expected annotation files {annos}/*.json, found none"
                )
            for path in files:
                rows.extend(_items(path, root, subset, skipped, names))
        records = pd.DataFrame(
            rows, columns=["split", "path", "item", "class_key", "superclass_key", *BOX]
        )
        records = _clip_boxes(records, _image_sizes(root, records["path"].unique()), skipped)
        if crop_to is not None:
            records, root = _write_crops(records, root, Path(crop_to))
        return Raw(
            records=records.drop(columns="item"), root=root, skipped=skipped, superclass_names=names
        )


def _load(path: Path) -> dict:
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected a JSON annotation file")
    try:
        with open(path, encoding="utf-8") as f:
            anno = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not a valid JSON annotation file ({e})") from None
    except OSError as e:  # a dangling link or a symlink loop, a permission, an I/O error
        raise UserError(f"{path}: cannot read the annotation file ({e.strerror or e})") from None
    if not isinstance(anno, dict):
        raise UserError(
            f"{path}: expected a JSON object with source, pair_id and item1, item2, ..."
        )
    return anno


def _items(path: Path, root: Path, subset: str, skipped: Counter, names: dict) -> list[tuple]:
    """The rows of one annotation file, one per item with style > 0."""
    anno = _load(path)
    source, pair_id = anno.get("source"), anno.get("pair_id")
    if source not in SUBSETS[subset]:
        raise UserError(f"{path}: source must be 'user' or 'shop', got {source!r}")
    if not isinstance(pair_id, int):
        raise UserError(f"{path}: pair_id must be an integer, got {pair_id!r}")
    image = f"{subset}/image/{path.stem}.jpg"
    rows = []
    keys = sorted((k for k in anno if ITEM.fullmatch(k)), key=lambda k: int(k[4:]))
    for key in keys:
        item = anno[key]
        try:
            category, style, box = item["category_id"], item["style"], item["bounding_box"]
            x1, y1, x2, y2 = (float(v) for v in box)
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(
                f"{path}: {key} needs category_id, style and bounding_box [x1, y1, x2, y2] ({e!r})"
            ) from None
        for field, value in (("category_id", category), ("style", style)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise UserError(f"{path}: {key}: {field} must be an integer, got {value!r}")
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
            raise UserError(f"{path}: {key}: bounding_box {box} has a value that is not finite")
        if style <= 0:
            skipped[STYLE_0] += 1
            continue
        names.setdefault(category, str(item.get("category_name", category)))
        cls = (subset, pair_id, category, style)
        rows.append((SUBSETS[subset][source], image, key, cls, category, x1, y1, x2, y2))
    return rows


def _image_sizes(root: Path, paths) -> dict[str, tuple[int, int]]:
    """(width, height) of every image, read from the headers only. Missing images, and files
    that are no image PIL knows (a corrupt JPEG, a folder, a symlink loop), are an error listing
    the first ten; a JPEG truncated after its header is found when it is cropped or loaded."""

    def size(rel: str) -> tuple[int, int] | str:
        try:
            with Image.open(root / rel) as im:
                return im.size
        except FileNotFoundError:
            return "missing"
        except UnidentifiedImageError:
            return "not an image PIL can read: corrupt or of another format"
        except OSError as e:  # a folder, a symlink loop, a permission, an I/O error
            return str(e.strerror or e)

    with ThreadPoolExecutor(max_workers=8) as pool:
        sizes = dict(zip(paths, pool.map(size, paths)))
    bad = [(p, s) for p, s in sizes.items() if isinstance(s, str)]
    if bad:
        first = "\n  ".join(f"{root / p} ({why})" for p, why in bad[:10])
        raise UserError(
            f"deepfashion2: {len(bad)} annotated images are missing or unreadable, "
            f"first ones:\n  {first}"
        )
    return sizes


def _clip_boxes(records: pd.DataFrame, sizes: dict, skipped: Counter) -> pd.DataFrame:
    w = records["path"].map(lambda p: sizes[p][0])
    h = records["path"].map(lambda p: sizes[p][1])
    records = records.copy()
    for col, bound in (("x1", w), ("x2", w), ("y1", h), ("y2", h)):
        records[col] = records[col].clip(lower=0).clip(upper=bound).round().astype("int64")
    empty = (records["x2"] <= records["x1"]) | (records["y2"] <= records["y1"])
    skipped[EMPTY_BOX] += int(empty.sum())
    if skipped[EMPTY_BOX] == 0:
        del skipped[EMPTY_BOX]
    return records[~empty].reset_index(drop=True)


def _write_crops(records: pd.DataFrame, root: Path, out: Path) -> tuple[pd.DataFrame, Path]:
    """Write every item's crop once under ``out``; the manifest then points at the crops."""
    out = out.expanduser().resolve()
    crops = [
        f"{Path(p).parts[0]}/{Path(p).stem}_{item}.jpg"
        for p, item in zip(records["path"], records["item"])
    ]

    def crop(i: int) -> tuple[int, int]:
        row = records.iloc[i]
        try:
            with Image.open(root / row["path"]) as im:
                piece = im.convert("RGB").crop(tuple(int(row[c]) for c in BOX))
        except OSError as e:  # e.g. "image file is truncated"
            raise UserError(f"deepfashion2: cannot decode {root / row['path']} ({e})") from None
        try:
            atomic_write(out / crops[i], lambda tmp: piece.save(tmp, format="JPEG", quality=95))
        except OSError as e:
            raise UserError(
                f"deepfashion2: cannot write the crop {out / crops[i]} ({e.strerror or e})"
            ) from None
        return piece.size

    with ThreadPoolExecutor(max_workers=8) as pool:
        sizes = list(pool.map(crop, range(len(records))))
    records = records.assign(path=crops, x1=0, y1=0)
    records["x2"] = [s[0] for s in sizes]
    records["y2"] = [s[1] for s in sizes]
    return records, out
