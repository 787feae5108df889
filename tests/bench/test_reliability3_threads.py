"""Issue 30, the thread count and the worker processes: a malformed ``OMP_NUM_THREADS`` is refused
(exit 2) before anything is written; a record made at another thread count never passes as the
cell (run: exit 2; reproduce: named, counted failed, left as it was); workers die with a parent
killed by SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from bench import studies
from bench.config import make_config
from bench.engine.metric import run
from bench.store import RunDir
from bench.studies import Block, Study
from cli import main
from commands.reproduce import plan, reproduce
from common import UserError
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[2]


def test_a_malformed_thread_variable_is_refused_before_anything(tmp_path):
    """Through the real command line (a fresh process: the check runs before torch loads)."""
    results = tmp_path / "results"
    env = {**os.environ, "OMP_NUM_THREADS": "abc"}
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "run", "--dataset", "fashion-mnist", "--variant", "xbm",
         "--results", str(results)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "OMP_NUM_THREADS must be a whole number of threads >= 1, got 'abc'" in proc.stderr
    assert "Traceback" not in proc.stderr and not results.exists()


@pytest.mark.parametrize("value", ["0", "-1", "4,2", "", "1.5"])
def test_every_malformed_thread_value_is_refused(tmp_path, value):
    results = tmp_path / "results"
    out = CliRunner().invoke(
        main,
        ["run", "--dataset", "fashion-mnist", "--variant", "xbm", "--results", str(results)],
        env={"OMP_NUM_THREADS": value},
    )
    assert out.exit_code == 2 and f"got {value!r}" in out.output and not results.exists()


@pytest.fixture
def at_two_threads(tiny_data, tmp_path):
    """A tiny cell done at 2 torch threads; the test then runs at 1."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    cfg = make_config("fashion-mnist", "xbm", 0, "cpu", **TINY)
    assert run(cfg, tiny_data, tmp_path / "results", progress=False)["status"] == "done"
    torch.set_num_threads(1)
    yield cfg, RunDir(tmp_path / "results", cfg)
    torch.set_num_threads(before)


def test_a_record_made_at_another_thread_count_is_refused_on_reuse(at_two_threads, tiny_data):
    cfg, rd = at_two_threads
    record = rd.result.read_bytes()
    with pytest.raises(UserError) as err:
        run(cfg, tiny_data, rd.path.parents[1], progress=False)
    assert f"{rd.path} was made with 2 torch threads, and this cell asks for 1" in err.value.message
    assert "--threads 2" in err.value.message
    assert rd.result.read_bytes() == record and rd.status() == "done"
    args = ["run", "--dataset", "fashion-mnist", "--variant", "xbm", "--data", tiny_data,
            "--results", str(rd.path.parents[1]), *_tiny_options()]  # fmt: skip
    out = CliRunner().invoke(main, [*args, "--threads", "1"])
    assert out.exit_code == 2 and "made with 2 torch threads" in out.output
    out = CliRunner().invoke(main, [*args, "--threads", "2"])  # its own count: reused
    assert out.exit_code == 0 and "already done" in out.output
    assert rd.result.read_bytes() == record


def _tiny_options() -> list[str]:
    return [a for k, v in TINY.items() for a in (f"--{k.replace('_', '-')}", str(v))]


def test_reproduce_does_not_count_it_done(at_two_threads, tiny_data, monkeypatch):
    cfg, rd = at_two_threads
    block = Block(("fashion-mnist",), ("xbm",), ({**TINY},), profile="cpu", seeds=(0,))
    monkeypatch.setitem(studies.STUDIES, "one", Study("one", "a test", (block,)))
    found: list = []
    todo, counts = plan("one", str(rd.path.parents[1]), unreadable=found, threads=1)
    assert todo == [] and counts["done"] == 0 and counts["unreadable"] == 1
    assert "made with 2 torch threads, and this cell asks for 1" in found[0]["error"]
    summary = reproduce("one", str(rd.path.parents[1]), tiny_data, report=False, progress=False)
    assert summary["done"] == 0 and summary["failed"] == 1 and summary["ran"] == 0
    assert plan("one", str(rd.path.parents[1]), threads=2)[1]["done"] == 1  # its own count


WORKERS = """
import os, sys, time
from bench.launch import worker_pool
pool = worker_pool(2)
pool.submit(os.getpid).result()  # a worker has imported bench.launch and run its initializer
futures = [pool.submit(time.sleep, 300) for _ in range(2)]
time.sleep(3)  # the other worker too
print(" ".join(map(str, pool._processes)), flush=True)
time.sleep(300)
"""


def _alive(pid: int) -> bool:
    """Running, not a zombie (this container's init may not reap re-parented children)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_when_the_parent_is_killed_with_sigkill():
    parent = subprocess.Popen(
        [sys.executable, "-c", WORKERS], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in pids if _alive(p)], "workers outlived their killed parent"
    finally:
        parent.kill()
        for p in pids if "pids" in locals() else []:
            if _alive(p):
                os.kill(p, signal.SIGKILL)


@pytest.mark.slow
def test_a_worker_whose_parent_is_already_gone_ends_at_once():
    """The race before the initializer runs: the worker's parent is not the pid it was given."""
    code = "from bench.launch import die_with_parent; die_with_parent(1); print('alive')"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1 and "alive" not in proc.stdout
