"""``ManifestDataset``: the torch Dataset over one split of a prepared manifest."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from common import UserError
from data_prep.files import PIXELS
from data_prep.load import load_checked
from data_prep.registry import BOX, get_source


class ManifestDataset(Dataset):
    """Items ``(image, label, superclass)`` of ``split``, optionally only the rows ``indices``
    (positions within the split). Images are PIL images (``"L"`` for Fashion-MNIST, RGB
    otherwise), DeepFashion2 items cropped to their box, passed through ``transform`` if given."""

    def __init__(
        self,
        name: str,
        data_dir: str | Path,
        split: str,
        transform: Callable | None = None,
        indices: Sequence[int] | None = None,
    ) -> None:
        source = get_source(name, data_dir)
        if split not in source.splits:
            raise UserError(
                f"{name} has no split {split!r}; its splits: {', '.join(source.splits)}"
            )
        meta, rows, _ = load_checked(name, data_dir)
        rows = rows[rows["split"] == split].reset_index(drop=True)
        if indices is not None:
            indices = np.asarray(indices, dtype=np.int64)
            if len(indices) and (indices.min() < 0 or indices.max() >= len(rows)):
                raise IndexError(f"indices must lie in 0..{len(rows) - 1} for {name}/{split}")
            rows = rows.iloc[indices].reset_index(drop=True)
        self.name, self.split, self.transform = name, split, transform
        self.root = Path(meta["root"])
        self.mode = source.pixel_mode or "RGB"
        self.labels = rows["label"].to_numpy(dtype=np.int64)
        self.superclasses = rows["superclass"].to_numpy(dtype=np.int64)
        self.superclass_names: list[str] = meta.get("superclass_names", [])
        self._pixels_path = Path(data_dir).expanduser() / name / PIXELS if meta["array"] else None
        self._pixels_id = _identity(self._pixels_path) if meta["array"] else None
        self._index = rows["index"].to_numpy(dtype=np.int64) if meta["array"] else None
        self._paths = rows["path"].tolist() if not meta["array"] else None
        self._boxes = rows[list(BOX)].to_numpy(dtype=np.int64) if source.has_boxes else None
        self._mmap: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def _pixels(self) -> np.ndarray:
        if self._mmap is None:  # opened lazily, so that DataLoader workers each map the file
            # a re-prepare since __init__ replaced the file: its rows may no longer be our labels'
            if _identity(self._pixels_path) != self._pixels_id:
                raise UserError(
                    f"{self._pixels_path} was replaced since the {self.name} manifest was read "
                    "(prepared again?); start again to read the new one"
                )
            self._mmap = np.load(self._pixels_path, mmap_mode="r")
        return self._mmap

    @cached_property
    def array(self) -> np.ndarray | None:
        """The uint8 pixels of the selected items, (N, H, W) or (N, H, W, C); None for files."""
        if self._index is None:
            return None
        return np.ascontiguousarray(self._pixels()[self._index])

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_mmap"] = None
        return state

    def _image(self, i: int) -> Image.Image:
        if self._index is not None:
            return Image.fromarray(np.asarray(self._pixels()[self._index[i]])).convert(self.mode)
        path = self.root / self._paths[i]
        try:
            with Image.open(path) as im:
                image = im.convert("RGB")
        except FileNotFoundError:
            raise UserError(
                f"{self.name}: image {path} is missing (check with "
                f"`xbmbench data prepare {self.name} --check-images`)"
            ) from None
        except UnidentifiedImageError:
            raise UserError(
                f"{self.name}: image {path} is not an image PIL can read (corrupt?)"
            ) from None
        except OSError as e:  # "image file is truncated", a folder, a symlink loop, I/O
            raise UserError(f"{self.name}: cannot read image {path} ({e.strerror or e})") from None
        if self._boxes is not None:
            x1, y1, x2, y2 = self._boxes[i]
            w, h = image.size
            image = image.crop((max(0, x1), max(0, y1), min(w, x2), min(h, y2)))
        return image

    def __getitem__(self, i: int) -> tuple[Any, int, int]:
        image = self._image(i)
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[i]), int(self.superclasses[i])


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    """What tells a replaced file from the one read before: device, inode, size, mtime."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns
