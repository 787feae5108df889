"""Tiny fixture trees in each dataset's official layout, and their sizes counted by hand."""

from __future__ import annotations

import gzip
import json
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def jpeg(path: Path, size: tuple[int, int] = (8, 6), colour: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (colour, 0, 255 - colour)).save(path, format="JPEG")


# --- SOP: train classes 1, 2, 3 (2 + 3 + 1 images), test classes 4, 5 (2 + 2 images)
SOP_ROWS = {
    "train": [
        (1, 1, "bicycle_final/1_a.JPG"),
        (1, 1, "bicycle_final/1_b.JPG"),
        (2, 1, "bicycle_final/2_a.JPG"),
        (2, 1, "bicycle_final/2_b.JPG"),
        (2, 1, "bicycle_final/2_c.JPG"),
        (3, 2, "chair_final/3_a.JPG"),
    ],
    "test": [
        (4, 2, "chair_final/4_a.JPG"),
        (4, 2, "chair_final/4_b.JPG"),
        (5, 3, "mug_final/5_a.JPG"),
        (5, 3, "mug_final/5_b.JPG"),
    ],
}
SOP_COUNTS = {
    "train": {"images": 6, "classes": 3, "superclasses": 2},
    "test": {"images": 4, "classes": 2, "superclasses": 2},
}


def make_sop(root: Path, images: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    image_id = 0
    for split, rows in SOP_ROWS.items():
        lines = ["image_id class_id super_class_id path"]
        for cls, sup, rel in rows:
            image_id += 1
            lines.append(f"{image_id} {cls} {sup} {rel}")
            if images:
                jpeg(root / rel, colour=10 * image_id)
        (root / f"Ebay_{split}.txt").write_text("\n".join(lines) + "\n")
    return root


# --- In-Shop: train id_01 (WOMEN/Dresses x2), id_02 (MEN/Denim x1);
#     query/gallery id_03 (WOMEN/Denim: 1 query, 2 gallery),
#     id_04 (WOMEN/Skirts: 2 query, 1 gallery)
INSHOP_ROWS = [
    ("img/WOMEN/Dresses/id_01/01_1_front.jpg", "id_01", "train"),
    ("img/WOMEN/Dresses/id_01/01_2_side.jpg", "id_01", "train"),
    ("img/MEN/Denim/id_02/01_1_front.jpg", "id_02", "train"),
    ("img/WOMEN/Denim/id_03/01_1_front.jpg", "id_03", "query"),
    ("img/WOMEN/Denim/id_03/01_2_side.jpg", "id_03", "gallery"),
    ("img/WOMEN/Denim/id_03/01_3_back.jpg", "id_03", "gallery"),
    ("img/WOMEN/Skirts/id_04/01_1_front.jpg", "id_04", "query"),
    ("img/WOMEN/Skirts/id_04/01_2_side.jpg", "id_04", "query"),
    ("img/WOMEN/Skirts/id_04/01_3_back.jpg", "id_04", "gallery"),
]
INSHOP_COUNTS = {
    "train": {"images": 3, "classes": 2, "superclasses": 2},
    "query": {"images": 3, "classes": 2, "superclasses": 2},
    "gallery": {"images": 3, "classes": 2, "superclasses": 2},
}


def make_inshop(root: Path, images: bool = True) -> Path:
    lines = [str(len(INSHOP_ROWS)), "image_name item_id evaluation_status"]
    for i, (rel, item, status) in enumerate(INSHOP_ROWS):
        lines.append(f"{rel} {item} {status}")
        if images:
            jpeg(root / rel, colour=20 * i)
    (root / "Eval").mkdir(parents=True, exist_ok=True)
    (root / "Eval" / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return root


# --- DeepFashion2: images 40 x 30
def item(category: int, style: int, box: list[int]) -> dict:
    return {
        "category_id": category,
        "category_name": f"cat{category}",
        "style": style,
        "bounding_box": box,
        "landmarks": [],
        "segmentation": [],
        "occlusion": 1,
    }


DF2_ANNOS = {
    "train": {
        # user photo of pair 1: a class (1, cat 1, style 1) item and a style-0 item (dropped)
        "000001": {
            "source": "user",
            "pair_id": 1,
            "item1": item(1, 1, [2, 3, 20, 25]),
            "item2": item(7, 0, [0, 0, 10, 10]),
        },
        # shop photo of pair 1: the same class again, and a new one (1, cat 1, style 2)
        "000002": {
            "source": "shop",
            "pair_id": 1,
            "item1": item(1, 1, [0, 0, 40, 30]),
            "item2": item(1, 2, [5, 5, 15, 15]),
        },
    },
    "validation": {
        # query: box beyond the image, clipped to [0, 0, 40, 30]; same numbers as a train class
        "000001": {"source": "user", "pair_id": 1, "item1": item(1, 1, [-5, -2, 55, 31])},
        # gallery: the query's class, and a style-0 item (dropped)
        "000002": {
            "source": "shop",
            "pair_id": 1,
            "item1": item(1, 1, [10, 4, 30, 28]),
            "item2": item(3, 0, [1, 1, 2, 2]),
        },
        # gallery: a box entirely right of the image (empty after clipping: skipped)
        "000003": {"source": "shop", "pair_id": 2, "item1": item(2, 1, [45, 0, 60, 10])},
    },
}
DF2_COUNTS = {
    "train": {"images": 3, "classes": 2, "superclasses": 1},
    "query": {"images": 1, "classes": 1, "superclasses": 1},
    "gallery": {"images": 1, "classes": 1, "superclasses": 1},
}


def make_deepfashion2(root: Path, images: bool = True) -> Path:
    for subset, annos in DF2_ANNOS.items():
        (root / subset / "annos").mkdir(parents=True, exist_ok=True)
        for stem, anno in annos.items():
            (root / subset / "annos" / f"{stem}.json").write_text(json.dumps(anno))
            if images:
                jpeg(root / subset / "image" / f"{stem}.jpg", size=(40, 30))
    return root


# --- CIFAR: the python pickles, 2 images per train batch, 3 test images
def _pixels(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def _dump(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f)


CIFAR10_LABELS = {"train": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "test": [3, 3, 9]}
CIFAR10_COUNTS = {
    "train": {"images": 10, "classes": 10, "superclasses": 0},
    "test": {"images": 3, "classes": 2, "superclasses": 0},
}


def make_cifar10(root: Path) -> Path:
    base = root / "cifar-10-batches-py"
    train = CIFAR10_LABELS["train"]
    for b in range(5):
        _dump(
            base / f"data_batch_{b + 1}",
            {"data": _pixels(2, b), "labels": train[2 * b : 2 * b + 2]},
        )
    _dump(base / "test_batch", {"data": _pixels(3, 9), "labels": CIFAR10_LABELS["test"]})
    _dump(base / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
    return root


# fine label -> coarse label of the fixture (not CIFAR-100's real hierarchy, on purpose)
CIFAR100_FINE = {"train": [0, 1, 2, 50, 51, 99], "test": [2, 99]}
CIFAR100_COARSE = {0: 4, 1: 4, 2: 7, 50: 0, 51: 7, 99: 19}
CIFAR100_COUNTS = {
    "train": {"images": 6, "classes": 6, "superclasses": 4},
    "test": {"images": 2, "classes": 2, "superclasses": 2},
}


def make_cifar100(root: Path) -> Path:
    base = root / "cifar-100-python"
    for seed, split in enumerate(("train", "test")):
        fine = CIFAR100_FINE[split]
        _dump(
            base / split,
            {
                "data": _pixels(len(fine), seed),
                "fine_labels": fine,
                "coarse_labels": [CIFAR100_COARSE[f] for f in fine],
            },
        )
    _dump(
        base / "meta",
        {
            "fine_label_names": [f"f{i}" for i in range(100)],
            "coarse_label_names": [f"coarse{i}" for i in range(20)],
        },
    )
    return root


# --- Fashion-MNIST: gzip IDX files, 5 train and 3 test images of 4 x 3 pixels
FASHION_LABELS = {"train": [0, 1, 5, 8, 9], "test": [2, 7, 7]}
# tops, bottoms, footwear, bags, footwear | tops, footwear, footwear
FASHION_COUNTS = {
    "train": {"images": 5, "classes": 5, "superclasses": 4},
    "test": {"images": 3, "classes": 2, "superclasses": 2},
}


def idx_bytes(array: np.ndarray) -> bytes:
    magic = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    return magic + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def fashion_images(split: str) -> np.ndarray:
    n = len(FASHION_LABELS[split])
    return np.arange(n * 12, dtype=np.uint8).reshape(n, 4, 3) + (100 if split == "test" else 0)


def make_fashion_mnist(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        labels = np.asarray(FASHION_LABELS[split], dtype=np.uint8)
        (root / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(idx_bytes(fashion_images(split)))
        )
        (root / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    return root


BUILDERS = {
    "sop": (make_sop, SOP_COUNTS),
    "inshop": (make_inshop, INSHOP_COUNTS),
    "deepfashion2": (make_deepfashion2, DF2_COUNTS),
    "cifar10": (make_cifar10, CIFAR10_COUNTS),
    "cifar100": (make_cifar100, CIFAR100_COUNTS),
    "fashion-mnist": (make_fashion_mnist, FASHION_COUNTS),
}


# --- Omniglot: zips of ALPHABET/characterNN/*.png, 105 x 105 one-bit drawings, each distinct
OMNIGLOT_PARTS = {  # zip stem -> {alphabet: {character: images}}
    "images_background": {
        "Alpha": {"character01": 2, "character02": 1},
        "Beta": {"character01": 2},
    },
    "images_evaluation": {"Gamma": {"character01": 2}, "Delta": {"character01": 1}},
}
OMNIGLOT_COUNTS = {
    "train": {"images": 5, "classes": 3, "superclasses": 2},
    "test": {"images": 3, "classes": 2, "superclasses": 2},
}
# the minimal split: Greek in both zips with the same drawings (as in the real ones); test = the
# alphabets of small 2 that small 1 lacks
OMNIGLOT_SMALL_PARTS = {
    "images_background_small1": {"Alpha": {"character01": 2}, "Greek": {"character01": 2}},
    "images_background_small2": {"Greek": {"character01": 2}, "Tau": {"character01": 2}},
}
OMNIGLOT_SMALL_COUNTS = {
    "train": {"images": 4, "classes": 2, "superclasses": 2},
    "test": {"images": 2, "classes": 1, "superclasses": 1},
}


def drawing(key: str) -> bytes:
    """A 105 x 105 one-bit PNG whose black square sits where ``key`` puts it (same key, same
    bytes)."""
    import hashlib
    import io

    h = hashlib.sha256(key.encode()).digest()
    x, y = h[0] % 90, h[1] % 90
    image = Image.new("1", (105, 105), 1)
    image.paste(0, (x, y, x + 10 + h[2] % 5, y + 10))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def omniglot_zip(path: Path, alphabets: dict[str, dict[str, int]]) -> None:
    import zipfile

    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.name.removesuffix(".zip")
    with zipfile.ZipFile(path, "w") as z:
        for alphabet, characters in alphabets.items():
            for character, n in characters.items():
                for i in range(n):
                    name = f"{stem}/{alphabet}/{character}/{i:04d}_{i + 1:02d}.png"
                    z.writestr(name, drawing(f"{alphabet}/{character}/{i}"))


def make_omniglot(root: Path, parts: dict = OMNIGLOT_PARTS) -> Path:
    for stem, alphabets in parts.items():
        omniglot_zip(root / f"{stem}.zip", alphabets)
    return root


def make_omniglot_small(root: Path) -> Path:
    return make_omniglot(root, OMNIGLOT_SMALL_PARTS)


BUILDERS["omniglot"] = (make_omniglot, OMNIGLOT_COUNTS)
BUILDERS["omniglot-small"] = (make_omniglot_small, OMNIGLOT_SMALL_COUNTS)


# --- CUB-200-2011: the official folder inside the one its archive extracts to. Species 1, 2, 100
#     train (2 + 1 + 1 images), 101 and 200 test (2 + 1); train_test_split.txt's flags contradict
#     the protocol on purpose (it is the classification split, not read)
CUB_IMAGES = [  # image_id, class_id, is_training_image (ignored)
    (1, 1, 0),
    (2, 101, 1),
    (3, 1, 1),
    (4, 2, 0),
    (5, 200, 1),
    (6, 100, 1),
    (7, 101, 0),
]
CUB_COUNTS = {
    "train": {"images": 4, "classes": 3, "superclasses": 0},
    "test": {"images": 3, "classes": 2, "superclasses": 0},
}


def cub_rel(image_id: int, class_id: int) -> str:
    return f"{class_id:03d}.Bird_{class_id}/Bird_{class_id}_{image_id:04d}.jpg"


def make_cub200(root: Path, images: bool = True) -> Path:
    base = root / "CUB_200_2011"
    base.mkdir(parents=True, exist_ok=True)
    classes = [f"{c} {c:03d}.Bird_{c}" for c in range(1, 201)]
    (base / "classes.txt").write_text("\n".join(classes) + "\n")
    (base / "images.txt").write_text("".join(f"{i} {cub_rel(i, c)}\n" for i, c, _ in CUB_IMAGES))
    (base / "image_class_labels.txt").write_text("".join(f"{i} {c}\n" for i, c, _ in CUB_IMAGES))
    (base / "train_test_split.txt").write_text("".join(f"{i} {t}\n" for i, _, t in CUB_IMAGES))
    for i, c, _ in CUB_IMAGES:
        if images:
            jpeg(base / "images" / cub_rel(i, c), colour=30 * i)
    return root


# --- Cars196: cars_annos.mat with car_ims/. Models 1 (2 images), 50, 98 train; 99 (2), 196 test;
#     the file's own `test` flag contradicts the protocol on purpose (not read)
CARS_ANNOS = [  # relative_im_path, class, test (ignored)
    ("car_ims/000001.jpg", 1, 0),
    ("car_ims/000002.jpg", 99, 0),
    ("car_ims/000003.jpg", 1, 1),
    ("car_ims/000004.jpg", 196, 1),
    ("car_ims/000005.jpg", 50, 1),
    ("car_ims/000006.jpg", 98, 0),
    ("car_ims/000007.jpg", 99, 1),
]
CARS_COUNTS = {
    "train": {"images": 4, "classes": 3, "superclasses": 0},
    "test": {"images": 3, "classes": 2, "superclasses": 0},
}
CARS_FIELDS = ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2")


def struct_array(records: list[dict]) -> np.ndarray:
    """A 1 x N MATLAB struct array as scipy.io.savemat writes one."""
    names = list(records[0])
    out = np.zeros((1, len(records)), dtype=[(n, "O") for n in names])
    for i, record in enumerate(records):
        out[0, i] = tuple(record[n] for n in names)
    return out


def class_names() -> np.ndarray:
    return np.array([f"Maker Model {c}" for c in range(1, 197)], dtype=object)


def make_cars196(root: Path, images: bool = True) -> Path:
    import scipy.io

    root.mkdir(parents=True, exist_ok=True)
    records = [
        {"relative_im_path": rel, **dict.fromkeys(CARS_FIELDS, np.uint16(3)),
         "class": np.uint8(cls), "test": np.uint8(test)}
        for rel, cls, test in CARS_ANNOS
    ]  # fmt: skip
    scipy.io.savemat(
        root / "cars_annos.mat",
        {"annotations": struct_array(records), "class_names": class_names()},
    )
    for i, (rel, _, _) in enumerate(CARS_ANNOS):
        if images:
            jpeg(root / rel, colour=25 * i)
    return root


# the devkit layout: train annotations 00001 (model 1), 00002 (model 99); test annotations with
# labels 00001 (model 1), 00002 (model 150), 00003 (model 98)
CARS_DEVKIT = {
    "cars_train": [("00001.jpg", 1), ("00002.jpg", 99)],
    "cars_test": [("00001.jpg", 1), ("00002.jpg", 150), ("00003.jpg", 98)],
}
CARS_DEVKIT_COUNTS = {
    "train": {"images": 3, "classes": 2, "superclasses": 0},
    "test": {"images": 2, "classes": 2, "superclasses": 0},
}


def make_cars196_devkit(root: Path, images: bool = True) -> Path:
    import scipy.io

    root.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / "cars_meta.mat", {"class_names": class_names()})
    files = {"cars_train": "cars_train_annos.mat", "cars_test": "cars_test_annos_withlabels.mat"}
    for folder, items in CARS_DEVKIT.items():
        records = [{**dict.fromkeys(CARS_FIELDS, np.uint16(2)), "class": np.uint8(cls),
                    "fname": fname} for fname, cls in items]  # fmt: skip
        scipy.io.savemat(root / files[folder], {"annotations": struct_array(records)})
        for fname, cls in items:
            if images:
                jpeg(root / folder / fname, colour=cls)
    return root


BUILDERS["cub200"] = (make_cub200, CUB_COUNTS)
BUILDERS["cars196"] = (make_cars196, CARS_COUNTS)


# --- a folder dataset: one sub-folder per class. Sorted classes a_crow, b_sparrow (train),
#     c_finch, d_gull (test); a text file in a class folder and one in the root are skipped,
#     hidden files ignored
FOLDER_IMAGES = {
    "b_sparrow": ["s1.jpg", "nested/s2.JPG"],
    "a_crow": ["c1.png"],
    "c_finch": ["f1.jpeg", "f2.jpg"],
    "d_gull": ["g1.jpg"],
}
FOLDER_COUNTS = {
    "train": {"images": 3, "classes": 2, "superclasses": 0},
    "test": {"images": 3, "classes": 2, "superclasses": 0},
}


def make_folder(root: Path) -> Path:
    for cls, files in FOLDER_IMAGES.items():
        for i, rel in enumerate(files):
            jpeg(root / cls / rel, colour=40 * i)
    (root / "a_crow" / "readme.txt").write_text("not an image\n")
    (root / "notes.txt").write_text("not in a class folder\n")
    (root / "d_gull" / ".hidden.jpg").write_text("ignored\n")
    return root


# a CSV with every column: path,label,split,superclass
FOLDER_CSV = [
    ("img/a.jpg", "owl", "train", "raptor"),
    ("img/b.jpg", "owl", "train", "raptor"),
    ("img/c.jpg", "hawk", "train", "raptor"),
    ("img/d.jpg", "duck", "test", "water"),
    ("img/e.jpg", "swan", "test", "water"),
    ("img/f.jpg", "kite", "test", "raptor"),
]
FOLDER_CSV_COUNTS = {
    "train": {"images": 3, "classes": 2, "superclasses": 1},
    "test": {"images": 3, "classes": 3, "superclasses": 2},
}


def make_folder_csv(root: Path, columns: tuple[str, ...] = ("path", "label", "split", "superclass"),
                    rows: list[tuple] = FOLDER_CSV) -> Path:  # fmt: skip
    """``root/labels.csv`` with ``columns`` of ``rows`` (in FOLDER_CSV's column order), and the
    images; returns the CSV's path."""
    order = ("path", "label", "split", "superclass")
    lines = [",".join(columns)]
    for row in rows:
        cells = dict(zip(order, row))
        lines.append(",".join(cells[c] for c in columns))
        jpeg(root / cells["path"])
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root / "labels.csv"
