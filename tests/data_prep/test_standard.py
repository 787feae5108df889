"""CUB-200-2011, Cars196 (both official layouts) and folder datasets: manifests of fixture trees
against counts made by hand in ``layouts``, the official-count warnings, bad files (exit 2, the
file named, nothing written) and a folder dataset used by name as an official one is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from commands.data import data
from data_prep import load_manifest, prepare
from data_prep.folder import split_by_rule
from data_prep.registry import REGISTRY, get_source, register_prepared
from tests.data_prep.helpers import exit2, quiet
from tests.data_prep.layouts import (
    CARS_ANNOS,
    CARS_DEVKIT,
    CARS_DEVKIT_COUNTS,
    CUB_IMAGES,
    FOLDER_COUNTS,
    FOLDER_CSV,
    FOLDER_CSV_COUNTS,
    FOLDER_IMAGES,
    class_names,
    cub_rel,
    jpeg,
    make_cars196,
    make_cars196_devkit,
    make_cub200,
    make_folder,
    make_folder_csv,
    struct_array,
)
from tests.data_prep.test_prepare import counts_of


@pytest.fixture(autouse=True)
def registry():
    """Folder datasets registered by a test leave the registry as it was."""
    before = dict(REGISTRY)
    yield
    REGISTRY.clear()
    REGISTRY.update(before)


def invoke(*args: object):
    return CliRunner().invoke(data, [str(a) for a in args])


def same_class_iff_same_key(frame, keys: dict[str, object]) -> None:
    rows = frame.set_index("path")
    for a, ka in keys.items():
        for b, kb in keys.items():
            assert (rows.loc[a, "label"] == rows.loc[b, "label"]) == (ka == kb), (a, b)


# --- CUB-200-2011


def test_cub200_split_by_species_not_by_the_classification_file(tmp_path):
    raw = make_cub200(tmp_path / "raw")
    frame = prepare("cub200", raw, tmp_path / "d", log=quiet)
    meta = json.loads((tmp_path / "d" / "cub200" / "manifest.json").read_text())
    assert meta["root"] == str((raw / "CUB_200_2011").resolve())  # found inside the extract
    want = {f"images/{cub_rel(i, c)}": ("train" if c <= 100 else "test") for i, c, _ in CUB_IMAGES}
    assert dict(zip(frame["path"], frame["split"])) == want
    same_class_iff_same_key(frame, {f"images/{cub_rel(i, c)}": c for i, c, _ in CUB_IMAGES})
    assert (frame["superclass"] == -1).all() and meta["superclass_names"] == []
    # images.txt order; train labels 0..2 (species 1, 2, 100), test 3, 4 (101, 200)
    assert list(frame["label"]) == [0, 3, 0, 1, 4, 2, 3]


def test_cub200_also_from_the_folder_itself(tmp_path):
    raw = make_cub200(tmp_path / "raw")
    frame = prepare("cub200", raw / "CUB_200_2011", tmp_path / "d", log=quiet)
    assert counts_of(frame, "train") == {"images": 4, "classes": 3, "superclasses": 0}


def test_cub200_and_cars196_report_the_official_counts(tmp_path):
    out = invoke("prepare", "cub200", "--root", make_cub200(tmp_path / "c"), "--data", tmp_path)
    assert out.exit_code == 0, out.output
    assert "train           4     5,864        3       100" in out.output
    assert "WARNING: train has 4 images, the official cub200 has 5,864" in out.output
    assert "WARNING: test has 2 classes, the official cub200 has 100" in out.output
    out = invoke("prepare", "cars196", "--root", make_cars196(tmp_path / "r"), "--data", tmp_path)
    assert out.exit_code == 0, out.output
    assert "test            3     8,131        2        98" in out.output
    assert "WARNING: train has 4 images, the official cars196 has 8,054" in out.output


def break_cub(rel: str, old: str, new: str):
    def mutate(root: Path) -> Path:
        path = root / "CUB_200_2011" / rel
        path.write_text(path.read_text().replace(old, new, 1))
        return path

    return mutate


CUB_BAD = {
    "unlabelled image": (
        break_cub("image_class_labels.txt", "4 2\n", ""),
        "no class for 1 image(s) of",
    ),
    "unknown image": (break_cub("image_class_labels.txt", "4 2\n", "9 2\n"), ":4: image_id 9"),
    "class outside 1..200": (break_cub("classes.txt", "200 200.", "201 201."), "outside 1..200"),
    "class not in classes.txt": (
        break_cub("image_class_labels.txt", "5 200", "5 250"),
        "class_id 250 is not in",
    ),
    "repeated image id": (break_cub("images.txt", "3 001", "1 001"), "image_id 1 is listed twice"),
    "malformed line": (break_cub("images.txt", "2 101", "2 101 x"), ":2: malformed line"),
    "not an integer": (break_cub("image_class_labels.txt", "6 100", "6 hundred"), "'hundred'"),
    "absolute path": (break_cub("images.txt", "6 100", "6 /etc/100"), "is absolute"),
}


@pytest.mark.parametrize("case", CUB_BAD)
def test_cub200_bad_files_exit_2_naming_the_file(case, tmp_path):
    mutate, needle = CUB_BAD[case]
    raw = make_cub200(tmp_path / "raw", images=False)
    path = mutate(raw)
    output = exit2("prepare", "cub200", "--root", raw, "--data", tmp_path / "d")
    assert needle in output and path.name in output, output
    assert not (tmp_path / "d" / "cub200").exists()


def test_cub200_missing_file(tmp_path):
    raw = make_cub200(tmp_path / "raw", images=False)
    (raw / "CUB_200_2011" / "classes.txt").unlink()
    assert "classes.txt is missing" in exit2("prepare", "cub200", "--root", raw)


# --- Cars196


def test_cars196_annos_split_by_model_not_by_the_test_flag(tmp_path):
    frame = prepare("cars196", make_cars196(tmp_path / "raw"), tmp_path / "d", log=quiet)
    want = {rel: ("train" if c <= 98 else "test") for rel, c, _ in CARS_ANNOS}
    assert dict(zip(frame["path"], frame["split"])) == want
    same_class_iff_same_key(frame, {rel: c for rel, c, _ in CARS_ANNOS})
    assert (frame["superclass"] == -1).all()


def test_cars196_devkit_layout(tmp_path):
    frame = prepare("cars196", make_cars196_devkit(tmp_path / "raw"), tmp_path / "d", log=quiet)
    keys = {f"{folder}/{f}": c for folder, items in CARS_DEVKIT.items() for f, c in items}
    assert dict(zip(frame["path"], frame["split"])) == {
        p: ("train" if c <= 98 else "test") for p, c in keys.items()
    }
    same_class_iff_same_key(frame, keys)
    for split, want in CARS_DEVKIT_COUNTS.items():
        assert counts_of(frame, split) == want


def rewrite_annos(change):
    """Rewrite cars_annos.mat with ``change(records)`` applied to its list of dicts."""

    def mutate(root: Path) -> Path:
        import scipy.io

        records = [
            {"relative_im_path": rel, "class": np.uint8(c), "test": np.uint8(t)}
            for rel, c, t in CARS_ANNOS
        ]
        scipy.io.savemat(
            root / "cars_annos.mat",
            {"annotations": struct_array(change(records)), "class_names": class_names()},
        )
        return root / "cars_annos.mat"

    return mutate


def garbage(root: Path) -> Path:
    (root / "cars_annos.mat").write_bytes(b"not a mat file at all" * 10)
    return root / "cars_annos.mat"


def set_field(i: int, field: str, value):
    def change(records):
        records[i][field] = value
        return records

    return change


CARS_BAD = {
    "not a .mat file": (garbage, "is not a readable MATLAB .mat file"),
    "no class field": (
        rewrite_annos(lambda rs: [{k: v for k, v in r.items() if k != "class"} for r in rs]),
        "the annotations have no field 'class'",
    ),
    "class outside 1..196": (
        rewrite_annos(set_field(2, "class", np.uint8(197))),
        "annotation 3: class 197 is outside 1..196",
    ),
    "class not an integer": (
        rewrite_annos(set_field(1, "class", "ninety")),
        "annotation 2: class is not an integer",
    ),
    "path leaves the root": (
        rewrite_annos(set_field(0, "relative_im_path", "../car_ims/x.jpg")),
        "contains '..'",
    ),
}


@pytest.mark.parametrize("case", CARS_BAD)
def test_cars196_bad_files_exit_2_naming_the_file(case, tmp_path):
    mutate, needle = CARS_BAD[case]
    raw = make_cars196(tmp_path / "raw", images=False)
    path = mutate(raw)
    output = exit2("prepare", "cars196", "--root", raw, "--data", tmp_path / "d")
    assert needle in output and path.name in output, output
    assert not (tmp_path / "d" / "cars196").exists()


def test_cars196_neither_layout(tmp_path):
    (tmp_path / "raw").mkdir()
    output = exit2("prepare", "cars196", "--root", tmp_path / "raw")
    assert "holds neither cars_annos.mat nor the devkit's cars_meta.mat" in output


def test_cars196_devkit_missing_test_annotations(tmp_path):
    raw = make_cars196_devkit(tmp_path / "raw", images=False)
    (raw / "cars_test_annos_withlabels.mat").unlink()
    assert "cars_test_annos_withlabels.mat is missing" in exit2("prepare", "cars196", "--root", raw)


# --- folder datasets


def test_split_rule_sorted_names_first_half_rounded_up():
    assert split_by_rule(["b", "a", "c", "b"]) == {"a": "train", "b": "train", "c": "test"}
    assert split_by_rule(["2", "10"]) == {"10": "train", "2": "test"}  # sorted as text


def test_folder_of_class_folders(tmp_path):
    root = make_folder(tmp_path / "birds")
    out = invoke("prepare", "folder", "--root", root, "--name", "mybirds", "--data", tmp_path / "d")
    assert out.exit_code == 0, out.output
    assert "mybirds: wrote" in out.output
    assert "train           3         -        2         -" in out.output
    assert "skipped 2 records:" in out.output and "1 x not an image file" in out.output
    frame = load_manifest("mybirds", tmp_path / "d")
    for split, want in FOLDER_COUNTS.items():
        assert counts_of(frame, split) == want
    keys = {f"{c}/{f}": c for c, files in FOLDER_IMAGES.items() for f in files}
    assert dict(zip(frame["path"], frame["split"])) == {
        p: "train" if c in ("a_crow", "b_sparrow") else "test" for p, c in keys.items()
    }
    same_class_iff_same_key(frame, keys)
    meta = json.loads((tmp_path / "d" / "mybirds" / "manifest.json").read_text())
    assert meta["source"] == "folder" and meta["dataset"] == "mybirds"
    assert meta["skipped"] == {
        "file directly in the root (not in a class folder)": 1,
        "not an image file (by its extension)": 1,
    }


def test_folder_csv_with_split_and_superclass(tmp_path):
    csv = make_folder_csv(tmp_path / "raw")
    frame = prepare_named("mine", csv, tmp_path / "d")
    for split, want in FOLDER_CSV_COUNTS.items():
        assert counts_of(frame, split) == want
    assert list(frame["split"]) == [r[2] for r in FOLDER_CSV]
    same_class_iff_same_key(frame, {r[0]: r[1] for r in FOLDER_CSV})
    meta = json.loads((tmp_path / "d" / "mine" / "manifest.json").read_text())
    assert meta["superclass_names"] == ["raptor", "water"]
    assert list(frame["superclass"]) == [0, 0, 0, 1, 1, 0]


def test_folder_csv_without_split_takes_the_rule(tmp_path):
    csv = make_folder_csv(tmp_path / "raw", ("path", "label"))
    frame = prepare_named("mine", csv, tmp_path / "d")
    # classes duck, hawk, kite, owl, swan: duck, hawk, kite train (3 of 5, rounded up)
    train = {"duck", "hawk", "kite"}
    assert list(frame["split"]) == ["train" if r[1] in train else "test" for r in FOLDER_CSV]
    assert (frame["superclass"] == -1).all()


def test_folder_csv_class_on_both_sides_is_reported(tmp_path):
    rows = [*FOLDER_CSV, ("img/g.jpg", "owl", "test", "raptor")]
    lines = []
    prepare_named(
        "mine", make_folder_csv(tmp_path / "raw", rows=rows), tmp_path / "d", log=lines.append
    )
    assert any("1 class(es) are in both train and test (e.g. 'owl')" in line for line in lines)


def prepare_named(name: str, root: Path, out: Path, log=quiet):
    from data_prep.folder import prepare_folder

    return prepare_folder(root, name, out, log=lambda text, warning=False: log(text))


def write_csv(text: str):
    def make(root: Path) -> Path:
        root.mkdir(parents=True)
        jpeg(root / "a.jpg")
        (root / "labels.csv").write_text(text)
        return root / "labels.csv"

    return make


FOLDER_BAD = {
    "no label column": (write_csv("path,class\na.jpg,x\n"), ":1: the header is ['path', 'class']"),
    "bad split": (
        write_csv("path,label,split\na.jpg,x,val\nb.jpg,y,test\n"),
        ":2: split 'val' is not one of train, test",
    ),
    "two superclasses": (
        write_csv("path,label,superclass\na.jpg,x,p\nb.jpg,x,q\nc.jpg,y,p\n"),
        ":3: class 'x' has superclass 'q', line 2 gave it 'p'",
    ),
    "one class": (write_csv("path,label\na.jpg,x\nb.jpg,x\n"), "holds 1 class(es)"),
    "no test row": (
        write_csv("path,label,split\na.jpg,x,train\nb.jpg,y,train\n"),
        "no row has split 'test'",
    ),
    "path twice": (write_csv("path,label\na.jpg,x\na.jpg,y\n"), ":3: path 'a.jpg' is listed twice"),
    "path leaves the root": (write_csv("path,label\n../a.jpg,x\nb.jpg,y\n"), "contains '..'"),
    "short row": (write_csv("path,label\na.jpg\n"), ":2: 1 cells, the header names 2"),
    "empty label": (write_csv("path,label\na.jpg,\nb.jpg,y\n"), ":2: empty label"),
}


@pytest.mark.parametrize("case", FOLDER_BAD)
def test_folder_csv_bad_files_exit_2_naming_the_file(case, tmp_path):
    make, needle = FOLDER_BAD[case]
    csv = make(tmp_path / "raw")
    output = exit2("prepare", "folder", "--root", csv, "--name", "x", "--data", tmp_path / "d")
    assert needle in output and "labels.csv" in output, output
    assert not (tmp_path / "d" / "x").exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        ((), "needs --name NAME"),
        (("--name", "sop"), "'sop' is taken by an official dataset or reserved"),
        (("--name", "folder"), "reserved"),
        (("--name", "../up"), "use letters, digits"),
    ],
)
def test_folder_names(args, needle, tmp_path):
    root = make_folder(tmp_path / "birds")
    assert needle in exit2("prepare", "folder", "--root", root, *args, "--data", tmp_path / "d")


def test_folder_of_one_class_and_an_empty_root(tmp_path):
    jpeg(tmp_path / "one" / "only" / "a.jpg")
    assert "holds 1 class(es)" in exit2(
        "prepare", "folder", "--root", tmp_path / "one", "--name", "x"
    )
    (tmp_path / "empty").mkdir()
    assert "holds no image in a class folder" in exit2(
        "prepare", "folder", "--root", tmp_path / "empty", "--name", "x"
    )


def test_name_is_for_folder_only(tmp_path):
    raw = make_cub200(tmp_path / "raw", images=False)
    result = invoke("prepare", "cub200", "--root", raw, "--name", "birds")
    assert result.exit_code == 2 and "--name applies to `folder` only" in result.output


def test_a_folder_dataset_is_found_by_name_in_its_data_folder(tmp_path):
    """A later process (the registry without it) finds it through the data folder: the
    manifest loads, the torch Dataset reads it, `data info` and `run` take its name."""
    from data_prep import ManifestDataset

    data_dir = tmp_path / "d"
    prepare_named("mybirds", make_folder(tmp_path / "birds"), data_dir)
    del REGISTRY["mybirds"]
    with pytest.raises(Exception, match="unknown dataset 'mybirds'"):
        get_source("mybirds")
    assert get_source("mybirds", data_dir).name == "mybirds"
    del REGISTRY["mybirds"]
    ds = ManifestDataset("mybirds", data_dir, "test")
    assert len(ds) == 3 and ds[0][0].mode == "RGB" and ds[0][2] == -1
    del REGISTRY["mybirds"]
    info = invoke("info", "mybirds", "--data", data_dir, "--json")
    assert info.exit_code == 0 and json.loads(info.output) == FOLDER_COUNTS
    del REGISTRY["mybirds"]
    assert register_prepared(data_dir) == ["mybirds"]
    del REGISTRY["mybirds"]

    from cli import main

    config = CliRunner().invoke(
        main,
        [
            "run",
            "--dataset",
            "mybirds",
            "--variant",
            "xbm",
            "--data",
            str(data_dir),
            "--print-config",
        ],
    )
    assert config.exit_code == 0, config.output
    assert '"dataset": "mybirds"' in config.output
