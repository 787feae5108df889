"""The results store: one folder per run (results/README.md), every file written atomically.

This module is the one definition of the run record: its file names, statuses, metric columns
and summary fields. The engine writes through it, reports read through it, tests build records
with it. It imports no torch at module level, so that reports can read a store cheaply.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from bench.lock import CellBusy, claim_lock
from common import TMP_NAME, UserError, atomic_write, atomic_write_json

__all__ = ["RunDir", "CellBusy"]  # CellBusy: raised by RunDir.claim, defined in bench.lock

if TYPE_CHECKING:
    from bench.config import RunConfig

# ----- the record's schema -----------------------------------------------------------------
CONFIG_FILE, ENV_FILE, METRICS_FILE = "config.json", "env.json", "metrics.csv"
RESULT_FILE, CHECKPOINT_FILE = "result.json", "checkpoint.pt"
RUNS_DIR = "runs"
STATUSES = ("running", "done", "failed")
# a done record that is not whole (metrics.csv cut short, a row cut mid-line): derived when the
# record is read, never written; readers report it by file and `reproduce` trains the cell again
DAMAGED = "damaged"
TIMING_COLUMNS = ("seconds", "images_per_s")
EPOCH_CHOICES = ("best", "last")  # the summaries of a done run's result.json
TOP_K = tuple(f"superclass_top{k}" for k in range(1, 6))
# the retrieval metrics beside Recall@K (bench.measure.evaluate.retrieval_metrics, percent);
# records written before them have no such columns: readers take them as NaN, never require them
RETRIEVAL_COLUMNS = ("map@r", "r_precision")
# metrics.csv of a metric-learning run: one row per epoch (-1 = as loaded, 0 = warm-up)
METRIC_COLUMNS = (
    "epoch",
    "phase",
    "loss",
    "recall@1",
    "recall@10",
    *RETRIEVAL_COLUMNS,
    "drift_mean",
    "drift_max",
    "drift_epoch_mean",
    "drift_epoch_max",
    "inter_dist",
    "intra_dist",
    *TOP_K,
    "mined_pos",
    "mined_neg",
    "lr",
    "seconds",
    "images_per_s",
)
SUMMARY_FIELDS = ("epoch", "recall@1", "recall@10")  # each of result.json's best and last
# the columns a done metric run's metrics.csv must hold (the added ones may be missing)
METRIC_REQUIRED = tuple(c for c in METRIC_COLUMNS if c not in RETRIEVAL_COLUMNS)
# metric runs since the init evaluation: each summary also names its row's phase, and result.json
# says whether "best" is an epoch before the main phase (the network as loaded, or warmed up)
SUMMARY_PHASE = "phase"
PRE_MAIN_PHASES = ("init", "warmup")  # epoch -1: the network as loaded; epoch 0: after warm-up
BEST_PRE_MAIN = "best_pre_main"
# metrics.csv and summaries of a MoCo run (task "moco")
MOCO_COLUMNS = ("epoch", "phase", "loss", "knn_acc", "lr", "seconds", "images_per_s")
MOCO_SUMMARY = ("epoch", "knn_acc")
# memory_error.csv of a metric run (results/README.md): one row per probe point, the
# stored memory against a fresh re-embedding of the same images with the current model
MEMORY_ERROR_FILE = "memory_error.csv"
AGE_BUCKETS = 4  # age quarters of the memory's span, 1 = youngest
MEMORY_ERROR_COLUMNS = (
    "epoch",
    "step",
    "point",
    "adapting",
    "n_entries",
    "n_batches",
    "err_l2_mean",
    "err_l2_median",
    "err_cos_mean",
    "raw_l2_mean",
    "raw_l2_median",
    "raw_cos_mean",
    "gain",
    *(f"err_l2_age{q}" for q in range(1, AGE_BUCKETS + 1)),
    *(f"raw_l2_age{q}" for q in range(1, AGE_BUCKETS + 1)),
    "pair_jaccard",
    "pairs_stored",
    "pairs_fresh",
)
# result.json's keys (results/README.md describes each; write_result refuses any other)
RESULT_KEYS = (
    "run_id",
    "status",
    "error",
    "failed_step",
    "epochs_done",
    "wall_s",
    "deviations",
    "data_fingerprint",
    "best",
    "last",
    "best_pre_main",
    "selection",
    "moco",
    "error_type",
    "traceback",
)
# env.json's keys (bench/engine/env.py writes them; results/README.md describes each)
ENV_KEYS = (
    "python",
    "torch",
    "torchvision",
    "timm",
    "pytorch_metric_learning",
    "numpy",
    "pandas",
    "cuda",
    "cudnn",
    "device",
    "device_name",
    "host",
    "platform",
    "started_at",
    "git_commit",
    "torch_threads",
    "float32_matmul_precision",
    "blas",
    "lapack",
    "mkl_available",
    "mkl_version",
    "mkldnn",
    "onednn_version",
    "cpu_model",
    "cpu_vendor",
    "cpu_isa",
    "cpu_capability",
    "cpu_env",
    "cpu_pinning",
)
# config.json fields every reader needs (the rest is read as it is)
CONFIG_FIELDS = (
    "run_id",
    "dataset",
    "variant",
    "variant_options",
    "seed",
    "profile",
    "head",
    "batch_size",
    "memory_ratio",
    "pos_margin",
    "neg_margin",
)
# the claim of the process training the cell (bench/lock.py), and where a checkpoint that
# cannot be read is moved: ``checkpoint.pt.corrupt-<UTC time>`` (kept, never deleted)
LOCK_FILE, CORRUPT_TAG = "lock", ".corrupt-"


def record_damage(result: dict[str, Any], metrics: Path) -> str | None:
    """Why a done record is not whole, or None: metrics.csv must exist, end with a line break,
    hold as many fields on every row as its header, and its main-phase rows (epoch >= 1) must be
    epochs 1 .. ``epochs_done`` of result.json, each once. Read as text, not through pandas,
    which pads a row cut mid-line with NaN. (Choice: a record that names no ``epochs_done`` and
    has no metrics.csv, as tests and hand-made records write, says nothing to check.)"""
    if "epochs_done" not in result and not metrics.exists():
        return None
    try:
        text = metrics.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return f"{metrics} cannot be read ({getattr(e, 'strerror', None) or e})"
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or "epoch" not in rows[0]:
        return f"{metrics} has no header with an 'epoch' column"
    width, at = len(rows[0]), rows[0].index("epoch")
    short = [i for i, r in enumerate(rows[1:], 1) if len(r) != width]
    if short or not text.endswith("\n"):
        where = f"row {short[0]}" if short else "its last line"
        return f"{metrics} is cut short ({where} is incomplete)"
    try:
        main = [int(float(r[at])) for r in rows[1:] if float(r[at]) >= 1]
    except ValueError:
        return f"{metrics} holds an epoch that is not a number"
    done = result.get("epochs_done")
    if isinstance(done, int) and main != list(range(1, done + 1)):
        return f"{metrics} holds {len(main)} main-phase rows, result.json records {done} epochs"
    return None


class RunDir:
    """The folder ``results/runs/<run_id>/`` of one RunConfig.

    The engine's lifecycle of one cell: ``with rd.claim():`` around everything that reads or
    writes the folder (it also clears the temporary files of a killed save), then
    ``rd.status()`` (skip done/failed), ``rd.load_checkpoint()`` (None: start from scratch,
    ``rd.start(...)``), and ``write_metrics``/``save_checkpoint``/``write_result`` per epoch.
    """

    def __init__(self, results: str | os.PathLike, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.path = Path(results) / RUNS_DIR / cfg.run_id
        self.config = self.path / CONFIG_FILE
        self.env = self.path / ENV_FILE
        self.metrics = self.path / METRICS_FILE
        self.result = self.path / RESULT_FILE
        self.checkpoint = self.path / CHECKPOINT_FILE
        self.memory_error = self.path / MEMORY_ERROR_FILE
        self.lock = self.path / LOCK_FILE

    # ----- the claim ---------------------------------------------------------------------------
    @contextmanager
    def claim(self, stale_after: float | None = None) -> Iterator[dict[str, Any]]:
        """Hold the cell's lock for the ``with`` block; ``CellBusy`` if a live process holds it.

        Not re-entrant: a second claim on the same cell, even from this process, is busy. On
        entry, the temporary files of a killed save are removed (``clean_orphans``): only the
        holder of the claim may do that, since another live writer's temporary file looks the
        same. ``stale_after``: seconds without a heartbeat after which another host's lock is
        stale (bench/lock.py; default 30 minutes or ``$XBMBENCH_LOCK_STALE_S``).
        """
        with claim_lock(self.lock, stale_after) as owner:
            self.clean_orphans()
            yield owner

    def clean_orphans(self) -> list[Path]:
        """Remove the ``.<name>.<random>.tmp`` files that a process killed during an atomic
        write left behind (the pattern of common.atomic_write); returns what was removed.

        Call it only while holding the claim. Temporary lock files are left alone: a process
        trying to claim the cell writes one without holding the claim.
        """
        removed = []
        if not self.path.is_dir():
            return removed
        for p in sorted(self.path.iterdir()):
            m = TMP_NAME.match(p.name)
            if m and not m["target"].startswith(LOCK_FILE) and p.is_file():
                p.unlink(missing_ok=True)
                removed.append(p)
        return removed

    def reset(self) -> None:
        """Start the cell over (``--retry-failed``): remove its record, keep the lock (call it
        under the claim) and every checkpoint set aside as corrupt (evidence, never deleted)."""
        if not self.path.is_dir():
            return
        for p in self.path.iterdir():
            if p.name.startswith(LOCK_FILE) or CORRUPT_TAG in p.name or TMP_NAME.match(p.name):
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()

    # ----- result.json -------------------------------------------------------------------------
    def _record(self) -> dict[str, Any]:
        """result.json, checked: an object with a known status, or a UserError naming the file."""
        problem = None
        try:
            obj = json.loads(self.result.read_bytes().decode("utf-8"))
        except UnicodeDecodeError as e:
            problem = f"not UTF-8 text (byte {e.start})"
        except json.JSONDecodeError as e:
            problem = f"not valid JSON ({e})"
        except OSError as e:
            problem = f"cannot be read ({e.strerror or e})"
        else:
            if not isinstance(obj, dict):
                kind = {list: "array", str: "string", bool: "boolean"}.get(type(obj), "number")
                problem = f"a JSON {'null' if obj is None else kind}, not an object"
            elif "status" not in obj:
                problem = "no 'status' field"
            elif obj["status"] not in STATUSES:
                problem = f"unknown status {obj['status']!r} (one of {', '.join(STATUSES)})"
        if problem:
            raise UserError(
                f"unreadable run record {self.result}: {problem}. Moving it aside "
                f"(mv {self.result} {self.result}.bad) fixes the grid: the cell runs again"
            )
        return obj

    def status(self) -> str | None:
        """``None`` for a run never started, else the status of result.json; ``DAMAGED`` for a
        done record that is not whole (``damage``)."""
        if not self.result.exists():
            return None
        record = self._record()
        if record["status"] == "done" and record_damage(record, self.metrics):
            return DAMAGED
        return record["status"]

    def damage(self) -> str | None:
        """Why this done record is not whole (``record_damage``); None when it is, or not done."""
        record = self._record() if self.result.exists() else {}
        return record_damage(record, self.metrics) if record.get("status") == "done" else None

    def set_aside_damaged(self) -> list[Path]:
        """Move a damaged record's result.json and metrics.csv aside (``<name>.corrupt-<UTC
        time>``, kept as evidence, like a corrupt checkpoint), so the cell trains again."""
        why = self.damage() or "damaged"
        return [self._set_aside(p, why) for p in (self.result, self.metrics) if p.exists()]

    def read_result(self) -> dict[str, Any]:
        return self._record()

    def start(self, env: dict[str, Any]) -> None:
        """Write config.json and env.json before any training (house style, rule 5)."""
        atomic_write_json(self.config, {"run_id": self.cfg.run_id, **self.cfg.to_dict()})
        atomic_write_json(self.env, env)

    def write_result(self, result: dict[str, Any]) -> None:
        assert result["status"] in STATUSES, result["status"]
        undeclared = sorted(set(result) - set(RESULT_KEYS))
        if undeclared:  # a key the schema page does not describe: declare it in RESULT_KEYS first
            raise ValueError(f"result.json keys not in bench.store.RESULT_KEYS: {undeclared}")
        atomic_write_json(self.result, {"run_id": self.cfg.run_id, **result})

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        frame = pd.DataFrame(rows)
        atomic_write(self.metrics, lambda tmp: frame.to_csv(tmp, index=False))

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics.exists():
            return []
        return pd.read_csv(self.metrics).to_dict("records")

    # ----- memory_error.csv ---------------------------------------------------------------------
    def write_memory_error(self, rows: list[dict[str, Any]]) -> None:
        """Every probe row of the run so far, columns in ``MEMORY_ERROR_COLUMNS`` order (NaN is
        written as an empty field). A row whose keys are not exactly those columns is a
        ValueError naming them: the probe's contract with every reader."""
        want = set(MEMORY_ERROR_COLUMNS)
        for i, row in enumerate(rows):
            if set(row) != want:
                missing, unknown = sorted(want - set(row)), sorted(set(row) - want)
                raise ValueError(
                    f"memory_error row {i}: missing column(s) {missing}, unknown column(s) "
                    f"{unknown}; the columns are bench.store.MEMORY_ERROR_COLUMNS"
                )
        frame = pd.DataFrame(rows, columns=list(MEMORY_ERROR_COLUMNS))
        atomic_write(self.memory_error, lambda tmp: frame.to_csv(tmp, index=False))

    def read_memory_error(self) -> list[dict[str, Any]]:
        """The probe rows written so far; [] for a run without the file (older records, MoCo)."""
        if not self.memory_error.exists():
            return []
        return pd.read_csv(self.memory_error).to_dict("records")

    # ----- checkpoint.pt -----------------------------------------------------------------------
    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """Through a Python file object: torch.save to a path reports a full disk as a bare
        RuntimeError ("unexpected pos"), a file object raises OSError(ENOSPC), which
        atomic_write turns into "no space left on <path>"."""
        import torch

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                torch.save(state, f)

        atomic_write(self.checkpoint, write)

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The saved state, or None: no checkpoint, or one that cannot be read.

        A checkpoint that torch cannot load (truncated, garbage) is renamed to
        ``checkpoint.pt.corrupt-<UTC time>``, never deleted (it is evidence), with a one-line
        warning; None then makes the cell start over, the only state known to be good (atomic
        saves make this rare: a bad disk or a hand-copied file). An OSError while reading is
        not corruption and propagates.
        """
        if not self.checkpoint.exists():
            return None
        import torch

        try:
            return torch.load(self.checkpoint, map_location="cpu", weights_only=False)
        except OSError:
            raise
        except Exception as e:
            first = str(e).strip().splitlines()
            why = f"{type(e).__name__}: {first[0] if first else ''}"
            aside = self._set_aside(self.checkpoint, why)
            warnings.warn(
                f"corrupt checkpoint {self.checkpoint} ({why}) moved to {aside.name}; "
                f"the cell starts over",
                stacklevel=2,
            )
            return None

    @staticmethod
    def _set_aside(path: Path, why: str) -> Path:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        aside, n = path.with_name(f"{path.name}{CORRUPT_TAG}{stamp}"), 1
        while aside.exists():  # two in one second: never overwrite an earlier one
            n += 1
            aside = path.with_name(f"{path.name}{CORRUPT_TAG}{stamp}-{n}")
        try:
            os.rename(path, aside)
        except OSError as e:
            raise UserError(
                f"corrupt checkpoint {path} ({why}) could not be moved aside to {aside.name} "
                f"({e.strerror or e}); move it away by hand and run again"
            ) from e
        return aside
