"""Manifests of the fixture trees, checked against counts made by hand in ``layouts``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from commands.data import data
from data_prep import DATASETS, FORMAT, get_source, load_manifest, prepare
from tests.data_prep.layouts import (
    BUILDERS,
    CIFAR10_LABELS,
    CIFAR100_COARSE,
    CIFAR100_FINE,
    FASHION_LABELS,
    INSHOP_ROWS,
    SOP_ROWS,
    make_deepfashion2,
)


def counts_of(frame: pd.DataFrame, split: str) -> dict:
    rows = frame[frame["split"] == split]
    sup = rows["superclass"][rows["superclass"] >= 0]
    return {"images": len(rows), "classes": rows["label"].nunique(), "superclasses": sup.nunique()}


@pytest.mark.parametrize("name", DATASETS)
def test_split_sizes_classes_superclasses(name, prepared):
    frame = load_manifest(name, prepared(name))
    expected = BUILDERS[name][1]
    assert sorted(frame["split"].unique()) == sorted(expected)
    for split, want in expected.items():
        assert counts_of(frame, split) == want, split


@pytest.mark.parametrize("name", DATASETS)
def test_labels_dense_train_first(name, prepared):
    frame = load_manifest(name, prepared(name))
    labels = np.sort(frame["label"].unique())
    assert list(labels) == list(range(len(labels)))
    train = frame[frame["split"] == "train"]["label"]
    assert set(train) == set(range(train.nunique()))
    sup = np.sort(frame["superclass"].unique())
    assert list(sup) == [-1] or list(sup) == list(range(len(sup)))
    assert frame["label"].dtype == np.int64 and frame["superclass"].dtype == np.int64


@pytest.mark.parametrize("name", DATASETS)
def test_manifest_json_and_columns(name, prepared):
    data_dir = prepared(name)
    meta = json.loads((data_dir / name / "manifest.json").read_text())
    assert meta["format"] == FORMAT and meta["dataset"] == name
    assert meta["counts"] == BUILDERS[name][1]
    source = get_source(name)
    key = "index" if source.pixel_mode else "path"
    box = ["x1", "y1", "x2", "y2"] if source.has_boxes else []
    assert list(load_manifest(name, data_dir).columns) == [
        "split",
        key,
        "label",
        "superclass",
        *box,
    ]
    assert (data_dir / name / "pixels.npy").is_file() == bool(source.pixel_mode)


@pytest.mark.parametrize("name", DATASETS)
def test_info_command(name, prepared):
    data_dir = prepared(name)
    result = CliRunner().invoke(data, ["info", name, "--data", str(data_dir), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == BUILDERS[name][1]
    table = CliRunner().invoke(data, ["info", name, "--data", str(data_dir)])
    assert table.exit_code == 0 and table.output.splitlines()[0].split() == [
        "split",
        "images",
        "classes",
        "superclasses",
    ]
    recorded = json.loads((data_dir / name / "manifest.json").read_text())["fingerprint"]
    assert table.output.splitlines()[-1] == f"fingerprint {recorded}"


def test_prepare_command_prints_official_sizes_and_warns(tmp_path):
    BUILDERS["sop"][0](tmp_path / "raw")
    result = CliRunner().invoke(
        data, ["prepare", "sop", "--root", str(tmp_path / "raw"), "--data", str(tmp_path / "d")]
    )
    assert result.exit_code == 0, result.output
    assert "train           6    59,551" in result.output
    assert "WARNING: test has 4 images, the official sop has 60,502" in result.output
    assert "WARNING: 3 superclasses, the official sop has 12" in result.output


def test_default_out_is_xbmbench_data(tmp_path, monkeypatch):
    BUILDERS["sop"][0](tmp_path / "raw", images=False)
    monkeypatch.setenv("XBMBENCH_DATA", str(tmp_path / "env"))
    result = CliRunner().invoke(data, ["prepare", "sop", "--root", str(tmp_path / "raw")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "env" / "sop" / "manifest.csv").is_file()


def by_path(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("path")


def test_sop_labels_and_no_class_crosses(prepared):
    frame = load_manifest("sop", prepared("sop"))
    assert set(frame[frame.split == "train"]["label"]).isdisjoint(
        frame[frame.split == "test"]["label"]
    )
    rows = by_path(frame)
    for items in SOP_ROWS.values():  # same original class <=> same label
        for cls_a, sup_a, rel_a in items:
            for cls_b, sup_b, rel_b in items:
                assert (rows.loc[rel_a, "label"] == rows.loc[rel_b, "label"]) == (cls_a == cls_b)
                assert (rows.loc[rel_a, "superclass"] == rows.loc[rel_b, "superclass"]) == (
                    sup_a == sup_b
                )
    meta = json.loads((prepared("sop") / "sop" / "manifest.json").read_text())
    assert meta["superclass_names"] == ["bicycle", "chair", "mug"]


def test_inshop_query_gallery_share_items_not_train(prepared):
    frame = load_manifest("inshop", prepared("inshop"))
    rows = by_path(frame)
    train = set(frame[frame.split == "train"]["label"])
    assert train.isdisjoint(frame[frame.split != "train"]["label"])
    assert set(frame[frame.split == "query"]["label"]) == set(
        frame[frame.split == "gallery"]["label"]
    )
    for rel_a, item_a, _ in INSHOP_ROWS:
        for rel_b, item_b, _ in INSHOP_ROWS:
            assert (rows.loc[rel_a, "label"] == rows.loc[rel_b, "label"]) == (item_a == item_b)
            same_folder = rel_a.split("/")[2] == rel_b.split("/")[2]  # img/<gender>/<category>/
            assert (rows.loc[rel_a, "superclass"] == rows.loc[rel_b, "superclass"]) == same_folder


def test_deepfashion2_triples_boxes_and_skips(tmp_path):
    raw = make_deepfashion2(tmp_path / "raw")
    lines = []
    frame = prepare(
        "deepfashion2", raw, tmp_path / "d", log=lambda text, warning=False: lines.append(text)
    )
    train = frame[frame.split == "train"].reset_index(drop=True)
    # train rows in file order: 000001 item1, 000002 item1, 000002 item2 (style 0 dropped)
    assert list(train["path"]) == [
        "train/image/000001.jpg",
        "train/image/000002.jpg",
        "train/image/000002.jpg",
    ]
    assert train["label"][0] == train["label"][1] != train["label"][2]
    query, gallery = frame[frame.split == "query"], frame[frame.split == "gallery"]
    assert list(query["label"]) == list(
        gallery["label"]
    )  # same (pair 1, cat 1, style 1) in validation
    assert query["label"].iloc[0] not in set(train["label"])  # the subset is part of the key
    assert query[["x1", "y1", "x2", "y2"]].values.tolist() == [
        [0, 0, 40, 30]
    ]  # clipped from [-5,-2,55,31]
    assert gallery[["x1", "y1", "x2", "y2"]].values.tolist() == [[10, 4, 30, 28]]
    assert len(set(frame["superclass"])) == 1  # only category 1 survives
    meta = json.loads((tmp_path / "d" / "deepfashion2" / "manifest.json").read_text())
    assert meta["skipped"] == {
        "style 0 (not a retrieval item)": 2,
        "box empty after clipping to the image": 1,
    }
    assert "skipped 3 records:" in lines and "  2 x style 0 (not a retrieval item)" in lines


def test_deepfashion2_crop_to(tmp_path):
    from data_prep import ManifestDataset

    raw = make_deepfashion2(tmp_path / "raw")
    frame = prepare(
        "deepfashion2", raw, tmp_path / "d", crop_to=tmp_path / "crops", log=lambda *a, **k: None
    )
    assert (tmp_path / "crops" / "train" / "000001_item1.jpg").is_file()
    assert (tmp_path / "crops" / "validation" / "000001_item1.jpg").is_file()
    ds = ManifestDataset("deepfashion2", tmp_path / "d", "train")
    assert [ds[i][0].size for i in range(3)] == [(18, 22), (40, 30), (10, 10)]  # from the boxes
    assert frame["x1"].eq(0).all()


def test_cifar10_labels_and_no_superclass(prepared):
    frame = load_manifest("cifar10", prepared("cifar10"))
    for split, labels in CIFAR10_LABELS.items():
        assert list(frame[frame.split == split]["label"]) == labels
    assert (frame["superclass"] == -1).all()


def test_cifar100_coarse_labels_kept(prepared):
    data_dir = prepared("cifar100")
    frame = load_manifest("cifar100", data_dir)
    fine = CIFAR100_FINE["train"] + CIFAR100_FINE["test"]
    coarse = [CIFAR100_COARSE[f] for f in fine]
    # dense ids keep the order of the original ids: coarse 0, 4, 7, 19 -> 0, 1, 2, 3
    assert list(frame["superclass"]) == [{0: 0, 4: 1, 7: 2, 19: 3}[c] for c in coarse]
    assert list(frame["label"]) == [{0: 0, 1: 1, 2: 2, 50: 3, 51: 4, 99: 5}[f] for f in fine]
    meta = json.loads((data_dir / "cifar100" / "manifest.json").read_text())
    assert meta["superclass_names"] == ["coarse0", "coarse4", "coarse7", "coarse19"]
    assert any("differs from the official file" in w for w in meta["warnings"])


def test_fashion_mnist_superclasses(prepared):
    data_dir = prepared("fashion-mnist")
    frame = load_manifest("fashion-mnist", data_dir)
    # dense labels, train classes first: train 0 1 5 8 9 -> 0..4, then test-only 2, 7 -> 5, 6
    label = {0: 0, 1: 1, 5: 2, 8: 3, 9: 4, 2: 5, 7: 6}
    # present superclasses tops, bottoms, footwear, bags (no dress in the fixture) -> 0..3
    tops, bottoms, footwear, bags = range(4)
    want = {"train": [tops, bottoms, footwear, bags, footwear], "test": [tops, footwear, footwear]}
    for split in ("train", "test"):
        rows = frame[frame.split == split]
        assert list(rows["label"]) == [label[c] for c in FASHION_LABELS[split]]
        assert list(rows["superclass"]) == want[split]
    meta = json.loads((data_dir / "fashion-mnist" / "manifest.json").read_text())
    assert meta["superclass_names"] == ["tops", "bottoms", "footwear", "bags"]
