"""More seeds on demand: ``--seeds`` ranges and lists, every study cell at the asked seeds, and
``reproduce --seeds 0-4`` running exactly the seeds not yet done."""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner

import commands.reproduce as R
from bench import studies
from bench.store import RunDir
from bench.studies import Block, Study, cells, seed_spec
from cli import main
from common import UserError
from tests.conftest import TINY


@pytest.mark.parametrize(
    "text,seeds",
    [("0-9", tuple(range(10))), ("0,2,5-7", (0, 2, 5, 6, 7)), (" 3 , 1,1", (1, 3)), ("4", (4,)),
     ("2-2", (2,)), (None, None)],
)  # fmt: skip
def test_seed_spec_reads_ranges_and_lists(text, seeds):
    assert seed_spec(text) == seeds


@pytest.mark.parametrize("text", ["", "a", "-1", "1-", "0,,2", "1.5", "0-x", "5-3"])
def test_seed_spec_refuses_anything_else(text):
    with pytest.raises(UserError, match="--seeds"):
        seed_spec(text)


def test_seeds_beyond_the_study_are_the_same_cells_at_other_seeds():
    default = {c.variant: c for c in cells("demo") if c.seed == 0}
    more = cells("demo", seeds=range(10))
    assert len(more) == 10 * len(default) and {c.seed for c in more} == set(range(10))
    for c in more:
        assert dataclasses.replace(c, seed=0) == default[c.variant]
    one_seed = cells("demo-fig1", seeds=[0, 1])  # a block of seed 0 alone gets seed 1 too
    assert len(one_seed) == 2 * len(cells("demo-fig1"))


def test_grid_list_takes_ranges_and_refuses_bad_text():
    r = CliRunner().invoke(main, ["grid", "list", "--study", "demo", "--seeds", "0-9"])
    assert r.exit_code == 0, r.output
    assert r.output.strip().endswith(f"{10 * len(cells('demo', seeds=[0]))} cells")
    bad = CliRunner().invoke(main, ["grid", "list", "--study", "demo", "--seeds", "0-x"])
    assert bad.exit_code == 2 and "0-9 or 0,2,5-7" in bad.output


@pytest.fixture
def tiny_study(monkeypatch):
    block = Block(("fashion-mnist",), ("xbm", "xbn"), ({**TINY},), profile="cpu", seeds=(0, 1, 2))
    monkeypatch.setitem(studies.STUDIES, "tiny", Study("tiny", "a test", (block,)))
    return "tiny"


def _mark_done(results, cfgs):
    for cfg in cfgs:
        rd = RunDir(results, cfg)
        rd.start({"host": "test"})
        rd.write_result({"status": "done"})


def test_plan_with_more_seeds_keeps_only_the_new_ones(tiny_study, tmp_path):
    _mark_done(tmp_path, cells(tiny_study))  # the study's own seeds 0-2 are done
    todo, counts = R.plan(tiny_study, str(tmp_path), seeds=seed_spec("0-4"))
    assert sorted((c.variant, c.seed) for c in todo) == [
        (v, s) for v in ("xbm", "xbn") for s in (3, 4)
    ]
    assert counts == {"done": 6, "missing": 4}


def test_reproduce_seeds_0_4_runs_exactly_the_new_seeds(tiny_study, tmp_path, monkeypatch):
    _mark_done(tmp_path, cells(tiny_study))
    launched = []

    def launch(todo, data_dir, results, on_done, jobs=1):  # nothing trains
        for cfg in todo:
            launched.append(cfg)
            on_done(cfg, {"status": "done"})

    monkeypatch.setattr(R, "launch_local", launch)
    r = CliRunner().invoke(main, ["reproduce", "--study", tiny_study, "--seeds", "0-4",
                                  "--results", str(tmp_path), "--no-report"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert sorted(c.seed for c in launched) == [3, 3, 4, 4]
    assert {c.run_id for c in launched} == {c.run_id for c in cells(tiny_study, seeds=[3, 4])}
    assert "10 cells, 4 run now" in r.output
