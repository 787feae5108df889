"""Fashion-MNIST (Xiao et al. 2017): the four IDX ``.gz`` files, decoded by torchvision.

https://github.com/zalandoresearch/fashion-mnist ; superclasses: tops (T-shirt/top, Pullover, Coat,
Shirt), bottoms (Trouser), dresses (Dress), footwear (Sandal, Sneaker, Ankle boot), bags (Bag).
``fetch`` copies the files from Debian's ``dataset-fashion-mnist`` package or downloads them;
both paths check the SHA-256 of the decompressed IDX content (the Debian files are recompressed,
so their ``.gz`` bytes differ from the official ones while the content is identical).
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common import UserError, atomic_write
from data_prep.registry import Raw, Source, register, require_dir

# torchvision's FashionMNIST.classes, written out so that importing data_prep loads no torch
# (a test checks they agree)
CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
SUPERCLASS = {  # class name -> superclass name
    "T-shirt/top": "tops",
    "Pullover": "tops",
    "Coat": "tops",
    "Shirt": "tops",
    "Trouser": "bottoms",
    "Dress": "dresses",
    "Sandal": "footwear",
    "Sneaker": "footwear",
    "Ankle boot": "footwear",
    "Bag": "bags",
}
SUPERCLASSES = ("tops", "bottoms", "dresses", "footwear", "bags")
PREFIX = {"train": "train", "test": "t10k"}
# SHA-256 of the decompressed IDX files (identical in the official and the Debian copies)
SHA256 = dict(
    line.split()
    for line in """
train-images-idx3-ubyte.gz c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888
train-labels-idx1-ubyte.gz bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9
t10k-images-idx3-ubyte.gz 5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b
t10k-labels-idx1-ubyte.gz 0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34
""".strip().splitlines()
)
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")  # `dpkg -L dataset-fashion-mnist`


def _read_idx(path: Path, reader: Callable, tmp: Path) -> np.ndarray:
    """Decompress one ``.gz`` IDX file into ``tmp`` and decode it with torchvision's reader."""
    from torchvision.datasets.utils import extract_archive

    if not path.is_file():
        raise UserError(f"fashion-mnist: expected file {path} is missing")
    try:
        plain = extract_archive(str(path), str(tmp))
        return reader(plain).numpy()
    except (OSError, EOFError, AssertionError, ValueError, TypeError, RuntimeError) as e:
        raise UserError(
            f"fashion-mnist: {path} is not a gzip-compressed IDX file ({e!r})"
        ) from None


@register
class FashionMNISTSource(Source):
    name = "fashion-mnist"
    splits = ("train", "test")
    official = {"train": (60_000, 10), "test": (10_000, 10)}
    official_superclasses = 5
    pixel_mode = "L"
    url = "https://github.com/zalandoresearch/fashion-mnist"

    def read(self, root: Path, **options: Any) -> Raw:
        root = require_dir(root, self.name, "train-images-idx3-ubyte.gz and the three others")
        frames, pixels, offset = [], [], 0
        sup_index = {s: i for i, s in enumerate(SUPERCLASSES)}
        from torchvision.datasets.mnist import read_image_file, read_label_file

        with tempfile.TemporaryDirectory() as tmp:
            for split in self.splits:
                images = _read_idx(
                    root / f"{PREFIX[split]}-images-idx3-ubyte.gz", read_image_file, Path(tmp)
                )
                labels = _read_idx(
                    root / f"{PREFIX[split]}-labels-idx1-ubyte.gz", read_label_file, Path(tmp)
                )
                if (
                    len(images) != len(labels)
                    or labels.min(initial=0) < 0
                    or labels.max(initial=0) > 9
                ):
                    raise UserError(
                        f"fashion-mnist: {split} has {len(images)} images and {len(labels)} labels "
                        "(labels must be 0..9 and as many as images)"
                    )
                n = len(images)
                superclass = [sup_index[SUPERCLASS[CLASSES[c]]] for c in labels]
                frames.append(
                    pd.DataFrame(
                        {
                            "split": split,
                            "index": np.arange(offset, offset + n),
                            "class_key": labels.astype(np.int64),
                            "superclass_key": superclass,
                        }
                    )
                )
                pixels.append(images.astype(np.uint8))
                offset += n
        return Raw(
            records=pd.concat(frames, ignore_index=True),
            root=root.resolve(),
            pixels=np.concatenate(pixels),
            superclass_names=dict(enumerate(SUPERCLASSES)),
        )


def content_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except (OSError, EOFError) as e:
        raise UserError(f"fashion-mnist: {path} is not a gzip file ({e!r})") from None
    return digest.hexdigest()


def _download(name: str, folder: Path) -> Path:
    from torchvision.datasets import FashionMNIST
    from torchvision.datasets.utils import download_url

    md5 = dict(FashionMNIST.resources)[name]
    download_url(FashionMNIST.mirrors[0] + name, str(folder), filename=name, md5=md5)
    return folder / name


def fetch_fashion_mnist(out: Path, source: Path | None = None, download: bool = True) -> Path:
    """Put the four official ``.gz`` files into ``out``: copied from ``source`` where it has them
    (default: Debian's package), else downloaded from the official mirror. Every file's
    decompressed content must match its SHA-256; nothing lands in ``out`` unverified."""
    out = Path(out).expanduser()
    source = Path(source) if source is not None else DEBIAN_DIR
    with tempfile.TemporaryDirectory() as tmp:
        for name, sha in SHA256.items():
            local = source / name
            if local.is_file():
                got = local
            elif download:
                try:
                    got = _download(name, Path(tmp))
                except Exception as e:  # noqa: BLE001 (network errors come in many types)
                    raise UserError(f"fashion-mnist: could not download {name}: {e}") from None
            else:
                raise UserError(f"fashion-mnist: {name} is neither in {source} nor downloadable")
            if content_sha256(got) != sha:
                raise UserError(
                    f"fashion-mnist: {got} fails its SHA-256 check (expected content {sha})"
                )
            atomic_write(out / name, lambda t, src=got: shutil.copyfile(src, t))
    return out


def ensure_fashion_mnist(data_dir: str | Path, download: bool = True) -> Path:
    """``data_dir/fashion-mnist``, prepared first if its manifest is missing or outdated: from the
    raw files of ``xbmbench data fetch`` (``data_dir/raw/fashion-mnist``), Debian's package, or
    else (``download``) by fetching the official files as ``xbmbench data fetch`` does."""
    from data_prep.load import load_manifest  # both import the registry
    from data_prep.manifest import prepare

    data_dir = Path(data_dir).expanduser()
    try:
        load_manifest("fashion-mnist", data_dir)
        return data_dir / "fashion-mnist"
    except UserError:
        pass
    raw_dir = data_dir / "raw" / "fashion-mnist"
    for raw in (raw_dir, DEBIAN_DIR):
        if all((raw / name).is_file() for name in SHA256):
            prepare("fashion-mnist", raw, data_dir, log=lambda *a, **k: None)
            return data_dir / "fashion-mnist"
    if not download:
        raise UserError(
            f"fashion-mnist is not prepared in {data_dir} and its files are not on this machine: "
            f"run `xbmbench data fetch fashion-mnist --out {raw_dir}` then `xbmbench data prepare "
            f"fashion-mnist --root {raw_dir} --data {data_dir}` (or `apt-get install "
            f"dataset-fashion-mnist`)"
        )
    # neither prepared nor on this machine: what `xbmbench data fetch` does (SHA-256 checked)
    fetch_fashion_mnist(raw_dir, download=True)
    prepare("fashion-mnist", raw_dir, data_dir, log=lambda *a, **k: None)
    return data_dir / "fashion-mnist"
