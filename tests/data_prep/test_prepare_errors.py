"""Bad raw files and bad output folders of ``data prepare``: exit 2, the file and the problem
named, and nothing written. Each case breaks a fixture tree of ``layouts`` in one way."""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.data_prep.helpers import exit2
from tests.data_prep.layouts import BUILDERS, jpeg

# --- text lists: SOP's Ebay_*.txt, In-Shop's list_eval_partition.txt
SOP_TEST = "Ebay_test.txt"
INSHOP_LIST = "Eval/list_eval_partition.txt"


def append(rel: str, data: bytes) -> Callable[[Path], str]:
    def mutate(root: Path) -> str:
        with open(root / rel, "ab") as f:
            f.write(data)
        return str(root / rel)

    return mutate


def replace_text(rel: str, old: bytes, new: bytes) -> Callable[[Path], str]:
    def mutate(root: Path) -> str:
        path = root / rel
        path.write_bytes(path.read_bytes().replace(old, new))
        return str(path)

    return mutate


def link_outside(root: Path) -> str:
    """A listed image that is a symbolic link to a file outside the root."""
    outside = root.parent / "outside.JPG"
    jpeg(outside)
    (root / "chair_final").mkdir(exist_ok=True)
    (root / "chair_final" / "evil.JPG").symlink_to(outside)
    append(SOP_TEST, b"7 4 2 chair_final/evil.JPG\n")(root)
    return f"image path 'chair_final/evil.JPG' resolves to {outside.resolve()}, outside the dataset"


def link_folder_outside(root: Path) -> str:
    """A listed image inside a folder that is a link to a folder outside the root."""
    (root.parent / "elsewhere").mkdir()
    jpeg(root.parent / "elsewhere" / "x.JPG")
    (root / "spoon_final").symlink_to(root.parent / "elsewhere")
    append(SOP_TEST, b"7 4 2 spoon_final/x.JPG\n")(root)
    return "image path 'spoon_final/x.JPG' resolves to"


def folder_in_place_of(rel: str) -> Callable[[Path], str]:
    def mutate(root: Path) -> str:
        (root / rel).unlink()
        (root / rel).mkdir()
        return f"{root / rel} is not a file"

    return mutate


LIST_CASES = {
    "sop non-UTF-8": (
        "sop",
        append(SOP_TEST, "7 4 2 chair_final/caf\u00e9.JPG\n".encode("latin-1")),
        [":6: not UTF-8 text (byte 0xe9 at offset"],
    ),
    "inshop non-UTF-8": (
        "inshop",
        replace_text(INSHOP_LIST, b"id_02/01_1_front", b"id_02/01_1_fr\xffnt"),
        [":5: not UTF-8 text (byte 0xff"],
    ),
    "sop absolute path": (
        "sop",
        append(SOP_TEST, b"7 4 2 /etc/passwd\n"),
        [":6: path '/etc/passwd' is absolute: image paths must be relative to the dataset root"],
    ),
    "sop ..": (
        "sop",
        append(SOP_TEST, b"7 4 2 chair_final/../../../etc/passwd\n"),
        [":6: path 'chair_final/../../../etc/passwd' contains '..'"],
    ),
    "inshop ..": (
        "inshop",
        replace_text(INSHOP_LIST, b"img/MEN/Denim/id_02/", b"img/MEN/Denim/id_02/../../../../"),
        [":5: image_name 'img/MEN/Denim/id_02/../../../../01_1_front.jpg' contains '..'"],
    ),
    "sop list is a folder": ("sop", folder_in_place_of(SOP_TEST), []),
}


@pytest.mark.parametrize("case", LIST_CASES)
@pytest.mark.parametrize("check_images", [False, True])
def test_bad_list_files(tmp_path, case, check_images):
    name, mutate, expected = LIST_CASES[case]
    root = BUILDERS[name][0](tmp_path / "raw")
    file = mutate(root)
    flags = ["--check-images"] if check_images else []
    out = exit2("prepare", name, "--root", root, "--data", tmp_path / "d", *flags)
    assert file in out
    for text in expected:
        assert text in out
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("mutate", [link_outside, link_folder_outside])
def test_image_linked_outside_the_root(tmp_path, mutate):
    root = BUILDERS["sop"][0](tmp_path / "raw")
    expected = mutate(root)
    out = exit2("prepare", "sop", "--root", root, "--data", tmp_path / "d")
    assert expected in out and f"root {root.resolve()}" in out
    assert not (tmp_path / "d").exists()


# --- CIFAR pickles
def dump(path: Path, obj: object) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def batch(labels: object, n: int = 2, key: str = "labels", **more) -> dict:
    return {"data": np.zeros((n, 3072), np.uint8), key: labels, **more}


C10 = "cifar-10-batches-py"
C100 = "cifar-100-python"
CIFAR_CASES = {
    "truncated": (
        "cifar10",
        f"{C10}/data_batch_2",
        lambda p: p.write_bytes(p.read_bytes()[:60]),
        "is not a CIFAR python pickle (truncated or corrupt",
    ),
    "garbage": (
        "cifar10",
        f"{C10}/test_batch",
        lambda p: p.write_bytes(b"\x00\x01garbage, not a pickle"),
        "is not a CIFAR python pickle (truncated or corrupt",
    ),
    "not a dict": (
        "cifar10",
        f"{C10}/data_batch_1",
        lambda p: dump(p, [1, 2, 3]),
        "holds a list, expected the dict of a CIFAR batch",
    ),
    "string label": (
        "cifar10",
        f"{C10}/data_batch_2",
        lambda p: dump(p, batch(["cat", 3])),
        ": labels[0] is 'cat', expected an integer in 0..9",
    ),
    "float label": (
        "cifar10",
        f"{C10}/data_batch_2",
        lambda p: dump(p, batch([3, 1.5])),
        ": labels[1] is 1.5, expected an integer in 0..9",
    ),
    "more labels than images": (
        "cifar10",
        f"{C10}/data_batch_3",
        lambda p: dump(p, batch([1, 2, 3])),
        ": labels has 3 labels for 2 images",
    ),
    "fewer labels than images": (
        "cifar10",
        f"{C10}/test_batch",
        lambda p: dump(p, batch([1, 2], n=3)),
        ": labels has 2 labels for 3 images",
    ),
    "label 10": (
        "cifar10",
        f"{C10}/data_batch_4",
        lambda p: dump(p, batch([9, 10])),
        ": labels[1] is 10, outside 0..9",
    ),
    "label -1": (
        "cifar10",
        f"{C10}/data_batch_4",
        lambda p: dump(p, batch([-1, 0])),
        ": labels[0] is -1, outside 0..9",
    ),
    "pixels of the wrong shape": (
        "cifar10",
        f"{C10}/data_batch_5",
        lambda p: dump(p, {"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}),
        ": 'data' must be a uint8 array (N, 3072), got uint8 (2, 100)",
    ),
    "batch is a folder": (
        "cifar10",
        f"{C10}/data_batch_1",
        lambda p: (p.unlink(), p.mkdir()),
        " is not a file",
    ),
    "coarse label 20": (
        "cifar100",
        f"{C100}/test",
        lambda p: dump(p, batch([2, 99], key="fine_labels", coarse_labels=[7, 20])),
        ": coarse_labels[1] is 20, outside 0..19",
    ),
    "fine label 100": (
        "cifar100",
        f"{C100}/train",
        lambda p: dump(p, batch([100], n=1, key="fine_labels", coarse_labels=[0])),
        ": fine_labels[0] is 100, outside 0..99",
    ),
    "no coarse labels": (
        "cifar100",
        f"{C100}/train",
        lambda p: dump(p, batch([1, 2], key="fine_labels")),
        " has no 'coarse_labels' list",
    ),
    "corrupt meta": (
        "cifar100",
        f"{C100}/meta",
        lambda p: p.write_bytes(b"garbage"),
        "is not a CIFAR python pickle",
    ),
}


@pytest.mark.parametrize("case", CIFAR_CASES)
def test_bad_cifar_pickles(tmp_path, case):
    name, rel, mutate, problem = CIFAR_CASES[case]
    root = BUILDERS[name][0](tmp_path / "raw")
    mutate(root / rel)
    out = exit2("prepare", name, "--root", root, "--data", tmp_path / "d")
    assert f"{name}: " in out and str(root / rel) in out and problem in out
    assert not (tmp_path / "d").exists()


# --- DeepFashion2: annotations and images
def edit_anno(rel: str, edit: Callable[[dict], None]) -> Callable[[Path], Path]:
    def mutate(root: Path) -> Path:
        path = root / rel
        anno = json.loads(path.read_text())
        edit(anno)
        path.write_text(json.dumps(anno))  # json writes NaN as NaN, which json.load accepts
        return path

    return mutate


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def loop(path: Path) -> Path:
    path.unlink(missing_ok=True)
    os.symlink(path.name, path)  # a link to itself
    return path


DF2_CASES = {
    "corrupt JPEG": (
        lambda root: write(root / "validation/image/000002.jpg", b"\xff\xd8 not a jpeg"),
        "1 annotated images are missing or unreadable",
        "(not an image PIL can read: corrupt or of another format)",
    ),
    "NaN box": (
        edit_anno(
            "train/annos/000002.json",
            lambda a: a["item2"].update(bounding_box=[5, float("nan"), 15, 15]),
        ),
        ": item2: bounding_box [5, nan, 15, 15] has a value that is not finite",
        "",
    ),
    "infinite box": (
        edit_anno(
            "validation/annos/000001.json",
            lambda a: a["item1"].update(bounding_box=[0, 0, float("inf"), 9]),
        ),
        ": item1: bounding_box [0, 0, inf, 9] has a value that is not finite",
        "",
    ),
    "text category": (
        edit_anno("train/annos/000001.json", lambda a: a["item1"].update(category_id="1")),
        ": item1: category_id must be an integer, got '1'",
        "",
    ),
    "annotation is a folder": (
        lambda root: (root / "train/annos/000009.json").mkdir() or root / "train/annos/000009.json",
        ": is a folder, expected a JSON annotation file",
        "",
    ),
    "annotation symlink loop": (
        lambda root: loop(root / "train/annos/000009.json"),
        ": cannot read the annotation file (Too many levels of symbolic links)",
        "",
    ),
    "image symlink loop": (
        lambda root: loop(root / "train/image/000001.jpg"),
        "1 annotated images are missing or unreadable",
        "(Too many levels of symbolic links)",
    ),
    "image is a folder": (
        lambda root: (
            (root / "train/image/000002.jpg").unlink()
            or (root / "train/image/000002.jpg").mkdir()
            or root / "train/image/000002.jpg"
        ),
        "1 annotated images are missing or unreadable",
        "(Is a directory)",
    ),
}


@pytest.mark.parametrize("case", DF2_CASES)
def test_bad_deepfashion2_files(tmp_path, case):
    mutate, problem, more = DF2_CASES[case]
    root = BUILDERS["deepfashion2"][0](tmp_path / "raw")
    path = mutate(root)
    out = exit2("prepare", "deepfashion2", "--root", root, "--data", tmp_path / "d")
    assert str(path) in out and problem in out and more in out
    assert not (tmp_path / "d").exists()


def test_deepfashion2_truncated_jpeg_when_cropping(tmp_path):
    """A JPEG cut inside its scan data passes the size read (headers only); its crop names it."""
    root = BUILDERS["deepfashion2"][0](tmp_path / "raw")
    path = root / "train/image/000002.jpg"
    path.write_bytes(path.read_bytes()[:-20])
    out = exit2(
        "prepare",
        "deepfashion2",
        "--root",
        root,
        "--data",
        tmp_path / "d",
        "--crop-to",
        tmp_path / "crops",
    )
    assert f"deepfashion2: cannot decode {path} (image file is truncated" in out
    assert not (tmp_path / "d").exists()


# --- the output folder
@pytest.mark.parametrize("file", ["d", "d/sop"])
def test_out_is_a_file(tmp_path, file):
    root = BUILDERS["sop"][0](tmp_path / "raw", images=False)
    (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / file).write_text("not a folder")
    out = exit2("prepare", "sop", "--root", root, "--data", tmp_path / "d")
    assert f"sop: cannot write the manifest to {tmp_path / 'd' / 'sop'}: " in out
    assert f"{tmp_path / file} is a file, not a folder (--data must be a folder)" in out
    assert (tmp_path / file).read_text() == "not a folder"


@pytest.mark.parametrize(
    "name, file", [("sop", "manifest.json"), ("sop", "manifest.csv"), ("cifar10", "pixels.npy")]
)
def test_manifest_file_is_a_folder(tmp_path, name, file):
    root = BUILDERS[name][0](tmp_path / "raw")
    (tmp_path / "d" / name / file).mkdir(parents=True)
    out = exit2("prepare", name, "--root", root, "--data", tmp_path / "d")
    assert f"{name}: {tmp_path / 'd' / name / file} is a folder where the manifest file" in out
    assert sorted(p.name for p in (tmp_path / "d" / name).iterdir()) == [file]
