"""Checks of manifest rows: every column when a manifest is loaded, and image paths on prepare.

A manifest that is edited, truncated or written by another tool must fail on load with the file,
the line and the bad value named, never be truncated (1.5 -> 1) or wrapped (-7 -> a huge index).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from common import UserError
from data_prep.registry import BOX, Source

# integers as pandas writes them: digits only, at most 18 so that they fit int64
NATURAL = r"[0-9]{1,18}"
INTEGER = {  # column -> (pattern, what the values must be)
    "index": (NATURAL, "an integer >= 0"),
    "label": (NATURAL, "an integer >= 0"),
    "superclass": (r"-1|" + NATURAL, "an integer >= -1 (-1: none)"),
    **{c: (NATURAL, "an integer >= 0") for c in BOX},
}


def expected_columns(source: Source, array: bool) -> list[str]:
    """The manifest's columns, in order: split, path or index, label, superclass[, box]."""
    return ["split", "index" if array else "path", "label", "superclass"] + (
        list(BOX) if source.has_boxes else []
    )


def parse_table(data: bytes, path: Path, columns: list[str]) -> pd.DataFrame:
    """The cells of a manifest CSV as strings; the header must be ``columns`` and every row have
    as many cells."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise UserError(f"{path}:{line}: not UTF-8 text (byte {data[e.start]:#04x})")
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header != columns:
        raise UserError(f"{path}:1: the header is {header}, expected {columns}")
    rows, lines = [], []
    try:
        for row in reader:
            if len(row) != len(columns):
                raise UserError(
                    f"{path}:{reader.line_num}: {len(row)} cells {row!r:.80}, "
                    f"expected {len(columns)} ({','.join(columns)})"
                )
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as e:
        raise UserError(f"{path}:{reader.line_num}: not a CSV row ({e})")
    frame = pd.DataFrame(rows, columns=columns, dtype=str)
    frame.attrs["lines"] = lines
    return frame


def _fail(path: Path, frame: pd.DataFrame, bad: np.ndarray, column: str, what: str) -> None:
    """Raise naming the first row where ``bad`` is set, if any."""
    hits = np.flatnonzero(bad)
    if len(hits):
        i = hits[0]
        line = frame.attrs["lines"][i]
        raise UserError(
            f"{path}:{line}: {column} {frame[column].iloc[i]!r} is not {what} "
            f"(row {i + 1} of the table; {len(hits)} such row{'s' * (len(hits) > 1)} in all)"
        )


def check_columns(
    frame: pd.DataFrame, source: Source, path: Path, n_pixels: int | None
) -> pd.DataFrame:
    """Every column checked by type and range; the frame with its integer columns as int64.
    ``n_pixels``: the number of images in ``pixels.npy`` that ``index`` must stay below."""
    split = frame["split"]
    _fail(path, frame, ~split.isin(source.splits).to_numpy(), "split", f"one of {source.splits}")
    for column, (pattern, what) in INTEGER.items():
        if column in frame:
            _fail(path, frame, ~frame[column].str.fullmatch(pattern).to_numpy(), column, what)
    out = frame.astype({c: "int64" for c in INTEGER if c in frame})
    if "index" in out and n_pixels is not None:
        what = f"below {n_pixels} (the images in pixels.npy)"
        _fail(path, frame, (out["index"] >= n_pixels).to_numpy(), "index", what)
    if "path" in out:
        _fail(path, frame, ~out["path"].map(_relative).to_numpy(), "path", "a relative path")
    if "x1" in out:
        for lo, hi in (("x1", "x2"), ("y1", "y2")):
            what = f"above {lo} (an empty box)"
            _fail(path, frame, (out[hi] <= out[lo]).to_numpy(), hi, what)
    out.attrs = {}
    return out


def _relative(value: str) -> bool:
    """Non-empty, not absolute, no ``..``: a path that stays under the dataset root."""
    parts = PurePosixPath(value).parts
    return bool(value) and not value.startswith(("/", "\\")) and ".." not in parts


def require_inside(name: str, paths: Iterable[str], root: Path) -> None:
    """A ``UserError`` naming the first image path that leaves ``root``: absolute, with ``..``,
    or through a symbolic link to a place outside it. Folders are resolved once each (a dataset
    has far fewer folders than images); a file is resolved on its own only if it is a link.

    Choice: a dataset whose image folders are links to another disk is rejected too (the brief of
    issue 13: every image path must resolve inside the dataset root); its real folder is the root
    to give."""
    root = Path(os.path.realpath(root))
    folders: dict[str, str] = {}
    for rel in paths:
        if not _relative(rel):
            raise UserError(
                f"{name}: image path {rel!r} is absolute or contains '..': image paths must "
                f"stay inside the dataset root {root}"
            )
        full = os.path.join(root, rel)
        parent = os.path.dirname(full)
        if parent not in folders:
            folders[parent] = os.path.realpath(parent)
        real = os.path.join(folders[parent], os.path.basename(full))
        if os.path.islink(real):
            real = os.path.realpath(real)
        if os.path.commonpath([root, real]) != str(root):
            raise UserError(
                f"{name}: image path {rel!r} resolves to {real}, outside the dataset root {root} "
                "(through a symbolic link); every image must lie inside the root"
            )


def require_images(name: str, paths: Iterable[str], root: Path) -> None:
    """A ``UserError`` listing the first ten images the manifest names but the disk lacks (or
    that are no regular file: a folder, a dangling link, a symlink loop)."""
    missing = [p for p in dict.fromkeys(paths) if not (root / p).is_file()]
    if missing:
        first = "\n  ".join(str(root / p) for p in missing[:10])
        raise UserError(
            f"{name}: {len(missing)} images of the manifest are missing under {root}:\n  {first}"
        )
