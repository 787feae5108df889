"""``--launcher slurm``: one job per cell in a job array, through submitit's SlurmExecutor.

- Before submitting: ``cluster.check_request`` (sinfo) refuses a request no node can run.
- Each cell's job id is written to ``runs/<run_id>/slurm.json`` (``JOB_FILE``): a later
  ``reproduce`` leaves a cell whose job is still queued or running to that job (and waits for it
  unless ``--no-wait``), and resubmits a cell whose job ended without finishing it.
- Waiting polls ``squeue``; a job pending for a reason that cannot resolve is reported and the
  grid's jobs are cancelled (a UserError: exit 2). A job that left the queue is judged by its
  cell's record and by submitit's result file.
- A job that reaches its time limit or is preempted is requeued by submitit's checkpointing
  (``CellJob`` is ``Checkpointable``) and resumes from the cell's last epoch checkpoint; the
  requeues are counted in ``slurm.json``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import submitit

from bench.config import RunConfig
from bench.launch import cell
from bench.launch.cluster import cancel, check_request, partition_usable, queue, stuck
from bench.launch.request import SlurmRequest
from bench.store import RunDir
from common import UserError, atomic_write_json

JOB_FILE = "slurm.json"
POLL_S = 5.0  # seconds between two squeue calls while waiting
# requeues after a time limit before submitit gives a job up: each resumes from the last epoch,
# so a cell longer than several limits still finishes
MAX_TIMEOUTS = 10
LIVE = ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING")
StateCallback = Callable[[int, int], None]  # (queued, running) jobs of this grid


class CellJob(submitit.helpers.Checkpointable):
    """What a job runs: ``run_cell``; on a time limit or preemption submitit calls
    ``checkpoint`` (the same call again) and requeues the job, which resumes the cell from its
    last epoch checkpoint."""

    def __call__(self, *args: Any) -> dict[str, Any]:
        result = cell.run_cell(*args)
        return {**result, "requeues": int(os.environ.get("SLURM_RESTART_COUNT", 0) or 0)}


def job_path(results: str, cfg: RunConfig) -> Path:
    return RunDir(results, cfg).path / JOB_FILE


def read_job(results: str, cfg: RunConfig) -> dict[str, Any] | None:
    import json

    path = job_path(results, cfg)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_job(results: str, cfg: RunConfig, **fields: Any) -> None:
    record = read_job(results, cfg) or {"run_id": cfg.run_id, "jobs": []}
    if "job_id" in fields:
        record["jobs"] = [*record.get("jobs", []), fields["job_id"]]
    atomic_write_json(job_path(results, cfg), {**record, **fields})


def folder(results: str) -> Path:
    return Path(results) / "submitit" / "%j"


def executor(results: str, req: SlurmRequest) -> submitit.SlurmExecutor:
    ex = submitit.SlurmExecutor(folder=folder(results), max_num_timeout=MAX_TIMEOUTS)
    ex.update_parameters(**req.executor_parameters())
    return ex


def job_args(cells: list[RunConfig], data_dir: str, results: str, req, weights) -> list[tuple]:
    """The arguments of ``run_cell`` for each cell's job (threads = the job's CPUs)."""
    return [(c.to_dict(), data_dir, results, req.cpus_per_job, None, weights) for c in cells]


def live_jobs(cells: list[RunConfig], results: str) -> dict[str, tuple[RunConfig, str]]:
    """Job id -> (cell, Slurm state) for each cell whose recorded job is still in the queue."""
    q = queue()
    out = {}
    for cfg in cells:
        job = (read_job(results, cfg) or {}).get("job_id")
        if job in q and q[job][0] in LIVE:
            out[job] = (cfg, q[job][0])
    return out


def submit(
    cells: list[RunConfig], data_dir: str, results: str, req: SlurmRequest, weights=None
) -> dict[str, RunConfig]:
    """Check the request with sinfo, submit one array, record each cell's job id."""
    if not cells:
        return {}
    check_request(req)
    jobs = executor(results, req).map_array(
        CellJob(), *zip(*job_args(cells, data_dir, results, req, weights))
    )
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for job, cfg in zip(jobs, cells):
        RunDir(results, cfg).path.mkdir(parents=True, exist_ok=True)
        _write_job(results, cfg, job_id=job.job_id, submitted=stamp, folder=str(job.paths.folder))
    return {job.job_id: cfg for job, cfg in zip(jobs, cells)}


def outcome(results: str, cfg: RunConfig, job_id: str) -> dict[str, Any]:
    """What a job that left the queue did: its cell's record if done or failed, else the
    error its result file holds, else "lost" (cancelled, killed, out of time and not requeued)."""
    from submitit.core.utils import pickle_load

    paths = submitit.SlurmJob(folder(results), job_id).paths
    returned: Any = None
    if paths.result_pickle.exists():
        try:
            kind, returned = pickle_load(paths.result_pickle)
        except Exception as e:  # a half-written file: the job died while writing it
            kind, returned = "error", f"unreadable {paths.result_pickle}: {e}"
        if kind == "success" and isinstance(returned, dict) and "requeues" in returned:
            _write_job(results, cfg, requeues=returned["requeues"])
    rd = RunDir(results, cfg)
    status = rd.status()
    if status in ("done", "failed"):
        return {**rd.read_result(), "run_id": cfg.run_id}
    if isinstance(returned, dict):
        return returned
    why = returned.strip().splitlines()[-1] if isinstance(returned, str) and returned else None
    return {
        "run_id": cfg.run_id,
        "status": "error",
        "error": f"job {job_id} ended without finishing the cell ({why or 'cancelled or killed'}"
        f"; log: {paths.stderr}); the next reproduce resubmits it and resumes its checkpoint",
    }


def wait(
    watching: dict[str, RunConfig],
    results: str,
    on_done: Callable[[RunConfig, dict[str, Any]], None],
    partition: str | None,
    on_state: StateCallback | None = None,
) -> None:
    """Poll squeue until every watched job has left the queue; cancel them all and raise a
    UserError if one pends for a reason that cannot resolve."""
    watching = dict(watching)
    while watching:
        q = queue()
        for job in [j for j in watching if j not in q]:
            cfg = watching.pop(job)
            on_done(cfg, outcome(results, cfg, job))
        states = {j: q[j] for j in watching}
        running = sum(s == "RUNNING" for s, _ in states.values())
        if on_state:
            on_state(len(states) - running, running)
        usable = None
        for job, (state, reason) in states.items():
            if state != "PENDING" or reason in ("None", "Priority", "Resources", "BeginTime"):
                continue
            if usable is None and partition:
                usable = partition_usable(partition)
            if stuck(reason, bool(usable) or not partition, running > 0):
                cfg = watching[job]
                cancel(list(watching))
                raise UserError(
                    f"job {job} ({cfg.variant}/{cfg.dataset}/seed {cfg.seed}) cannot start: "
                    f"pending with reason {reason!r}, which waiting does not resolve; cancelled "
                    f"this grid's {len(watching)} queued/running job(s) "
                    f"(check --partition, --cpus-per-job, --mem, --account, --qos)"
                )
        if watching:
            time.sleep(POLL_S)


def require_slurm() -> None:
    import shutil

    if shutil.which("sbatch") is None:
        raise UserError("sbatch not found: --launcher slurm runs on a host with Slurm's commands")


def launch_slurm(
    todo: list[RunConfig],
    data_dir: str,
    results: str,
    on_done: Callable[[RunConfig, dict[str, Any]], None],
    req: SlurmRequest,
    wait_for_jobs: bool = True,
    weights: str | None = None,
    on_state: StateCallback | None = None,
) -> dict[str, list[str]]:
    """Submit the cells of ``todo`` that no live job holds, then (``wait_for_jobs``) wait for
    every job of the grid, the ones an earlier ``--no-wait`` submitted included.

    Returns the job ids submitted now and those found queued or running."""
    require_slurm()
    live = live_jobs(todo, results)
    held = {cfg.run_id for cfg, _ in live.values()}
    fresh = submit([c for c in todo if c.run_id not in held], data_dir, results, req, weights)
    if wait_for_jobs:
        watching = {**{j: cfg for j, (cfg, _) in live.items()}, **fresh}
        wait(watching, results, on_done, req.partition, on_state)
    return {"submitted": list(fresh), "live": list(live)}


def dry_run(todo: list[RunConfig], data_dir: str, results: str, req: SlurmRequest, weights=None):
    """The lines ``--dry-run`` prints: the cells, the sbatch script submitit would submit for
    their array (its own renderer) and what each job runs; nothing is submitted."""
    import shutil
    import sys

    from submitit.slurm.slurm import _make_sbatch_string

    lines = [f"{len(todo)} cell(s) to submit as one job array:"]
    for i, cfg in enumerate(todo):
        lines.append(f"  [{i}] {cfg.run_id}  {cfg.variant}/{cfg.dataset}/seed {cfg.seed}")
    if not shutil.which("sinfo"):
        lines.append("sinfo not found on this host: the request was not checked")
    else:
        try:
            lines.append(f"the request fits partition {check_request(req)!r} (sinfo)")
        except UserError as e:
            lines.append(f"the request was refused or not checked: {e.message}")
    command = f"{sys.executable} -u -m submitit.core._submit {folder(results)}"
    script = _make_sbatch_string(
        command=command,
        folder=folder(results),
        map_count=max(1, len(todo)),
        **req.executor_parameters(),
    )
    lines += ["sbatch script:", *("  " + line for line in script.splitlines())]
    lines.append(
        "each job runs bench.launch.cell.run_cell(<its cell's config>, "
        f"data_dir={data_dir!r}, results={results!r}, threads={req.cpus_per_job}"
        + (f", pretrained_file={weights!r})" if weights else ")")
    )
    return lines


def job_column(cells: list[RunConfig], results: str) -> dict[str, str]:
    """Run id -> ``job <id> <Slurm state>`` for each cell with a recorded job (``grid list``);
    a job no longer in the queue shows as ``ended``, and where squeue is missing, ``?``."""
    import shutil

    recorded = {c.run_id: (read_job(results, c) or {}) for c in cells}
    recorded = {k: v for k, v in recorded.items() if v.get("job_id")}
    q = queue() if recorded and shutil.which("squeue") else None
    out = {}
    for run_id, rec in recorded.items():
        job = rec["job_id"]
        state = "?" if q is None else q.get(job, ("ended", ""))[0]
        requeued = f" requeued {rec['requeues']}x" if rec.get("requeues") else ""
        out[run_id] = f"job {job} {state}{requeued}"
    return out
