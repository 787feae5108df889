"""Loading a prepared dataset: every manifest column and manifest.json field checked, the error
naming the file, the line and the bad value (1.5 was once truncated, -7 wrapped)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from common import UserError
from data_prep import ManifestDataset, load_manifest, prepare
from tests.data_prep.helpers import exit2, quiet
from tests.data_prep.layouts import jpeg, make_cifar10


def set_cell(data_dir: Path, name: str, row: int, column: str, value: str) -> Path:
    """Write ``value`` into data row ``row`` (0-based) of the manifest table, by hand."""
    path = data_dir / name / "manifest.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[row + 1].split(",")
    cells[header.index(column)] = value
    lines[row + 1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    return path


CELL_CASES = [
    # dataset, row, column, value, what it must be
    ("sop", 2, "label", "1.5", "an integer >= 0"),
    ("sop", 3, "label", "-7", "an integer >= 0"),
    ("sop", 0, "label", "abc", "an integer >= 0"),
    ("sop", 5, "label", "", "an integer >= 0"),
    ("sop", 1, "label", "99999999999999999999", "an integer >= 0"),  # beyond int64
    ("sop", 4, "superclass", "-2", "an integer >= -1 (-1: none)"),
    ("sop", 4, "superclass", "0.5", "an integer >= -1 (-1: none)"),
    ("sop", 1, "split", "val", "one of ('train', 'test')"),
    ("sop", 1, "path", "", "a relative path"),
    ("sop", 6, "path", "/etc/passwd", "a relative path"),
    ("sop", 6, "path", "chair_final/../../../etc/passwd", "a relative path"),
    ("cifar10", 3, "index", "-1", "an integer >= 0"),
    ("cifar10", 12, "index", "13", "below 13 (the images in pixels.npy)"),
    ("cifar10", 0, "superclass", "none", "an integer >= -1 (-1: none)"),
    ("deepfashion2", 1, "x1", "2.5", "an integer >= 0"),
    ("deepfashion2", 0, "x2", "2", "above x1 (an empty box)"),
    ("deepfashion2", 2, "y2", "5", "above y1 (an empty box)"),
]


@pytest.mark.parametrize("name, row, column, value, what", CELL_CASES)
def test_bad_cell(prepared, name, row, column, value, what):
    data_dir = prepared(name)
    path = set_cell(data_dir, name, row, column, value)
    expected = f"{path}:{row + 2}: {column} {value!r} is not {what} (row {row + 1} of the table"
    with pytest.raises(UserError) as error:
        load_manifest(name, data_dir)
    assert expected in error.value.message
    assert f"xbmbench data prepare {name}" in error.value.message
    assert expected in exit2("info", name, "--data", data_dir)
    with pytest.raises(UserError, match="is not"):
        ManifestDataset(name, data_dir, "train")


def test_superclass_none_is_minus_one(prepared):
    """-1 is the format's "no superclass" (CIFAR-10): it loads, as int64."""
    frame = load_manifest("cifar10", prepared("cifar10"))
    assert frame["superclass"].tolist() == [-1] * 13 and frame["superclass"].dtype == np.int64


def test_valid_hand_edit_is_refused_by_the_table_sha256(prepared):
    data_dir = prepared("sop")
    path = set_cell(data_dir, "sop", 0, "label", "1")  # a valid label, another class
    with pytest.raises(UserError, match="manifest.csv does not match .* its sha256 is"):
        load_manifest("sop", data_dir)
    assert f"{path} does not match" in exit2("info", "sop", "--data", data_dir)


@pytest.mark.parametrize(
    "edit, problem",
    [
        (lambda t: t.replace("split,path,label", "split,file,label", 1), ":1: the header is"),
        (lambda t: t.replace("\ntest,", "\ntest,extra,", 1), ":8: more cells than the 4 columns"),
        (
            lambda t: t.replace("\ntest,", "\ntest\n", 1),
            ":9: split 'chair_final/4_a.JPG' is not one",
        ),
        (lambda t: t.replace("mug_final", "mug_\udcff", 1), ":10: not UTF-8 text (byte 0xff)"),
        (lambda t: t.replace("\ntest,", '\n"test,', 1), ": not a CSV table (Error tokenizing"),
    ],
)
def test_malformed_table(prepared, edit, problem):
    data_dir = prepared("sop")
    path = data_dir / "sop" / "manifest.csv"
    path.write_bytes(edit(path.read_text()).encode("utf-8", "surrogateescape"))
    assert f"{path}{problem}" in exit2("info", "sop", "--data", data_dir)


@pytest.mark.parametrize(
    "field, value, what",
    [
        (
            "columns",
            ["split", "path", "label"],
            "expected ['split', 'path', 'label', 'superclass']",
        ),
        ("counts", [6, 4], "expected images/classes per split"),
        ("counts", {"val": {"images": 6}}, "expected images/classes per split"),
        ("array", True, "expected False"),
        ("root", None, "expected a folder"),
        ("superclass_names", "bicycle", "expected a list of names"),
        ("fingerprint", 7, "expected a sha256 in hex"),
    ],
)
def test_bad_manifest_json_field(prepared, field, value, what):
    data_dir = prepared("sop")
    path = data_dir / "sop" / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), field: value}))
    out = exit2("info", "sop", "--data", data_dir)
    assert f"{path}: {field} is {value!r}"[:60] in out and what in out


@pytest.mark.parametrize(
    "write, problem",
    [
        (lambda p: p.write_bytes(b'{"format": 1, "dataset": "s\xffp"}'), "is not valid UTF-8 JSON"),
        (lambda p: p.write_text("[1, 2]"), "has format None"),
        (lambda p: (p.unlink(), p.mkdir()), "is not a file; move it aside"),
    ],
)
def test_unreadable_manifest_json(prepared, write, problem):
    data_dir = prepared("sop")
    path = data_dir / "sop" / "manifest.json"
    write(path)
    assert f"{path} {problem}" in exit2("info", "sop", "--data", data_dir)


def test_corrupt_pixels(prepared):
    data_dir = prepared("cifar10")
    path = data_dir / "cifar10" / "pixels.npy"
    path.write_bytes(b"not numpy")
    assert f"cannot read {path}" in exit2("info", "cifar10", "--data", data_dir)


@pytest.mark.parametrize("cut", [None, -20])  # garbage bytes; a JPEG cut inside its scan data
def test_corrupt_image_at_load_time(prepared, tmp_path, cut):
    ds = ManifestDataset("sop", prepared("sop"), "train")
    path = tmp_path / "raw" / "sop" / "bicycle_final" / "1_b.JPG"
    jpeg(path, size=(40, 30))  # big enough for its scan data to follow the headers
    path.write_bytes(b"garbage" if cut is None else path.read_bytes()[:cut])
    problem = "is not an image PIL can read" if cut is None else "(image file is truncated"
    with pytest.raises(UserError, match="sop: .*image") as error:
        ds[1]
    assert str(path) in error.value.message and problem in error.value.message


def test_pixels_replaced_after_the_dataset_was_opened(tmp_path):
    """A re-prepare while a Dataset is open: its lazily mapped pixels would no longer match its
    labels, so reading them is refused."""
    root = make_cifar10(tmp_path / "raw")
    prepare("cifar10", root, tmp_path / "d", log=quiet)
    ds = ManifestDataset("cifar10", tmp_path / "d", "test")
    prepare("cifar10", root, tmp_path / "d", log=quiet)
    with pytest.raises(UserError, match="pixels.npy was replaced since the cifar10 manifest"):
        ds[0]
    assert ManifestDataset("cifar10", tmp_path / "d", "test")[0][1] == 3
