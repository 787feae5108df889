"""Launchers: every cell of a grid through the same ``run_cell``, locally or through submitit.

The store is the only shared state, so any launcher can resume any other's grid.
- ``local``: in this process, one cell after another; with ``jobs`` > 1, a pool of worker
  processes, each with its own torch thread count (the pinned one, 1, in portable mode;
  cores // jobs in native mode: ``bench.pinning.cell_threads``).
- ``submitit-local``: the Slurm code path through submitit's local executor (tested here).
- ``slurm``: one job per cell in a job array (``partition``, ``gpus_per_job``, ``timeout_min``,
  ``array_parallelism``).

One bad cell never stops a grid: ``run_cell`` returns every outcome as a result dict whose
``status`` is ``done``/``running``/``failed`` (the record's), ``error`` (a UserError, or a worker
or job that died: the record is left as it was, so a rerun resumes it) or ``busy`` (another
process holds the cell's claim: skipped, not failed).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

from bench import pinning
from bench.config import RunConfig
from bench.store import CellBusy, RunDir
from common import UserError

LAUNCHERS = ("local", "submitit-local", "slurm")
Callback = Callable[[RunConfig, dict[str, Any]], None]


def run_cell(
    cfg_dict: dict[str, Any],
    data_dir: str,
    results: str,
    threads: int | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Train one cell (top level, so that it pickles for worker processes and submitit).

    Never raises an Exception (KeyboardInterrupt still stops the grid): a UserError is
    returned as ``error`` (the user fixes the input, the next run resumes), any other exception
    is recorded as ``failed`` with its traceback (``record_failure``).
    """
    from bench.engine.metric import run

    if threads:
        torch.set_num_threads(threads)
    cfg = None
    try:
        cfg = RunConfig.from_dict(cfg_dict)
        return run(cfg, data_dir, results, device=device, progress=False)
    except CellBusy as e:
        return {"run_id": cfg.run_id, "status": "busy", "error": str(e)}
    except UserError as e:
        return {"run_id": cfg and cfg.run_id, "status": "error", "error": e.message}
    except Exception as e:
        if cfg is None:  # not even a config: nothing on disk to record it in
            return {"run_id": None, "status": "error", "error": _describe(e)}
        return record_failure(results, cfg, e)


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def record_failure(results: str, cfg: RunConfig, e: Exception) -> dict[str, Any]:
    """Write result.json ``failed`` with the error and its traceback, if the run folder has a
    config (a run that failed before writing one has nothing for a report to show; it runs
    again next time). The claim is taken again for this write, so that a process that claimed
    the cell since cannot have its record overwritten; a done record is never overwritten."""
    failure = {
        "status": "failed",
        "error": _describe(e),
        "error_type": type(e).__name__,
        "traceback": "".join(traceback.format_exception(type(e), e, e.__traceback__)),
    }
    rd = RunDir(results, cfg)
    if rd.config.exists():
        try:
            with rd.claim():
                if not rd.result.exists() or rd.status() != "done":
                    rd.write_result(failure)
        except Exception as w:  # busy, a full disk, an unreadable record: say so, go on
            failure["error"] += f" (not recorded in {rd.result}: {w})"
    return {"run_id": cfg.run_id, **failure}


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
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        futures = {
            pool.submit(run_cell, c.to_dict(), data_dir, results, threads, device): c for c in cells
        }
        for fut in as_completed(futures):
            try:
                result = fut.result()
            except Exception as e:  # the worker died (killed, out of memory): record untouched
                result = {"run_id": futures[fut].run_id, "status": "error", "error": _describe(e)}
            on_done(futures[fut], result)


def launch_submitit(
    cells: list[RunConfig],
    data_dir: str,
    results: str,
    on_done: Callback,
    kind: str = "submitit-local",
    partition: str | None = None,
    gpus_per_job: int = 1,
    timeout_min: int = 24 * 60,
    array_parallelism: int = 32,
    cpus_per_job: int = 8,
    poll_s: float = 1.0,
) -> None:
    import submitit

    folder = Path(results) / "submitit" / "%j"
    if kind == "submitit-local":
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=timeout_min)
        threads, device = pinning.cell_threads(), None  # portable mode: the pinned count
    elif kind == "slurm":
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
        params: dict[str, Any] = dict(
            timeout_min=timeout_min,
            gpus_per_node=gpus_per_job,
            cpus_per_task=cpus_per_job,
            slurm_array_parallelism=array_parallelism,
        )
        if partition:
            params["slurm_partition"] = partition
        executor.update_parameters(**params)
        threads, device = cpus_per_job, None
    else:
        raise UserError(f"unknown launcher {kind!r}; valid launchers: {', '.join(LAUNCHERS)}")
    args = [c.to_dict() for c in cells]
    n = len(args)
    jobs = executor.map_array(
        run_cell, args, [data_dir] * n, [results] * n, [threads] * n, [device] * n
    )
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
