from __future__ import annotations

import pytest

import data_prep
from common import UserError
from data_prep import DATASETS
from data_prep.registry import REGISTRY, Source, get_source, register
from tests.data_prep.layouts import BUILDERS


def test_datasets_are_the_six_of_the_spec():
    assert DATASETS == ("sop", "inshop", "deepfashion2", "cifar10", "cifar100", "fashion-mnist")


def test_every_registered_dataset_has_a_fixture_layout():
    assert set(BUILDERS) == set(DATASETS)


def test_public_api():
    for name in ("DATASETS", "prepare", "load_manifest", "ManifestDataset", "ensure_fashion_mnist"):
        assert hasattr(data_prep, name)


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


@pytest.mark.parametrize("name", DATASETS)
def test_sources_declare_their_official_splits(name):
    source = get_source(name)
    assert set(source.official) == set(source.splits)
    assert source.splits[0] == "train"
