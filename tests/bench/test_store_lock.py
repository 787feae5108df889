"""RunDir.claim(): one owner per cell, stale locks replaced, the lock gone on exit."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.lock import STALE_ENV
from bench.store import CellBusy, RunDir
from common import UserError

HELPER = Path(__file__).with_name("lock_helper.py")


def run_dir(tmp_path) -> RunDir:
    return RunDir(tmp_path, SimpleNamespace(run_id="0123456789abcdef"))


def dead_pid() -> int:
    """The pid of a process that has finished and been reaped."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    assert p.wait() == 0
    return p.pid


def write_lock(rd: RunDir, owner, age_s: float = 0.0) -> None:
    rd.path.mkdir(parents=True, exist_ok=True)
    rd.lock.write_text(owner if isinstance(owner, str) else json.dumps(owner))
    t = time.time() - age_s
    os.utime(rd.lock, (t, t))


def test_a_second_claim_is_busy_and_the_lock_goes_on_exit(tmp_path):
    rd = run_dir(tmp_path)
    with rd.claim() as me:
        owner = json.loads(rd.lock.read_text())
        assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
        assert owner == me and "started" in owner
        with pytest.raises(CellBusy) as info, rd.claim():
            pytest.fail("claimed twice")
        assert f"pid {os.getpid()}" in str(info.value) and str(rd.lock) in str(info.value)
        assert json.loads(rd.lock.read_text()) == owner  # the busy attempt changed nothing
    assert not rd.lock.exists()
    with rd.claim():  # free again
        assert rd.lock.exists()


def test_the_lock_goes_on_an_exception(tmp_path):
    rd = run_dir(tmp_path)
    with pytest.raises(ZeroDivisionError), rd.claim():
        1 / 0  # noqa: B018 (the exception is the point)
    assert not rd.lock.exists()


def test_cell_busy_is_not_a_user_error():
    assert issubclass(CellBusy, Exception) and not issubclass(CellBusy, UserError)


def test_a_lock_of_a_finished_process_is_replaced(tmp_path):
    rd = run_dir(tmp_path)
    pid = dead_pid()
    write_lock(rd, {"host": socket.gethostname(), "pid": pid, "started": "yesterday"})
    with pytest.warns(UserWarning, match=f"stale lock .*pid {pid} is not running"), rd.claim():
        assert json.loads(rd.lock.read_text())["pid"] == os.getpid()
    assert not rd.lock.exists()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_reused_pid_does_not_hold_the_cell(tmp_path):
    """The lock's pid runs, but it is another process than the one that took the lock."""
    rd = run_dir(tmp_path)
    write_lock(rd, {"host": socket.gethostname(), "pid": os.getpid(), "proc_start": "1"})
    with pytest.warns(UserWarning, match="now another process"), rd.claim():
        assert json.loads(rd.lock.read_text())["proc_start"] != "1"


def test_a_live_process_holds_the_cell_whatever_its_age(tmp_path):
    rd = run_dir(tmp_path)
    write_lock(rd, {"host": socket.gethostname(), "pid": os.getppid()}, age_s=10 * 24 * 3600)
    with pytest.raises(CellBusy, match=f"pid {os.getppid()}"), rd.claim():
        pass


def test_another_hosts_lock_is_respected_until_its_heartbeat_is_old(tmp_path):
    rd = run_dir(tmp_path)
    owner = {"host": "node-17.cluster", "pid": 4242, "started": "2024-01-01T00:00:00+00:00"}
    write_lock(rd, owner, age_s=29 * 60)  # default: stale after 30 min without a heartbeat
    with pytest.raises(CellBusy, match="pid 4242 on node-17.cluster"), rd.claim():
        pass
    # the argument overrides the default
    with pytest.raises(CellBusy), rd.claim(stale_after=2 * 3600):
        pass
    write_lock(rd, owner, age_s=31 * 60)
    warned = pytest.warns(UserWarning, match="no heartbeat from node-17.cluster for 31 min")
    with warned, rd.claim():
        assert json.loads(rd.lock.read_text())["host"] == socket.gethostname()


def test_the_stale_age_comes_from_the_environment(tmp_path, monkeypatch):
    rd = run_dir(tmp_path)
    write_lock(rd, {"host": "elsewhere", "pid": 1}, age_s=120)
    monkeypatch.setenv(STALE_ENV, "60")
    with pytest.warns(UserWarning, match="stale lock"), rd.claim():
        pass
    for bad in ("soon", "-5", "nan"):
        monkeypatch.setenv(STALE_ENV, bad)
        with pytest.raises(UserError, match="XBMBENCH_LOCK_STALE_S|stale_after"), rd.claim():
            pass


def test_an_unreadable_lock_is_busy_until_it_is_old(tmp_path):
    rd = run_dir(tmp_path)
    write_lock(rd, "{half a lock")
    with pytest.raises(CellBusy, match="unknown owner"), rd.claim():
        pass
    write_lock(rd, "{half a lock", age_s=3600)
    with pytest.warns(UserWarning, match="unreadable lock"), rd.claim():
        pass


def test_a_lock_taken_over_while_held_is_left_to_its_new_owner(tmp_path):
    rd = run_dir(tmp_path)
    other = {"host": "node-2", "pid": 7, "started": "now"}
    with pytest.warns(UserWarning, match="taken over"), rd.claim():
        rd.lock.write_text(json.dumps(other))
    assert json.loads(rd.lock.read_text()) == other


@pytest.mark.parametrize("before", ["free", "stale"])
def test_two_processes_exactly_one_gets_the_claim(tmp_path, before):
    """Two processes start claiming at one file barrier; the winner holds the claim until the
    loser has tried. With a stale lock both race to replace it: still exactly one wins."""
    rd = run_dir(tmp_path / "results")
    if before == "stale":
        write_lock(rd, {"host": socket.gethostname(), "pid": dead_pid()})
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, str(HELPER), str(tmp_path / "results"), str(barrier), me, other],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for me, other in (("a", "b"), ("b", "a"))
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    got = sorted(p.name for p in barrier.glob("got-*"))
    busy = sorted(p.name for p in barrier.glob("busy-*"))
    assert len(got) == 1 and len(busy) == 1, (got, busy, outputs)
    winner_pid = (barrier / got[0]).read_text().splitlines()[0]
    assert f"pid {winner_pid} on {socket.gethostname()}" in (barrier / busy[0]).read_text()
    if before == "stale":
        assert "stale lock" in (barrier / got[0]).read_text()
    assert not rd.lock.exists()
    assert not rd.lock.with_name("lock.takeover").exists()
