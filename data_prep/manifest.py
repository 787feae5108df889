"""The manifest: ``DATA_DIR/NAME/manifest.csv`` (+ ``pixels.npy`` for array datasets) and
``manifest.json`` (format version, raw root, counts, skipped records, superclass names, the
sha256 of the table and pixel files and the dataset's fingerprint).

Labels are dense over the whole manifest with the classes of earlier splits first, so the train
labels are exactly ``0..C_train-1``; superclasses are dense over their sorted keys, or -1 where the
dataset has none. ``path`` is relative to the ``root`` recorded in ``manifest.json``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from common import UserError
from data_prep.checks import require_images, require_inside
from data_prep.files import CSV, FORMAT, check_targets, write_manifest
from data_prep.registry import BOX, Raw, Source, get_source

Log = Callable[..., None]


def default_data_dir() -> Path:
    """``$XBMBENCH_DATA``, else ``./data``; a UserError naming the variable when it points at
    something that is not a folder (a file: no ``--out`` could fix that)."""
    env = os.environ.get("XBMBENCH_DATA")
    path = Path(env or "data")
    if path.exists() and not path.is_dir():
        what = f"XBMBENCH_DATA={path}" if env else f"the default data folder {path}"
        raise UserError(
            f"{what} is not a folder: point XBMBENCH_DATA (or --data) at the data folder (the "
            f"one holding <dataset>/manifest.json, where `xbmbench data prepare --data` writes)"
        )
    return path


def dense(keys: Sequence[Hashable], ranks: Sequence[int]) -> np.ndarray:
    """Map keys to 0..K-1, ordered by the smallest rank a key has, then by the key itself."""
    first: dict[Hashable, int] = {}
    for key, rank in zip(keys, ranks):
        first[key] = min(first.get(key, rank), rank)
    order = {k: i for i, k in enumerate(sorted(first, key=lambda k: (first[k], k)))}
    return np.fromiter((order[k] for k in keys), dtype=np.int64, count=len(keys))


def build_frame(source: Source, raw: Raw) -> tuple[pd.DataFrame, list[str]]:
    """The manifest rows from a source's raw records, and the superclass names by dense id."""
    rec = raw.records
    rank = rec["split"].map({s: i for i, s in enumerate(source.splits)}).to_numpy()
    frame = pd.DataFrame({"split": rec["split"]})
    key = "index" if raw.pixels is not None else "path"
    frame[key] = rec[key].to_numpy()
    frame["label"] = dense(list(rec["class_key"]), rank)
    sup = list(rec["superclass_key"])
    names: list[str] = []
    if rec["superclass_key"].isna().any():
        frame["superclass"] = np.int64(-1)
    else:
        frame["superclass"] = dense(sup, [0] * len(sup))
        names = [str(raw.superclass_names.get(k, k)) for k in sorted(set(sup))]
    for col in BOX if source.has_boxes else ():
        frame[col] = rec[col].astype("int64").to_numpy()
    return frame, names


def summarise(frame: pd.DataFrame, splits: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per split: images, classes and superclasses (-1, "none", is not counted)."""
    out = {}
    for split in splits:
        rows = frame[frame["split"] == split]
        sup = rows["superclass"]
        out[split] = {
            "images": len(rows),
            "classes": int(rows["label"].nunique()),
            "superclasses": int(sup[sup >= 0].nunique()),
        }
    return out


def _row(*cells: object) -> str:
    """One line of the size table: split, images, official, classes, official, superclasses."""
    widths = (-8, 8, 9, 8, 9, 13)
    text = [f"{c:,}" if isinstance(c, int) else ("-" if c is None else str(c)) for c in cells]
    return " ".join(t.ljust(-w) if w < 0 else t.rjust(w) for t, w in zip(text, widths))


def report_lines(
    source: Source, counts: dict, n_sup: int, skipped: dict, warnings: list[str]
) -> list[tuple[str, bool]]:
    """Lines comparing the found sizes with the official ones; (text, is_warning)."""
    name = source.name
    lines = [(_row("split", "images", "official", "classes", "official", "superclasses"), False)]
    alerts = []
    for split, c in counts.items():
        img, cls = source.official.get(split, (None, None))
        lines.append((_row(split, c["images"], img, c["classes"], cls, c["superclasses"]), False))
        for what, found, official in (("images", c["images"], img), ("classes", c["classes"], cls)):
            if official is not None and found != official:
                alerts.append(f"{split} has {found:,} {what}, the official {name} has {official:,}")
    official_sup = source.official_superclasses
    if official_sup is not None and n_sup != official_sup:
        alerts.append(f"{n_sup} superclasses, the official {name} has {official_sup}")
    lines.extend((f"WARNING: {a}", True) for a in alerts + list(warnings))
    if skipped:
        lines.append((f"skipped {sum(skipped.values()):,} records:", True))
        lines.extend((f"  {n:,} x {reason}", True) for reason, n in skipped.items())
    return lines


def _echo(text: str, warning: bool = False) -> None:
    click.echo(text, err=warning)


def prepare(
    name: str,
    root: str | Path,
    out_dir: str | Path | None = None,
    *,
    check_images: bool = False,
    log: Log = _echo,
    **options: Any,
) -> pd.DataFrame:
    """Read dataset ``name`` from its official files in ``root``; write ``out_dir/name/manifest.*``.

    ``options`` are the dataset's own (``crop_to`` for DeepFashion2). Prints the sizes next to the
    official ones through ``log(text, warning)`` and returns the manifest. The output folder is
    checked before the raw files are read, every image path must stay inside the root, and the
    new files replace an earlier manifest only once all of them are written (``data_prep.files``);
    ``manifest.json`` records the dataset's fingerprint.
    """
    source = get_source(name)
    unknown = sorted(k for k, v in options.items() if v is not None and k not in source.options)
    if unknown:
        raise UserError(
            f"option {', '.join(unknown)} does not apply to {name} "
            f"(it takes: {', '.join(source.options) or 'none'})"
        )
    folder = Path(out_dir if out_dir is not None else default_data_dir()).expanduser() / name
    check_targets(name, folder)  # before the long read
    raw = source.read(Path(root), **{k: v for k, v in options.items() if v is not None})
    frame, names = build_frame(source, raw)
    root = Path(raw.root).expanduser().resolve()
    if "path" in frame:
        require_inside(name, frame["path"], root)
        if check_images:
            require_images(name, frame["path"], root)
    counts = summarise(frame, source.splits)
    meta = {
        "format": FORMAT,
        "dataset": name,
        "root": str(root),
        "counts": counts,
        "skipped": dict(raw.skipped),
        "warnings": raw.warnings,
        "superclass_names": names,
        "columns": list(frame.columns),
        "array": raw.pixels is not None,
    }
    if source.kind is not None:  # a user-named dataset: how to find its source again
        meta["source"] = source.kind
    fingerprint = write_manifest(name, folder, frame, raw.pixels, meta)
    log(f"{name}: wrote {folder / CSV} ({len(frame):,} images, root {root})")
    log(f"{name}: fingerprint {fingerprint}")
    for text, warning in report_lines(source, counts, len(names), dict(raw.skipped), raw.warnings):
        log(text, warning)
    return frame
