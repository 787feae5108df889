"""The shipped reference results and ``xbmbench verify``: does this machine give the numbers
the project published, to the last digit, and if not, what in the environment explains it?

A reference file (``bench/reference/demo.json``, made by ``export`` from a results folder) holds,
per cell, the config that rebuilds it, every metrics.csv row's epoch, Recall@1, Recall@10 and
loss, the best and last summaries, the data fingerprint, and the env.json that produced them
(the fields every cell shares once, at the top). ``check`` compares one run with its reference
cell; ``rerun`` trains chosen cells again (bench/engine) and checks them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from bench.store import EPOCH_CHOICES, METRICS_FILE, RUNS_DIR
from common import UserError, atomic_write_text

REFERENCE_DIR = Path(__file__).resolve().parent / "reference"
DEMO_REFERENCE = REFERENCE_DIR / "demo.json"


def reference_path(study: str) -> Path:
    """The shipped reference of ``study`` (it may not exist): ``bench/reference/<study>.json``."""
    return REFERENCE_DIR / f"{study}.json"


FORMAT = 1
COMPARED = ("recall@1", "recall@10", "loss")  # per metrics.csv row
# env.json fields that describe the machine or the moment, not what decides the numbers: shown
# when they differ, never a failure by themselves (the point of pinning is that the CPU model
# may change; how the variables came to be set is informational, the variables themselves are
# not); every other field (library versions, the kernels torch dispatches to, the oneDNN, MKL,
# ATen and thread variables, the thread count, the device) must match
INFORMATIONAL = (
    "host",
    "platform",
    "device_name",
    "git_commit",
    "pandas",
    "cuda",
    "cudnn",
    "cpu_model",
    "cpu_vendor",
    "cpu_isa",
    "cpu_pinning",  # the pinning's effect is in cpu_env, cpu_capability
)
NOT_STORED = ("started_at",)


def _value(x: Any) -> float | None:
    """A metrics value as JSON holds it: NaN (an epoch without that number) is None."""
    x = float(x)
    return None if math.isnan(x) else x


def read_rows(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / METRICS_FILE)


def _flat(env: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested env.json blocks as dotted keys: {"cpu_env": {"MKL_CBWR": x}} -> cpu_env.MKL_CBWR."""
    out: dict[str, Any] = {}
    for k, v in env.items():
        if isinstance(v, dict):  # an empty block adds no key
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"malformed run record {path}: {e}") from e


def cell_record(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the reference entry, the env) of one done run folder."""
    config, result = _json(run_dir / "config.json"), _json(run_dir / "result.json")
    env = _json(run_dir / "env.json")
    rows = read_rows(run_dir)
    entry = {
        "run_id": config["run_id"],
        "variant": config["variant"],
        "seed": config["seed"],
        "dataset": config["dataset"],
        "config": config,
        "epochs": [int(e) for e in rows["epoch"]],
        **{m: [_value(x) for x in rows[m]] for m in COMPARED},
        **{w: {k: result[w][k] for k in ("epoch", "recall@1", "recall@10")} for w in EPOCH_CHOICES},
        "data_fingerprint": result.get("data_fingerprint"),
    }
    return entry, {k: v for k, v in env.items() if k not in NOT_STORED}


def export(
    results: str | Path, run_ids: Iterable[str] | None = None, study: str | None = None
) -> dict[str, Any]:
    """The reference of the done metric-learning runs under ``results`` (only ``run_ids``, every
    one of which must be done, when given)."""
    runs = Path(results) / RUNS_DIR
    wanted = None if run_ids is None else list(run_ids)
    folders = [runs / r for r in wanted] if wanted is not None else sorted(runs.glob("*"))
    cells, envs, missing = [], [], []
    for folder in folders:
        result = folder / "result.json"
        done = result.is_file() and _json(result).get("status") == "done"
        if not done or not (folder / METRICS_FILE).is_file():
            missing.append(folder.name)
            continue
        if _json(folder / "config.json").get("task", "metric") != "metric":
            continue
        entry, env = cell_record(folder)
        cells.append(entry)
        envs.append(env)
    if wanted is not None and missing:
        raise UserError(
            f"cannot export {study or 'the reference'}: run(s) not done under "
            f"{runs}: {', '.join(missing)}"
        )
    if not cells:
        raise UserError(f"no done metric-learning run under {runs} to export")
    shared = {k: v for k, v in envs[0].items() if all(e.get(k) == v for e in envs)}
    for entry, env in zip(cells, envs):
        entry["env"] = {k: v for k, v in env.items() if k not in shared}
    return {"format": FORMAT, "study": study, "env": shared, "cells": cells}


def write_reference(reference: dict[str, Any], path: str | Path) -> Path:
    return atomic_write_text(path, json.dumps(reference, indent=1, sort_keys=True) + "\n")


# what a reference file holds, for the error that finds it malformed
SHAPE = (
    'a JSON object {"format": 1, "study": ..., "env": {...}, "cells": [...]} whose every cell '
    'holds "run_id", "config" (an object), "epochs" (a list of integers), "recall@1", '
    '"recall@10" and "loss" (each a list of numbers or nulls, one per epoch) and "env" (an '
    "object), as `xbmbench verify --export` writes it"
)


def _number(x: Any) -> bool:
    return x is None or (isinstance(x, (int, float)) and not isinstance(x, bool))


def _cell_problem(cell: Any) -> str | None:
    """What is wrong with one reference cell, or None. Every compared list must hold one value
    per epoch: a shorter one would let a comparison stop early and pass."""
    if not isinstance(cell, dict):
        return f"a JSON {type(cell).__name__}, not an object"
    missing = [k for k in ("run_id", "config", "epochs", *COMPARED, "env") if k not in cell]
    if missing:
        return f"no {', '.join(map(repr, missing))}"
    if not isinstance(cell["config"], dict) or not isinstance(cell["env"], dict):
        return "'config' and 'env' must be objects"
    epochs = cell["epochs"]
    if not isinstance(epochs, list) or not all(type(e) is int for e in epochs) or not epochs:
        return f"'epochs' must be a non-empty list of integers, got {str(epochs)[:60]}"
    for m in COMPARED:
        v = cell[m]
        if not isinstance(v, list) or not all(map(_number, v)):
            return f"{m!r} must be a list of numbers or nulls, got {str(v)[:60]}"
        if len(v) != len(epochs):
            return f"{m!r} holds {len(v)} values for {len(epochs)} epochs"
    return None


def load_reference(path: str | Path | None = None) -> dict[str, Any]:
    """A reference file (the shipped demo's by default); a missing or malformed one is a
    UserError naming it, the cell and the field, and saying what the file should hold."""
    path = Path(path or DEMO_REFERENCE)
    if not path.is_file():
        raise UserError(
            f"no reference file {path} (make one with `xbmbench verify --export "
            f"RESULTS --study demo --out {path}`)"
        )
    try:
        ref = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"malformed reference file {path}: not readable JSON ({e})") from None
    problem = None
    if not isinstance(ref, dict) or ref.get("format") != FORMAT:
        got = ref.get("format") if isinstance(ref, dict) else type(ref).__name__
        problem = f"format {got!r}, expected {FORMAT}"
    elif not isinstance(ref.get("env"), dict):
        problem = "no 'env' object"
    elif not isinstance(ref.get("cells"), list) or not ref["cells"]:
        problem = "no non-empty 'cells' list"
    else:
        for i, c in enumerate(ref["cells"]):
            why = _cell_problem(c)
            if why:
                rid = c.get("run_id") if isinstance(c, dict) else None
                problem = f"cell {i}{f' ({rid})' if rid else ''}: {why}"
                break
    if problem:
        raise UserError(f"malformed reference file {path}: {problem}; it should be {SHAPE}")
    return ref


def reference_config(cell: Mapping[str, Any], path: str | Path) -> Any:
    """The RunConfig of a reference cell; a config that is not one (edited: its run_id no longer
    matches its fields; an unknown field; a bad value) is a UserError naming the cell."""
    from bench.config import RunConfig

    try:
        cfg = RunConfig.from_dict(cell["config"])
        if cfg.run_id != cell["run_id"]:
            raise ValueError(f"its fields give run_id {cfg.run_id}")
    except (ValueError, TypeError) as e:
        raise UserError(
            f"malformed reference file {path}: cell {cell['run_id']}: its 'config' does not "
            f"rebuild the cell ({e}); export the reference again (`xbmbench verify --export`)"
        ) from None
    return cfg


def cell_env(reference: Mapping[str, Any], cell: Mapping[str, Any]) -> dict[str, Any]:
    return {**reference["env"], **cell["env"]}


def select(reference: Mapping[str, Any], n: int) -> list[dict[str, Any]]:
    """``n`` cells spread over the variants and seeds: the cells ordered by (variant as first
    listed, seed), every (len / n)-th taken; all of them when n >= len."""
    order = {v: i for i, v in reversed(list(enumerate(c["variant"] for c in reference["cells"])))}
    ranked = sorted(reference["cells"], key=lambda c: (order[c["variant"]], c["seed"]))
    if n >= len(ranked):
        return ranked
    return [ranked[(i * len(ranked)) // n] for i in range(n)]


def env_differences(ref_env: Mapping[str, Any], env: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every env field the reference recorded whose value differs here, and whether it is one
    that decides the numbers (not ``INFORMATIONAL``)."""
    ref, here = _flat(ref_env), _flat(env)
    return [
        {
            "field": k,
            "reference": v,
            "here": here.get(k),
            "deciding": not any(k == i or k.startswith(f"{i}.") for i in INFORMATIONAL),
        }
        for k, v in sorted(ref.items())
        if k not in NOT_STORED and here.get(k) != v
    ]


def _differs(a: float | None, b: float | None) -> bool:
    return (a is None) != (b is None) or (a is not None and a != b)


def check(cell: Mapping[str, Any], ref_env: Mapping[str, Any], run_dir: Path) -> dict[str, Any]:
    """One run folder against its reference cell: ``identical`` (every compared number of every
    epoch equal), ``differences`` (metric, epochs, max |difference|), ``env`` (env_differences,
    and the data fingerprint), ``status`` (identical / differs / not run)."""
    out: dict[str, Any] = {k: cell[k] for k in ("run_id", "variant", "seed")}
    result = run_dir / "result.json"
    status = _json(result).get("status") if result.is_file() else None
    if status != "done":
        return {
            **out,
            "status": "not run",
            "identical": False,
            "differences": [],
            "env": [],
            "note": f"no done run in {run_dir} (status {status})",
        }
    rows = read_rows(run_dir)
    diffs = env_differences(ref_env, _json(run_dir / "env.json"))
    fingerprint = _json(result).get("data_fingerprint")
    if cell.get("data_fingerprint") and fingerprint != cell["data_fingerprint"]:
        diffs.append(
            {
                "field": "data_fingerprint",
                "reference": cell["data_fingerprint"],
                "here": fingerprint,
                "deciding": True,
            }
        )
    epochs = [int(e) for e in rows["epoch"]]
    differences = []
    # every epoch of both sides: a list of another length is a difference, never a shorter zip
    if epochs != cell["epochs"] or any(len(cell[m]) != len(epochs) for m in COMPARED):
        differences.append({"metric": "epochs", "epochs": epochs, "max_abs": math.nan})
    else:
        for m in COMPARED:
            here = [_value(x) for x in rows[m]]
            bad = [i for i, (a, b) in enumerate(zip(cell[m], here, strict=True)) if _differs(a, b)]
            if bad:
                gaps = [abs(cell[m][i] - here[i]) for i in bad if None not in (cell[m][i], here[i])]
                differences.append(
                    {
                        "metric": m,
                        "epochs": [epochs[i] for i in bad],
                        "max_abs": max(gaps, default=math.nan),
                    }
                )
    identical = not differences
    return {
        **out,
        "status": "identical" if identical else "differs",
        "identical": identical,
        "differences": differences,
        "env": diffs,
    }


def check_results(reference: Mapping[str, Any], results: str | Path) -> list[dict[str, Any]]:
    """Every reference cell against the run of the same id under ``results``."""
    runs = Path(results) / RUNS_DIR
    return [check(c, cell_env(reference, c), runs / c["run_id"]) for c in reference["cells"]]


def rerun(
    reference: Mapping[str, Any],
    chosen: list[dict[str, Any]],
    data_dir: str,
    results: str | Path,
    log: Callable[[str], None] = print,
    path: str | Path = DEMO_REFERENCE,
) -> list[dict[str, Any]]:
    """Train each chosen cell again under ``results`` (on the reference's device, with its
    thread count) and check it against the reference. Every chosen cell's config is checked
    before the first one trains."""
    import torch

    from bench.engine.metric import run
    from data_prep import ensure_prepared

    configs = [reference_config(c, path) for c in chosen]
    ensure_prepared((c["dataset"] for c in chosen), data_dir)
    before, checks = torch.get_num_threads(), []
    try:
        for cell, cfg in zip(chosen, configs):
            env = cell_env(reference, cell)
            torch.set_num_threads(int(env.get("torch_threads") or before))
            run(cfg, data_dir, str(results), device=env.get("device", "cpu"), progress=False)
            checks.append(check(cell, env, Path(results) / RUNS_DIR / cfg.run_id))
            log(check_line(checks[-1]))
    finally:
        torch.set_num_threads(before)
    return checks


def failed(checks: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The checks that fail: numbers that differ, no run, or a deciding env field changed."""
    return [c for c in checks if not c["identical"] or any(d["deciding"] for d in c["env"])]


def _epochs(epochs: list[int]) -> str:
    return ", ".join(map(str, epochs[:8])) + (
        f" and {len(epochs) - 8} more" if len(epochs) > 8 else ""
    )


def check_line(c: Mapping[str, Any]) -> str:
    """One cell's verdict, its differences, and the env fields that explain them."""
    head = f"{c['variant']} seed {c['seed']} ({c['run_id']}): {c['status']}"
    parts = [
        f"{d['metric']} at epoch(s) {_epochs(d['epochs'])} (max |diff| {d['max_abs']:.6g})"
        for d in c["differences"]
    ]
    text = (
        head
        + (": " + "; ".join(parts) if parts else "")
        + (f" ({c['note']})" if "note" in c else "")
    )
    deciding = [d for d in c["env"] if d["deciding"]]
    if deciding:
        text += "\n    env differs from the reference's in what decides the numbers:"
        text += "".join(
            f"\n      {d['field']}: {d['reference']!r} (reference) vs {d['here']!r} (here)"
            for d in deciding
        )
    other = [d for d in c["env"] if not d["deciding"]]
    if other:
        text += "\n    also differs (informational): " + "; ".join(
            f"{d['field']} {d['reference']!r} -> {d['here']!r}" for d in other
        )
    return text


REFERENCE_CHECK = "reference_check.md"  # beside REPORT.md: the check, cell by cell


def report_section(checks: list[Mapping[str, Any]], source: str) -> str:
    """The reference check, cell by cell (REFERENCE_CHECK's text)."""
    counts = {s: sum(c["status"] == s for c in checks) for s in ("identical", "differs", "not run")}
    text = (
        "# Equal to the shipped reference?\n\n"
        f"The demo's {len(checks)} reference cells ({source}, the numbers README shows) against "
        f"this run: **{counts['identical']} identical** to the last digit (Recall@1, Recall@10 "
        f"and loss of every epoch), {counts['differs']} differ, {counts['not run']} not run.\n"
    )
    shown = [c for c in checks if c["status"] != "identical" or c["env"]]
    if shown:
        text += "\n" + "\n".join(f"- {check_line(c)}".replace("\n    ", "\n  ") for c in shown)
        text += "\n"
    return text


def report_line(checks: list[Mapping[str, Any]], source: str) -> str:
    """REPORT.md's one line on the reference check; the details are in REFERENCE_CHECK."""
    same = sum(c["status"] == "identical" for c in checks)
    envs = sum(bool(c["env"]) for c in checks)
    other = f"; {envs} ran in another environment" if envs else ""
    return (
        f"**Reference check:** {same} of {len(checks)} cells identical to {source}{other} "
        f"([details]({REFERENCE_CHECK})).\n"
    )


def annotate_report(report: str | Path, checks: list[Mapping[str, Any]], source: str) -> Path:
    """Write REFERENCE_CHECK beside REPORT.md and put ``report_line`` into REPORT.md's header,
    before its first section."""
    path = Path(report)
    atomic_write_text(path.parent / REFERENCE_CHECK, report_section(checks, source))
    text = path.read_text(encoding="utf-8")
    at = text.find("\n## ")
    at = len(text) if at < 0 else at + 1
    return atomic_write_text(path, text[:at] + report_line(checks, source) + "\n" + text[at:])
