"""The run store read into frames, and the rules that say which runs are one experiment: how a
configuration is keyed and labelled, what the variants registry says of a label's variant, and
where a table's runs come from (their environments).

Which runs are the same experiment, and how a run that is not a study cell is named.

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

Read the run store (results/README.md) into two tidy frames; never imports the trainer.

``runs``: one row per run folder, every status, with the fields of ``CONFIG_FIELDS`` and
``config_key`` (the whole config minus seed and names, ``reports.load``: what groups runs);
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

Where a table's runs come from: a flag when the runs it aggregates were made by different
code, library versions or CPU settings (their env.json), which can change the numbers as
surely as a config field (README, "Reproducibility across machines").
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from bench.store import (
    CONFIG_FIELDS,
    CONFIG_FILE,
    DAMAGED,
    ENV_FILE,
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
from variants import VARIANTS, get_variant
from variants.registry import variant_options

DEFAULT_MARGINS = (0.2, 0.8)  # PairMarginMiner pos/neg, paper and thesis
ADJUSTED_MARGINS = (0.1, 2.0)  # thesis table 5.15, appendix 9.1
PAPER_PROFILE = "paper"


# --- what the variants registry says of a variant -------------------------------------------------


def variant_class(name: str) -> type | None:
    """The registered class of a variant (variants.get_variant); None for a name the registry
    does not know (a side such as "every variant", a label of another code's run)."""
    return get_variant(name) if name in VARIANTS else None


def base_variant(label: str) -> str | None:
    """The registered variant a label names: itself, else the longest registered name it starts
    with followed by ``_``, ``+``, ``[``, `` `` or ``(`` (``pc_xbn_adjusted_margin``,
    ``xbn+l2_bn``, ``delayed_xbn[delay_epochs=2]``); None for anything else."""
    if label in VARIANTS:
        return label
    known = [k for k in VARIANTS if label.startswith(k) and label[len(k) :][:1] in tuple("_+[ (")]
    return max(known, key=len) if known else None


def variant_rank(label: str) -> int:
    """Where a label's variant stands in the registry's order (variants.VARIANTS: the papers'
    tables' order); labels of no registered variant after every registered one."""
    base = base_variant(label)
    return VARIANTS.index(base) if base is not None else len(VARIANTS)


def ordered(labels: Iterable[str]) -> list[str]:
    """Labels once each, in the registry's order of their variants, ties and the rest sorted."""
    return sorted(dict.fromkeys(labels), key=lambda v: (variant_rank(v), v))


def variant_fact(label: str, attribute: str, default: Any) -> Any:
    """A class attribute of the label's variant (``TITLE``, ``FAMILY``, ``COLOUR``, ...), or
    ``default`` for a label of no registered variant or an attribute left empty."""
    cls = variant_class(base_variant(label) or "")
    value = getattr(cls, attribute, None) if cls is not None else None
    return default if value in (None, "") else value


def uses_memory(variant: str) -> bool:
    """False for a variant that never uses its memory (no_xbm: memory_ratio 0 in every record)."""
    return bool(variant_fact(variant, "USES_MEMORY", True))


_LABEL = re.compile(
    r"^(?P<variant>[a-z0-9_]+?)(?P<suffix>_512|_adjusted_margin)?"
    r"(?:\+(?P<head>l2(?:_bn|_ln)?))?(?:\[(?P<opts>[^\]]*)\])?$"
)


@dataclass(frozen=True)
class Selector:
    """What a label asks of a run's configuration."""

    variant: str
    head: str = "l2"
    options: tuple[tuple[str, Any], ...] = ()
    margins: tuple[float, float] = DEFAULT_MARGINS
    batch_size: int | None = None  # None: taken from the reported row (or the claim's reference)


def _value(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


@cache
def parse_label(label: str) -> Selector:
    """Reported variant label -> Selector (see the module docstring for the grammar)."""
    m = _LABEL.match(label.strip())
    if not m:
        raise ValueError(f"cannot parse reported variant label {label!r}")
    opts: list[tuple[str, Any]] = []
    if m["opts"]:
        for part in m["opts"].split(","):
            key, sep, val = part.partition("=")
            if not sep:
                raise ValueError(f"option {part!r} in label {label!r} is not key=value")
            opts.append((key.strip(), _value(val.strip())))
    suffix = m["suffix"] or ""
    return Selector(
        variant=m["variant"],
        head=m["head"] or "l2",
        options=tuple(sorted(opts)),
        margins=ADJUSTED_MARGINS if suffix == "_adjusted_margin" else DEFAULT_MARGINS,
        batch_size=512 if suffix == "_512" else None,
    )


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, (int, float)) and isinstance(y, (int, float)):
        return math.isclose(float(x), float(y), rel_tol=1e-9, abs_tol=1e-9)
    return x == y


def _non_default(variant: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options that set a run apart: an option at its registered default is dropped (the
    store drops it too: ``pc_xbn[lambda_sigma=1.0]`` matches a run whose options are {}), and so
    is an option the protocol sets per dataset or profile (the class's ``PROTOCOL_OPTIONS``:
    AXBN's gain interval, delayed XBN's delay), which never separates runs."""
    defaults = variant_options(variant) if variant_class(variant) else {}
    ignored = variant_fact(variant, "PROTOCOL_OPTIONS", frozenset())
    return {
        k: v
        for k, v in options.items()
        if k not in ignored and not (k in defaults and _same(v, defaults[k]))
    }


def options_equal(
    variant: str, run_options: str | Mapping[str, Any], wanted: tuple[tuple[str, Any], ...]
) -> bool:
    """True when a run's variant_options (dict or canonical JSON) are ``wanted``, defaults aside."""
    opts = json.loads(run_options) if isinstance(run_options, str) else dict(run_options)
    opts, want = _non_default(variant, opts), _non_default(variant, dict(wanted))
    return opts.keys() == want.keys() and all(_same(opts[k], want[k]) for k in want)


def config_matches(
    sel: Selector, run: Mapping[str, Any], batch_size: int, memory_ratio: float
) -> bool:
    """Pure: does one run's configuration satisfy the selector at this batch/memory cell?"""
    return (
        run["variant"] == sel.variant
        and run["head"] == sel.head
        and options_equal(sel.variant, run["variant_options"], sel.options)
        and _same(run["pos_margin"], sel.margins[0])
        and _same(run["neg_margin"], sel.margins[1])
        and int(run["batch_size"]) == int(sel.batch_size or batch_size)
        and (not uses_memory(sel.variant) or _same(run["memory_ratio"], memory_ratio))
    )


def run_label(run: Mapping[str, Any]) -> str:
    """The label of a run's configuration in the same grammar (batch size and memory excluded)."""
    label = str(run["variant"])
    margins = (float(run["pos_margin"]), float(run["neg_margin"]))
    if all(_same(a, b) for a, b in zip(margins, ADJUSTED_MARGINS)):
        label += "_adjusted_margin"
    elif not all(_same(a, b) for a, b in zip(margins, DEFAULT_MARGINS)):
        label += f"(pos={margins[0]:g},neg={margins[1]:g})"
    if run["head"] != "l2":
        label += f"+{run['head']}"
    opts = json.loads(run["variant_options"]) if isinstance(run["variant_options"], str) else {}
    if opts:
        label += "[" + ",".join(f"{k}={v}" for k, v in sorted(opts.items())) + "]"
    return label


PAIR_FREE = ("variant", "variant_options")
# fields make_config derives from the variant alone (bench.config.make_config), so they differ
# between two arms whenever the variant does, and change no random draw
MEMORY_SET = ("memory_ratio",)  # 0 for a variant that never uses its memory (``uses_memory``)


def pairable(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Do two configs (config dicts or ``config_key`` JSON) draw the same random numbers for
    the same seed? Equal apart from ``PAIR_FREE`` and the variant-set fields of either side."""
    a = json.loads(a) if isinstance(a, str) else dict(a)
    b = json.loads(b) if isinstance(b, str) else dict(b)
    free = set(PAIR_FREE)
    for cfg in (a, b):
        if not uses_memory(str(cfg.get("variant"))):
            free |= set(MEMORY_SET)
    keys = (set(a) | set(b)) - free
    return all(a.get(k) == b.get(k) for k in keys)


NOT_COMPARED = ("run_id", "schema", "seed", "deviations")
# fields shown by a table's own columns or by the variant label (reports.load.run_label)
SHOWN = (
    "profile",
    "dataset",
    "task",
    "variant",
    "variant_options",
    "head",
    "pos_margin",
    "neg_margin",
    "batch_size",
    "memory_ratio",
)
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
        display = (
            c["profile"],
            c["dataset"],
            c.get("task", "metric"),
            run_label(row),
            c["batch_size"],
            c["memory_ratio"],
        )
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


# a setting: everything of a config but the variant's own fields and the cell's batch and
# memory (the fields a claim compares or picks its reference cell by), and the seed
SETTING_FREE = tuple(f for f in SHOWN if f not in ("profile", "dataset", "task"))


def setting_key(config_key: str) -> str:
    """A config key (``config_key``) without ``SETTING_FREE``: runs with equal setting keys
    differ only in the variant, its options, head, margins, batch size, memory and seed."""
    kept = {k: v for k, v in json.loads(config_key).items() if k not in SETTING_FREE}
    return json.dumps(kept, sort_keys=True)


OTHER_CELLS = "other cells of a study's setting"  # a setting equal to a study's, off its cells


def own_settings(runs: pd.DataFrame, cells: Iterable[Mapping[str, Any]] | None) -> pd.DataFrame:
    """The runs that are no study cell, each with ``setting``: how its setting differs from the
    nearest study setting of the same profile, dataset and task (else of any), e.g.
    ``epochs=1, train_per_class=60``. Runs with equal ``setting`` form one setting: they
    share every field apart from the variant, its options, head, margins, batch, memory and
    seed, so claims and figures can be judged on them as on a study's runs. Empty without
    cells (then ``comparable_runs`` already takes every config alone under its label)."""
    keys = cell_keys(cells)
    if keys is None or runs.empty:
        return runs.iloc[0:0].assign(setting=pd.Series(dtype=str))
    others = runs[~runs["config_key"].isin(keys)]
    studies = {setting_key(k) for k in keys}
    place = ("profile", "dataset", "task")
    where = {s: tuple(json.loads(s).get(f) for f in place) for s in studies}
    text = {}
    for key in set(others["config_key"].map(setting_key)):
        mine = tuple(json.loads(key).get(f) for f in place)
        near = _nearest(key, [s for s in studies if where[s] == mine]) or _nearest(key, studies)
        diff = describe(differences(key, near)) if near else ""
        text[key] = diff or (OTHER_CELLS if key in studies else "no study setting")
    seen: dict[tuple, int] = {}
    for key in sorted(text):  # two settings described alike (against two study settings)
        c = json.loads(key)
        place = (c.get("profile"), c.get("dataset"), c.get("task"), text[key])
        seen[place] = seen.get(place, 0) + 1
        if seen[place] > 1:
            text[key] += f" #{seen[place]}"
    return others.assign(setting=others["config_key"].map(setting_key).map(text))


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


def read_metrics(
    path: Path, run_id: str, required: tuple[str, ...] = METRIC_COLUMNS
) -> pd.DataFrame:
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


def _summary(
    result: dict[str, Any], which: str, path: Path, moco: bool, metrics: pd.DataFrame | None
) -> dict[str, Any]:
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
    row["wall_s"] = _wall_seconds(result.get("wall_s"), result_path)
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


def _wall_seconds(value: Any, path: Path) -> float:
    """result.json's ``wall_s`` (wall seconds spent on the run over every call, a resume adding
    to it) as a float; NaN where the record has none."""
    if value is None:
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError) as e:
        raise UserError(f"malformed run record {path}: wall_s {value!r} is not a number") from e


def _run_columns() -> list[str]:
    cols = [*CONFIG_FIELDS, "task", "config_key", "status", "error", "wall_s"]
    for which in EPOCH_CHOICES:
        cols += [f"{which}_{f}" for f in (*SUMMARY_FIELDS, SUMMARY_PHASE)]
        cols += [f"{which}_{k}" for k in RETRIEVAL_COLUMNS]
        cols += [f"{which}_{k}" for k in TOP_K]
        cols += [f"{which}_{k}" for k in MOCO_SUMMARY[1:]]  # MoCo runs only
    return cols


# the metric whose highest value over a run's evaluated epochs is its "best" epoch: Recall@1, as
# the papers and result.json's summary (bench.engine.metric.best_row), or MAP@R (metrics.csv)
SELECT_BY = ("recall@1", "map@r")
SELECTED_BY = "selected_by"  # select_epoch's column: the metric that chose each run's epoch


def best_rows(epochs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per run (index ``run_id``), the metrics.csv row of the highest ``metric`` among its
    evaluated epochs (NaN or empty: not evaluated), the earliest among equals: the rule of
    bench.engine.metric.best_row, on any column. A run with no such row is absent."""
    values = pd.to_numeric(epochs[metric], errors="coerce")
    scored = epochs.assign(_value=values, _epoch=pd.to_numeric(epochs["epoch"]))[values.notna()]
    scored = scored.sort_values(
        ["run_id", "_value", "_epoch"], ascending=[True, False, True], kind="stable"
    )
    first = scored.drop_duplicates("run_id", keep="first")
    return first.drop(columns=["_value", "_epoch"]).set_index("run_id")


def select_epoch(
    runs: pd.DataFrame,
    epoch: str = "best",
    select_by: str = "recall@1",
    epochs: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Copy of ``runs`` with the chosen epoch's numbers under plain names (``recall@1`` ...), and
    ``selected_by``: the metric that chose each run's epoch ("" for ``last``).

    ``best`` is the epoch selected on the test set, as the papers did (it may be the network as
    loaded or the warm-up: ``phase``); ``last`` is the final epoch (no selection on the test set).
    ``select_by`` (``SELECT_BY``) says what ``best`` maximises: ``recall@1``, result.json's best
    (the run-time rule); ``map@r``, the epoch of the highest MAP@R among every evaluated epoch
    of ``epochs`` (Store.epochs: metrics.csv), the earliest among equals, with that row's
    Recall@K, MAP@R, R-Precision, phase and superclass top-k. A run without any MAP@R (a record
    written before the column, NaN throughout) keeps its Recall@1 best epoch, and says so in
    ``selected_by``. ``last`` is the same epoch whatever ``select_by``.
    """
    if epoch not in EPOCH_CHOICES:
        raise ValueError(f"epoch must be one of {EPOCH_CHOICES}, got {epoch!r}")
    if select_by not in SELECT_BY:
        raise ValueError(f"select_by must be one of {SELECT_BY}, got {select_by!r}")
    out = runs.copy()
    fields = (*SUMMARY_FIELDS, SUMMARY_PHASE, *RETRIEVAL_COLUMNS, *TOP_K)
    for f in fields:
        out[f] = runs[f"{epoch}_{f}"]
    out[SELECTED_BY] = SELECT_BY[0] if epoch == "best" else ""
    if epoch != "best" or select_by == SELECT_BY[0] or out.empty:
        return out
    if epochs is None:
        raise ValueError(f"select_by={select_by!r} needs the per-epoch table (Store.epochs)")
    rows = best_rows(epochs[epochs["run_id"].isin(set(out["run_id"]))], select_by)
    found = out["run_id"].isin(rows.index).to_numpy()
    ids = out.loc[found, "run_id"]
    for f in fields:
        column = rows[f] if f in rows else pd.Series(float("nan"), index=rows.index)
        out.loc[found, f] = ids.map(column).to_numpy()
    out.loc[found, SELECTED_BY] = select_by
    return out


# what is compared, by the words the flag uses; a dotted name reads inside a block of env.json
PROVENANCE: dict[str, tuple[str, ...]] = {
    "code commits": ("git_commit",),
    "library versions": (
        "python",
        "torch",
        "torchvision",
        "timm",
        "pytorch_metric_learning",
        "numpy",
    ),
    "CPU settings": (
        "device",
        "torch_threads",
        "cpu_capability",
        "cpu_env",
        "cpu_pinning.mode",
        "blas",
        "mkl_version",
        "onednn_version",
    ),
}
NOT_RECORDED = "not recorded"


def _get(env: Mapping[str, Any], name: str) -> Any:
    for part in name.split("."):
        env = env.get(part) if isinstance(env, Mapping) else None
    return env


def _shown(value: Any) -> str:
    if value is None:
        return NOT_RECORDED
    if isinstance(value, Mapping):  # the oneDNN/MKL variables: only those set
        return ",".join(f"{k}={v}" for k, v in sorted(value.items()) if v is not None) or "none set"
    return str(value)[:12] if isinstance(value, str) and len(value) == 40 else str(value)


def read_envs(results: str | Path, run_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """run id -> its env.json ({} where the file is missing or unreadable)."""
    out = {}
    for run_id in run_ids:
        try:
            out[run_id] = json.loads((Path(results) / RUNS_DIR / run_id / ENV_FILE).read_text())
        except (OSError, ValueError):
            out[run_id] = {}
    return out


def mixed(envs: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Counter]]:
    """{group: {field: Counter(value shown -> runs)}} for every field whose runs disagree."""
    out: dict[str, dict[str, Counter]] = {}
    for group, names in PROVENANCE.items():
        for name in names:
            values = Counter(_shown(_get(env, name)) for env in envs.values())
            if len(values) > 1:
                out.setdefault(group, {})[name] = values
    return out


def flag_text(flags: Mapping[str, Mapping[str, Counter]], n_runs: int) -> str:
    """The Markdown note for under a table's heading, after a blank line ("" when its runs
    agree)."""
    if not flags:
        return ""
    parts = []
    for group, fields in flags.items():
        shown = "; ".join(
            f"`{name}` " + ", ".join(f"{v} ({k} runs)" for v, k in counts.most_common())
            for name, counts in fields.items()
        )
        parts.append(f"{group}: {shown}")
    return (
        f"\n\n> **Mixed environments:** the {n_runs} runs of this table come from "
        f"different {', '.join(flags)} ({'; '.join(parts)})."
    )


def provenance_note(results: str | Path, table: pd.DataFrame) -> str:
    """The flag for one report table: its runs are the ids in its ``run_ids`` column."""
    ids = sorted(
        {r for cell in table.get("run_ids", []) if isinstance(cell, str) for r in cell.split()}
    )
    return flag_text(mixed(read_envs(results, ids)), len(ids))
