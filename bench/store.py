"""The results store: one folder per run (results/README.md), every file written atomically."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from bench.config import RunConfig
from common import UserError, atomic_write, atomic_write_json

STATUSES = ("running", "done", "failed")
TIMING_COLUMNS = ("seconds", "images_per_s")


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:
        return None


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: str) -> dict[str, Any]:
    """The versions and machine a run used (env.json)."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "timm": _version("timm"),
        "pytorch_metric_learning": _version("pytorch_metric_learning"),
        "numpy": _version("numpy"),
        "pandas": _version("pandas"),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "git_commit": git_commit(),
        "host": socket.gethostname(),
        "device": device,
        "device_name": torch.cuda.get_device_name()
        if device.startswith("cuda")
        else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


class RunDir:
    """The folder ``results/runs/<run_id>/`` of one RunConfig."""

    def __init__(self, results: str | os.PathLike, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.path = Path(results) / "runs" / cfg.run_id
        self.config = self.path / "config.json"
        self.env = self.path / "env.json"
        self.metrics = self.path / "metrics.csv"
        self.result = self.path / "result.json"
        self.checkpoint = self.path / "checkpoint.pt"

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

    def start(self, device: str) -> None:
        """Write config.json and env.json before any training (house style, rule 5)."""
        atomic_write_json(self.config, {"run_id": self.cfg.run_id, **self.cfg.to_dict()})
        atomic_write_json(self.env, environment(device))

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
        atomic_write(self.checkpoint, lambda tmp: torch.save(state, tmp))

    def load_checkpoint(self) -> dict[str, Any] | None:
        if not self.checkpoint.exists():
            return None
        return torch.load(self.checkpoint, map_location="cpu", weights_only=False)
