"""Studies, filters, launchers and reproduce: skip done cells, resume, submitit's path."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

import bench.engine.metric as trainer
from bench import studies
from bench.store import RunDir
from bench.studies import STUDIES, Block, Study, cells
from cli import main
from commands.reproduce import reproduce
from common import UserError
from tests.conftest import PINNING, TINY
from variants import SOURCED_VARIANTS

EXPECTED = {
    "paper-table1": 4 * 3 * 3,  # {no_xbm, xbm, xbn, axbn} x {sop, inshop, df2} x 3 seeds
    "paper-table2": (1 + 1) * 2 * 3,  # {no_xbm@512, xbm_star} x {sop, inshop} x 3
    "paper-table3": 3 * 3 * 3,  # {no_xbm, xbm, xbn} x 3 heads x 3 seeds, on sop
    # 4 variants x 3 datasets x 5 batch sizes + 3 variants x 3 x 5 memory ratios, x 3 seeds,
    # less the batch-64 default-memory cells both sweeps contain (3 variants x 3 datasets x 3)
    "paper-fig1": (4 * 3 * 5 + 3 * 3 * 5) * 3 - 3 * 3 * 3,
    # 8 variants x 5 datasets + sc_xbn on 5 (k-means superclasses on cifar10)
    # + adjusted-margin pc_xbn on 2, x 3 seeds
    "thesis": (8 * 5 + 5 + 4 + 2) * 3,  # + SC-XBN at the thesis margins
    # 6 lambda_mu + 6 lambda_sigma values, one of which (sigma 1.0) is the default, + adjusted
    "thesis-pc-sweep": 12 * 3 + 12 * 3 + 3,  # both margin readings + std_correction=1
    # Omniglot: no_xbm, xbm, xbn and the bound x 10 seeds (the primary claims'
    # variants), the 7 other sourced variants x 3
    "demo": 4 * 10 + 7 * 3,
    # memory ratio {0.25, 0.5, 1} x lr {0.5, 1, 2}x x {xbm, xbn, oracle_xbm} x 3 seeds
    "demo-regimes": 3 * 3 * 3 * 3,
    "demo-fashion": (10 + 1) * 3,  # the sources' 10 variants and the bound, Fashion-MNIST
    # 4 variants x 2 batch sizes + 3 variants x 4 memory ratios, one seed, less the 3 cells
    # both sweeps contain (batch 40, memory 0.5)
    "demo-fig1": 4 * 2 + 3 * 4 - 3,
    "paper-moco": 2 * 2 * 3,  # {xbm, xbn} x {cifar10, cifar100} x 3 seeds
    "demo-moco": 2 * 3,
    "standard": 10 * 3 * 3,  # the sources' 10 variants x {cub200, cars196, sop} x 3 seeds
}


@pytest.mark.parametrize("name", list(STUDIES))
def test_cell_counts(name):
    cfgs = cells(name)
    assert len(cfgs) == EXPECTED[name]
    assert len({c.run_id for c in cfgs}) == len(cfgs)


def test_table1_cells_follow_the_protocol():
    cfgs = cells("paper-table1")
    df2 = [c for c in cfgs if c.dataset == "deepfashion2" and c.variant != "no_xbm"]
    assert {c.memory_ratio for c in df2} == {1.0}
    assert {c.options.get("gain_interval", 100) for c in cfgs if c.variant == "axbn"} == {
        10,
        100,
    }  # 100 is the default, dropped
    assert all(c.batch_size == 64 and c.profile == "paper" for c in cfgs)
    # the L2-head cells of table 3 are the runs of table 1
    t3 = {c.run_id for c in cells("paper-table3") if c.head == "l2"}
    assert t3 <= {c.run_id for c in cfgs}


def test_filters():
    assert len(cells("paper-table1", datasets=["sop"])) == 12
    assert len(cells("paper-table1", datasets=["sop"], variants=["xbn"], seeds=[1])) == 1
    assert {c.seed for c in cells("demo", seeds=[0, 2])} == {0, 2}
    with pytest.raises(UserError, match="unknown study 'table9'"):
        cells("table9")
    with pytest.raises(UserError, match="unknown variant.*xbnn"):
        cells("demo", variants=["xbnn"])
    r = CliRunner().invoke(
        main,
        [
            "grid",
            "list",
            "--study",
            "paper-table1",
            "--dataset",
            "sop",
            "--variant",
            "axbn",
            "--json",
        ],
    )
    assert r.exit_code == 0
    rows = json.loads(r.output)
    assert len(rows) == 3 and {row["variant"] for row in rows} == {"axbn"}


# the optional blocks: oracle_xbm (beyond the sources) on the paper's and the thesis' datasets
OPTIONAL = {"paper-table1": 3 * 3, "thesis": 5 * 3, "standard": 3 * 3}


@pytest.mark.parametrize("name", list(STUDIES))
def test_the_sources_studies_run_only_sourced_variants_unless_named(name):
    """The bound never enters a paper or thesis grid by default; the demo runs it."""
    beyond = {c.variant for c in cells(name)} - set(SOURCED_VARIANTS)
    cpu_studies = ("demo", "demo-regimes", "demo-fashion")
    assert beyond == ({"oracle_xbm"} if name in cpu_studies else set())
    listed = cells(name, optional=True)
    assert len(listed) - len(cells(name)) == OPTIONAL.get(name, 0)
    extra = [c for c in listed if c.run_id not in {d.run_id for d in cells(name)}]
    assert {c.variant for c in extra} <= {"oracle_xbm"}


def test_an_optional_block_runs_only_when_its_variant_is_named(tmp_path):
    from commands.reproduce import plan

    todo, counts = plan("paper-table1", str(tmp_path))
    assert len(todo) == 36 and "oracle_xbm" not in {c.variant for c in todo}
    todo, counts = plan("paper-table1", str(tmp_path), variants=["oracle_xbm"])
    assert len(todo) == counts["missing"] == 9 and {c.variant for c in todo} == {"oracle_xbm"}
    assert {c.dataset for c in todo} == {"sop", "inshop", "deepfashion2"}
    assert {c.options.get("refresh_interval", 1) for c in todo} == {1}
    todo, _ = plan("thesis", str(tmp_path), variants=["xbm", "oracle_xbm"], seeds=[0])
    assert sorted(c.variant for c in todo) == ["oracle_xbm"] * 5 + ["xbm"] * 5
    todo, _ = plan("thesis", str(tmp_path), variants=["xbm"])
    assert {c.variant for c in todo} == {"xbm"}
    demo, _ = plan("demo", str(tmp_path))  # the demo runs it without being asked
    assert [c.variant for c in demo][-3:] == ["oracle_xbm"] * 3


def test_grid_list_shows_the_optional_cells_labelled():
    def listing(*args):
        r = CliRunner().invoke(main, ["grid", "list", "--study", "paper-table1", *args])
        assert r.exit_code == 0, r.output
        return r.output

    rows = json.loads(listing("--json"))
    assert len(rows) == 36 + 9
    bound = [row for row in rows if row["variant"] == "oracle_xbm"]
    assert len(bound) == 9 and all(row["optional"] for row in bound)
    assert {row["block"] for row in bound} == {"beyond the sources: re-embedding bound"}
    assert not any(row["optional"] for row in rows if row["variant"] != "oracle_xbm")
    text = listing().splitlines()
    marked = [line for line in text if "optional, --variant oracle_xbm" in line]
    assert len(marked) == 9 and all("re-embedding bound" in line for line in marked)
    assert text[-1] == "45 cells"
    named = json.loads(listing("--variant", "oracle_xbm", "--dataset", "sop", "--json"))
    assert len(named) == 3 and {row["variant"] for row in named} == {"oracle_xbm"}
    assert json.loads(listing("--variant", "xbn", "--json"))[0]["optional"] is False
    studies_out = CliRunner().invoke(main, ["grid", "studies"]).output
    assert "paper-table1       36 cells  paper table 1 (+9 optional)" in studies_out


@pytest.fixture
def tiny_study(monkeypatch):
    block = Block(("fashion-mnist",), ("xbm", "xbn"), ({**TINY},), profile="cpu", seeds=(0, 1))
    monkeypatch.setitem(studies.STUDIES, "tiny", Study("tiny", "a test", (block,)))
    return "tiny"


def test_second_run_trains_nothing(tiny_study, tiny_data, tmp_path, monkeypatch):
    first = reproduce(tiny_study, str(tmp_path), tiny_data, progress=False)
    assert first["ran"] == 4 and first["done"] == 4 and first["failed"] == 0
    assert (tmp_path / "report" / "REPORT.md").exists()
    monkeypatch.setattr(trainer, "Data", lambda *a, **k: pytest.fail("trained again"))
    second = reproduce(tiny_study, str(tmp_path), tiny_data, progress=False, report=False)
    assert second["ran"] == 0 and second["done"] == 4


def test_interrupted_grid_resumes(tiny_study, tiny_data, tmp_path, monkeypatch):
    real_run, calls = trainer.run, []

    def interrupted(cfg, *a, **k):
        calls.append(cfg.run_id)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C during the second cell
        return real_run(cfg, *a, **k)

    monkeypatch.setattr(trainer, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        reproduce(tiny_study, str(tmp_path), tiny_data, progress=False, report=False)
    first = cells(tiny_study)[0]
    assert RunDir(tmp_path, first).status() == "done"
    stamp = RunDir(tmp_path, first).result.stat().st_mtime_ns
    monkeypatch.setattr(trainer, "run", real_run)
    again = reproduce(tiny_study, str(tmp_path), tiny_data, progress=False, report=False)
    assert again["ran"] == 3 and again["done"] == 4
    assert RunDir(tmp_path, first).result.stat().st_mtime_ns == stamp  # not run again


def test_failed_cells_are_retried_only_on_request(tiny_study, tiny_data, tmp_path):
    reproduce(tiny_study, str(tmp_path), tiny_data, progress=False, report=False)
    cfg = cells(tiny_study)[1]
    rd = RunDir(tmp_path, cfg)
    rd.write_result({"status": "failed", "error": "nan", "failed_step": 3})
    assert reproduce(tiny_study, str(tmp_path), tiny_data, progress=False, report=False)["ran"] == 0
    again = reproduce(
        tiny_study, str(tmp_path), tiny_data, progress=False, report=False, retry_failed=True
    )
    assert again["ran"] == 1 and rd.status() == "done"


@pytest.mark.slow
def test_submitit_local_runs_the_same_cells(tiny_study, tiny_data, tmp_path):
    summary = reproduce(
        tiny_study,
        str(tmp_path),
        tiny_data,
        launcher="submitit-local",
        progress=False,
        report=False,
        timeout_min=10,
    )
    assert summary["done"] == 4 and summary["failed"] == 0
    for cfg in cells(tiny_study):
        assert RunDir(tmp_path, cfg).status() == "done"


def test_reproduce_without_arguments_plans_the_cpu_demo(tmp_path):
    from commands.reproduce import DEFAULT_STUDIES, plan

    assert DEFAULT_STUDIES == ("demo",)
    todo, counts = plan(DEFAULT_STUDIES, str(tmp_path))
    # 4 variants x 10 seeds + 7 x 3
    assert len(todo) == 61 and counts["missing"] == 61
    assert {c.dataset for c in todo} == {"omniglot-small"} and {c.profile for c in todo} == {"cpu"}


@pytest.mark.slow
def test_local_worker_pool_runs_the_same_cells(tiny_study, tiny_data, tmp_path):
    """--jobs 2: two spawned worker processes, one torch thread each (portable mode's pin; native
    mode: the cores shared out); same records as in-process."""
    pooled = reproduce(
        tiny_study, str(tmp_path / "pool"), tiny_data, jobs=2, progress=False, report=False
    )
    assert pooled["done"] == 4 and pooled["failed"] == 0
    for cfg in cells(tiny_study):
        env = json.loads(RunDir(tmp_path / "pool", cfg).env.read_text())
        native = max(1, len(os.sched_getaffinity(0)) // 2)
        assert env["torch_threads"] == (1 if PINNING["mode"] == "portable" else native)
