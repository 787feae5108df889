"""One tidy table of every run, for pandas, a spreadsheet or another tool (``xbmbench export``).

One row per run (``runs``), or per run and epoch (``epochs``: the run's columns, then its
metrics.csv row). Columns, in this order:

- ``run_id``, ``study_cells`` (the studies whose cells include the run, ``;``-separated; empty
  for a run of the user's own setting), ``variant_label`` (the variant and the options that
  differ from its defaults, as every table and figure labels it, e.g. ``pc_xbn[lambda_mu=0.2]``);
- every field of config.json (the run's whole configuration: dataset, variant, profile, seed,
  ...); ``variant_options`` as JSON text, each option also as ``opt.<name>``; lists as JSON text;
- from result.json: ``status``, ``error``, ``epochs_done``, ``wall_s``, ``deviations`` (JSON text),
  ``best.<key>`` and ``last.<key>`` for each key of the two summaries (``epoch``, ``phase``,
  ``recall@1``, ``recall@10``, ...); with ``select_by="map@r"`` the ``best.<key>`` columns are
  the metrics.csv row of the highest MAP@R instead (the earliest among equals, as
  reports.load.select_epoch chooses), and ``best.selected_by`` says which metric chose each
  run's row (``recall@1`` for a record without MAP@R: result.json's best is kept);
- from memory_error.csv: the memory error and the adaptation gain at the last probe point
  (``memory.err_l2_mean``, ``memory.raw_l2_mean``, ``memory.gain``; empty without a probe);
- from env.json: ``env.<key>`` for every scalar (git commit, python, torch, torchvision, timm,
  pytorch_metric_learning, numpy, device, host, platform, started_at, ...).

A record that cannot be read is a row with its run id, ``status`` = ``damaged`` and the reason
in ``error``, so that no run is silently missing. Only the standard library and pandas: the
table is read from the files, not through the report's statistics.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from bench.store import (
    CONFIG_FILE,
    ENV_FILE,
    EPOCH_CHOICES,
    MEMORY_ERROR_FILE,
    METRICS_FILE,
    RESULT_FILE,
    RETRIEVAL_COLUMNS,
    RUNS_DIR,
    SUMMARY_FIELDS,
    SUMMARY_PHASE,
)

DAMAGED = "damaged"
MEMORY_KEYS = ("err_l2_mean", "raw_l2_mean", "gain")
RESULT_KEYS = ("status", "error", "epochs_done", "wall_s")
LEVELS = ("runs", "epochs")
SELECT_BY = ("recall@1", "map@r")  # reports.load.SELECT_BY: the first is result.json's best


def _json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ValueError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return value


def _cell(value: Any) -> Any:
    """A scalar as it is; a list or a mapping as JSON text (one column, readable anywhere)."""
    return json.dumps(value, sort_keys=True) if isinstance(value, list | dict | tuple) else value


def variant_label(variant: str, options: dict[str, Any]) -> str:
    shown = ",".join(f"{k}={options[k]}" for k in sorted(options))
    return f"{variant}[{shown}]" if shown else variant


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def best_by(rows: list[dict[str, str]], metric: str) -> dict[str, str] | None:
    """The metrics.csv row (``_csv_rows``) of the highest ``metric``, the earliest epoch among
    equals; None where no row has a value (a record written before the column)."""
    scored = [r for r in rows if (r.get(metric) or "").strip() not in ("", "nan")]
    if not scored:
        return None
    return max(scored, key=lambda r: (float(r[metric]), -float(r["epoch"])))


def _reselect(row: dict[str, Any], folder: Path, select_by: str) -> None:
    """``best.<key>`` from the metrics.csv row of the highest ``select_by`` (module docstring);
    a run that is not done, or has no such value, keeps result.json's best."""
    chosen = None
    if row.get("status") == "done" and select_by != SELECT_BY[0]:
        chosen = best_by(_csv_rows(folder / METRICS_FILE), select_by)
    if chosen is not None:
        summary = (*SUMMARY_FIELDS, SUMMARY_PHASE, *RETRIEVAL_COLUMNS)
        names = dict.fromkeys(
            [*(k[len("best.") :] for k in row if k.startswith("best.")), *summary]
        )
        for name in (n for n in names if n in chosen):
            value = _number(chosen[name]) if chosen[name] != "" else None
            row[f"best.{name}"] = int(value) if name == "epoch" else value
    row["best.selected_by"] = select_by if chosen is not None else SELECT_BY[0]


def run_row(
    folder: Path, cells: dict[str, list[str]], select_by: str = SELECT_BY[0]
) -> dict[str, Any]:
    """The table's row of one run folder (see the module docstring)."""
    config = _json(folder / CONFIG_FILE)
    options = dict(config.get("variant_options") or {})
    row: dict[str, Any] = {
        "run_id": config.get("run_id", folder.name),
        "study_cells": ";".join(cells.get(str(config.get("run_id")), [])),
        "variant_label": variant_label(str(config.get("variant")), options),
    }
    row.update({k: _cell(v) for k, v in config.items() if k != "run_id"})
    row.update({f"opt.{k}": _cell(v) for k, v in options.items()})
    result_path = folder / RESULT_FILE
    result = _json(result_path) if result_path.exists() else {"status": "running"}
    row.update({k: _cell(result.get(k)) for k in RESULT_KEYS})
    row["deviations"] = _cell(result.get("deviations", []))
    for which in EPOCH_CHOICES:
        summary = result.get(which) or {}
        row.update({f"{which}.{k}": _cell(v) for k, v in summary.items()})
    if select_by != SELECT_BY[0]:
        _reselect(row, folder, select_by)
    probe = folder / MEMORY_ERROR_FILE
    last = _csv_rows(probe)[-1:] if probe.exists() else []
    row.update({f"memory.{k}": float(last[0][k]) if last else None for k in MEMORY_KEYS})
    env_path = folder / ENV_FILE
    env = _json(env_path) if env_path.exists() else {}
    row.update({f"env.{k}": v for k, v in env.items() if not isinstance(v, list | dict)})
    return row


def table(
    results: str | Path,
    level: str = "runs",
    cells: dict[str, list[str]] | None = None,
    select_by: str = SELECT_BY[0],
) -> pd.DataFrame:
    """Every run under ``results/runs/`` (folders in sorted order), one row per run or per run
    and epoch. ``cells``: run id -> the studies whose cells it is (empty: none known);
    ``select_by``: the metric that picks the ``best.`` columns' epoch (module docstring)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    if select_by not in SELECT_BY:
        raise ValueError(f"select_by must be one of {SELECT_BY}, got {select_by!r}")
    cells = cells or {}
    runs_dir = Path(results) / RUNS_DIR
    folders = sorted(p for p in runs_dir.iterdir() if p.is_dir()) if runs_dir.is_dir() else []
    rows: list[dict[str, Any]] = []
    for folder in folders:
        if not (folder / CONFIG_FILE).exists():
            continue  # a folder the store has just created: nothing to read yet
        try:
            row = run_row(folder, cells, select_by)
            epochs = _csv_rows(folder / METRICS_FILE) if level == "epochs" else []
        except (OSError, ValueError, KeyError, IndexError) as e:
            rows.append({"run_id": folder.name, "status": DAMAGED, "error": str(e)})
            continue
        if level == "runs" or not epochs:
            rows.append(row)
        else:
            rows += [{**row, **{f"epoch.{k}": _number(v) for k, v in e.items()}} for e in epochs]
    return pd.DataFrame(rows)


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def study_membership(cells: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """(study, run id) pairs -> run id -> its studies, in the order given."""
    out: dict[str, list[str]] = {}
    for study, run_id in cells:
        if study not in out.setdefault(run_id, []):
            out[run_id].append(study)
    return out
