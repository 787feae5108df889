"""Omniglot: the reader on generated zips of the official layout, and the shipped minimal split
checked independently (zipfile + PIL + hashlib here, not the module's helpers)."""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common import UserError
from data_prep import ensure_prepared, load_manifest, prepare
from data_prep.load import load_meta
from data_prep.omniglot import EMBEDDED, SMALL_SHA256, check_embedded, ensure_omniglot_small
from tests.data_prep.helpers import quiet
from tests.data_prep.layouts import (
    OMNIGLOT_PARTS,
    drawing,
    make_omniglot,
    make_omniglot_small,
    omniglot_zip,
)


def test_classes_are_alphabet_character_and_superclasses_alphabets(tmp_path):
    data = tmp_path / "data"
    frame = prepare("omniglot", make_omniglot(tmp_path / "raw"), data, log=quiet)
    meta = load_meta("omniglot", data)
    assert meta["superclass_names"] == ["Alpha", "Beta", "Delta", "Gamma"]  # sorted alphabets
    train, test = frame[frame["split"] == "train"], frame[frame["split"] == "test"]
    # background: Alpha/character01 x2, Alpha/character02 x1, Beta/character01 x2 (zip order)
    assert list(train["label"]) == [0, 0, 1, 2, 2]
    assert list(train["superclass"]) == [0, 0, 0, 1, 1]
    # evaluation: Delta/character01 x1, Gamma/character01 x2 (sorted by path in the zip)
    assert list(test["label"]) == [3, 4, 4]
    assert list(test["superclass"]) == [2, 3, 3]
    pixels = np.load(data / "omniglot" / "pixels.npy")
    assert pixels.shape == (8, 105, 105) and pixels.dtype == np.uint8
    # the first training image is Alpha/character01's first drawing, decoded by PIL here
    want = np.asarray(Image.open(io.BytesIO(drawing("Alpha/character01/0"))).convert("L"))
    assert (pixels[0] == want).all() and set(np.unique(pixels[0])) == {0, 255}


def test_extracted_folders_read_as_the_zips(tmp_path):
    zips = make_omniglot(tmp_path / "zips")
    folders = tmp_path / "folders"
    for stem in OMNIGLOT_PARTS:
        with zipfile.ZipFile(zips / f"{stem}.zip") as z:
            z.extractall(folders)
    a = prepare("omniglot", zips, tmp_path / "a", log=quiet)
    b = prepare("omniglot", folders, tmp_path / "b", log=quiet)
    assert a.equals(b)
    assert (
        np.load(tmp_path / "a/omniglot/pixels.npy") == np.load(tmp_path / "b/omniglot/pixels.npy")
    ).all()


def test_minimal_split_leaves_the_shared_alphabet_in_train(tmp_path):
    frame = prepare(
        "omniglot-small", make_omniglot_small(tmp_path / "raw"), tmp_path / "d", log=quiet
    )
    names = load_meta("omniglot-small", tmp_path / "d")["superclass_names"]
    test = frame[frame["split"] == "test"]
    assert {names[s] for s in test["superclass"]} == {"Tau"}
    assert {names[s] for s in frame[frame["split"] == "train"]["superclass"]} == {"Alpha", "Greek"}


def _bad_size(root: Path) -> str:
    make_omniglot(root)
    image = Image.new("1", (28, 28), 1)
    out = io.BytesIO()
    image.save(out, format="PNG")
    with zipfile.ZipFile(root / "images_evaluation.zip", "a") as z:
        z.writestr("images_evaluation/Gamma/character01/0099_01.png", out.getvalue())
    return r"images_evaluation\.zip: Gamma/character01/0099_01\.png is 28 x 28 px"


def _not_png(root: Path) -> str:
    make_omniglot(root)
    with zipfile.ZipFile(root / "images_background.zip", "a") as z:
        z.writestr("images_background/Beta/character01/0099_01.png", b"not an image")
    return r"Beta/character01/0099_01\.png is not an image"


def _corrupt_zip(root: Path) -> str:
    make_omniglot(root)
    (root / "images_evaluation.zip").write_bytes(b"PK\x03\x04 cut short")
    return r"images_evaluation\.zip is not a readable zip file"


def _missing(root: Path) -> str:
    make_omniglot(root)
    (root / "images_evaluation.zip").unlink()
    return r"expected .*images_evaluation\.zip \(or the folder .*images_evaluation it extracts to\)"


def _wrong_layout(root: Path) -> str:
    make_omniglot(root)
    with zipfile.ZipFile(root / "images_background.zip", "a") as z:
        z.writestr("images_background/stray.png", drawing("stray"))
    return r"holds 'images_background/stray\.png'; expected images_background/ALPHABET/"


def _same_drawing_both_sides(root: Path) -> str:
    parts = {
        "images_background": {"Alpha": {"character01": 1}},
        "images_evaluation": {"Gamma": {"character01": 1}},
    }
    make_omniglot(root, parts)
    # Gamma's drawing replaced by Alpha's: one image on both sides under other names
    omniglot_zip(root / "images_evaluation.zip", {})
    with zipfile.ZipFile(root / "images_evaluation.zip", "a") as z:
        z.writestr(
            "images_evaluation/Gamma/character01/0000_01.png", drawing("Alpha/character01/0")
        )
    return r"1 test image\(s\) also in train, e\.g\. Gamma/character01/0000_01\.png"


@pytest.mark.parametrize(
    "fault", [_bad_size, _not_png, _corrupt_zip, _missing, _wrong_layout, _same_drawing_both_sides]
)
def test_bad_files_are_named_and_nothing_is_written(tmp_path, fault):
    want = fault(tmp_path / "raw")
    with pytest.raises(UserError, match=want):
        prepare("omniglot", tmp_path / "raw", tmp_path / "data", log=quiet)
    assert not (tmp_path / "data" / "omniglot").exists()


def _decoded(path: Path) -> dict[tuple[str, str], list[str]]:
    """(alphabet, character) -> sha256 of each decoded drawing, read here independently."""
    out: dict[tuple[str, str], list[str]] = {}
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.endswith(".png"):
                _, alphabet, character, _ = name.split("/")
                pixels = np.asarray(Image.open(io.BytesIO(z.read(name))).convert("L"))
                out.setdefault((alphabet, character), []).append(
                    hashlib.sha256(pixels.tobytes()).hexdigest()
                )
    return out


def test_shipped_minimal_split_is_disjoint_by_class_and_by_image(tmp_path):
    small1 = _decoded(EMBEDDED / "images_background_small1.zip")
    small2 = _decoded(EMBEDDED / "images_background_small2.zip")
    # the leak this split avoids: Greek and Latin are in both zips with the same drawings
    shared = {a for a, _ in small1} & {a for a, _ in small2}
    assert shared == {"Greek", "Latin"}
    greek1 = sorted(h for (a, _), hs in small1.items() if a == "Greek" for h in hs)
    greek2 = sorted(h for (a, _), hs in small2.items() if a == "Greek" for h in hs)
    assert greek1 == greek2 and len(greek1) == 480

    ensure_prepared(["omniglot-small"], tmp_path / "data")
    frame = load_manifest("omniglot-small", tmp_path / "data")
    names = load_meta("omniglot-small", tmp_path / "data")["superclass_names"]
    pixels = np.load(tmp_path / "data" / "omniglot-small" / "pixels.npy")
    train, test = frame[frame["split"] == "train"], frame[frame["split"] == "test"]
    assert (len(train), train["label"].nunique(), len(test), test["label"].nunique()) == (
        2720, 136, 2120, 106,
    )  # fmt: skip
    assert set(train["label"]).isdisjoint(set(test["label"]))
    assert {names[s] for s in test["superclass"]} == {"Japanese_(katakana)", "Sanskrit", "Tagalog"}
    hashes = [hashlib.sha256(p.tobytes()).hexdigest() for p in pixels]
    train_h = {hashes[i] for i in train["index"]}
    assert not any(hashes[i] in train_h for i in test["index"])
    # every drawing of the three test alphabets is in the test split
    want = sorted(h for (a, _), hs in small2.items() if a not in shared for h in hs)
    assert sorted(hashes[i] for i in test["index"]) == want


def test_shipped_zips_are_checked_before_use(tmp_path):
    for file, sha in SMALL_SHA256.items():
        assert hashlib.sha256((EMBEDDED / file).read_bytes()).hexdigest() == sha
    assert check_embedded() == EMBEDDED
    copy = tmp_path / "copy"
    shutil.copytree(EMBEDDED, copy)
    with open(copy / "images_background_small2.zip", "ab") as f:
        f.write(b"\0")
    with pytest.raises(UserError, match=r"images_background_small2\.zip fails its SHA-256 check"):
        check_embedded(copy)


def test_ensure_prepares_once(tmp_path):
    folder = ensure_omniglot_small(tmp_path / "data")
    stamp = (folder / "manifest.json").stat().st_mtime_ns
    assert ensure_omniglot_small(tmp_path / "data") == folder
    assert (folder / "manifest.json").stat().st_mtime_ns == stamp


def test_the_official_split_refuses_an_alphabet_on_both_sides(tmp_path):
    parts = {
        "images_background": {"Alpha": {"character01": 1}},
        "images_evaluation": {"Alpha": {"character02": 1}},
    }
    with pytest.raises(UserError, match=r"alphabet\(s\) Alpha in train and test"):
        prepare("omniglot", make_omniglot(tmp_path / "raw", parts), tmp_path / "d", log=quiet)
