"""The manifest: ``DATA_DIR/NAME/manifest.csv`` (+ ``pixels.npy`` for array datasets) and
``manifest.json`` (format version, raw root, counts, skipped records, superclass names).

Labels are dense over the whole manifest with the classes of earlier splits first, so the train
labels are exactly ``0..C_train-1``; superclasses are dense over their sorted keys, or -1 where the
dataset has none. ``path`` is relative to the ``root`` recorded in ``manifest.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from common import UserError, atomic_write, atomic_write_json
from data_prep.registry import BOX, Raw, Source, get_source

FORMAT = 1
CSV, JSON, PIXELS = "manifest.csv", "manifest.json", "pixels.npy"
Log = Callable[..., None]


def default_data_dir() -> Path:
    """``$XBMBENCH_DATA``, else ``./data``."""
    return Path(os.environ.get("XBMBENCH_DATA") or "data")


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


def require_images(name: str, frame: pd.DataFrame, root: Path) -> None:
    """A ``UserError`` listing the first ten images the manifest names but the disk lacks."""
    if "path" not in frame:
        return
    missing = [p for p in frame["path"].unique() if not (root / p).is_file()]
    if missing:
        first = "\n  ".join(str(root / p) for p in missing[:10])
        raise UserError(
            f"{name}: {len(missing)} images of the manifest are missing under {root}:\n  {first}"
        )


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
    official ones through ``log(text, warning)`` and returns the manifest.
    """
    source = get_source(name)
    unknown = sorted(k for k, v in options.items() if v is not None and k not in source.options)
    if unknown:
        raise UserError(
            f"option {', '.join(unknown)} does not apply to {name} "
            f"(it takes: {', '.join(source.options) or 'none'})"
        )
    raw = source.read(Path(root), **{k: v for k, v in options.items() if v is not None})
    frame, names = build_frame(source, raw)
    root = Path(raw.root).expanduser().resolve()
    if check_images:
        require_images(name, frame, root)
    counts = summarise(frame, source.splits)
    folder = Path(out_dir if out_dir is not None else default_data_dir()) / name
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
    (folder / JSON).unlink(missing_ok=True)  # a crash below leaves no manifest, not a stale one
    if raw.pixels is not None:
        atomic_write(folder / PIXELS, lambda tmp: _save_npy(tmp, raw.pixels))
    atomic_write(folder / CSV, lambda tmp: frame.to_csv(tmp, index=False))
    atomic_write_json(folder / JSON, meta)
    log(f"{name}: wrote {folder / CSV} ({len(frame):,} images, root {root})")
    for text, warning in report_lines(source, counts, len(names), dict(raw.skipped), raw.warnings):
        log(text, warning)
    return frame


def _save_npy(tmp: str, pixels: np.ndarray) -> None:
    with open(tmp, "wb") as f:
        np.save(f, pixels)


def _rerun(name: str, data_dir: Path, root: str = "RAW_DIR") -> str:
    return f"re-run `xbmbench data prepare {name} --root {root} --out {data_dir}`"


def load_meta(name: str, data_dir: str | Path) -> dict:
    """``manifest.json`` of ``name``, checked for existence and format version."""
    get_source(name)
    data_dir = Path(data_dir).expanduser()
    folder = data_dir / name
    if not (folder / JSON).is_file():
        if (folder / CSV).is_file():
            raise UserError(
                f"{folder / CSV} has no {JSON}: it was written by an older format "
                f"or its preparation was interrupted; {_rerun(name, data_dir)}"
            )
        raise UserError(
            f"no manifest for {name}: expected {folder / JSON}; {_rerun(name, data_dir)}"
        )
    try:
        meta = json.loads((folder / JSON).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"{folder / JSON} is not valid JSON ({e}); {_rerun(name, data_dir)}")
    root = meta.get("root", "RAW_DIR") if isinstance(meta, dict) else "RAW_DIR"
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else None
        raise UserError(
            f"{folder / JSON} has format {got!r}, this xbmbench reads format {FORMAT}: "
            f"{_rerun(name, data_dir, root)}"
        )
    if meta.get("dataset") != name:
        raise UserError(
            f"{folder / JSON} describes {meta.get('dataset')!r}, not {name!r}; "
            f"{_rerun(name, data_dir, root)}"
        )
    return meta


def load_manifest(name: str, data_dir: str | Path) -> pd.DataFrame:
    """The manifest of ``name`` in ``data_dir``; a ``UserError`` if it is missing, of an older
    format, or does not match its ``manifest.json``."""
    meta = load_meta(name, data_dir)
    path = Path(data_dir).expanduser() / name / CSV
    if not path.is_file():
        raise UserError(
            f"expected file {path} is missing; {_rerun(name, Path(data_dir), meta['root'])}"
        )
    frame = pd.read_csv(path, dtype={"split": str, "path": str})
    if list(frame.columns) != meta["columns"] or len(frame) != sum(
        c["images"] for c in meta["counts"].values()
    ):
        raise UserError(
            f"{path} does not match {path.with_name(JSON)}; "
            f"{_rerun(name, Path(data_dir), meta['root'])}"
        )
    return frame
