"""Stanford Online Products (Song et al. 2016): ``Ebay_train.txt`` and ``Ebay_test.txt``.

https://cvgl.stanford.edu/projects/lifted_struct/ ; rows ``image_id class_id super_class_id path``,
paths relative to the folder holding the two lists. Superclass = ``super_class_id`` (12 kinds of
product; its name is the image folder, ``bicycle_final`` -> ``bicycle``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from data_prep.registry import Raw, Source, register, require_dir
from data_prep.textfile import image_path, read_rows, to_int

HEADER = ["image_id", "class_id", "super_class_id", "path"]


@register
class SOP(Source):
    name = "sop"
    splits = ("train", "test")
    official = {"train": (59_551, 11_318), "test": (60_502, 11_316)}
    official_superclasses = 12
    url = "https://cvgl.stanford.edu/projects/lifted_struct/"

    def read(self, root: Path, **options: Any) -> Raw:
        root = require_dir(root, self.name, "Ebay_train.txt and Ebay_test.txt")
        rows = []
        names = {}
        for split in self.splits:
            path = root / f"Ebay_{split}.txt"
            for number, (_, cls, sup, rel) in read_rows(path, HEADER):
                cls_id = to_int(cls, path, number, "class_id")
                sup_id = to_int(sup, path, number, "super_class_id")
                rel = image_path(rel, path, number, "path")
                names.setdefault(sup_id, rel.split("/")[0].removesuffix("_final"))
                rows.append((split, rel, cls_id, sup_id))
        records = pd.DataFrame(rows, columns=["split", "path", "class_key", "superclass_key"])
        return Raw(records=records, root=root, superclass_names=names)
