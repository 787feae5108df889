"""The files of a prepared dataset, how they are replaced, and the dataset's fingerprint.

``DATA_DIR/NAME/`` holds ``manifest.csv`` (the table), ``pixels.npy`` (array datasets) and
``manifest.json`` (the summary). Re-preparing never deletes a manifest a reader may be using: each
new file is first written whole beside the old one (``.manifest.csv.new``, with
``common.atomic_write``), and only when all are written are they renamed over the old ones, table
and pixels first and ``manifest.json`` last. A failure while writing (a full disk, a read-only file
system, an interrupt) therefore leaves the old manifest as it was. ``manifest.json`` records the
sha256 of the table, so that the instant between two renames, where a reader could see a new table
with the old summary, is detected by ``load_manifest`` instead of being read as data.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common import UserError, atomic_write, atomic_write_json

FORMAT = 1  # fields added since (sha256s, fingerprint) are optional: older manifests still load
CSV, JSON, PIXELS = "manifest.csv", "manifest.json", "pixels.npy"
STAGED = ".{}.new"  # the new file's name until it replaces the old one
# the summary fields that define the data; "root" is left out on purpose: the same images moved to
# another folder are the same dataset (the table names them relative to the root), and "skipped"
# and "warnings" describe the raw files, not the manifest
DEFINING = ("format", "dataset", "array", "columns", "counts", "superclass_names")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint_of(meta: dict[str, Any], table_sha256: str, pixels_sha256: str | None) -> str:
    """sha256 (hex) of the canonical JSON of the defining summary fields and of the sha256 of
    the table's bytes (and of ``pixels.npy``'s for array datasets)."""
    doc = {k: meta.get(k) for k in DEFINING}
    doc.update(table_sha256=table_sha256, pixels_sha256=pixels_sha256)
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def check_targets(name: str, folder: Path) -> None:
    """A ``UserError`` before any work if the manifest cannot go to ``folder``: the folder or one
    above it is a file, or a manifest file's name is taken by a folder."""
    for above in (folder, *folder.parents):
        if above.exists() and not above.is_dir():
            raise UserError(
                f"{name}: cannot write the manifest to {folder}: {above} is a file, not a folder "
                "(--data must be a folder)"
            )
    for file in (CSV, JSON, PIXELS):
        if (folder / file).is_dir():
            raise UserError(
                f"{name}: {folder / file} is a folder where the manifest file {file} goes: "
                "move it aside and prepare again"
            )


def _save_npy(tmp: str, pixels: np.ndarray) -> None:
    with open(tmp, "wb") as f:
        np.save(f, pixels)


def _why(e: OSError) -> str:
    if e.errno == errno.ENOSPC:
        return "no space left on the device"
    if e.errno == errno.EROFS:
        return "read-only file system"
    return e.strerror or str(e)


def write_manifest(
    name: str, folder: Path, frame: pd.DataFrame, pixels: np.ndarray | None, meta: dict
) -> str:
    """Write the table, the pixels and ``meta`` (with the sha256s and the fingerprint added) to
    ``folder``, replacing a previous manifest only once every new file is whole; returns the
    fingerprint."""
    staged: dict[str, Path] = {}
    target, renamed = folder / CSV, False
    try:
        if pixels is not None:
            target = folder / PIXELS
            staged[PIXELS] = atomic_write(
                folder / STAGED.format(PIXELS), lambda tmp: _save_npy(tmp, pixels)
            )
        target = folder / CSV
        staged[CSV] = atomic_write(
            folder / STAGED.format(CSV), lambda tmp: frame.to_csv(tmp, index=False)
        )
        table = sha256_file(staged[CSV])
        pix = sha256_file(staged[PIXELS]) if PIXELS in staged else None
        meta = {**meta, "table_sha256": table, "pixels_sha256": pix}
        meta["fingerprint"] = fingerprint_of(meta, table, pix)
        target = folder / JSON
        staged[JSON] = atomic_write_json(folder / STAGED.format(JSON), meta)
        for file in (PIXELS, CSV, JSON):  # manifest.json last: it commits the new manifest
            if file in staged:
                target = folder / file
                os.replace(staged[file], target)
                del staged[file]
                renamed = True
    except OSError as e:
        after = "prepare again" if renamed else "the previous manifest, if any, is unchanged"
        raise UserError(f"{name}: cannot write {target}: {_why(e)}; {after}") from None
    finally:
        for path in staged.values():
            path.unlink(missing_ok=True)
    return meta["fingerprint"]
