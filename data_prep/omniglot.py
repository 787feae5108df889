"""Omniglot (Lake, Salakhutdinov and Tenenbaum, Science 2015): handwritten characters of 50
alphabets, 20 drawers each, 105 x 105 black strokes on white; the official zip files of the
Omniglot repository's ``python/`` folder (MIT licence).

Class = (alphabet, character); superclass = alphabet. The official split is by alphabet, so the
test classes are never seen in training: the metric-learning protocol of the papers (thousands of
classes, few images each, unseen test classes) at CPU scale. Two datasets:

- ``omniglot``: ``images_background.zip`` (30 alphabets, 964 characters, 19,280 images) -> train,
  ``images_evaluation.zip`` (20 alphabets, 659 characters, 13,180 images) -> test.
- ``omniglot-small``, the "minimal" split (a choice, docs/demo.md): train on
  ``images_background_small1.zip`` (5 alphabets, 136 characters, 2,720 images); test on the
  alphabets of ``images_background_small2.zip`` that are *not* in small 1 (Japanese katakana,
  Sanskrit, Tagalog: 106 characters, 2,120 images). Greek and Latin are in both zips with the same
  images; keeping them on one side only is what keeps the test classes unseen. Its two zips ship
  with the package (``data_prep/embedded/omniglot/``), so the CPU demo needs no download.

``--root`` holds the zip files, or the folders they extract to (``images_background/...``). Images
are stored as an array dataset at their native 105 x 105 (``pixels.npy``); the run's profile
resizes them (bench.engine.data). Every reader checks the layout, the image size and that no image
(by content hash) is on both sides; a bad file is a ``UserError`` naming it.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from common import UserError
from data_prep.registry import Raw, Source, register, require_dir

SIDE = 105  # every official image is 105 x 105
URL = "https://github.com/brendenlake/omniglot (folder python/)"
EMBEDDED = Path(__file__).parent / "embedded" / "omniglot"
# SHA-256 of the two minimal zips as published (the copies shipped in EMBEDDED)
SMALL_SHA256 = {
    "images_background_small1.zip": (
        "f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4"
    ),
    "images_background_small2.zip": (
        "3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f"
    ),
}

Item = tuple[str, str, str, bytes]  # alphabet, character, file name, PNG bytes


def _from_zip(path: Path, name: str) -> Iterator[Item]:
    folder = path.name.removesuffix(".zip")
    try:
        with zipfile.ZipFile(path) as z:
            for info in sorted(z.infolist(), key=lambda i: i.filename):
                parts = PurePosixPath(info.filename).parts
                if info.is_dir() or not info.filename.endswith(".png"):
                    continue
                if len(parts) != 4 or parts[0] != folder:
                    raise UserError(
                        f"{name}: {path} holds {info.filename!r}; expected "
                        f"{folder}/ALPHABET/characterNN/NAME.png"
                    )
                yield parts[1], parts[2], parts[3], z.read(info)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise UserError(f"{name}: {path} is not a readable zip file ({e})") from None


def _from_folder(path: Path) -> Iterator[Item]:
    for png in sorted(path.glob("*/*/*.png")):
        alphabet, character = png.parent.parent.name, png.parent.name
        yield alphabet, character, png.name, png.read_bytes()


def read_part(root: Path, stem: str, name: str) -> pd.DataFrame:
    """One official part (``stem``: ``images_background`` ...) as rows of alphabet, character,
    file and the decoded 105 x 105 uint8 image; from ``root/stem.zip`` or ``root/stem/``."""
    from PIL import Image, UnidentifiedImageError

    archive, folder = root / f"{stem}.zip", root / stem
    if archive.is_file():
        items, where = _from_zip(archive, name), archive
    elif folder.is_dir():
        items, where = _from_folder(folder), folder
    else:
        raise UserError(f"{name}: expected {archive} (or the folder {folder} it extracts to)")
    rows = []
    for alphabet, character, file, data in items:
        try:
            image = np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=np.uint8)
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise UserError(
                f"{name}: {where}: {alphabet}/{character}/{file} is not an image ({e})"
            ) from None
        if image.shape != (SIDE, SIDE):
            raise UserError(
                f"{name}: {where}: {alphabet}/{character}/{file} is {image.shape[1]} x "
                f"{image.shape[0]} px; every Omniglot image is {SIDE} x {SIDE}"
            )
        rows.append((alphabet, character, file, image))
    if not rows:
        raise UserError(f"{name}: {where} holds no ALPHABET/characterNN/*.png images")
    return pd.DataFrame(rows, columns=["alphabet", "character", "file", "image"])


def content_hash(image: np.ndarray) -> str:
    """SHA-256 of an image's decoded pixels (the same drawing in two zips hashes alike)."""
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


def check_disjoint(name: str, train: pd.DataFrame, test: pd.DataFrame) -> None:
    """No class and no image (by content) on both sides: the test classes stay unseen."""
    shared = set(train["alphabet"]) & set(test["alphabet"])
    if shared:
        raise UserError(f"{name}: alphabet(s) {', '.join(sorted(shared))} in train and test")
    seen = set(map(content_hash, train["image"]))
    twice = [
        f"{r.alphabet}/{r.character}/{r.file}"
        for r in test.itertuples()
        if content_hash(r.image) in seen
    ]
    if twice:
        raise UserError(
            f"{name}: {len(twice)} test image(s) also in train, e.g. {twice[0]} (the same drawing "
            "in both splits)"
        )


def to_raw(name: str, root: Path, parts: dict[str, pd.DataFrame]) -> Raw:
    """Rows of each split (``split -> frame``) -> the manifest's raw records and pixels."""
    frames, pixels, offset = [], [], 0
    for split, rows in parts.items():
        n = len(rows)
        frames.append(
            pd.DataFrame(
                {
                    "split": split,
                    "index": np.arange(offset, offset + n),
                    "class_key": (rows["alphabet"] + "/" + rows["character"]).to_numpy(),
                    "superclass_key": rows["alphabet"].to_numpy(),
                }
            )
        )
        pixels.append(np.stack(list(rows["image"])))
        offset += n
    records = pd.concat(frames, ignore_index=True)
    names = {a: a for a in records["superclass_key"]}
    return Raw(records, root.resolve(), np.concatenate(pixels), superclass_names=names)


class _OmniglotLayout(Source):
    """What both Omniglot datasets share: two splits by alphabet, 105 px one-channel drawings
    resized at load."""

    splits = ("train", "test")
    pixel_mode = "L"
    resize_on_load = True
    url = URL
    parts: tuple[str, str] = ("", "")  # the zip stems of the train and the test side
    # the minimal split only: small 2's alphabets that small 1 also has stay on the train side;
    # the official background/evaluation split shares none (one would be an error, not dropped)
    drop_shared_alphabets = False

    def read(self, root: Path, **options: Any) -> Raw:
        root = require_dir(root, self.name, " and ".join(f"{p}.zip" for p in self.parts))
        train, test = (read_part(root, stem, self.name) for stem in self.parts)
        if self.drop_shared_alphabets:
            test = test[~test["alphabet"].isin(set(train["alphabet"]))].reset_index(drop=True)
        check_disjoint(self.name, train, test)
        return to_raw(self.name, root, {"train": train, "test": test})


@register
class OmniglotSource(_OmniglotLayout):
    name = "omniglot"
    official = {"train": (19_280, 964), "test": (13_180, 659)}
    official_superclasses = 50
    parts = ("images_background", "images_evaluation")


@register
class OmniglotSmallSource(_OmniglotLayout):
    name = "omniglot-small"
    # small 1 whole; small 2 less Greek (24 characters) and Latin (26): 156 - 50 characters
    official = {"train": (2_720, 136), "test": (2_120, 106)}
    official_superclasses = 8
    parts = ("images_background_small1", "images_background_small2")
    drop_shared_alphabets = True


def check_embedded(folder: Path = EMBEDDED) -> Path:
    """The shipped minimal zips, each checked against its published SHA-256."""
    for file, sha in SMALL_SHA256.items():
        path = folder / file
        if not path.is_file():
            raise UserError(f"omniglot-small: the shipped {path} is missing (a broken install?)")
        if hashlib.sha256(path.read_bytes()).hexdigest() != sha:
            raise UserError(f"omniglot-small: {path} fails its SHA-256 check (expected {sha})")
    return folder


def ensure_omniglot_small(data_dir: str | Path) -> Path:
    """``data_dir/omniglot-small``, prepared from the shipped zips first if its manifest is
    missing or outdated (what ``xbmbench reproduce`` does before the demo)."""
    from data_prep.load import load_manifest
    from data_prep.manifest import prepare

    data_dir = Path(data_dir).expanduser()
    try:
        load_manifest("omniglot-small", data_dir)
    except UserError:
        prepare("omniglot-small", check_embedded(), data_dir, log=lambda *a, **k: None)
    return data_dir / "omniglot-small"
