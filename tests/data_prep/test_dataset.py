from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from common import UserError
from data_prep import DATASETS, ManifestDataset, get_source, load_manifest
from tests.data_prep.layouts import BUILDERS, fashion_images


@pytest.mark.parametrize("name", DATASETS)
def test_items_labels_and_modes(name, prepared):
    data_dir = prepared(name)
    source = get_source(name)
    frame = load_manifest(name, data_dir)
    for split, want in BUILDERS[name][1].items():
        ds = ManifestDataset(name, data_dir, split)
        rows = frame[frame.split == split]
        assert len(ds) == want["images"]
        assert ds.labels.dtype == np.int64 and ds.superclasses.dtype == np.int64
        assert list(ds.labels) == list(rows["label"]) and list(ds.superclasses) == list(
            rows["superclass"]
        )
        img, label, superclass = ds[len(ds) - 1]
        assert isinstance(img, Image.Image)
        assert img.mode == (get_source(name).pixel_mode or "RGB")
        assert (label, superclass) == (ds.labels[-1], ds.superclasses[-1])
        if source.pixel_mode:
            assert ds.array.dtype == np.uint8 and len(ds.array) == len(ds)
            assert np.array_equal(np.asarray(img), ds.array[-1])
        else:
            assert ds.array is None


@pytest.mark.parametrize("name", DATASETS)
def test_indices_and_transform(name, prepared):
    data_dir = prepared(name)
    full = ManifestDataset(name, data_dir, "train")
    sub = ManifestDataset(name, data_dir, "train", transform=lambda im: im.size, indices=[2, 0])
    assert list(sub.labels) == [full.labels[2], full.labels[0]]
    assert sub[0] == (full[2][0].size, full.labels[2], full.superclasses[2])
    if full.array is not None:
        assert np.array_equal(sub.array, full.array[[2, 0]])


def test_array_pixels_match_the_raw_files(prepared):
    ds = ManifestDataset("fashion-mnist", prepared("fashion-mnist"), "test")
    assert ds.array.shape == (3, 4, 3)
    assert np.array_equal(ds.array, fashion_images("test"))


def test_cifar_array_is_hwc(prepared):
    ds = ManifestDataset("cifar10", prepared("cifar10"), "test")
    assert ds.array.shape == (3, 32, 32, 3)


def test_pickles_without_the_mmap(prepared):
    ds = ManifestDataset("fashion-mnist", prepared("fashion-mnist"), "train")
    ds[0]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._mmap is None and np.array_equal(np.asarray(clone[1][0]), np.asarray(ds[1][0]))


def test_deepfashion2_items_are_box_crops(prepared):
    ds = ManifestDataset("deepfashion2", prepared("deepfashion2"), "train")
    # boxes [2, 3, 20, 25], [0, 0, 40, 30], [5, 5, 15, 15] of 40 x 30 images
    assert [ds[i][0].size for i in range(3)] == [(18, 22), (40, 30), (10, 10)]


def test_unknown_split(prepared):
    with pytest.raises(UserError, match="sop has no split 'query'; its splits: train, test"):
        ManifestDataset("sop", prepared("sop"), "query")


def test_missing_image_at_load_time(prepared, tmp_path):
    data_dir = prepared("sop")
    ds = ManifestDataset("sop", data_dir, "train")
    (tmp_path / "raw" / "sop" / "bicycle_final" / "1_a.JPG").unlink()
    with pytest.raises(UserError, match="1_a.JPG is missing"):
        ds[0]
