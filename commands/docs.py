"""Facts the documentation shows are generated from the code, never typed twice.

A page holds a generated block between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``; NAME is
a key of ``GENERATORS`` and the block is exactly what that generator returns. ``python -m
commands.docs`` rewrites every block of README.md and docs/*.md; ``--check`` only lists the stale
ones and exits 1 (tests/test_docs.py runs the check, so a page that differs from the code fails
the test suite). The generators import the suite's declarations when called, not at import.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from common import UserError, atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"<!-- ([a-z0-9-]+):(begin|end) -->")


def demo_table() -> str:
    """Best and last Recall@1/10 per variant of the shipped demo reference."""
    from bench.demo_table import render
    from bench.verify import reference_path

    return render(json.loads(Path(reference_path("demo")).read_text(encoding="utf-8")))


def studies_table() -> str:
    """Every study: its name, its number of cells (and optional ones) and what it reproduces."""
    from bench.studies import STUDIES, cells

    lines = ["| study | cells | reproduces |", "| --- | ---: | --- |"]
    for name, study in STUDIES.items():
        n, listed = len(cells(name)), len(cells(name, optional=True))
        more = f" (+{listed - n} optional)" if listed > n else ""
        lines.append(f"| `{name}` | {n}{more} | {study.reproduces} |")
    return "\n".join(lines) + "\n"


def variants_table() -> str:
    """Every registered variant: what it is (its module's first line), its options with default
    and valid range, and whether it works as a PML loss on its own."""
    import importlib

    from variants import DROP_IN_VARIANTS, VARIANTS, get_variant, option_specs

    lines = ["| variant | what it is | options (default; valid values) | drop-in |"]
    lines.append("| --- | --- | --- | --- |")
    for name in VARIANTS:
        module = importlib.import_module(get_variant(name).__module__)
        what = (module.__doc__ or "").strip().splitlines()[0].rstrip(".")
        opts = "; ".join(
            f"`{k}` = `{spec.default!r}` ({spec.describe()})"
            for k, spec in option_specs(name).items()
        )
        lines.append(
            f"| `{name}` | {what.replace('|', '/')} | {opts or '-'} | "
            f"{'yes' if name in DROP_IN_VARIANTS else 'trainer only'} |"
        )
    return "\n".join(lines) + "\n"


def protocol_table(profile: str) -> Callable[[], str]:
    def render() -> str:
        from bench.profiles import protocol_table as table

        return table(profile)

    render.__doc__ = f"Every value of the {profile} profile with its source."
    return render


def profile_differences() -> str:
    """Every setting in which the ``cpu`` profile departs from the ``paper`` profile."""
    from bench.config import profile_values

    paper, cpu = profile_values("paper"), profile_values("cpu")
    lines = ["| setting | paper | cpu |", "| --- | --- | --- |"]
    for key in sorted(paper):
        a, b = paper[key], cpu[key]
        if a != b:
            lines.append(f"| `{key}` | `{a!r}` | `{b!r}` |")
    return "\n".join(lines) + "\n"


def datasets_table() -> str:
    """Every registered dataset: its source (its module's first line, which cites it) and the
    official size of each split (images / classes) that `data prepare` checks against."""
    import sys

    from data_prep import DATASETS
    from data_prep.registry import get_source

    lines = ["| dataset | source and official files | official splits (images / classes) |"]
    lines.append("| --- | --- | --- |")
    for name in DATASETS:
        source = get_source(name)
        doc = (sys.modules[type(source).__module__].__doc__ or "").strip().split("\n\n")[0]
        first = re.split(r"(?<! al)\. ", " ".join(doc.split()))[0]  # "et al." ends no sentence
        what = first.rstrip(".").replace("|", "/")
        splits = "; ".join(
            f"{split} {images:,} / {classes:,}" if images else f"{split} ? / {classes:,}"
            for split, (images, classes) in getattr(source, "official", {}).items()
        )
        lines.append(f"| `{name}` | {what} | {splits or '-'} |")
    return "\n".join(lines) + "\n"


GENERATORS: dict[str, Callable[[], str]] = {
    "demo-table": demo_table,
    "studies": studies_table,
    "datasets": datasets_table,
    "variants": variants_table,
    "protocol-paper": protocol_table("paper"),
    "profile-differences": profile_differences,
}


def blocks(text: str, where: str = "text") -> dict[str, tuple[int, int]]:
    """Name -> (start, stop) offsets of each generated block's content in ``text``. A marker
    alone, an end before its beginning, a block twice or an unknown name: UserError."""
    found: dict[str, tuple[int, int]] = {}
    open_: dict[str, int] = {}
    for m in MARKER.finditer(text):
        name, kind = m.groups()
        if name not in GENERATORS:
            raise UserError(
                f"{where}: unknown generated block {name!r}; known: {', '.join(GENERATORS)}"
            )
        if kind == "begin":
            if name in open_ or name in found:
                raise UserError(f"{where}: generated block {name!r} begins twice")
            open_[name] = m.end()
        else:
            if name not in open_:
                raise UserError(f"{where}: generated block {name!r} ends before it begins")
            found[name] = (open_.pop(name), m.start())
    if open_:
        raise UserError(f"{where}: generated block {', '.join(open_)} never ends")
    return found


def render_blocks(text: str, where: str = "text") -> str:
    """``text`` with every generated block replaced by its generator's output."""
    for name, (start, stop) in sorted(blocks(text, where).items(), key=lambda kv: -kv[1][0]):
        text = text[:start] + "\n" + GENERATORS[name]() + text[stop:]
    return text


def pages(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def stale(root: Path = ROOT) -> list[str]:
    """``page: block`` for every generated block that differs from what its generator says."""
    out = []
    for page in pages(root):
        text = page.read_text(encoding="utf-8")
        for name, (start, stop) in blocks(text, str(page)).items():
            if text[start:stop].strip("\n") != GENERATORS[name]().strip("\n"):
                out.append(f"{page.relative_to(root)}: {name}")
    return out


def main(argv: list[str]) -> int:
    if argv[:1] == ["--check"]:
        bad = stale()
        for line in bad:
            print(f"stale: {line}")
        return 1 if bad else 0
    for page in pages():
        text = page.read_text(encoding="utf-8")
        new = render_blocks(text, str(page))
        if new != text:
            atomic_write_text(page, new)
            print(f"rewritten: {page.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
