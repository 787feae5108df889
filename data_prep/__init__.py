"""Dataset preparation: official raw files -> one manifest format, and the Dataset over it.

One module per dataset, each registering a ``Source``; every module is imported here explicitly.
"""

# registration order = the order of DATASETS
# isort: off
from data_prep import sop, inshop, deepfashion2  # noqa: F401
from data_prep import cifar10, cifar100, fashion_mnist  # noqa: F401

# isort: on
from data_prep.fashion_mnist import ensure_fashion_mnist
from data_prep.load import FORMAT, fingerprint, load_manifest
from data_prep.manifest import default_data_dir, prepare
from data_prep.registry import REGISTRY, get_source

DATASETS: tuple[str, ...] = tuple(REGISTRY)


def __getattr__(name: str):
    """``ManifestDataset`` (a torch Dataset) on first use, so that preparing data and building
    the command line (``xbmbench --help``) load no torch."""
    if name == "ManifestDataset":
        from data_prep.dataset import ManifestDataset

        return ManifestDataset
    raise AttributeError(f"module 'data_prep' has no attribute {name!r}")


__all__ = [
    "DATASETS",
    "FORMAT",
    "ManifestDataset",
    "default_data_dir",
    "ensure_fashion_mnist",
    "fingerprint",
    "get_source",
    "load_manifest",
    "prepare",
]
