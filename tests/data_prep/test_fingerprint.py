"""``data_prep.fingerprint``: the same for identical data, different when one label or pixel
changes, and available for a manifest.json written before it existed."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from common import UserError
from data_prep import DATASETS, fingerprint, prepare
from tests.data_prep.helpers import quiet
from tests.data_prep.layouts import BUILDERS


def prepare_into(name: str, raw: Path, data: Path) -> str:
    prepare(name, raw, data, log=quiet)
    return fingerprint(data, name)


def change_one_label(name: str, raw: Path) -> None:
    if name == "sop":  # first train image: class 1 -> 3
        path = raw / "Ebay_train.txt"
        path.write_text(
            path.read_text().replace("1 1 1 bicycle_final/1_a", "1 3 1 bicycle_final/1_a")
        )
    else:  # cifar10: the last test image, class 9 -> 8
        path = raw / "cifar-10-batches-py" / "test_batch"
        batch = pickle.loads(path.read_bytes())
        batch["labels"][-1] = 8
        path.write_bytes(pickle.dumps(batch))


@pytest.mark.parametrize("name", DATASETS)
def test_same_data_same_fingerprint(tmp_path, name):
    raw = BUILDERS[name][0](tmp_path / "raw")
    first = prepare_into(name, raw, tmp_path / "d")
    assert len(first) == 64 and int(first, 16) >= 0
    meta = json.loads((tmp_path / "d" / name / "manifest.json").read_text())
    assert meta["fingerprint"] == first
    assert prepare_into(name, raw, tmp_path / "d") == first  # re-prepared in place
    # the same files in another folder: the root is not part of the data's identity
    shutil.copytree(raw, tmp_path / "copy", symlinks=True)
    assert prepare_into(name, tmp_path / "copy", tmp_path / "d2") == first


@pytest.mark.parametrize("name", ["sop", "cifar10"])
def test_one_label_changed_changes_it(tmp_path, name):
    raw = BUILDERS[name][0](tmp_path / "raw")
    before = prepare_into(name, raw, tmp_path / "d")
    change_one_label(name, raw)
    after = prepare_into(name, raw, tmp_path / "d")
    assert after != before
    change_one_label(name, raw)  # idempotent edit: the same changed data again
    assert prepare_into(name, raw, tmp_path / "d") == after


def test_one_pixel_changed_changes_it(tmp_path):
    raw = BUILDERS["cifar10"][0](tmp_path / "raw")
    before = prepare_into("cifar10", raw, tmp_path / "d")
    path = raw / "cifar-10-batches-py" / "data_batch_1"
    batch = pickle.loads(path.read_bytes())
    batch["data"][0, 0] ^= 1
    path.write_bytes(pickle.dumps(batch))
    assert prepare_into("cifar10", raw, tmp_path / "d") != before


def test_the_definition(prepared):
    """sha256 of the canonical JSON of the defining summary fields and the table's sha256."""
    data_dir = prepared("sop")
    meta = json.loads((data_dir / "sop" / "manifest.json").read_text())
    table = hashlib.sha256((data_dir / "sop" / "manifest.csv").read_bytes()).hexdigest()
    fields = ("format", "dataset", "array", "columns", "counts", "superclass_names")
    doc = {k: meta[k] for k in fields} | {"table_sha256": table, "pixels_sha256": None}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    assert fingerprint(data_dir, "sop") == hashlib.sha256(text.encode()).hexdigest()


# the manifest row of the first train image, its label 0 edited to 1
FIRST_LABEL_0_TO_1 = {
    "sop": ("train,bicycle_final/1_a.JPG,0,", "train,bicycle_final/1_a.JPG,1,"),
    "cifar10": ("\ntrain,0,0,", "\ntrain,0,1,"),
}


@pytest.mark.parametrize("name", ["sop", "cifar10"])
def test_older_manifest_json_gets_one(tmp_path, name):
    """A manifest.json written before the fingerprint: computed from the files, the same value a
    fresh prepare records; a table edited since then gives another value (nothing to compare)."""
    raw = BUILDERS[name][0](tmp_path / "raw")
    recorded = prepare_into(name, raw, tmp_path / "d")
    path = tmp_path / "d" / name / "manifest.json"
    meta = json.loads(path.read_text())
    for key in ("table_sha256", "pixels_sha256", "fingerprint"):
        del meta[key]
    path.write_text(json.dumps(meta))
    assert fingerprint(tmp_path / "d", name) == recorded
    table = tmp_path / "d" / name / "manifest.csv"
    old, new = FIRST_LABEL_0_TO_1[name]
    text = table.read_text()
    assert old in text
    table.write_text(text.replace(old, new, 1))
    assert fingerprint(tmp_path / "d", name) != recorded


def test_pixels_replaced_by_hand(prepared):
    data_dir = prepared("cifar10")
    path = data_dir / "cifar10" / "pixels.npy"
    pixels = np.load(path)
    pixels[0, 0, 0, 0] ^= 1
    np.save(path, pixels)
    with pytest.raises(UserError, match="pixels.npy was changed after `data prepare`"):
        fingerprint(data_dir, "cifar10")


def test_summary_edited_by_hand(prepared):
    data_dir = prepared("sop")
    path = data_dir / "sop" / "manifest.json"
    path.write_text(
        json.dumps({**json.loads(path.read_text()), "superclass_names": ["a", "b", "c"]})
    )
    with pytest.raises(UserError, match="manifest.json was changed after `data prepare`"):
        fingerprint(data_dir, "sop")


def test_unprepared_dataset(tmp_path):
    with pytest.raises(UserError, match="no manifest for sop"):
        fingerprint(tmp_path, "sop")
