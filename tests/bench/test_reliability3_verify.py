"""Issue 30, ``xbmbench verify`` against a damaged reference: a reference cut short never passes,
and a malformed one (an edited config, nulls, strings, wrong shapes) is exit 2 naming the file,
the cell and the field, with what the file should hold; nothing is trained first."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench import verify as V
from cli import main
from tests.bench.test_verify import made  # noqa: F401  (the module's tiny done cell)


def _verify(tiny_data, ref_file, keep, *args):
    return CliRunner().invoke(
        main,
        ["verify", "--reference", str(ref_file), "--data", tiny_data, "--keep", str(keep), *args],
    )


def _write(tmp_path: Path, ref: dict, name: str = "ref.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(ref))
    return path


def test_a_reference_cut_to_one_epoch_fails(made, tiny_data, tmp_path):  # noqa: F811
    """Every list of the cell cut to its first row (a consistent, shorter reference): the run
    has 4 rows (init, warm-up, 2 epochs), the reference 1, and that is a difference (exit 1)."""
    _, ref, cfg = made
    cut = copy.deepcopy(ref)
    cell = cut["cells"][0]
    for k in ("epochs", *V.COMPARED):
        cell[k] = cell[k][:1]
    out = _verify(tiny_data, _write(tmp_path, cut), tmp_path / "keep")
    assert out.exit_code == 1, out.output
    assert f"({cfg.run_id}): differs: epochs at epoch(s) -1, 0, 1, 2" in out.output
    assert "0 of 1 cells identical" in out.output


def test_check_never_stops_at_the_shorter_list(made):  # noqa: F811
    """check() on a cell whose recall@1 list is one value short (as a hand-cut file would be,
    had it passed load_reference): a difference, not "identical"."""
    results, ref, cfg = made
    cell = copy.deepcopy(ref["cells"][0])
    cell["recall@1"] = cell["recall@1"][:-1]
    got = V.check(cell, V.cell_env(ref, cell), results / "runs" / cfg.run_id)
    assert got["status"] == "differs" and not got["identical"]
    assert [d["metric"] for d in got["differences"]] == ["epochs"]


def _edit(ref: dict, how: str) -> dict:
    bad = copy.deepcopy(ref)
    cell = bad["cells"][0]
    if how == "config":
        cell["config"]["epochs"] = 7  # its run_id no longer matches its fields
    elif how == "null":
        cell["recall@1"] = None
    elif how == "strings":
        cell["loss"] = [str(x) for x in cell["loss"]]
    elif how == "short":
        cell["recall@10"] = cell["recall@10"][:1]
    elif how == "cells-object":
        bad["cells"] = {"a": 1}
    elif how == "cell-list":
        bad["cells"] = [[1, 2]]
    return bad


@pytest.mark.parametrize(
    "how, needle",
    [
        ("config", "its 'config' does not rebuild the cell"),
        ("null", "'recall@1' must be a list of numbers or nulls, got None"),
        ("strings", "'loss' must be a list of numbers or nulls"),
        ("short", "'recall@10' holds 1 values for 4 epochs"),
        ("cells-object", "no non-empty 'cells' list"),
        ("cell-list", "cell 0: a JSON list, not an object"),
    ],
)
def test_a_malformed_reference_is_exit_2_naming_file_cell_and_field(
    made,  # noqa: F811
    tiny_data,
    tmp_path,
    how,
    needle,
):
    _, ref, cfg = made
    path = _write(tmp_path, _edit(ref, how), f"{how}.json")
    keep = tmp_path / "keep"
    out = _verify(tiny_data, path, keep)
    assert out.exit_code == 2, out.output
    text = " ".join(out.output.split())  # click wraps nothing, but be safe
    assert f"malformed reference file {path}" in text and needle in text
    if how not in ("cells-object", "cell-list"):
        assert f"cell 0 ({cfg.run_id})" in text or f"cell {cfg.run_id}" in text
    assert "Traceback" not in out.output and "Error(" not in out.output  # no raw exception
    if how != "config":
        assert "it should be a JSON object" in text  # what the file should hold
    assert not (keep / "runs").exists()  # refused before anything was trained
