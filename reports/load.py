"""Read the run store (results/README.md) into two tidy frames; never imports the trainer.

``runs``: one row per run folder, every status, with the fields of ``CONFIG_FIELDS`` and
``config_key`` (the whole config minus seed and names, ``reports.configs``: what groups runs);
``epochs``: one row per (run, metrics.csv row). Each summary's ``phase`` (``best_phase``,
``last_phase``) says which phase its epoch belongs to (bench.store.PRE_MAIN_PHASES: "init" = the
network as loaded, epoch -1; "warmup" = epoch 0): from result.json where it names it, else from
the metrics.csv row of that epoch (records written before the init evaluation), else "".
``memory``: one row per (run, memory_error.csv row), from the runs that have the file (older
records and MoCo runs have none: no rows).
A run folder without ``result.json`` is a run that has not finished its first write: it counts as
``running``. A malformed record (bad JSON, a missing field or column) or a done record that is not
whole (bench.store.record_damage: metrics.csv cut short) is a run of status ``damaged`` whose
``error`` names the file and the problem: it is listed, never silently skipped (a report over
silently skipped runs would answer the wrong question), and none of its rows enter the tables,
claims or figures; the other runs are read as usual.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.store import (
    CONFIG_FIELDS,
    CONFIG_FILE,
    DAMAGED,
    EPOCH_CHOICES,
    MEMORY_ERROR_COLUMNS,
    MEMORY_ERROR_FILE,
    METRIC_COLUMNS,
    METRIC_REQUIRED,
    METRICS_FILE,
    MOCO_COLUMNS,
    MOCO_SUMMARY,
    RESULT_FILE,
    RETRIEVAL_COLUMNS,
    RUNS_DIR,
    STATUSES,
    SUMMARY_FIELDS,
    SUMMARY_PHASE,
    TOP_K,
    record_damage,
)
from common import UserError
from reports.configs import config_key

RUNNING, DONE, FAILED = STATUSES  # bench.store's names, in its order


def empty_memory() -> pd.DataFrame:
    return pd.DataFrame(columns=["run_id", *MEMORY_ERROR_COLUMNS])


@dataclass(frozen=True)
class Store:
    """The whole run store: ``runs`` (one row per run), ``epochs`` (per-epoch metrics) and
    ``memory`` (the memory probe's rows, bench.store.MEMORY_ERROR_COLUMNS)."""

    runs: pd.DataFrame
    epochs: pd.DataFrame
    memory: pd.DataFrame = field(default_factory=empty_memory)

    @property
    def done(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == DONE].reset_index(drop=True)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"malformed run record {path}: {e}") from e
    if not isinstance(obj, dict):
        raise UserError(f"malformed run record {path}: expected a JSON object")
    return obj


def _require(obj: dict[str, Any], fields: tuple[str, ...], path: Path) -> None:
    missing = [f for f in fields if f not in obj]
    if missing:
        raise UserError(f"malformed run record {path}: missing field(s) {', '.join(missing)}")


def canonical_options(options: Any, path: Path) -> str:
    """variant_options as a sorted JSON string, so that runs can be grouped on it."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise UserError(f"malformed run record {path}: variant_options must be an object")
    return json.dumps(options, sort_keys=True)


def read_metrics(path: Path, run_id: str,
                 required: tuple[str, ...] = METRIC_COLUMNS) -> pd.DataFrame:  # fmt: skip
    """metrics.csv of one run, with ``run_id`` prepended; a missing column is a UserError."""
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise UserError(f"malformed run record {path}: {e}") from e
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise UserError(f"malformed run record {path}: missing column(s) {', '.join(missing)}")
    frame.insert(0, "run_id", run_id)
    return frame


def _at_epoch(metrics: pd.DataFrame | None, epoch: int | None) -> dict[str, float]:
    """Superclass top-k at one main-phase epoch (NaN where absent)."""
    out = {k: float("nan") for k in TOP_K}
    if metrics is None or epoch is None:
        return out
    rows = metrics[metrics["epoch"] == epoch]  # epochs are unique; best may be -1 or 0
    if len(rows):
        out.update({k: float(rows[k].iloc[-1]) for k in TOP_K if k in rows})  # none for MoCo
    return out


def _phase_at(metrics: pd.DataFrame | None, epoch: int) -> str:
    """The phase of metrics.csv's row ``epoch`` ("" where there is none)."""
    if metrics is None or SUMMARY_PHASE not in metrics:
        return ""
    rows = metrics[metrics["epoch"] == epoch]
    return str(rows[SUMMARY_PHASE].iloc[-1]) if len(rows) else ""


def _summary(result: dict[str, Any], which: str, path: Path, moco: bool,
             metrics: pd.DataFrame | None) -> dict[str, Any]:  # fmt: skip
    """The ``best`` or ``last`` block of result.json as runs-frame columns; MoCo runs carry
    k-NN accuracy and no Recall@K. A block without a phase (written before the init
    evaluation) takes it from its metrics.csv row."""
    part = result.get(which)
    if not isinstance(part, dict):
        raise UserError(f"malformed run record {path}: a done run needs '{which}'")
    _require(part, MOCO_SUMMARY if moco else SUMMARY_FIELDS, path)
    epoch = int(part["epoch"])
    phase = part.get(SUMMARY_PHASE)
    phase = str(phase) if phase else _phase_at(metrics, epoch)
    out = {f"{which}_epoch": epoch, f"{which}_{SUMMARY_PHASE}": phase}
    for k in SUMMARY_FIELDS[1:]:  # Recall@K: none for MoCo
        out[f"{which}_{k}"] = float("nan") if moco else float(part[k])
    for k in RETRIEVAL_COLUMNS:  # NaN for MoCo and records written before them
        value = part.get(k)
        out[f"{which}_{k}"] = float("nan") if value is None else float(value)
    for k in MOCO_SUMMARY[1:] if moco else ():
        out[f"{which}_{k}"] = float(part[k])
    return out


def read_run(folder: Path) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """One run folder -> (its row of the runs frame, its metrics or None)."""
    config_path = folder / CONFIG_FILE
    config = _read_json(config_path)
    _require(config, CONFIG_FIELDS, config_path)
    row: dict[str, Any] = {f: config[f] for f in CONFIG_FIELDS}
    row["variant_options"] = canonical_options(config["variant_options"], config_path)
    row["task"] = config.get("task", "metric")
    row["config_key"] = config_key(config)
    result_path = folder / RESULT_FILE
    result = _read_json(result_path) if result_path.exists() else {"status": RUNNING}
    _require(result, ("status",), result_path)
    row["status"] = str(result["status"])
    row["error"] = result.get("error")
    metrics_path = folder / METRICS_FILE
    metrics = None
    if metrics_path.exists():  # an unfinished run may hold only its warm-up row so far
        columns = MOCO_COLUMNS if row["task"] == "moco" else METRIC_REQUIRED
        required = columns if row["status"] == DONE else ("epoch", "phase")
        metrics = read_metrics(metrics_path, str(config["run_id"]), required)
        if row["task"] != "moco":  # records written before the retrieval columns: NaN
            for c in RETRIEVAL_COLUMNS:
                if c not in metrics:
                    metrics[c] = float("nan")
    elif row["status"] == DONE:
        raise UserError(f"malformed run record {metrics_path}: a done run needs metrics.csv")
    damage = record_damage(result, metrics_path) if row["status"] == DONE else None
    if damage:  # cut short: its partial rows must not draw curves or fill tables
        raise UserError(f"damaged run record: {damage}")
    for which in EPOCH_CHOICES:
        if row["status"] == DONE:
            row.update(_summary(result, which, result_path, row["task"] == "moco", metrics))
        epoch = row.get(f"{which}_epoch")
        row.update({f"{which}_{k}": v for k, v in _at_epoch(metrics, epoch).items()})
    return row, metrics


def read_memory_error(folder: Path, run_id: str) -> pd.DataFrame | None:
    """memory_error.csv of one run with ``run_id`` prepended; None without the file; a missing
    column is a UserError naming the file."""
    path = folder / MEMORY_ERROR_FILE
    return read_metrics(path, run_id, MEMORY_ERROR_COLUMNS) if path.exists() else None


def load_store(results: str | Path) -> Store:
    """Every run under ``results/runs/`` (sorted by folder name, so the order is stable)."""
    runs_dir = Path(results) / RUNS_DIR
    rows, frames, probes = [], [], []
    folders = sorted(p for p in runs_dir.iterdir() if p.is_dir()) if runs_dir.is_dir() else []
    for folder in folders:
        if not (folder / CONFIG_FILE).exists():
            continue  # a folder the store has just created; nothing to read yet
        try:
            row, metrics = read_run(folder)
            probe = read_memory_error(folder, str(row["run_id"]))
        except UserError as e:  # listed as damaged, by file; the other runs are read as usual
            rows.append(damaged_row(folder, e.message))
            continue
        rows.append(row)
        if metrics is not None:
            frames.append(metrics)
        if probe is not None:
            probes.append(probe)
    runs = pd.DataFrame(rows, columns=_run_columns())
    epochs = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["run_id", *METRIC_COLUMNS])
    )
    memory = pd.concat(probes, ignore_index=True) if probes else empty_memory()
    return Store(runs=runs, epochs=epochs, memory=memory)


def damaged_row(folder: Path, error: str) -> dict[str, Any]:
    """The runs-frame row of a record that cannot be read whole: what config.json still tells
    (if anything), status ``damaged`` and the error naming the file."""
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = None
    config = config if isinstance(config, dict) else {}
    row = {f: config.get(f) for f in CONFIG_FIELDS if not isinstance(config.get(f), dict)}
    row["run_id"] = folder.name
    return {**row, "status": DAMAGED, "error": error}


def _run_columns() -> list[str]:
    cols = [*CONFIG_FIELDS, "task", "config_key", "status", "error"]
    for which in EPOCH_CHOICES:
        cols += [f"{which}_{f}" for f in (*SUMMARY_FIELDS, SUMMARY_PHASE)]
        cols += [f"{which}_{k}" for k in RETRIEVAL_COLUMNS]
        cols += [f"{which}_{k}" for k in TOP_K]
        cols += [f"{which}_{k}" for k in MOCO_SUMMARY[1:]]  # MoCo runs only
    return cols


def select_epoch(runs: pd.DataFrame, epoch: str = "best") -> pd.DataFrame:
    """Copy of ``runs`` with the chosen epoch's numbers under plain names (``recall@1`` ...).

    ``best`` is the epoch selected on the test set, as the papers did (it may be the network as
    loaded or the warm-up: ``phase``); ``last`` is the final epoch (no selection on the test set).
    """
    if epoch not in EPOCH_CHOICES:
        raise ValueError(f"epoch must be one of {EPOCH_CHOICES}, got {epoch!r}")
    out = runs.copy()
    for f in (*SUMMARY_FIELDS, SUMMARY_PHASE, *RETRIEVAL_COLUMNS, *TOP_K):
        out[f] = runs[f"{epoch}_{f}"]
    return out
