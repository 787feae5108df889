"""Any labelled image collection as a dataset the user names: ``xbmbench data prepare folder
--root ROOT --name NAME``.

``ROOT`` is either

- a folder with one sub-folder per class: the sub-folder's name is the class, every image file
  under it (``.jpg .jpeg .png .bmp .gif .tif .tiff .webp``, any case, sub-folders included) an
  image of it; hidden files and folders are ignored, other files and files directly in ROOT are
  skipped and counted; or
- a CSV file with the header ``path,label`` and optionally ``split`` (``train`` or ``test``) and
  ``superclass`` columns; paths relative to the CSV's folder, labels and superclasses any text.

Without a split column the classes are split by a stated rule: the class names sorted (as text),
the first half, rounded up, train, the rest test, so that the test classes are never seen in
training (the protocol of CUB-200 and Cars196); the test set is searched against itself. With one,
each row's split is used as it is (a class on both sides is reported). Superclass: the CSV's
column, else none.

The prepared dataset is ``DATA/NAME/`` like an official one; its ``manifest.json`` records
``"source": "folder"``, which is how every later command finds it (``registry.KINDS``): a command
given ``--data DATA`` (or ``$XBMBENCH_DATA``, else ``./data``) knows the folder datasets prepared
there, so ``--dataset NAME`` works as for an official dataset.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from common import UserError
from data_prep.registry import KINDS, REGISTRY, Raw, Source, register
from data_prep.textfile import image_path, read_lines

KIND = "folder"
EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
COLUMNS = ("path", "label", "split", "superclass")  # path and label required
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
RESERVED = {KIND, "raw"}  # raw: where `data fetch` puts raw files (DATA/raw/NAME)


class FolderSource(Source):
    """The source of one user-named dataset; ``folder_source`` makes its subclass per name."""

    kind = KIND
    splits = ("train", "test")
    official = {"train": (None, None), "test": (None, None)}  # nothing published to compare
    url = ""  # none: the user's own images

    def read(self, root: Path, **options: Any) -> Raw:
        root = Path(root).expanduser()
        if root.is_file():
            return read_csv(self.name, root)
        if root.is_dir():
            return read_class_folders(self.name, root)
        raise UserError(
            f"{self.name}: {root} does not exist (expected a folder with one sub-folder per "
            "class, or a CSV file path,label[,split][,superclass])"
        )


def check_name(name: str | None) -> str:
    """``name`` if it can name a folder dataset; a ``UserError`` saying why not otherwise."""
    if not name:
        raise UserError("data prepare folder needs --name NAME (the dataset's name for --dataset)")
    if not NAME.fullmatch(name):
        raise UserError(
            f"dataset name {name!r}: use letters, digits, '.', '_' and '-' (at most 64, the "
            "first a letter or digit)"
        )
    if name in RESERVED or (name in REGISTRY and REGISTRY[name].kind != KIND):
        raise UserError(f"dataset name {name!r} is taken by an official dataset or reserved")
    return name


def folder_source(name: str) -> type[Source]:
    """The registered source of folder dataset ``name`` (made and registered on first use)."""
    check_name(name)
    if name not in REGISTRY:
        register(type(f"Folder[{name}]", (FolderSource,), {"name": name}))
    return REGISTRY[name]


KINDS[KIND] = folder_source


def split_by_rule(classes: list[str]) -> dict[str, str]:
    """class -> split: sorted class names, the first half (rounded up) train, the rest test."""
    ordered = sorted(set(classes))
    n_train = -(-len(ordered) // 2)
    return {c: "train" if i < n_train else "test" for i, c in enumerate(ordered)}


def need_two_classes(name: str, where: Path, classes: set[str]) -> None:
    if len(classes) < 2:
        raise UserError(
            f"{name}: {where} holds {len(classes)} class(es); a train and a test side need at "
            "least two"
        )


def read_class_folders(name: str, root: Path) -> Raw:
    """One sub-folder per class; the image files under each."""
    rows, skipped = [], Counter()
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            skipped["file directly in the root (not in a class folder)"] += 1
            continue
        for file in sorted(entry.rglob("*")):
            rel = file.relative_to(root)
            if any(part.startswith(".") for part in rel.parts) or file.is_dir():
                continue
            if file.suffix.lower() not in EXTENSIONS:
                skipped["not an image file (by its extension)"] += 1
                continue
            rows.append((rel.as_posix(), entry.name))
    if not rows:
        raise UserError(
            f"{name}: {root} holds no image in a class folder (expected ROOT/CLASS/IMAGE, "
            f"images {' '.join(sorted(EXTENSIONS))})"
        )
    need_two_classes(name, root, {c for _, c in rows})
    split = split_by_rule([c for _, c in rows])
    records = pd.DataFrame(
        [(split[c], p, c, None) for p, c in rows],
        columns=["split", "path", "class_key", "superclass_key"],
    )
    return Raw(records=records, root=root.resolve(), skipped=skipped)


def _header(path: Path, table: list[list[str]]) -> list[str]:
    header = [h.strip() for h in table[0]] if table else []
    known = set(header) <= set(COLUMNS) and len(set(header)) == len(header)
    if not known or not {"path", "label"} <= set(header):
        raise UserError(
            f"{path}:1: the header is {header}, expected the columns path and label, and "
            "optionally split and superclass (each once)"
        )
    return header


def _csv_rows(path: Path, table: list[list[str]], header: list[str]) -> list[tuple]:
    """(split or None, path, label, superclass or None) of each data line, checked."""
    rows, seen, superclass_of = [], {}, {}
    for number, cells in enumerate(table[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise UserError(
                f"{path}:{number}: {len(cells)} cells, the header names {len(header)} "
                f"({','.join(header)})"
            )
        get = {h: c.strip() for h, c in zip(header, cells)}
        empty = [h for h in header if not get[h]]
        if empty:
            raise UserError(f"{path}:{number}: empty {empty[0]}")
        rel = image_path(get["path"], path, number, "path")
        if rel in seen:
            raise UserError(f"{path}:{number}: path {rel!r} is listed twice (line {seen[rel]})")
        seen[rel] = number
        if get.get("split", "train") not in FolderSource.splits:
            raise UserError(
                f"{path}:{number}: split {get['split']!r} is not one of "
                f"{', '.join(FolderSource.splits)}"
            )
        label, sup = get["label"], get.get("superclass")
        first, line = superclass_of.setdefault(label, (sup, number))
        if first != sup:
            raise UserError(
                f"{path}:{number}: class {label!r} has superclass {sup!r}, line {line} gave it "
                f"{first!r} (a class has one superclass)"
            )
        rows.append((get.get("split"), rel, label, sup))
    if not rows:
        raise UserError(f"{path}: no data line after the header")
    return rows


def _classes_on_both_sides(path: Path, rows: list[tuple]) -> list[str]:
    """The warning when a class is in train and test; a ``UserError`` when a side is empty."""
    sides = {s: {r[2] for r in rows if r[0] == s} for s in FolderSource.splits}
    for side, classes in sides.items():
        if not classes:
            raise UserError(f"{path}: no row has split {side!r}")
    both = sorted(sides["train"] & sides["test"])
    if not both:
        return []
    return [
        f"{len(both)} class(es) are in both train and test (e.g. {both[0]!r}): the test "
        "classes are not all unseen"
    ]


def read_csv(name: str, path: Path) -> Raw:
    """A CSV ``path,label[,split][,superclass]``, paths relative to its folder."""
    table = list(csv.reader(io.StringIO("\n".join(read_lines(path)))))
    header = _header(path, table)
    rows = _csv_rows(path, table, header)
    warnings = []
    if "split" in header:
        warnings = _classes_on_both_sides(path, rows)
    else:
        need_two_classes(name, path, {r[2] for r in rows})
        split = split_by_rule([r[2] for r in rows])
        rows = [(split[r[2]], *r[1:]) for r in rows]
    records = pd.DataFrame(rows, columns=["split", "path", "class_key", "superclass_key"])
    names = {} if "superclass" not in header else {s: s for s in records["superclass_key"]}
    return Raw(records, path.parent.resolve(), warnings=warnings, superclass_names=names)


def prepare_folder(
    root: str | Path, name: str | None, out_dir: str | Path | None = None, **kwargs: Any
) -> pd.DataFrame:
    """``data prepare folder``: register ``name`` as a folder dataset and prepare it."""
    from data_prep.manifest import prepare

    folder_source(check_name(name))
    return prepare(name, root, out_dir, **kwargs)
