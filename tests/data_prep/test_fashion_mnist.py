from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from commands.data import data
from common import UserError
from data_prep import ensure_fashion_mnist, fashion_mnist, load_manifest, prepare
from data_prep.manifest import summarise
from tests.data_prep.layouts import make_fashion_mnist

FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def test_debian_package(tmp_path):
    debian = Path("/usr/share/datasets/fashion-mnist")
    if not all((debian / f).is_file() for f in FILES):
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    frame = prepare("fashion-mnist", debian, tmp_path, log=lambda *a, **k: None)
    counts = summarise(frame, ("train", "test"))
    assert counts == {
        "train": {"images": 60_000, "classes": 10, "superclasses": 5},
        "test": {"images": 10_000, "classes": 10, "superclasses": 5},
    }
    # per class 6,000 train / 1,000 test images (the official balanced split)
    assert frame[frame.split == "train"]["label"].value_counts().eq(6000).all()


@pytest.fixture
def fixture_files(tmp_path, monkeypatch) -> Path:
    """The fixture's .gz files with their content hashes in place of the official ones."""
    src = make_fashion_mnist(tmp_path / "src")
    sha = {f: hashlib.sha256(gzip.decompress((src / f).read_bytes())).hexdigest() for f in FILES}
    monkeypatch.setattr(fashion_mnist, "SHA256", sha)
    return src


def test_fetch_copies_from_the_local_install(tmp_path, fixture_files, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", fixture_files)
    result = CliRunner().invoke(data, ["fetch", "fashion-mnist", "--out", str(tmp_path / "raw")])
    assert result.exit_code == 0, result.output
    assert all(
        (tmp_path / "raw" / f).read_bytes() == (fixture_files / f).read_bytes() for f in FILES
    )


def test_fetch_downloads_what_is_not_installed(tmp_path, fixture_files, monkeypatch):
    fetched = []

    def fake_download(name: str, folder: Path) -> Path:
        fetched.append(name)
        (folder / name).write_bytes((fixture_files / name).read_bytes())
        return folder / name

    monkeypatch.setattr(fashion_mnist, "_download", fake_download)
    fashion_mnist.fetch_fashion_mnist(tmp_path / "raw", source=tmp_path / "no-debian")
    assert fetched == list(FILES) and all((tmp_path / "raw" / f).is_file() for f in FILES)


def test_fetch_rejects_a_bad_checksum(tmp_path, fixture_files, monkeypatch):
    monkeypatch.setitem(fashion_mnist.SHA256, "t10k-images-idx3-ubyte.gz", "0" * 64)
    with pytest.raises(UserError, match="t10k-images-idx3-ubyte.gz fails its SHA-256 check"):
        fashion_mnist.fetch_fashion_mnist(tmp_path / "raw", source=fixture_files, download=False)
    assert not (tmp_path / "raw" / "t10k-images-idx3-ubyte.gz").exists()


def test_ensure_prepares_from_the_fetched_files(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian")
    make_fashion_mnist(tmp_path / "data" / "raw" / "fashion-mnist")
    assert ensure_fashion_mnist(tmp_path / "data") == tmp_path / "data" / "fashion-mnist"
    assert len(load_manifest("fashion-mnist", tmp_path / "data")) == 8  # 5 train + 3 test
    assert ensure_fashion_mnist(tmp_path / "data") == tmp_path / "data" / "fashion-mnist"


def test_ensure_prepares_from_the_debian_files(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", make_fashion_mnist(tmp_path / "debian"))
    ensure_fashion_mnist(tmp_path / "data")
    assert len(load_manifest("fashion-mnist", tmp_path / "data")) == 8


def test_ensure_without_files_says_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian")
    with pytest.raises(UserError, match="run `xbmbench data fetch fashion-mnist"):
        ensure_fashion_mnist(tmp_path / "data", download=False)


def test_ensure_without_files_fetches_them(tmp_path, monkeypatch):
    """The demo's last resort is `data fetch`'s download (faked here: nothing leaves the machine),
    with its SHA-256 checks."""
    import shutil

    mirror = make_fashion_mnist(tmp_path / "mirror")
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian")
    for name in list(fashion_mnist.SHA256):
        monkeypatch.setitem(fashion_mnist.SHA256, name, fashion_mnist.content_sha256(mirror / name))
    fetched = []

    def fake_download(name, folder):
        fetched.append(name)
        return Path(shutil.copy(mirror / name, folder / name))

    monkeypatch.setattr(fashion_mnist, "_download", fake_download)
    ensure_fashion_mnist(tmp_path / "data")
    assert sorted(fetched) == sorted(fashion_mnist.SHA256)
    assert len(load_manifest("fashion-mnist", tmp_path / "data")) == 8
