from __future__ import annotations

import pytest

import data_prep
from common import UserError
from data_prep import DATASETS
from data_prep.registry import REGISTRY, Source, get_source, register
from tests.data_prep.layouts import BUILDERS


def test_datasets_are_the_ten_of_the_spec():
    assert DATASETS == (
        "sop", "inshop", "deepfashion2", "cifar10", "cifar100", "fashion-mnist", "omniglot",
        "omniglot-small", "cub200", "cars196",
    )  # fmt: skip


def test_every_registered_dataset_has_a_fixture_layout():
    assert set(BUILDERS) == set(DATASETS)


def test_public_api():
    """What the engine and the CLI import, and from where it comes."""
    assert sorted(data_prep.__all__) == [
        "AUTO_PREPARE",
        "DATASETS",
        "FORMAT",
        "ManifestDataset",
        "default_data_dir",
        "ensure_fashion_mnist",
        "ensure_omniglot_small",
        "ensure_prepared",
        "fingerprint",
        "get_source",
        "load_manifest",
        "prepare",
        "register_prepared",
    ]
    assert data_prep.fingerprint is data_prep.load.fingerprint
    assert data_prep.load_manifest is data_prep.load.load_manifest
    assert data_prep.prepare is data_prep.manifest.prepare
    assert data_prep.FORMAT == 1


def test_duplicate_name_is_an_error():
    with pytest.raises(ValueError, match="'sop' is registered twice"):

        @register
        class Again(Source):
            name = "sop"

    assert REGISTRY["sop"].__name__ == "SOP"


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(
        UserError, match="unknown dataset 'mnist'; valid names: sop, inshop, deepfashion2"
    ):
        get_source("mnist")


# what each official page (or the paper) says: splits, (images, classes) per split, number of
# superclasses, pixel mode of array datasets, boxes, and the dataset's own options
SPEC = {
    "sop": (
        ("train", "test"),
        {"train": (59_551, 11_318), "test": (60_502, 11_316)},
        12,
        None,
        False,
        (),
    ),
    "inshop": (
        ("train", "query", "gallery"),
        {"train": (25_882, 3_997), "query": (14_218, 3_985), "gallery": (12_612, 3_985)},
        None,
        None,
        False,
        (),
    ),
    "deepfashion2": (
        ("train", "query", "gallery"),
        {"train": (None, 31_517), "query": (12_377, 3_128), "gallery": (36_961, 7_059)},
        13,
        None,
        True,
        ("crop_to",),
    ),
    "cifar10": (
        ("train", "test"),
        {"train": (50_000, 10), "test": (10_000, 10)},
        None,
        "RGB",
        False,
        (),
    ),
    "cifar100": (
        ("train", "test"),
        {"train": (50_000, 100), "test": (10_000, 100)},
        20,
        "RGB",
        False,
        (),
    ),
    "fashion-mnist": (
        ("train", "test"),
        {"train": (60_000, 10), "test": (10_000, 10)},
        5,
        "L",
        False,
        (),
    ),
    # Lake et al. 2015: background 30 alphabets / 964 characters, evaluation 20 / 659, 20 each
    "omniglot": (
        ("train", "test"),
        {"train": (19_280, 964), "test": (13_180, 659)},
        50,
        "L",
        False,
        (),
    ),
    # small 1 (5 alphabets, 136 characters); small 2 (156 characters) less Greek (24) and Latin
    # (26), which small 1 holds too: 106 characters, 5 + 3 alphabets
    "omniglot-small": (
        ("train", "test"),
        {"train": (2_720, 136), "test": (2_120, 106)},
        8,
        "L",
        False,
        (),
    ),
    # Wah et al. 2011: 11,788 images, 200 species; species 1-100 train, 101-200 test
    "cub200": (
        ("train", "test"),
        {"train": (5_864, 100), "test": (5_924, 100)},
        None,
        None,
        False,
        (),
    ),
    # Krause et al. 2013: 16,185 images, 196 models; models 1-98 train, 99-196 test
    "cars196": (
        ("train", "test"),
        {"train": (8_054, 98), "test": (8_131, 98)},
        None,
        None,
        False,
        (),
    ),
}


@pytest.mark.parametrize("name", DATASETS)
def test_sources_declare_the_official_format(name):
    source = get_source(name)
    declared = (
        source.splits,
        source.official,
        source.official_superclasses,
        source.pixel_mode,
        source.has_boxes,
        source.options,
    )
    assert declared == SPEC[name]
    assert source.url.startswith("https://")
