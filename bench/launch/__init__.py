"""Launchers: every cell of a grid through the same ``run_cell``, locally or through submitit.

The store is the only shared state, so any launcher can resume any other's grid.
- ``local``: in this process, one cell after another; with ``jobs`` > 1, a pool of worker
  processes, each with its own torch thread count (the pinned one, 1, in portable mode;
  cores // jobs in native mode: ``bench.pinning.cell_threads``).
- ``submitit-local``: the Slurm code path through submitit's local executor (tested here).
- ``slurm``: one job per cell in a job array, with the resources of ``request.SlurmRequest``
  (bench/launch/slurm.py; the cluster's commands in bench/launch/cluster.py).

One bad cell never stops a grid: ``run_cell`` returns every outcome as a result dict whose
``status`` is ``done``/``running``/``failed`` (the record's), ``error`` (a UserError, or a worker
or job that died: the record is left as it was, so a rerun resumes it) or ``busy`` (another
process holds the cell's claim: skipped, not failed).
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from bench import pinning
from bench.choices import LAUNCHERS
from bench.config import RunConfig
from bench.launch.cell import _describe, record_failure, run_cell

__all__ = ["LAUNCHERS", "launch_local", "launch_submitit", "record_failure", "run_cell"]

PR_SET_PDEATHSIG = 1  # linux/prctl.h
Callback = Callable[[RunConfig, dict[str, Any]], None]


def launch_local(
    cells: list[RunConfig],
    data_dir: str,
    results: str,
    on_done: Callback,
    jobs: int = 1,
    device: str | None = None,
) -> None:
    if jobs <= 1:
        for cfg in cells:
            on_done(cfg, run_cell(cfg.to_dict(), data_dir, results, None, device))
        return
    threads = pinning.cell_threads(jobs)  # portable mode: the pinned count, 1
    with worker_pool(jobs) as pool:
        futures = {
            pool.submit(run_cell, c.to_dict(), data_dir, results, threads, device): c for c in cells
        }
        for fut in as_completed(futures):
            try:
                result = fut.result()
            except Exception as e:  # the worker died (killed, out of memory): record untouched
                result = {"run_id": futures[fut].run_id, "status": "error", "error": _describe(e)}
            on_done(futures[fut], result)


def worker_pool(jobs: int) -> ProcessPoolExecutor:
    """``jobs`` spawned worker processes that die with this process, even when it is killed
    with SIGKILL (nothing of it then runs to stop them): else they would train on, re-parented
    to init, holding their cells' claims, so that a rerun skips those cells as busy."""
    parent = os.getpid()
    return ProcessPoolExecutor(
        jobs, mp_context=get_context("spawn"), initializer=die_with_parent, initargs=(parent,)
    )


def die_with_parent(parent: int) -> None:
    """A worker's initializer: on Linux the kernel sends it SIGKILL when its parent dies
    (prctl PR_SET_PDEATHSIG); elsewhere a daemon thread polls the parent's pid every second. A
    parent gone before this ran (the worker already re-parented) ends the worker at once."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):  # no prctl: not Linux
        armed = False
    if os.getppid() != parent:
        os._exit(1)
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def launch_submitit(
    cells: list[RunConfig],
    data_dir: str,
    results: str,
    on_done: Callback,
    timeout_min: int = 24 * 60,
    poll_s: float = 1.0,
) -> None:
    """The Slurm code path through submitit's local executor (no cluster needed)."""
    import submitit

    executor = submitit.LocalExecutor(folder=Path(results) / "submitit" / "%j")
    executor.update_parameters(timeout_min=timeout_min)
    threads = pinning.cell_threads()  # portable mode: the pinned count
    args = [c.to_dict() for c in cells]
    n = len(args)
    jobs = executor.map_array(run_cell, args, [data_dir] * n, [results] * n, [threads] * n)
    pending = dict(zip(jobs, cells))
    while pending:
        for job in [j for j in pending if j.done()]:
            cfg = pending.pop(job)
            try:
                result = job.result()
            except Exception as e:  # a job killed by the scheduler: its record stays "running"
                result = {"run_id": cfg.run_id, "status": "error", "error": _describe(e)}
            on_done(cfg, result)
        if pending:
            time.sleep(poll_s)
