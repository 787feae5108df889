"""Dataset preparation: official raw files -> one manifest format, and the Dataset over it.

One module per dataset, each registering a ``Source``; every module is imported here explicitly.
"""

# registration order = the order of DATASETS
# isort: off
from data_prep import sop, inshop, deepfashion2  # noqa: F401
from data_prep import cifar10, cifar100, fashion_mnist, omniglot  # noqa: F401
from data_prep import cub200, cars196  # noqa: F401
from data_prep import folder  # noqa: F401  (the kind "folder": datasets the user names)

# isort: on
from collections.abc import Iterable
from pathlib import Path

from data_prep.fashion_mnist import ensure_fashion_mnist
from data_prep.load import FORMAT, fingerprint, load_manifest
from data_prep.manifest import default_data_dir, prepare
from data_prep.omniglot import ensure_omniglot_small
from data_prep.registry import REGISTRY, get_source, register_prepared

# the datasets `xbmbench reproduce` and `verify` prepare by themselves when their manifest is
# missing: from Debian's package or a download (Fashion-MNIST), from the shipped zips (Omniglot)
AUTO_PREPARE = {"fashion-mnist": ensure_fashion_mnist, "omniglot-small": ensure_omniglot_small}


def ensure_prepared(datasets: Iterable[str], data_dir: str | Path) -> None:
    """Prepare each of ``datasets`` that ``AUTO_PREPARE`` can and whose manifest is missing."""
    for name in dict.fromkeys(datasets):
        if name in AUTO_PREPARE:
            AUTO_PREPARE[name](data_dir)


def __getattr__(name: str):
    """``DATASETS``: the registered dataset names, read when asked, since folder datasets
    (``data_prep.folder``) join the registry when a command finds them in its data folder;
    ``ManifestDataset`` (a torch Dataset) on first use, so that preparing data and building the
    command line (``xbmbench --help``) load no torch."""
    if name == "DATASETS":
        return tuple(REGISTRY)
    if name == "ManifestDataset":
        from data_prep.dataset import ManifestDataset

        return ManifestDataset
    raise AttributeError(f"module 'data_prep' has no attribute {name!r}")


__all__ = [
    "DATASETS",
    "FORMAT",
    "ManifestDataset",
    "default_data_dir",
    "AUTO_PREPARE",
    "ensure_fashion_mnist",
    "ensure_omniglot_small",
    "ensure_prepared",
    "fingerprint",
    "get_source",
    "load_manifest",
    "prepare",
    "register_prepared",
]
