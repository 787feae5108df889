"""The study ``standard``: every variant on CUB-200-2011, Cars196 and SOP at the paper profile,
counted from the variants' registry (no data needed: cells are configs)."""

from __future__ import annotations

import itertools

from click.testing import CliRunner

from bench.config import make_config
from bench.studies import STUDIES, cell_info, cells
from cli import main
from variants import SOURCED_VARIANTS, VARIANTS

DATASETS = ("cub200", "cars196", "sop")
SEEDS = (0, 1, 2)


def test_cells_are_every_sourced_variant_on_every_dataset_and_seed():
    got = cells("standard")
    assert len(got) == len(SOURCED_VARIANTS) * len(DATASETS) * len(SEEDS)
    want = set(itertools.product(DATASETS, SOURCED_VARIANTS, SEEDS))
    assert {(c.dataset, c.variant, c.seed) for c in got} == want
    assert {c.profile for c in got} == {"paper"}
    listed = cells("standard", optional=True)  # the variants beyond the sources: optional
    beyond = [v for v in VARIANTS if v not in SOURCED_VARIANTS]
    assert len(listed) == len(VARIANTS) * len(DATASETS) * len(SEEDS)
    assert {c.variant for c in listed} - {c.variant for c in got} == set(beyond)
    info = cell_info("standard", optional=True)
    assert {i["optional"] for i in info.values()} == {False, True}
    assert all(i["targets"] == [] for i in info.values())  # no source reports these cells


def test_run_ids_are_stable_and_the_plain_paper_cells():
    """Each cell is make_config's paper cell and nothing more (the same id every time), and a
    SOP cell is the run of the sources' studies that hold it: one config, one run."""
    first, again = cells("standard"), cells("standard")
    ids = [c.run_id for c in first]
    assert ids == [c.run_id for c in again] and len(set(ids)) == len(ids)
    for c in first:
        assert c.run_id == make_config(c.dataset, c.variant, c.seed, "paper").run_id
    sop = {c.run_id for c in first if c.dataset == "sop"}
    others = {c.run_id for s in STUDIES if s != "standard" for c in cells(s)}
    assert sop <= others
    assert not {c.run_id for c in first if c.dataset != "sop"} & others


def test_grid_list_shows_the_study():
    res = CliRunner().invoke(main, ["grid", "list", "--study", "standard"])
    assert res.exit_code == 0, res.output
    n = len(VARIANTS) * len(DATASETS) * len(SEEDS)
    assert f"{n} cells" in res.output
    assert "cub200" in res.output and "cars196" in res.output
