"""Reading a prepared dataset back: ``manifest.json`` and the table, every field and column
checked, and the dataset's fingerprint.

Every problem is a ``UserError`` naming the file (and, for the table, the line and the value) and
how to fix it: re-running ``xbmbench data prepare``.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common import UserError
from data_prep.checks import check_columns, expected_columns, parse_table
from data_prep.files import CSV, FORMAT, JSON, PIXELS, fingerprint_of, sha256_file
from data_prep.registry import get_source

RETRIES = 3  # reads of a table whose sha256 differs from manifest.json's, see _read_table


def _rerun(name: str, data_dir: Path, root: str = "RAW_DIR") -> str:
    return f"re-run `xbmbench data prepare {name} --root {root} --data {data_dir}`"


def _read_json(name: str, data_dir: Path) -> Any:
    path = data_dir / name / JSON
    if not path.is_file():
        if path.exists():
            raise UserError(f"{path} is not a file; move it aside and {_rerun(name, data_dir)}")
        if (data_dir / name / CSV).is_file():
            raise UserError(
                f"{data_dir / name / CSV} has no {JSON}: it was written by an older format "
                f"or its preparation was interrupted; {_rerun(name, data_dir)}"
            )
        raise UserError(f"no manifest for {name}: expected {path}; {_rerun(name, data_dir)}")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not valid UTF-8 JSON ({e}); {_rerun(name, data_dir)}") from None
    except OSError as e:
        raise UserError(f"cannot read {path} ({e.strerror or e})") from None


def load_meta(name: str, data_dir: str | Path) -> dict:
    """``manifest.json`` of ``name``, checked for existence, format version and field types."""
    data_dir = Path(data_dir).expanduser()
    source = get_source(name, data_dir)
    path = data_dir / name / JSON
    meta = _read_json(name, data_dir)
    root = meta.get("root", "RAW_DIR") if isinstance(meta, dict) else "RAW_DIR"
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else None
        raise UserError(
            f"{path} has format {got!r}, this xbmbench reads format {FORMAT}: "
            f"{_rerun(name, data_dir, root)}"
        )
    if meta.get("dataset") != name:
        got = meta.get("dataset")
        raise UserError(f"{path} describes {got!r}, not {name!r}; {_rerun(name, data_dir, root)}")
    array = meta.get("array")
    checks = {
        "root": (isinstance(root, str) and bool(root), "a folder"),
        "array": (array is (source.pixel_mode is not None), f"{source.pixel_mode is not None}"),
        "columns": (
            meta.get("columns") == expected_columns(source, bool(array)),
            f"{expected_columns(source, bool(array))}",
        ),
        "counts": (_counts_ok(meta.get("counts"), source.splits), "images/classes per split"),
        "superclass_names": (
            isinstance(meta.get("superclass_names", []), list)
            and all(isinstance(n, str) for n in meta.get("superclass_names", [])),
            "a list of names",
        ),
    }
    for key in ("table_sha256", "pixels_sha256", "fingerprint"):
        value = meta.get(key)
        checks[key] = (value is None or isinstance(value, str), "a sha256 in hex")
    for key, (ok, what) in checks.items():
        if not ok:
            raise UserError(
                f"{path}: {key} is {meta.get(key)!r:.80}, expected {what}; "
                f"{_rerun(name, data_dir, root if isinstance(root, str) else 'RAW_DIR')}"
            )
    return meta


def _counts_ok(counts: Any, splits: tuple[str, ...]) -> bool:
    return (
        isinstance(counts, dict)
        and set(counts) <= set(splits)
        and all(
            isinstance(c, dict) and isinstance(c.get("images"), int) and c["images"] >= 0
            for c in counts.values()
        )
    )


def _read_table(name: str, data_dir: Path) -> tuple[dict, bytes, str]:
    """``manifest.json`` and the table's bytes and sha256. A re-prepare renames the new table a
    moment before the new ``manifest.json`` (``data_prep.files``), so a mismatch is read again a
    few times before it is reported."""
    path = data_dir / name / CSV
    for attempt in range(RETRIES):
        meta = load_meta(name, data_dir)
        if not path.is_file():
            why = "is not a file" if path.exists() else "is missing"
            raise UserError(f"expected file {path} {why}; {_rerun(name, data_dir, meta['root'])}")
        try:
            data = path.read_bytes()
        except OSError as e:
            raise UserError(f"cannot read {path} ({e.strerror or e})") from None
        table = hashlib.sha256(data).hexdigest()
        if meta.get("table_sha256") in (None, table):
            break
        time.sleep(0.2 * (attempt + 1))
    return meta, data, table


def _n_pixels(name: str, data_dir: Path) -> int:
    path = data_dir / name / PIXELS
    try:
        pixels = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {path} ({e}); {_rerun(name, data_dir)}") from None
    if pixels.dtype != np.uint8 or pixels.ndim not in (3, 4):
        raise UserError(
            f"{path} holds {pixels.dtype} {pixels.shape}, expected uint8 images (N, H, W[, C]); "
            f"{_rerun(name, data_dir)}"
        )
    return len(pixels)


def load_checked(name: str, data_dir: str | Path) -> tuple[dict, pd.DataFrame, str]:
    """``manifest.json``, the checked table (integer columns as int64), and the table's sha256."""
    data_dir = Path(data_dir).expanduser()
    meta, data, table = _read_table(name, data_dir)
    path = data_dir / name / CSV
    rerun = _rerun(name, data_dir, meta["root"])
    try:
        cells, lines = parse_table(data, path, meta["columns"])
        n_pixels = _n_pixels(name, data_dir) if meta["array"] else None
        frame = check_columns(cells, lines, get_source(name, data_dir), path, n_pixels)
    except UserError as e:
        raise UserError(f"{e.message}; {rerun}") from None
    want = meta.get("table_sha256")
    if want is not None and want != table:
        raise UserError(
            f"{path} does not match {path.with_name(JSON)}: its sha256 is {table[:12]}..., "
            f"{JSON} records {want[:12]}...; the table was changed after `data prepare` or a "
            f"preparation was interrupted; {rerun}"
        )
    if len(frame) != sum(c["images"] for c in meta["counts"].values()):
        raise UserError(f"{path} does not match {path.with_name(JSON)}; {rerun}")
    return meta, frame, table


def load_manifest(name: str, data_dir: str | Path) -> pd.DataFrame:
    """The manifest of ``name`` in ``data_dir``, every column checked (``data_prep.checks``);
    a ``UserError`` if it is missing, of an older format, malformed, or does not match its
    ``manifest.json``."""
    return load_checked(name, data_dir)[1]


def fingerprint(data_dir: str | Path, dataset: str) -> str:
    """The content hash (sha256, 64 hex digits) of a prepared dataset, recomputed from its files.

    It covers the table's bytes, ``pixels.npy``'s bytes (array datasets) and the summary fields
    that define the data (``data_prep.files.DEFINING``), not the raw root: re-preparing identical
    data gives the same fingerprint, changing one label changes it. The images of path datasets
    are named, not hashed (hashing 120k JPEGs per run would cost minutes). A manifest.json older
    than the fingerprint gets one computed the same way; a recorded one that differs from the
    files is a ``UserError`` (the files were changed after ``data prepare``)."""
    data_dir = Path(data_dir).expanduser()
    meta, _, table = load_checked(dataset, data_dir)
    pixels = sha256_file(data_dir / dataset / PIXELS) if meta["array"] else None
    value = fingerprint_of(meta, table, pixels)
    recorded = meta.get("fingerprint")
    if recorded is not None and recorded != value:
        changed = PIXELS if meta.get("pixels_sha256") not in (None, pixels) else JSON
        raise UserError(
            f"{data_dir / dataset / changed} was changed after `data prepare`: the dataset's "
            f"fingerprint is {value[:12]}..., {JSON} records {recorded[:12]}...; "
            f"{_rerun(dataset, data_dir, meta['root'])}"
        )
    return value
