"""README's demo table, generated from the shipped reference file (bench/verify.py), so that the
numbers README shows are the numbers ``xbmbench verify`` checks a machine against.

``render`` is pure (a reference in, Markdown out); ``rewrite`` puts it between README's markers
(``xbmbench verify --readme README.md``); tests/test_readme_reference.py keeps the two equal.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from common import UserError

BEGIN, END = "<!-- demo-table:begin -->", "<!-- demo-table:end -->"
COLUMNS = (("best", "recall@1"), ("best", "recall@10"), ("last", "recall@1"), ("last", "recall@10"))


def _mean_std(values: list[float]) -> str:
    """mean ± sample std (ddof = 1), two decimals; the value alone for a single seed."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.2f}"
    return f"{mean:.2f} ± {statistics.stdev(values):.2f}"


def render(reference: Mapping[str, Any]) -> str:
    """One row per variant, in the order the reference lists them: seeds, then mean ± std over
    seeds of the best epoch's (highest test Recall@1, as the papers select) and the last epoch's
    Recall@1 and Recall@10."""
    by_variant: dict[str, list[Mapping[str, Any]]] = {}
    for cell in reference["cells"]:
        by_variant.setdefault(cell["variant"], []).append(cell)
    head = "| variant | n | best R@1 | best R@10 | last R@1 | last R@10 |"
    lines = [head, "| --- | ---: | --- | --- | --- | --- |"]
    for variant, cells in by_variant.items():
        numbers = [_mean_std([float(c[which][k]) for c in cells]) for which, k in COLUMNS]
        lines.append(f"| {variant} | {len(cells)} | " + " | ".join(numbers) + " |")
    return "\n".join(lines) + "\n"


def block(text: str) -> str | None:
    """What README holds between the markers (None without them); a marker alone, or the end
    before the beginning, is a UserError."""
    has_begin, has_end = BEGIN in text, END in text
    if not (has_begin or has_end):
        return None
    if not (has_begin and has_end) or text.index(END) < text.index(BEGIN):
        raise UserError(f"README must hold {BEGIN} then {END}, each once")
    return text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip("\n") + "\n"


def rewrite(text: str, table: str) -> str:
    """``text`` with the block between the markers replaced by ``table``."""
    if block(text) is None:
        raise UserError(f"README has no {BEGIN} ... {END} block to rewrite")
    start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n" + table + text[stop:]
