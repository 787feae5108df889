"""Build run records exactly as results/README.md specifies, for known numbers."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

import matplotlib
import pytest

matplotlib.use("Agg")

METRIC_COLUMNS = [
    "epoch", "phase", "loss", "recall@1", "recall@10", "drift_mean", "drift_max",
    "drift_epoch_mean", "drift_epoch_max", "inter_dist", "intra_dist", "superclass_top1",
    "superclass_top2", "superclass_top3", "superclass_top4", "superclass_top5", "mined_pos",
    "mined_neg", "lr", "seconds", "images_per_s",
]  # fmt: skip


def make_run(root: Path, *, dataset: str, variant: str, seed: int, best_r1: float,
             last_r1: float | None = None, profile: str = "paper", head: str = "l2",
             options: dict | None = None, batch: int = 64, memory: float = 0.5,
             pos: float = 0.2, neg: float = 0.8, status: str = "done", epochs: int = 3,
             best_epoch: int = 2, superclass: bool = False) -> str:  # fmt: skip
    """One run folder under root/runs/; Recall@10 = Recall@1 + 10; returns the run_id.

    The best epoch holds best_r1, the last epoch last_r1 (default best_r1 - 1), other epochs
    lower; drift and distances are simple functions of the epoch.
    """
    last_r1 = best_r1 - 1.0 if last_r1 is None else last_r1
    config: dict[str, Any] = {
        "dataset": dataset, "variant": variant, "variant_options": options or {}, "seed": seed,
        "profile": profile, "model": "resnet50", "head": head, "image_size": 224,
        "batch_size": batch, "m_per_class": 4, "memory_ratio": memory,
        "memory_size": int(1000 * memory), "loss": "supcon",
        "pos_margin": pos, "neg_margin": neg, "miner_distance": "euclidean", "epochs": epochs,
        "warmup_epochs": 1, "lr": 1e-4, "eval_ks": [1, 10], "train_subset": None, "task": "metric",
    }  # fmt: skip
    run_id = hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
    config["run_id"] = run_id
    folder = root / "runs" / run_id
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "env.json").write_text(json.dumps({"python": "3.11", "cuda": None}))
    rows = [dict.fromkeys(METRIC_COLUMNS, "") | {"epoch": 0, "phase": "warmup", "loss": 1.0}]
    for e in range(1, epochs + 1):
        r1 = best_r1 if e == best_epoch else last_r1 if e == epochs else min(best_r1, last_r1) - e
        top = {f"superclass_top{k}": (50 + 10 * k + e) if superclass else "" for k in range(1, 6)}
        rows.append(dict(
            epoch=e, phase="main", loss=1.0 / e, **{"recall@1": r1, "recall@10": r1 + 10},
            drift_mean=0.1 / e, drift_max=0.3 / e, drift_epoch_mean=0.2 / e,
            drift_epoch_max=0.5 / e, inter_dist=1.0 + 0.01 * e, intra_dist=0.5 - 0.01 * e,
            **top, mined_pos=10, mined_neg=20, lr=1e-4, seconds=1.0, images_per_s=100.0,
        ))  # fmt: skip
    with open(folder / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=METRIC_COLUMNS)
        w.writeheader()
        w.writerows(rows[: 1 + epochs] if status == "done" else rows[:2])
    if status == "done":
        result = {
            "run_id": run_id, "status": "done", "error": None, "failed_step": None,
            "best": {"epoch": best_epoch, "recall@1": best_r1, "recall@10": best_r1 + 10},
            "last": {"epoch": epochs, "recall@1": last_r1, "recall@10": last_r1 + 10},
            "epochs_done": epochs, "wall_s": 12.0, "deviations": [],
        }  # fmt: skip
    else:
        result = {"run_id": run_id, "status": status,
                  "error": "CUDA out of memory" if status == "failed" else None,
                  "failed_step": 7 if status == "failed" else None, "best": None, "last": None,
                  "epochs_done": 1, "wall_s": 3.0, "deviations": []}  # fmt: skip
    (folder / "result.json").write_text(json.dumps(result))
    return run_id


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    root.mkdir()
    return root
