"""Every bad input: exit code 2, a message naming the bad file or value, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from commands.data import data
from data_prep import load_manifest, prepare
from tests.data_prep.helpers import exit2 as run
from tests.data_prep.layouts import (
    make_cifar10,
    make_deepfashion2,
    make_fashion_mnist,
    make_inshop,
    make_sop,
)


def test_unknown_dataset(tmp_path):
    out = run("prepare", "mnist", "--root", tmp_path)
    assert (
        "unknown dataset 'mnist'; valid names: "
        "sop, inshop, deepfashion2, cifar10, cifar100, fashion-mnist" in out
    )
    assert "unknown dataset 'mnist'" in run("info", "mnist", "--data", tmp_path)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("sop", "Ebay_train.txt"),
        ("inshop", "list_eval_partition.txt"),
        ("deepfashion2", "train/annos"),
        ("cifar10", "cifar-10-batches-py"),
        ("cifar100", "cifar-100-python"),
        ("fashion-mnist", "train-images-idx3-ubyte.gz"),
    ],
)
def test_missing_root(tmp_path, name, expected):
    out = run("prepare", name, "--root", tmp_path / "nowhere", "--data", tmp_path / "d")
    assert "nowhere" in out and expected in out


def test_missing_split_file(tmp_path):
    (make_sop(tmp_path / "raw", images=False) / "Ebay_test.txt").unlink()
    out = run("prepare", "sop", "--root", tmp_path / "raw", "--data", tmp_path / "d")
    assert f"expected file {tmp_path / 'raw' / 'Ebay_test.txt'} is missing" in out


@pytest.mark.parametrize(
    "line, problem",
    [
        ("7 4 2", "expected 4 fields"),
        ("7 four 2 chair_final/x.JPG", "class_id 'four' is not an integer"),
    ],
)
def test_malformed_sop_line(tmp_path, line, problem):
    root = make_sop(tmp_path / "raw", images=False)
    with open(root / "Ebay_test.txt", "a") as f:
        f.write(line + "\n")
    out = run("prepare", "sop", "--root", root, "--data", tmp_path / "d")
    assert (
        f"{root / 'Ebay_test.txt'}:6: malformed line" in out and problem in out
    )  # header + 4 rows


def test_malformed_inshop_status(tmp_path):
    root = make_inshop(tmp_path / "raw", images=False)
    path = root / "Eval" / "list_eval_partition.txt"
    path.write_text(path.read_text().replace("id_02 train", "id_02 val"))
    out = run("prepare", "inshop", "--root", root, "--data", tmp_path / "d")
    assert f"{path}:5: malformed line: evaluation_status 'val'" in out


def test_check_images_lists_the_first_ten(tmp_path):
    root = make_sop(tmp_path / "raw", images=False)
    with open(root / "Ebay_train.txt", "a") as f:
        f.writelines(f"{100 + i} 9 3 mug_final/extra_{i:02d}.JPG\n" for i in range(6))
    assert (
        CliRunner()
        .invoke(data, ["prepare", "sop", "--root", str(root), "--data", str(tmp_path / "d")])
        .exit_code
        == 0
    )
    out = run("prepare", "sop", "--root", root, "--data", tmp_path / "d2", "--check-images")
    assert "sop: 16 images of the manifest are missing" in out
    listed = [line for line in out.splitlines() if line.strip().startswith(str(root))]
    assert len(listed) == 10 and listed[0].strip() == str(root / "bicycle_final/1_a.JPG")
    assert not (tmp_path / "d2" / "sop").exists()


def test_deepfashion2_missing_image(tmp_path):
    root = make_deepfashion2(tmp_path / "raw")
    (root / "validation" / "image" / "000002.jpg").unlink()
    out = run("prepare", "deepfashion2", "--root", root, "--data", tmp_path / "d")
    assert "1 annotated images are missing" in out and "validation/image/000002.jpg" in out


def test_deepfashion2_invalid_json(tmp_path):
    root = make_deepfashion2(tmp_path / "raw")
    (root / "train" / "annos" / "000002.json").write_text('{"source": "shop", ')
    out = run("prepare", "deepfashion2", "--root", root, "--data", tmp_path / "d")
    assert f"{root / 'train' / 'annos' / '000002.json'}: not a valid JSON annotation file" in out


def test_deepfashion2_item_without_box(tmp_path):
    root = make_deepfashion2(tmp_path / "raw")
    path = root / "train" / "annos" / "000001.json"
    anno = json.loads(path.read_text())
    del anno["item1"]["bounding_box"]
    path.write_text(json.dumps(anno))
    out = run("prepare", "deepfashion2", "--root", root, "--data", tmp_path / "d")
    assert f"{path}: item1 needs category_id, style and bounding_box" in out


def test_cifar_missing_batch(tmp_path):
    root = make_cifar10(tmp_path / "raw")
    (root / "cifar-10-batches-py" / "data_batch_3").unlink()
    out = run("prepare", "cifar10", "--root", root, "--data", tmp_path / "d")
    assert f"expected file {root / 'cifar-10-batches-py' / 'data_batch_3'} is missing" in out


def test_fashion_mnist_not_gzip_idx(tmp_path):
    root = make_fashion_mnist(tmp_path / "raw")
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not a gzip file")
    out = run("prepare", "fashion-mnist", "--root", root, "--data", tmp_path / "d")
    assert "t10k-labels-idx1-ubyte.gz is not a gzip-compressed IDX file" in out


def test_option_of_another_dataset(tmp_path):
    root = make_sop(tmp_path / "raw", images=False)
    out = run(
        "prepare", "sop", "--root", root, "--data", tmp_path / "d", "--crop-to", tmp_path / "c"
    )
    assert "option crop_to does not apply to sop" in out


def test_info_without_manifest(tmp_path):
    out = run("info", "sop", "--data", tmp_path)
    assert f"no manifest for sop: expected {tmp_path / 'sop' / 'manifest.json'}" in out
    assert "xbmbench data prepare sop" in out


@pytest.fixture
def sop_data(tmp_path) -> Path:
    prepare(
        "sop", make_sop(tmp_path / "raw", images=False), tmp_path / "d", log=lambda *a, **k: None
    )
    return tmp_path / "d"


def test_older_format(sop_data):
    path = sop_data / "sop" / "manifest.json"
    meta = json.loads(path.read_text())
    path.write_text(json.dumps({**meta, "format": 0}))
    out = run("info", "sop", "--data", sop_data)
    assert "has format 0, this xbmbench reads format 1" in out
    assert f"re-run `xbmbench data prepare sop --root {meta['root']} --data {sop_data}`" in out


def test_csv_without_json_is_an_older_format(sop_data):
    (sop_data / "sop" / "manifest.json").unlink()
    assert "it was written by an older format" in run("info", "sop", "--data", sop_data)


def test_csv_that_does_not_match_its_json(sop_data):
    path = sop_data / "sop" / "manifest.csv"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-2]))
    assert "does not match" in run("info", "sop", "--data", sop_data)


def test_fetch_other_dataset(tmp_path):
    out = run("fetch", "sop", "--out", tmp_path)
    assert "only fashion-mnist can be fetched" in out and "cvgl.stanford.edu" in out


def test_failed_re_prepare_keeps_the_old_manifest(tmp_path, monkeypatch):
    """An interrupt while the new table is written leaves the old manifest whole and usable."""
    root = make_sop(tmp_path / "raw", images=False)
    prepare("sop", root, tmp_path / "d", log=lambda *a, **k: None)
    folder = tmp_path / "d" / "sop"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def broken(self, path, **kw):
        Path(path).write_text("split,pa")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(KeyboardInterrupt):
        prepare("sop", root, tmp_path / "d", log=lambda *a, **k: None)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(before) == ["manifest.csv", "manifest.json"]
    assert len(load_manifest("sop", tmp_path / "d")) == 10
