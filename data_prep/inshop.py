"""In-Shop Clothes Retrieval (DeepFashion, Liu et al. 2016): ``Eval/list_eval_partition.txt``.

https://mmlab.ie.cuhk.edu.hk/projects/DeepFashion/InShopRetrieval.html ; the first line is the
number of images, the second the header ``image_name item_id evaluation_status``; images under
``img/``. Class = ``item_id``; superclass = the category folder of the path (``Dresses``, ``Denim``,
...), shared by MEN and WOMEN where the folder names agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from common import UserError
from data_prep.registry import Raw, Source, register, require_dir
from data_prep.textfile import image_path, read_lines, read_rows

HEADER = ["image_name", "item_id", "evaluation_status"]
LIST = Path("Eval") / "list_eval_partition.txt"


@register
class InShop(Source):
    name = "inshop"
    splits = ("train", "query", "gallery")
    official = {"train": (25_882, 3_997), "query": (14_218, 3_985), "gallery": (12_612, 3_985)}
    url = "https://mmlab.ie.cuhk.edu.hk/projects/DeepFashion/InShopRetrieval.html"

    def read(self, root: Path, **options: Any) -> Raw:
        root = require_dir(root, self.name, f"{LIST} and img/")
        path = root / LIST
        rows = []
        for number, (rel, item, status) in read_rows(path, HEADER, skip=1):
            if status not in self.splits:
                raise UserError(
                    f"{path}:{number}: malformed line: evaluation_status {status!r} "
                    f"is not one of {', '.join(self.splits)}"
                )
            rel = image_path(rel, path, number, "image_name")
            parts = rel.split("/")
            if len(parts) < 4:
                raise UserError(
                    f"{path}:{number}: malformed line: image_name {rel!r} is not "
                    "img/<gender>/<category>/<item>/<file>"
                )
            rows.append((status, rel, item, parts[-3]))
        records = pd.DataFrame(rows, columns=["split", "path", "class_key", "superclass_key"])
        warnings = []
        declared = _declared_count(path)
        if declared != len(records):
            warnings.append(
                f"{path} declares {declared} images on its first line, lists {len(records)}"
            )
        names = {k: k for k in records["superclass_key"].unique()}
        return Raw(records=records, root=root, warnings=warnings, superclass_names=names)


def _declared_count(path: Path) -> int:
    first = read_lines(path)[0].strip()
    try:
        return int(first)
    except ValueError:
        raise UserError(
            f"{path}:1: malformed line {first!r}: expected the number of images"
        ) from None
