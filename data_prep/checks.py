"""Checks of manifest rows: every column when a manifest is loaded, and image paths on prepare.

A manifest that is edited, truncated or written by another tool must fail on load with the file,
the line and the bad value named, never be truncated (1.5 -> 1) or wrapped (-7 -> a huge index).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from common import UserError
from data_prep.registry import BOX, Source

# integers as pandas writes them: digits only, at most 18 so that they fit int64
NATURAL = r"[0-9]{1,18}"
# what makes a path leave the folder it is relative to: a leading / or \\, a drive, a .. part
ESCAPE = re.compile(r"^[/\\]|^[A-Za-z]:|(?:^|[/\\])\.\.(?:[/\\]|$)")
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


def parse_table(data: bytes, path: Path, columns: list[str]) -> tuple[pd.DataFrame, range]:
    """The cells of a manifest CSV as strings, and the line of each row in the file; the header
    must be ``columns``. pandas' C parser, with one spare column that is empty unless a row has
    too many cells; a row with too few has empty cells, which ``check_columns`` reports."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise UserError(f"{path}:{line}: not UTF-8 text (byte {data[e.start]:#04x})") from None
    try:
        table = pd.read_csv(
            io.StringIO(text),
            header=None,
            names=range(len(columns) + 1),
            dtype=str,
            keep_default_na=False,  # every cell a string, "" where empty or missing
            skip_blank_lines=False,  # so that row i is line i + 1
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise UserError(f"{path}: not a CSV table ({e})") from None
    header = table.iloc[0].tolist() if len(table) else []
    if header[:-1] != columns or header[-1]:
        raise UserError(f"{path}:1: the header is {[h for h in header if h]}, expected {columns}")
    long = np.flatnonzero(table.iloc[1:, -1].to_numpy() != "")
    if len(long):
        raise UserError(
            f"{path}:{long[0] + 2}: more cells than the {len(columns)} columns {columns}"
        )
    cells = table.iloc[1:, :-1].set_axis(columns, axis=1).reset_index(drop=True)
    return cells, range(2, len(cells) + 2)


def check_columns(
    cells: pd.DataFrame, lines: range, source: Source, path: Path, n_pixels: int | None
) -> pd.DataFrame:
    """Every column checked by type and range; the table with its integer columns as int64.
    ``lines``: each row's line in ``path``; ``n_pixels``: the number of images in
    ``pixels.npy`` that ``index`` must stay below."""

    def fail(bad: pd.Series, column: str, what: str) -> None:
        hits = np.flatnonzero(bad.to_numpy())
        if len(hits):
            i = hits[0]
            raise UserError(
                f"{path}:{lines[i]}: {column} {cells[column].iloc[i]!r} is not {what} "
                f"(row {i + 1} of the table; {len(hits)} such row{'s' * (len(hits) > 1)} in all)"
            )

    fail(~cells["split"].isin(source.splits), "split", f"one of {source.splits}")
    for column, (pattern, what) in INTEGER.items():
        if column in cells:
            fail(~cells[column].str.fullmatch(pattern), column, what)
    out = cells.astype({c: "int64" for c in INTEGER if c in cells})
    if "index" in out and n_pixels is not None:
        fail(out["index"] >= n_pixels, "index", f"below {n_pixels} (the images in pixels.npy)")
    if "path" in out:
        fail(out["path"].map(escapes), "path", "a relative path")
    if "x1" in out:
        for lo, hi in (("x1", "x2"), ("y1", "y2")):
            fail(out[hi] <= out[lo], hi, f"above {lo} (an empty box)")
    return out


def escapes(rel: str) -> bool:
    """Whether ``rel`` is empty or leaves the folder it is relative to (the regex runs only on
    the rare paths with a ``..``, a leading separator or a drive colon: it is the slow part)."""
    if not rel:
        return True
    if ".." not in rel and rel[0] not in "/\\" and rel[1:2] != ":":
        return False
    return ESCAPE.search(rel) is not None


def require_inside(name: str, paths: Iterable[str], root: Path) -> None:
    """A ``UserError`` naming the first image path that leaves ``root``: absolute, with ``..``,
    or through a symbolic link to a place outside it. Folders are resolved once each (a dataset
    has far fewer folders than images); a file is resolved on its own only if it is a link.

    Choice (every image path must resolve inside the dataset root): a
    layout whose image folders are links to another disk is refused too; the message says where
    the link leads, so that the user can give that folder's parent as the root instead."""
    top = os.path.realpath(root)
    inside = top.rstrip(os.sep) + os.sep
    folders: dict[str, str] = {}
    for rel in paths:
        if escapes(rel):
            raise UserError(
                f"{name}: image path {rel!r} is absolute or contains '..': image paths must "
                f"stay inside the dataset root {top}"
            )
        folder, _, file = rel.rpartition("/")
        if folder not in folders:
            folders[folder] = os.path.realpath(os.path.join(top, folder))
        real = os.path.join(folders[folder], file)
        if os.path.islink(real):
            real = os.path.realpath(real)
        if not real.startswith(inside):
            raise UserError(
                f"{name}: image path {rel!r} resolves to {real}, outside the dataset root {top} "
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
