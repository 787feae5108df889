"""The results store: one folder per run (results/README.md), every file written atomically.

This module is the one definition of the run record: its file names, statuses, metric columns
and summary fields. The engine writes through it, reports read through it, tests build records
with it. It imports no torch at module level, so that reports can read a store cheaply.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from common import UserError, atomic_write, atomic_write_json

if TYPE_CHECKING:
    from bench.config import RunConfig

# ----- the record's schema -----------------------------------------------------------------
CONFIG_FILE, ENV_FILE, METRICS_FILE = "config.json", "env.json", "metrics.csv"
RESULT_FILE, CHECKPOINT_FILE = "result.json", "checkpoint.pt"
RUNS_DIR = "runs"
STATUSES = ("running", "done", "failed")
TIMING_COLUMNS = ("seconds", "images_per_s")
EPOCH_CHOICES = ("best", "last")  # the summaries of a done run's result.json
TOP_K = tuple(f"superclass_top{k}" for k in range(1, 6))
# metrics.csv of a metric-learning run: one row per epoch (-1 = as loaded, 0 = warm-up)
METRIC_COLUMNS = (
    "epoch", "phase", "loss", "recall@1", "recall@10", "drift_mean", "drift_max",
    "drift_epoch_mean", "drift_epoch_max", "inter_dist", "intra_dist", *TOP_K,
    "mined_pos", "mined_neg", "lr", "seconds", "images_per_s",
)  # fmt: skip
SUMMARY_FIELDS = ("epoch", "recall@1", "recall@10")  # each of result.json's best and last
# metric runs since the init evaluation: each summary also names its row's phase, and result.json
# says whether "best" is an epoch before the main phase (the network as loaded, or warmed up)
SUMMARY_PHASE = "phase"
PRE_MAIN_PHASES = ("init", "warmup")  # epoch -1: the network as loaded; epoch 0: after warm-up
BEST_PRE_MAIN = "best_pre_main"
# metrics.csv and summaries of a MoCo run (task "moco")
MOCO_COLUMNS = ("epoch", "phase", "loss", "knn_acc", "lr", "seconds", "images_per_s")
MOCO_SUMMARY = ("epoch", "knn_acc")
# config.json fields every reader needs (the rest is read as it is)
CONFIG_FIELDS = (
    "run_id", "dataset", "variant", "variant_options", "seed", "profile", "head",
    "batch_size", "memory_ratio", "pos_margin", "neg_margin",
)  # fmt: skip


class RunDir:
    """The folder ``results/runs/<run_id>/`` of one RunConfig."""

    def __init__(self, results: str | os.PathLike, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.path = Path(results) / RUNS_DIR / cfg.run_id
        self.config = self.path / CONFIG_FILE
        self.env = self.path / ENV_FILE
        self.metrics = self.path / METRICS_FILE
        self.result = self.path / RESULT_FILE
        self.checkpoint = self.path / CHECKPOINT_FILE

    def status(self) -> str | None:
        """``None`` for a run never started, else the status of result.json."""
        if not self.result.exists():
            return None
        try:
            return json.loads(self.result.read_text())["status"]
        except (json.JSONDecodeError, KeyError):
            raise UserError(f"unreadable run record: {self.result}") from None

    def read_result(self) -> dict[str, Any]:
        return json.loads(self.result.read_text())

    def start(self, env: dict[str, Any]) -> None:
        """Write config.json and env.json before any training (house style, rule 5)."""
        atomic_write_json(self.config, {"run_id": self.cfg.run_id, **self.cfg.to_dict()})
        atomic_write_json(self.env, env)

    def write_result(self, result: dict[str, Any]) -> None:
        assert result["status"] in STATUSES, result["status"]
        atomic_write_json(self.result, {"run_id": self.cfg.run_id, **result})

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        frame = pd.DataFrame(rows)
        atomic_write(self.metrics, lambda tmp: frame.to_csv(tmp, index=False))

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics.exists():
            return []
        return pd.read_csv(self.metrics).to_dict("records")

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        import torch

        atomic_write(self.checkpoint, lambda tmp: torch.save(state, tmp))

    def load_checkpoint(self) -> dict[str, Any] | None:
        if not self.checkpoint.exists():
            return None
        import torch

        return torch.load(self.checkpoint, map_location="cpu", weights_only=False)
