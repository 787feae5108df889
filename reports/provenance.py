"""Where a table's runs come from: a flag when the runs it aggregates were made by different
code, library versions or CPU settings (their env.json), which can change the numbers as
surely as a config field (README, "Reproducibility across machines")."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from bench.store import ENV_FILE, RUNS_DIR

# what is compared, by the words the flag uses; a dotted name reads inside a block of env.json
PROVENANCE: dict[str, tuple[str, ...]] = {
    "code commits": ("git_commit",),
    "library versions": (
        "python", "torch", "torchvision", "timm", "pytorch_metric_learning", "numpy",
    ),
    "CPU settings": (
        "device", "torch_threads", "cpu_capability", "cpu_env", "cpu_pinning.mode", "blas",
        "mkl_version", "onednn_version",
    ),
}  # fmt: skip
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
    return (f"\n\n> **Mixed environments:** the {n_runs} runs of this table come from "
            f"different {', '.join(flags)} ({'; '.join(parts)}).")  # fmt: skip


def provenance_note(results: str | Path, table: pd.DataFrame) -> str:
    """The flag for one report table: its runs are the ids in its ``run_ids`` column."""
    ids = sorted({r for cell in table.get("run_ids", []) if isinstance(cell, str)
                  for r in cell.split()})  # fmt: skip
    return flag_text(mixed(read_envs(results, ids)), len(ids))
