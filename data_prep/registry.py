"""The dataset registry: one ``Source`` subclass per dataset module, registered by name.

A source knows the official file layout of one dataset and turns it into ``Raw`` records with the
dataset's own class and superclass keys; ``data_prep.manifest`` makes them dense and writes them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from common import UserError

BOX = ("x1", "y1", "x2", "y2")


@dataclass
class Raw:
    """What a source read from the official files, before labels are made dense.

    ``records`` has the columns ``split``, ``path`` (relative to ``root``) or ``index`` (row of
    ``pixels``), ``class_key``, ``superclass_key`` (``None`` where the dataset has no superclasses)
    and, for datasets with boxes, ``x1, y1, x2, y2``.
    """

    records: pd.DataFrame
    root: Path
    pixels: np.ndarray | None = None
    skipped: Counter = field(default_factory=Counter)  # reason -> number of records left out
    warnings: list[str] = field(default_factory=list)
    superclass_names: dict[Hashable, str] = field(default_factory=dict)  # superclass_key -> name


class Source(ABC):
    """Base class of a dataset module: the official layout and sizes, and a reader."""

    name: ClassVar[str]
    splits: ClassVar[tuple[str, ...]]
    # split -> (images, classes) from the official page or the paper; None where not published
    official: ClassVar[dict[str, tuple[int | None, int | None]]]
    official_superclasses: ClassVar[int | None] = None
    pixel_mode: ClassVar[str | None] = None  # PIL mode of array datasets ("L", "RGB"); None: files
    has_boxes: ClassVar[bool] = False
    # array images a trainer may resize once at load to its input size (a deterministic area
    # average) rather than through per-item transforms
    resize_on_load: ClassVar[bool] = False
    options: ClassVar[tuple[str, ...]] = ()  # dataset-specific keyword options of read()
    url: ClassVar[str] = ""
    # a source made for a dataset the user names (``KINDS``): its kind, recorded in manifest.json
    kind: ClassVar[str | None] = None

    @abstractmethod
    def read(self, root: Path, **options: Any) -> Raw:
        """The records of the official files under ``root`` (one module per dataset)."""


REGISTRY: dict[str, type[Source]] = {}


def register(cls: type[Source]) -> type[Source]:
    """Class decorator: add a ``Source`` to the registry under its ``name``."""
    if cls.name in REGISTRY:
        raise ValueError(
            f"dataset {cls.name!r} is registered twice ({REGISTRY[cls.name]} and {cls})"
        )
    REGISTRY[cls.name] = cls
    return cls


# kinds of source whose datasets the user names (``folder``): kind -> the function that makes and
# registers the source of one such dataset. Their names are not known when the package is
# imported: each prepared one is found in the data folder, by the kind its manifest.json records
# (``register_prepared``).
KINDS: dict[str, Callable[[str], type[Source]]] = {}


def get_source(name: str, data_dir: str | Path | None = None) -> Source:
    """The registered source called ``name``, else (given ``data_dir``) the user-named dataset
    prepared there; a ``UserError`` listing the valid names otherwise."""
    if name not in REGISTRY and data_dir is not None:
        register_prepared(data_dir, only=name)
    if name not in REGISTRY:
        raise UserError(f"unknown dataset {name!r}; valid names: {', '.join(REGISTRY)}")
    return REGISTRY[name]()


def register_prepared(data_dir: str | Path, only: str | None = None) -> list[str]:
    """Register the user-named datasets prepared in ``data_dir`` (each ``NAME/manifest.json``
    whose ``source`` is a kind of ``KINDS``; only ``only`` if given); returns their names. A
    manifest that cannot be read is left to the command that reads it to report."""
    import json

    found = []
    folder = Path(data_dir).expanduser()
    paths = [folder / only / "manifest.json"] if only else sorted(folder.glob("*/manifest.json"))
    for path in paths:
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(meta, dict) or meta.get("dataset") != path.parent.name:
            continue
        make = KINDS.get(meta.get("source"))  # type: ignore[arg-type]
        name = path.parent.name
        if make is None or (name in REGISTRY and REGISTRY[name].kind != meta["source"]):
            continue
        if name not in REGISTRY:
            make(name)
        found.append(name)
    return found


def require_dir(root: Path, name: str, expected: str) -> Path:
    """``root`` as a Path, or a ``UserError`` saying what the folder should contain."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"{name}: root folder {root} does not exist (expected {expected} in it)")
    return root
