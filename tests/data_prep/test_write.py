"""Writing a manifest: a failure at any point leaves the previous manifest whole and readable,
and a reader always finds a manifest.json. File systems that refuse writes are
simulated by patching the writers (the tests run as root, so chmod would not stop them)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import data_prep.files
import data_prep.load
from common import UserError
from data_prep import load_manifest, prepare
from tests.data_prep.helpers import exit2, quiet
from tests.data_prep.layouts import BUILDERS


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def relabel_first_sop_image(root: Path) -> None:
    """Class 1 -> 3 for the first train image: one label of the manifest changes."""
    path = root / "Ebay_train.txt"
    path.write_text(
        path.read_text().replace("1 1 1 bicycle_final/1_a.JPG", "1 3 1 bicycle_final/1_a.JPG")
    )


def refuse(code: int):
    def write(path, *args, **kwargs):
        raise OSError(code, os.strerror(code), str(path))

    return write


@pytest.mark.parametrize(
    "code, why",
    [
        (errno.EROFS, "read-only file system"),
        (errno.EACCES, "Permission denied"),
        (errno.ENOSPC, "no space left on the device"),
    ],
)
@pytest.mark.parametrize("name, first", [("sop", "manifest.csv"), ("cifar10", "pixels.npy")])
def test_refused_write_keeps_the_old_manifest(tmp_path, monkeypatch, code, why, name, first):
    root = BUILDERS[name][0](tmp_path / "raw")
    prepare(name, root, tmp_path / "d", log=quiet)
    folder = tmp_path / "d" / name
    before = snapshot(folder)
    monkeypatch.setattr(data_prep.files, "atomic_write", refuse(code))
    out = exit2("prepare", name, "--root", root, "--data", tmp_path / "d")
    assert f"{name}: cannot write {folder / first}: {why}; the previous manifest" in out
    assert snapshot(folder) == before


def test_refused_write_of_manifest_json_midway(tmp_path, monkeypatch):
    """The table is written, manifest.json is refused: the old table and summary stay, and the
    new table written beside them is removed."""
    root = BUILDERS["cifar10"][0](tmp_path / "raw")
    prepare("cifar10", root, tmp_path / "d", log=quiet)
    folder = tmp_path / "d" / "cifar10"
    before = snapshot(folder)
    monkeypatch.setattr(data_prep.files, "atomic_write_json", refuse(errno.EROFS))
    out = exit2("prepare", "cifar10", "--root", root, "--data", tmp_path / "d")
    assert f"cannot write {folder / 'manifest.json'}: read-only file system" in out
    assert snapshot(folder) == before  # no .manifest.csv.new left either
    assert len(load_manifest("cifar10", tmp_path / "d")) == 13


def test_a_reader_always_finds_a_manifest(tmp_path, monkeypatch):
    """At every write and rename of a re-prepare manifest.json exists, and a reader gets either
    the old manifest whole or, in the instant between the table's rename and manifest.json's,
    an error saying the two do not match: never the new table read with the old summary."""
    root = BUILDERS["sop"][0](tmp_path / "raw", images=False)
    prepare("sop", root, tmp_path / "d", log=quiet)
    relabel_first_sop_image(root)
    monkeypatch.setattr(data_prep.load, "RETRIES", 1)  # the writer waits on this very reader
    seen = []

    def read() -> str:
        try:
            return "old" if len(load_manifest("sop", tmp_path / "d")) == 10 else "?"
        except UserError as e:
            return "mismatch" if "manifest.csv does not match" in e.message else e.message

    def check(step, original):
        def wrapped(*args, **kwargs):
            seen.append((f"{step} {Path(args[0 if step != 'rename' else 1]).name}", read()))
            return original(*args, **kwargs)

        return wrapped

    files = data_prep.files
    monkeypatch.setattr(files, "atomic_write", check("write", files.atomic_write))
    monkeypatch.setattr(files, "atomic_write_json", check("json", files.atomic_write_json))
    monkeypatch.setattr(files.os, "replace", check("rename", os.replace))
    prepare("sop", root, tmp_path / "d", log=quiet)
    monkeypatch.undo()
    assert seen == [
        ("write .manifest.csv.new", "old"),  # the new table, whole, beside the old one
        ("rename .manifest.csv.new", "old"),  # (atomic_write's own rename of its temporary)
        ("json .manifest.json.new", "old"),
        ("rename .manifest.json.new", "old"),
        ("rename manifest.csv", "old"),
        ("rename manifest.json", "mismatch"),  # the instant between the two renames
    ]
    # the new manifest: 1_a is class 3 now; train classes 1, 2, 3 -> labels 0, 1, 2
    train = load_manifest("sop", tmp_path / "d").query("split == 'train'")
    assert train["label"].tolist() == [2, 0, 1, 1, 1, 2]


def test_a_kill_between_the_renames_is_detected(tmp_path, monkeypatch):
    """New table, old manifest.json: load_manifest refuses the pair instead of reading it."""
    root = BUILDERS["sop"][0](tmp_path / "raw", images=False)
    prepare("sop", root, tmp_path / "d", log=quiet)
    relabel_first_sop_image(root)
    rename = os.replace

    def killed_before_json(src, dst):
        if Path(dst).name == "manifest.json":
            raise KeyboardInterrupt
        rename(src, dst)

    monkeypatch.setattr(data_prep.files.os, "replace", killed_before_json)
    with pytest.raises(KeyboardInterrupt):
        prepare("sop", root, tmp_path / "d", log=quiet)
    monkeypatch.undo()
    monkeypatch.setattr(data_prep.load, "RETRIES", 1)
    path = tmp_path / "d" / "sop" / "manifest.csv"
    with pytest.raises(UserError, match="manifest.csv does not match .*manifest.json: its sha256"):
        load_manifest("sop", tmp_path / "d")
    assert "a preparation was interrupted" in exit2("info", "sop", "--data", tmp_path / "d")
    assert path.is_file() and not list(path.parent.glob(".*"))
