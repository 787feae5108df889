"""Run records built through the real config and store (bench.config.make_config,
bench.store.RunDir), with the metric values given by the test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest

from bench.config import RunConfig, make_config
from bench.store import BEST_PRE_MAIN, METRIC_COLUMNS, PRE_MAIN_PHASES, SUMMARY_PHASE, RunDir

matplotlib.use("Agg")

ENV = {"python": "3.11", "torch": "2.4.0", "cuda": None, "host": "test", "device": "cpu"}


def metric_rows(epochs: int, best_r1: float, last_r1: float, best_epoch: int,
                superclass: bool, phases: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """The warm-up row and ``epochs`` main rows: best_r1 at best_epoch, last_r1 at the last
    epoch, lower values elsewhere; Recall@10 = Recall@1 + 10; drift and distances simple
    functions of the epoch. ``phases``: the record as the engine writes it since the init
    evaluation: an init row (epoch -1) first, Recall@K at the init and warm-up rows (best_r1
    where best_epoch is -1 or 0, lower values otherwise)."""
    low = min(best_r1, last_r1)
    rows = [dict.fromkeys(METRIC_COLUMNS, "") | {"epoch": 0, "phase": "warmup", "loss": 1.0}]
    if phases:
        rows.insert(0, dict.fromkeys(METRIC_COLUMNS, "") | {"epoch": -1, "phase": "init"})
        for row in rows:
            r1 = best_r1 if row["epoch"] == best_epoch else low - 20 + row["epoch"]
            row.update({"recall@1": r1, "recall@10": r1 + 10})
    for e in range(1, epochs + 1):
        r1 = best_r1 if e == best_epoch else last_r1 if e == epochs else low - e
        top = {f"superclass_top{k}": (50 + 10 * k + e) if superclass else "" for k in range(1, 6)}
        rows.append(dict(
            epoch=e, phase="main", loss=1.0 / e, **{"recall@1": r1, "recall@10": r1 + 10},
            drift_mean=0.1 / e, drift_max=0.3 / e, drift_epoch_mean=0.2 / e,
            drift_epoch_max=0.5 / e, inter_dist=1.0 + 0.01 * e, intra_dist=0.5 - 0.01 * e,
            **top, mined_pos=10, mined_neg=20, lr=1e-4, seconds=1.0, images_per_s=100.0,
        ))  # fmt: skip
    return rows


def make_run(root: Path, cfg: RunConfig | None = None, *, best_r1: float,
             last_r1: float | None = None, status: str = "done", best_epoch: int = 2,
             superclass: bool = False, dataset: str = "sop", variant: str = "xbn",
             seed: int = 0, profile: str = "paper", options: dict | None = None,
             batch: int | None = None, memory: float | None = None, phases: bool = False,
             **overrides: Any) -> str:  # fmt: skip
    """One run folder under root/runs/ for ``cfg`` (default: ``make_config`` of the other
    arguments; ``batch``/``memory``/overrides None = the profile's); returns the run_id.

    A done run has ``cfg.epochs`` main epochs with best_r1 at ``best_epoch`` and last_r1
    (default best_r1 - 1) at the last; a failed or running one stops after epoch 1.
    ``phases``: written as the engine does since the init evaluation (``metric_rows``; the
    summaries name their phase, result.json says whether best is before the main phase), so
    best_epoch may be -1 (the network as loaded) or 0 (the warm-up); without it, the format of
    the records written before (no init row, no phase in result.json).
    """
    if cfg is None:
        cfg = make_config(dataset, variant, seed, profile, options,
                          batch_size=batch, memory_ratio=memory, **overrides)  # fmt: skip
    last_r1 = best_r1 - 1.0 if last_r1 is None else last_r1
    rd = RunDir(root, cfg)
    rd.start(ENV)
    rows = metric_rows(cfg.epochs, best_r1, last_r1, best_epoch, superclass, phases)
    rd.write_metrics(rows if status == "done" else rows[: 2 + phases])
    record = {"error": None, "failed_step": None, "deviations": list(cfg.deviations)}
    if status == "done":
        record.update(
            status="done", epochs_done=cfg.epochs, wall_s=12.0,
            best={"epoch": best_epoch, "recall@1": best_r1, "recall@10": best_r1 + 10},
            last={"epoch": cfg.epochs, "recall@1": last_r1, "recall@10": last_r1 + 10},
        )  # fmt: skip
        if phases:
            best_phase = {r["epoch"]: r["phase"] for r in rows}[best_epoch]
            record["best"][SUMMARY_PHASE], record["last"][SUMMARY_PHASE] = best_phase, "main"
            record[BEST_PRE_MAIN] = best_phase in PRE_MAIN_PHASES
    else:
        record.update(status=status, epochs_done=1, wall_s=3.0, best=None, last=None)
        if status == "failed":
            record.update(error="CUDA out of memory", failed_step=7)
    rd.write_result(record)
    return cfg.run_id


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    root.mkdir()
    return root


DEMO_VARIANTS = (
    "no_xbm", "xbm", "xbm_star", "xbn", "axbn", "pc_xbn", "sc_xbn", "delayed_xbn", "centre_xbn",
    "scaled_xbn",
)  # fmt: skip


def make_demo(root: Path, seeds: int = 3) -> list[str]:
    """Runs resembling the default demo: every variant x ``seeds`` seeds on Fashion-MNIST,
    cpu profile, study cells; Recall@1 = a per-variant level + a shared seed effect + noise."""
    ids = []
    seed_effect = [0.0, 0.7, -0.4, 0.3, -0.6, 0.5, -0.2, 0.1, -0.3, 0.4][:seeds]
    noise = np.random.default_rng(0).normal(0.0, 0.15, (len(DEMO_VARIANTS), seeds))
    for i, variant in enumerate(DEMO_VARIANTS):
        for seed, shared in enumerate(seed_effect):
            r1 = 80.0 + 0.4 * i + shared + noise[i, seed]
            ids.append(make_run(root, dataset="fashion-mnist", variant=variant, seed=seed,
                                profile="cpu", best_r1=round(r1, 3), best_epoch=3,
                                superclass=True))  # fmt: skip
    return ids
