"""The life of one run, the same for every task: skip a finished cell, seed, build, start or
resume from the checkpoint, train epoch by epoch, stop early when asked, fail on a non-finite
loss, and keep the record (config, env, metrics, result, checkpoint) consistent throughout.

A task (metric learning, MoCo) supplies only what differs: a ``Task`` subclass.

Determinism: every RNG (python, numpy, torch) is seeded from (seed, -100) before building and
re-seeded from (seed, epoch) at the start of each epoch, so a run resumed from the checkpoint
of epoch e draws exactly what the uninterrupted run drew; deterministic algorithms are on for
CPU runs.

Write order: the checkpoint first (it holds the rows), then metrics.csv, then result.json. A kill
between two writes leaves the checkpoint ahead of the others, and a resume rewrites them from
it. The last epoch writes no checkpoint (metrics, the done result, then the old checkpoint is
deleted), so it never needs room for two checkpoints.
"""

from __future__ import annotations

import contextlib
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from bench.config import RunConfig
from bench.engine import tensorboard
from bench.engine.env import environment
from bench.engine.guards import (
    check_same_data,
    check_same_threads,
    data_fingerprint,
    set_aside_damaged,
    thread_notes,
)
from bench.store import DAMAGED, MEMORY_ERROR_FILE, RunDir


def pick_device(device: str | None) -> torch.device:
    """``device`` or CUDA where present; deterministic algorithms on a CPU (reproducible runs)."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cpu":
        torch.use_deterministic_algorithms(True)
    return dev


def seed_everything(seed: int, epoch: int) -> None:
    s = (seed * 1_000_003 + epoch + 1) % (2**31)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


def rng_state() -> tuple:
    """Every RNG's state: python, numpy, torch, and CUDA's where CUDA is in use."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    return random.getstate(), np.random.get_state(), torch.get_rng_state(), cuda


def set_rng_state(states: tuple) -> None:
    """Put back what ``rng_state`` returned."""
    random.setstate(states[0])
    np.random.set_state(states[1])
    torch.set_rng_state(states[2])
    if states[3] is not None:
        torch.cuda.set_rng_state_all(states[3])


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Every RNG (python, numpy, torch, CUDA) as it was before the block: an evaluation or a
    probe inside it cannot shift what training draws afterwards (a DataLoader draws its base
    seed from torch's generator even for an unshuffled split)."""
    states = rng_state()
    try:
        yield
    finally:
        set_rng_state(states)


class NonFinite(Exception):
    def __init__(self, step: int, value: float) -> None:
        super().__init__(
            f"loss became {value} at step {step}; the run is stopped, not trained through"
        )
        self.step = step


def check_finite(loss: torch.Tensor, step: int) -> None:
    """Raise ``NonFinite`` before a non-finite loss reaches the weights."""
    if not torch.isfinite(loss):
        raise NonFinite(step, loss.item())


class Task(ABC):
    """What one kind of run does differently; ``run_task`` does everything else."""

    columns: tuple[str, ...]  # metrics.csv's columns, from bench.store
    first_phase: str  # the phase of row 0

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        # rows evaluated before row 0, each with its own epoch and phase (the metric task's
        # untrained network: epoch -1, phase "init"); ``start`` fills it
        self.pre_rows: list[dict[str, Any]] = []

    @abstractmethod
    def build(self, data_dir: str, device: torch.device) -> None:
        """Data, models, memory, optimiser; runs right after seeding, before start or resume."""

    @abstractmethod
    def start(self) -> tuple[dict[str, Any], list[str]]:
        """Row 0 (warm-up, or the untrained model) and the run-time deviations it found;
        rows evaluated before it go in ``self.pre_rows``."""

    @abstractmethod
    def steps_per_epoch(self) -> int: ...

    @abstractmethod
    def train_epoch(self, epoch: int, step: int, bar: tqdm) -> tuple[dict[str, Any], int]:
        """Main epoch ``epoch`` (0-based) from global step ``step``: its row (with the ``lr`` it
        trained at) and the step reached. Raises ``NonFinite`` (see ``check_finite``)."""

    @abstractmethod
    def evaluate(self) -> dict[str, float]: ...

    @abstractmethod
    def summary(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """result.json's best and last epochs of a done run."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """What the checkpoint holds of the task (models, memory, optimiser, ...)."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def extras(self) -> dict[str, Any]:
        """Task-specific fields of result.json."""
        return {}

    def write_tables(self, rd: RunDir) -> None:
        """Write the task's own per-step tables beside metrics.csv (the metric task's
        memory_error.csv); their rows live in ``state_dict``, so a resume rewrites them.
        None by default: a task without such tables (MoCo)."""
        return None


@dataclass
class Progress:
    """What the lifecycle carries from epoch to epoch, besides the task's own state."""

    t0: float  # perf_counter at the start of this call
    wall0: float = 0.0  # wall time of earlier calls (from the checkpoint)
    rows: list[dict[str, Any]] = field(default_factory=list)
    epoch: int = 0  # main-phase epochs done
    step: int = 0
    notes: list[str] = field(default_factory=list)  # run-time deviations for the record
    data: str | None = None  # the dataset's fingerprint (data_prep.fingerprint)

    def wall(self) -> float:
        """Seconds spent on this run over all calls, each second counted once."""
        return self.wall0 + time.perf_counter() - self.t0


def ordered(row: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    """``row`` in the store's column order, NaN where it has no value (row 0 has no drift)."""
    return {
        **{c: row.get(c, float("nan")) for c in columns},
        **{k: v for k, v in row.items() if k not in columns},
    }


def record(task: Task, p: Progress, status: str, wall: float, **extra: Any) -> dict[str, Any]:
    return {
        "status": status,
        "error": None,
        "failed_step": None,
        "epochs_done": p.epoch,
        "wall_s": wall,
        "deviations": list(task.cfg.deviations) + p.notes,
        "data_fingerprint": p.data,
        **task.extras(),
        **extra,
    }


def save(rd: RunDir, task: Task, p: Progress) -> None:
    """Checkpoint, metrics, result, in that order (see the module's docstring)."""
    wall = p.wall()
    rd.save_checkpoint(
        {
            **task.state_dict(),
            "rows": p.rows,
            "epoch": p.epoch,
            "step": p.step,
            "wall": wall,
            "notes": p.notes,
            "data_fingerprint": p.data,
            "torch_threads": torch.get_num_threads(),
        }
    )
    rd.write_metrics(p.rows)
    task.write_tables(rd)
    rd.write_result(record(task, p, "running", wall))
    tensorboard.log(task.cfg, rd.path, p.rows, MEMORY_ERROR_FILE)


def end(rd: RunDir, task: Task, p: Progress, status: str, **extra: Any) -> dict[str, Any]:
    """The final record (done or failed); the checkpoint goes last, once the record is whole."""
    rd.write_metrics(p.rows)
    task.write_tables(rd)
    rd.write_result(record(task, p, status, p.wall(), **extra))
    rd.checkpoint.unlink(missing_ok=True)  # kept only while running
    tensorboard.log(task.cfg, rd.path, p.rows, MEMORY_ERROR_FILE)
    tensorboard.close(task.cfg.run_id)
    return rd.read_result()


def begin(rd: RunDir, task: Task, ckpt: dict[str, Any] | None, p: Progress, dev) -> None:
    """A fresh run: config and versions on disk, row 0, and a checkpoint so that a kill before
    epoch 1 does not lose the warm-up. A resumed one: the checkpoint is the truth."""
    if ckpt is None:
        rd.start(environment(str(dev)))  # config and versions are on disk before any training
        row, p.notes = task.start()
        row = {"epoch": 0, "phase": task.first_phase, **row}
        p.rows = [ordered(r, task.columns) for r in task.pre_rows]
        p.rows.append(ordered({**row, "seconds": time.perf_counter() - p.t0}, task.columns))
        save(rd, task, p)
        return
    task.load_state_dict(ckpt)
    p.rows, p.epoch, p.step = ckpt["rows"], ckpt["epoch"], ckpt["step"]
    p.wall0, p.notes = ckpt["wall"], ckpt.get("notes", []) + p.notes
    rd.write_metrics(p.rows)  # rewritten from the checkpoint: a kill may have left them behind
    task.write_tables(rd)
    rd.write_result(record(task, p, "running", p.wall()))


def run_task(
    task: Task,
    data_dir: str,
    results: str,
    device: str | None = None,
    progress: bool = True,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Train and evaluate one cell, or return its record if already done or failed.

    ``stop_after``: leave after that many main epochs in this call (status ``running``, the
    checkpoint kept), as an interrupted run would; calling again resumes.
    """
    rd = RunDir(results, task.cfg)
    made = [f for f in (rd.path, rd.path.parent, rd.path.parent.parent) if not f.exists()]
    try:
        with rd.claim():  # a second launcher gets CellBusy and skips the cell (bench/lock.py)
            return _run_claimed(task, rd, data_dir, device, progress, stop_after)
    finally:
        _drop_if_empty(made)


def _drop_if_empty(made: list[Path]) -> None:
    """A cell refused before it wrote anything (bad data, bad weights) leaves behind none of the
    folders its claim made (the run folder, runs/, the results folder)."""
    for folder in made:
        try:
            folder.rmdir()  # only ever removes an empty folder
        except OSError:
            return


def _run_claimed(
    task: Task, rd: RunDir, data_dir: str, device: str | None, progress: bool, stop_after
) -> dict[str, Any]:
    cfg = task.cfg
    status = rd.status()
    if status == DAMAGED:  # a done record cut short: kept aside as evidence, the cell trains again
        set_aside_damaged(rd)
    elif status in ("done", "failed"):
        check_same_data(rd, rd.read_result(), data_dir)
        check_same_threads(rd)
        rd.checkpoint.unlink(missing_ok=True)  # a kill between the final record and its delete
        return rd.read_result()
    dev = pick_device(device)
    p = Progress(t0=time.perf_counter())
    ckpt = rd.load_checkpoint()  # None also for a corrupt one: set aside, the cell restarts
    p.notes = thread_notes(rd, ckpt, dev)  # refused before anything is built
    p.data = data_fingerprint(data_dir, cfg.dataset)
    if ckpt is not None:
        check_same_data(rd, ckpt, data_dir, p.data)
    seed_everything(cfg.seed, -100)
    task.build(data_dir, dev)
    begin(rd, task, ckpt, p, dev)
    first = p.epoch
    while p.epoch < cfg.epochs:
        t_epoch = time.perf_counter()
        seed_everything(cfg.seed, p.epoch)
        with tqdm(  # one bar per epoch
            total=task.steps_per_epoch(),
            disable=not progress,
            desc=f"{cfg.task}/{cfg.variant}/{cfg.dataset}/s{cfg.seed} "
            f"epoch {p.epoch + 1}/{cfg.epochs}",
            leave=False,
            mininterval=1.0,
        ) as bar:
            try:
                trained, p.step = task.train_epoch(p.epoch, p.step, bar)
            except NonFinite as e:  # never trained through: the record says where it stopped
                return end(rd, task, p, "failed", error=str(e), failed_step=e.step)
        p.epoch += 1
        row = {"epoch": p.epoch, "phase": "main", **trained, **task.evaluate()}
        p.rows.append(ordered({**row, "seconds": time.perf_counter() - t_epoch}, task.columns))
        if p.epoch == cfg.epochs:
            break
        save(rd, task, p)
        if stop_after is not None and p.epoch - first >= stop_after:
            return rd.read_result()
    return end(rd, task, p, "done", **task.summary(p.rows))
