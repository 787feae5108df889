"""Optional TensorBoard logging of a cell's per-epoch numbers (off by default).

``run --tensorboard DIR`` and ``reproduce --tensorboard DIR`` set ``$XBMBENCH_TENSORBOARD``, so
worker processes and Slurm jobs see it too; the lifecycle calls ``log`` each time it writes the
record (every epoch, and at the end). Each cell is one TensorBoard run,
``DIR/<dataset>/<variant>/seed<seed>-<run id>``: the run id keeps two settings of one variant
apart. What is logged is what the record holds, read from the rows just written: every numeric
column of metrics.csv (loss, Recall@K, drift, distances, learning rate, ...) at step = epoch
(the network as loaded, epoch -1, under ``init/``), and from memory_error.csv the epoch's last
probe point (``memory/err_l2_mean``, ``memory/raw_l2_mean``, ``memory/gain``: the memory
error and the adaptation gain). Logging never changes a number: it reads the rows after they are
stored. A resumed cell purges the steps it logs again (``purge_step``), so no point is doubled.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

ENV = "XBMBENCH_TENSORBOARD"
SKIP = {"epoch", "phase", "seconds", "images_per_s"}  # the row's key and its timings
MEMORY = ("err_l2_mean", "raw_l2_mean", "gain")
_writers: dict[str, tuple[Any, set[int]]] = {}  # run id -> (writer, epochs logged)


def enabled() -> str | None:
    return os.environ.get(ENV) or None


def run_name(cfg) -> str:
    opts = ",".join(f"{k}={v}" for k, v in sorted(dict(cfg.variant_options).items()))
    variant = f"{cfg.variant}[{opts}]" if opts else cfg.variant
    return f"{cfg.dataset}/{variant}/seed{cfg.seed}-{cfg.run_id}"


def _number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _memory_rows(path: Path) -> dict[int, dict[str, str]]:
    """memory_error.csv's last probe point of each epoch (none if the run has no probe)."""
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        return {int(r["epoch"]): r for r in csv.DictReader(f)}


def log(cfg, run_dir: Path, rows: list[dict[str, Any]], memory_file: str) -> None:
    """Log the rows of ``rows`` not yet logged by this process (see the module docstring)."""
    root = enabled()
    if root is None:
        return
    from torch.utils.tensorboard import SummaryWriter

    fresh = [r for r in rows if int(r["epoch"]) not in _writers.get(cfg.run_id, (None, set()))[1]]
    if not fresh:
        return
    if cfg.run_id not in _writers:
        first = min(int(r["epoch"]) for r in fresh)
        writer = SummaryWriter(str(Path(root) / run_name(cfg)), purge_step=max(first, 0))
        _writers[cfg.run_id] = (writer, set())
    writer, done = _writers[cfg.run_id]
    memory = _memory_rows(run_dir / memory_file)
    for row in fresh:
        epoch = int(row["epoch"])
        prefix, step = ("init/", 0) if epoch < 0 else ("", epoch)
        for key, value in row.items():
            x = _number(value) if key not in SKIP else None
            if x is not None:
                writer.add_scalar(prefix + key, x, step)
        for key in MEMORY if epoch in memory else ():
            x = _number(memory[epoch].get(key))
            if x is not None:
                writer.add_scalar(f"memory/{key}", x, step)
        done.add(epoch)
    writer.flush()


def close(run_id: str) -> None:
    writer = _writers.pop(run_id, (None, None))[0]
    if writer is not None:
        writer.close()
