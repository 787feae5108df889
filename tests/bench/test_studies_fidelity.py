"""Issue 16, items 2-4: SC-XBN at the thesis' margins for the tables it reports, the default-margin
SC-XBN cells as a labelled sensitivity block, the table 5.14 sweep under both readings, and the
guarded std_correction cell."""

from __future__ import annotations

import json

from click.testing import CliRunner

from bench import studies
from bench.studies import ADJUSTED_MARGINS, LAMBDAS, Block, cell_info, cells
from cli import main


def _grid_json(study: str) -> list[dict]:
    r = CliRunner().invoke(main, ["grid", "list", "--study", study, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def _margins(c: dict) -> tuple[float, float]:
    return c["pos_margin"], c["neg_margin"]


def test_thesis_sc_xbn_cells_use_the_appendix_margins_for_tables_5_17_and_7_1():
    sc = [c for c in _grid_json("thesis") if c["variant"] == "sc_xbn"]
    targeted = [c for c in sc if c["targets"]]
    assert targeted and all(_margins(c) == (0.1, 2.0) for c in targeted)
    assert all(set(c["targets"]) == {"5.17", "7.1"} for c in targeted)
    assert {c["dataset"] for c in targeted} == {"cifar100", "inshop", "sop", "deepfashion2"}
    assert all(c["variant_options"] == {} for c in targeted)  # lambda 0.5: the default lambda_mu
    assert {c["seed"] for c in targeted} == {0, 1, 2}
    # the default-margin cells stay, labelled as sensitivity, targeting no reported table
    default = [c for c in sc if _margins(c) == (0.2, 0.8)]
    assert len(default) == 5 * 3
    assert all(c["block"].startswith("sensitivity") and c["targets"] == [] for c in default)
    # nothing else among the SC-XBN cells
    assert len(sc) == len(targeted) + len(default)


def test_every_thesis_table_5_17_and_7_1_sc_xbn_number_has_a_cell_at_the_thesis_margins():
    info = cell_info("thesis")
    by_dataset = {
        c.dataset
        for c in cells("thesis", variants=["sc_xbn"])
        if "7.1" in info[c.run_id]["targets"] or "5.17" in info[c.run_id]["targets"]
    }
    assert {"cifar100", "inshop", "sop"} <= by_dataset  # the reported numbers that survive


def test_the_lambda_sweep_runs_under_both_readings():
    sweep = _grid_json("thesis-pc-sweep")
    readings = {}
    for c in sweep:
        if "5.14" in c["targets"]:
            readings.setdefault(c["block"], []).append(c)
    assert set(readings) == {studies.READING_DEFAULT, studies.READING_ADJUSTED}
    for label, margins in (
        (studies.READING_DEFAULT, (0.2, 0.8)),
        (studies.READING_ADJUSTED, (0.1, 2.0)),
    ):
        block = readings[label]
        assert all(_margins(c) == margins for c in block), label
        points = set()
        for c in block:
            opts = c["variant_options"]
            points.add((opts.get("lambda_mu", 0.5), opts.get("lambda_sigma", 1.0)))
        expected = {(v, 1.0) for v in LAMBDAS} | {(0.5, v) for v in LAMBDAS}
        assert points == expected, label  # lambda_sigma 1.0 is the (0.5, 1) default cell
        assert len(block) == 12 * 3
    # table 5.15's adjusted-margin row is the (0.5, 1) point of reading B
    anchor = [
        c
        for c in readings[studies.READING_ADJUSTED]
        if c["variant_options"] == {} and c["seed"] == 0
    ]
    assert len(anchor) == 1 and "5.15" in anchor[0]["targets"]


def test_existing_blocks_come_first_so_existing_ids_keep_their_order():
    sweep = cells("thesis-pc-sweep")
    adjusted = [c for c in sweep if (c.pos_margin, c.neg_margin) == (0.1, 2.0)]
    assert [c.variant_options for c in adjusted[:3]] == [()] * 3  # the anchor, as before


def test_a_block_needing_an_unknown_option_is_left_out(monkeypatch):
    needs = Block(
        ("cifar100",),
        ("pc_xbn",),
        ({"options": {"no_such_option": 1}},),
        label="needs an option no variant has",
        requires=(("pc_xbn", "no_such_option"),),
    )
    study = studies.Study("t", "test", (needs,))
    monkeypatch.setitem(studies.STUDIES, "t", study)
    assert cells("t") == []


def test_the_std_correction_cell_is_there_when_pc_xbn_knows_the_option():
    from variants import get_variant

    known = "std_correction" in get_variant("pc_xbn").option_specs()
    cfgs = [c for c in cells("thesis-pc-sweep") if "std_correction" in c.options]
    if not known:
        assert cfgs == []
        return
    assert len(cfgs) == 3 and all(c.options["std_correction"] == 1 for c in cfgs)
    assert all((c.pos_margin, c.neg_margin) == tuple(ADJUSTED_MARGINS.values()) for c in cfgs)
    info = cell_info("thesis-pc-sweep")
    assert all(info[c.run_id]["block"].startswith("sensitivity") for c in cfgs)
