"""README's demo table is what the shipped reference file says (bench/demo_table.py).

The shipped file (bench/reference/demo.json) and README's block between the demo-table markers
come together: both or neither; with both, the block must equal the render of the file
(`xbmbench verify --readme README.md` rewrites it)."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench import demo_table as T
from bench import verify as V
from cli import main
from common import UserError

ROOT = Path(__file__).resolve().parent.parent

README = ROOT / "README.md"


def test_readme_block_and_shipped_reference_agree():
    block = T.block(README.read_text(encoding="utf-8"))
    shipped = V.DEMO_REFERENCE.is_file()
    assert (block is None) == (not shipped), (
        f"README has the demo-table markers but {V.DEMO_REFERENCE} is missing"
        if block is not None
        else f"{V.DEMO_REFERENCE} is shipped but README has no {T.BEGIN} ... {T.END} block"
    )
    if shipped:
        assert block == T.render(V.load_reference()), (
            "README's demo table differs from bench/reference/demo.json: "
            "run `xbmbench verify --readme README.md`"
        )


def _cell(variant, seed, best, last):
    return {"variant": variant, "seed": seed,
            "best": {"epoch": 5, "recall@1": best[0], "recall@10": best[1]},
            "last": {"epoch": 5, "recall@1": last[0], "recall@10": last[1]}}  # fmt: skip


REF = {"cells": [
    _cell("xbm", 0, (80.06, 95.99), (80.06, 95.99)),
    _cell("no_xbm", 0, (79.0, 96.0), (78.5, 96.1)),
    _cell("xbm", 1, (79.5, 96.25), (79.0, 96.0)),
    _cell("xbm", 2, (80.2, 96.01), (80.2, 96.01)),
]}  # fmt: skip


def test_render_gives_mean_and_sample_std_per_variant_in_reference_order():
    lines = T.render(REF).splitlines()
    assert lines[0].startswith("| variant | n | best R@1")
    xbm = [80.06, 79.5, 80.2]
    expected = f"{sum(xbm) / 3:.2f} ± {statistics.stdev(xbm):.2f}"
    assert expected == "79.92 ± 0.37"
    assert lines[2].startswith(f"| xbm | 3 | {expected} | ")
    assert lines[3] == "| no_xbm | 1 | 79.00 | 96.00 | 78.50 | 96.10 |"  # one seed: no std


def test_rewrite_replaces_only_the_block_and_is_idempotent():
    text = f"# x\n\nbefore\n\n{T.BEGIN}\nold table\n{T.END}\n\nafter\n"
    once = T.rewrite(text, T.render(REF))
    assert once.startswith("# x\n\nbefore\n\n") and once.endswith(f"{T.END}\n\nafter\n")
    assert T.block(once) == T.render(REF) and T.rewrite(once, T.render(REF)) == once


@pytest.mark.parametrize("text", [f"{T.BEGIN} only", f"{T.END} x {T.BEGIN}", "no markers"])
def test_broken_or_absent_markers_are_refused(text):
    with pytest.raises(UserError):
        T.rewrite(text, "t")


def test_readme_command_rewrites_from_a_reference(tmp_path, monkeypatch):
    cells = [
        {**c, "run_id": f"{i:016x}", "dataset": "d", "config": {}, "env": {}, "epochs": [5],
         "recall@1": [c["best"]["recall@1"]], "recall@10": [c["best"]["recall@10"]],
         "loss": [1.0]}
        for i, c in enumerate(REF["cells"])
    ]  # fmt: skip
    ref = V.write_reference({"format": 1, "study": "demo", "env": {}, "cells": cells},
                            tmp_path / "ref.json")  # fmt: skip
    readme = tmp_path / "README.md"
    readme.write_text(f"a\n{T.BEGIN}\n{T.END}\nb\n")
    out = CliRunner().invoke(main, ["verify", "--reference", str(ref), "--readme", str(readme)])
    assert out.exit_code == 0, out.output
    assert T.block(readme.read_text()) == T.render(REF)
