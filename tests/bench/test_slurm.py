"""``--launcher slurm`` against a real single-node Slurm (tests/bench/slurm_cluster.py): a grid
equals the local run, an impossible request exits at once, --no-wait then collect, a cancelled
job resumes, a job past its time limit is requeued and resumes. Skipped where no cluster starts."""

from __future__ import annotations

import json
import subprocess
import time

import pandas as pd
import pytest
import torch

from bench import studies
from bench.launch import slurm as S
from bench.store import TIMING_COLUMNS, RunDir
from bench.studies import Block, Study, cells
from commands.reproduce import reproduce
from common import UserError
from data_prep import prepare
from tests.bench import slurm_cluster
from tests.conftest import TINY, write_tiny_fashion

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
# a cell long enough to be cancelled, or to outlive a one-minute limit, mid-run (one thread)
LONG = {**TINY, "train_per_class": 60, "epochs": 14, "memory_probe": False}


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    why = slurm_cluster.why_not()
    if why:
        pytest.skip(why)
    c = slurm_cluster.Cluster(tmp_path_factory.mktemp("slurm"))
    c.start()
    yield c
    c.stop()


@pytest.fixture(scope="session")
def slurm_data(tmp_path_factory):
    base = tmp_path_factory.mktemp("slurm_data")
    raw = write_tiny_fashion(base / "raw", n_train=60, n_test=8)
    prepare("fashion-mnist", raw, base / "data", log=lambda text, warning=False: None)
    return str(base / "data")


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch):
    monkeypatch.setattr(S, "POLL_S", 1.0)


@pytest.fixture
def study(monkeypatch):
    def register(name, extra, seeds=(0,)):
        block = Block(("fashion-mnist",), ("xbm",), (extra,), profile="cpu", seeds=seeds)
        monkeypatch.setitem(studies.STUDIES, name, Study(name, "a test", (block,)))
        return name

    return register


def metrics(results, cfg) -> pd.DataFrame:
    return pd.read_csv(RunDir(results, cfg).metrics).drop(columns=list(TIMING_COLUMNS))


@pytest.fixture(scope="session")
def long_reference(tmp_path_factory, slurm_data):
    """The long cell run locally, in this process at one thread (the pinned count)."""
    out = str(tmp_path_factory.mktemp("long_local"))
    block = Block(("fashion-mnist",), ("xbm",), (LONG,), profile="cpu", seeds=(0,))
    studies.STUDIES["slurm-long"] = Study("slurm-long", "a test", (block,))
    # one thread, as a 1-CPU job trains: an earlier test may have left this process at another
    # count, and the thread count decides the numbers (a full-suite run once made it at 2)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert reproduce("slurm-long", out, slurm_data, progress=False, report=False)["done"] == 1
        return out, cells("slurm-long")[0]
    finally:
        torch.set_num_threads(before)
        del studies.STUDIES["slurm-long"]


def _wait_for(ready, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ready():
            return
        time.sleep(0.5)
    pytest.fail(f"{what} did not happen within {timeout:.0f} s")


def test_two_cell_grid_equals_the_local_run(cluster, study, slurm_data, tmp_path):
    name = study("slurm-two", {**TINY}, seeds=(0, 1))
    here = reproduce(name, str(tmp_path / "local"), slurm_data, progress=False, report=False)
    there = reproduce(
        name, str(tmp_path / "slurm"), slurm_data, launcher="slurm", progress=False, report=False
    )
    assert here["done"] == there["done"] == 2 and there["failed"] == 0
    for cfg in cells(name):
        pd.testing.assert_frame_equal(
            metrics(tmp_path / "local", cfg), metrics(tmp_path / "slurm", cfg)
        )
        env = json.loads(RunDir(tmp_path / "slurm", cfg).env.read_text())
        assert env["torch_threads"] == 1  # the job's one CPU (the cpu profile's default)
        job = S.read_job(str(tmp_path / "slurm"), cfg)
        assert job["job_id"].split("_")[0].isdigit() and job["requeues"] == 0
    assert cluster.jobs() == []


def test_a_request_no_node_can_run_exits_at_once(cluster, study, slurm_data, tmp_path, monkeypatch):
    name = study("slurm-big", {**TINY})
    t0 = time.monotonic()
    with pytest.raises(UserError, match=rf"{cluster.cpus + 1} CPUs \(the most a node has: "):
        reproduce(name, str(tmp_path), slurm_data, launcher="slurm", progress=False,
                  cpus_per_job=cluster.cpus + 1)  # fmt: skip
    assert cluster.jobs() == []
    # past the check (a cluster whose sinfo says less than its limits): the job pends with
    # PartitionConfig, and the wait reports it and cancels it
    monkeypatch.setattr(S, "check_request", lambda req: "cpu")
    with pytest.raises(UserError, match="pending with reason 'PartitionConfig'.*cancelled"):
        reproduce(name, str(tmp_path), slurm_data, launcher="slurm", progress=False,
                  cpus_per_job=cluster.cpus + 1)  # fmt: skip
    assert time.monotonic() - t0 < 60
    assert cluster.jobs() == []


def test_no_wait_then_collect(cluster, study, slurm_data, tmp_path):
    name = study("slurm-nowait", {**TINY}, seeds=(0, 1))
    out = str(tmp_path)
    first = reproduce(name, out, slurm_data, launcher="slurm", progress=False, wait=False)
    assert len(first["submitted"]) == 2 and first["live"] == []
    ids = {c.run_id: S.read_job(out, c)["job_id"] for c in cells(name)}
    assert sorted(ids.values()) == sorted(first["submitted"])
    second = reproduce(name, out, slurm_data, launcher="slurm", progress=False)
    assert second["submitted"] == [] if "submitted" in second else True
    assert second["done"] == 2 and second["failed"] == 0
    assert (tmp_path / "report" / "REPORT.md").exists()
    for cfg in cells(name):  # nothing resubmitted: each cell's only job is the first one
        assert S.read_job(out, cfg)["jobs"] == [ids[cfg.run_id]]


def test_a_cancelled_job_is_resubmitted_and_resumes(
    cluster, study, slurm_data, long_reference, tmp_path
):
    ref_results, ref_cfg = long_reference
    name = study("slurm-long", LONG)
    cfg, out = cells(name)[0], str(tmp_path)
    assert cfg.run_id == ref_cfg.run_id
    job = reproduce(name, out, slurm_data, launcher="slurm", progress=False, wait=False)
    rd = RunDir(out, cfg)
    _wait_for(lambda: len(rd.read_metrics()) >= 4, 120, "epoch 2 of the job")  # -1, 0, 1, 2
    subprocess.run(["scancel", *job["submitted"]], check=True)
    _wait_for(lambda: cluster.jobs() == [], 60, "the cancelled job leaving the queue")
    before = pd.read_csv(rd.metrics)
    assert rd.status() == "running" and len(before) < LONG["epochs"] + 2
    again = reproduce(name, out, slurm_data, launcher="slurm", progress=False, report=False)
    assert again["done"] == 1
    assert len(S.read_job(out, cfg)["jobs"]) == 2  # resubmitted once
    # the rows of the first job kept, their times included: resumed, not redone
    pd.testing.assert_frame_equal(pd.read_csv(rd.metrics).head(len(before)), before)
    threads = [
        json.loads(RunDir(r, cfg).env.read_text())["torch_threads"] for r in (out, ref_results)
    ]
    assert threads == [1, 1]
    pd.testing.assert_frame_equal(metrics(out, cfg), metrics(ref_results, ref_cfg))


def test_a_job_past_its_time_limit_is_requeued_and_resumes(cluster, study, slurm_data, tmp_path):
    """A cell longer than a one-minute limit; the uninterrupted run to compare with
    runs beside it, on the node's other CPU (a Slurm run equals a local one: first test)."""
    name = study("slurm-longer", {**LONG, "epochs": 90})
    cfg = cells(name)[0]
    free = str(tmp_path / "free")
    reproduce(name, free, slurm_data, launcher="slurm", progress=False, wait=False)
    out = str(tmp_path / "limited")
    done = reproduce(name, out, slurm_data, launcher="slurm", progress=False, report=False,
                     timeout_min=1)  # fmt: skip
    assert done["done"] == 1 and done["failed"] == 0
    record = S.read_job(out, cfg)
    assert record["requeues"] >= 1 and len(record["jobs"]) == 1  # requeued by Slurm, not by us
    assert (
        reproduce(name, free, slurm_data, launcher="slurm", progress=False, report=False)["done"]
        == 1
        # collected as done by this second call, which reads no job result: a record without
        # a requeue count was never requeued
        and S.read_job(free, cfg).get("requeues", 0) == 0
    )
    pd.testing.assert_frame_equal(metrics(out, cfg), metrics(free, cfg))
