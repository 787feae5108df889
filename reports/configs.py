"""Which runs are the same experiment, and how a run that is not a study cell is named.

Grouping rule: two runs are pooled (mean +- std over seeds) only when their configs are equal on
every field of config.json except ``NOT_COMPARED``:

- ``run_id`` and ``schema``: the record's name and format version, not choices;
- ``seed``: the replicate axis the mean and std are taken over;
- ``deviations``: notes ``make_config`` writes about adaptations it made (m_per_class raised,
  delay_epochs set); each note describes values that are fields themselves.

Every other field stays in, including ones that look harmless: ``num_workers`` (with a DataLoader
the augmentation draws come from per-worker RNG streams, so 0 and 8 workers see different
augmentations), ``eval_ks`` (the top-k search differs), ``pretrained_file`` (a path, not a
fingerprint of the weights), ``drift_probe``. A field is left out only where it cannot change a
number. Numbers compare as floats (1 and 1.0 are one value). Within a config a seed counts once:
a second run with the same config and seed is not counted (``drop_duplicate_seeds``).

Study cells (``cells``: plain config dicts, ``{"run_id": ..., **RunConfig.to_dict()}``) say which
configs the studies meant: a run equal to a cell is a *study run*; only study runs are compared
with a reported number, judged in claims and drawn in figures. Any other run keeps its own row,
labelled with what differs from the nearest cell (``xbm (epochs=2)``). Without cells, claims and
figures use the runs of configurations that no other config shares a label with, and no run is
compared with a reported number: only a cell says which config a published number belongs to.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from reports.reported import run_label

NOT_COMPARED = ("run_id", "schema", "seed", "deviations")
# fields shown by a table's own columns or by the variant label (reports.reported.run_label)
SHOWN = (
    "profile", "dataset", "task", "variant", "variant_options", "head", "pos_margin",
    "neg_margin", "batch_size", "memory_ratio",
)  # fmt: skip
DISPLAY_KEY = ["profile", "dataset", "task", "label", "batch_size", "memory_ratio"]


def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return str(value)


def config_key(config: Mapping[str, Any]) -> str:
    """The config minus ``NOT_COMPARED`` as canonical JSON: equal keys = the same experiment."""
    kept = {k: _canonical(v) for k, v in config.items() if k not in NOT_COMPARED}
    return json.dumps(kept, sort_keys=True)


def differences(key: str, reference: str) -> dict[str, Any]:
    """Fields outside ``SHOWN`` where config ``key`` differs from ``reference``, with key's
    values (a field the record lacks reads as None)."""
    a, b = json.loads(key), json.loads(reference)
    return {f: a.get(f) for f in sorted(set(a) | set(b)) if f not in SHOWN and a.get(f) != b.get(f)}


def describe(diff: Mapping[str, Any]) -> str:
    """{'epochs': 2.0, 'lr': 0.01} -> 'epochs=2, lr=0.01'."""

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:g}"
        if isinstance(v, list):
            return ",".join(fmt(x) for x in v)
        return str(v)

    return ", ".join(f"{k}={fmt(v)}" for k, v in diff.items())


def cell_keys(cells: Iterable[Mapping[str, Any]] | None) -> set[str] | None:
    """The config keys of the study cells (None: no cells given)."""
    return None if cells is None else {config_key(c) for c in cells}


def drop_duplicate_seeds(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(counted, not counted): per (config, seed) the run with the smallest run_id counts."""
    ordered = runs.sort_values("run_id", kind="stable")
    dup = ordered.duplicated(subset=["config_key", "seed"], keep="first")
    return runs.loc[~runs.index.isin(ordered.index[dup])], runs.loc[ordered.index[dup]]


def _nearest(key: str, candidates: Iterable[str]) -> str | None:
    """The candidate config with the fewest differing fields (ties: the smallest key)."""
    others = sorted(c for c in candidates if c != key)
    return min(others, key=lambda c: len(differences(key, c)), default=None)


def label_runs(runs: pd.DataFrame, cells: Iterable[Mapping[str, Any]] | None) -> pd.DataFrame:
    """``runs`` with ``label`` (variant label, plus "(what differs)" where needed) and
    ``differs`` (that text alone, "" for a study run or a config alone under its label).

    A run equal to a cell has no suffix; another run is described against the nearest cell of
    the same profile, dataset, task, variant label, batch size and memory ratio, or, if there is
    none, against the nearest other config of the runs under that label.
    """
    if runs.empty:
        return runs.assign(label=pd.Series(dtype=str), differs=pd.Series(dtype=str))
    base = runs.assign(label=[run_label(r) for r in runs.to_dict("records")])
    keys = cell_keys(cells) or set()
    cell_by_display: dict[tuple, set[str]] = {}
    for key in keys:
        c = json.loads(key)
        row = {**c, "variant_options": json.dumps(c.get("variant_options") or {})}
        display = (c["profile"], c["dataset"], c.get("task", "metric"), run_label(row),
                   c["batch_size"], c["memory_ratio"])  # fmt: skip
        cell_by_display.setdefault(display, set()).add(key)
    differs = {}
    for display, grp in base.groupby(DISPLAY_KEY, sort=False):
        run_keys = set(grp["config_key"])
        display = (*display[:4], float(display[4]), float(display[5]))
        for key in run_keys:
            if key in keys:
                differs[key] = ""
                continue
            near = _nearest(key, cell_by_display.get(display, set())) or _nearest(key, run_keys)
            differs[key] = describe(differences(key, near)) if near else ""
    text = base["config_key"].map(differs)
    return base.assign(
        label=[f"{lab} ({d})" if d else lab for lab, d in zip(base["label"], text)],
        differs=text,
    )


def study_runs(runs: pd.DataFrame, cells: Iterable[Mapping[str, Any]] | None) -> pd.DataFrame:
    """Runs equal to a study cell (none without cells): the only ones compared with a reported
    number."""
    keys = cell_keys(cells)
    return runs.iloc[0:0] if keys is None else runs[runs["config_key"].isin(keys)]


def comparable_runs(runs: pd.DataFrame, cells: Iterable[Mapping[str, Any]] | None) -> pd.DataFrame:
    """Runs claims and figures may use: the study runs; without cells, the runs under a label
    (profile, dataset, task, variant label, batch size, memory ratio) that one config holds."""
    if cells is not None:
        return study_runs(runs, cells)
    if runs.empty:
        return runs
    labels = [run_label(r) for r in runs.to_dict("records")]
    display = runs.assign(label=labels)
    configs = display.groupby(DISPLAY_KEY, sort=False)["config_key"].transform("nunique")
    return runs[(configs == 1).to_numpy()]
