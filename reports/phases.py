"""The mechanism per LR phase (issue 23): memory error and adaptation gain before and after the
first LR decay, per epoch, and the memory-closer claims judged per phase.

The trainer's StepLR (bench.engine.metric) steps once after every main epoch, so main epochs
1 .. lr_step_epochs train at the full LR and every later epoch after the first decay
(``phase_of``). A run's numbers over the probe points of one phase, or one epoch, follow
reports.mechanism's rules (``probe_stats``: error means over the points, the gain the geometric
mean over the adapting points). Averaged over a whole run, a gain above 1 before the decay and
below 1 after it can read as "no gain" (issue 23: about 1.2 and below 1 on the Fashion-MNIST
demo, 0.96 over the run); these tables and claims keep the phases apart. Pure: frames in, frames
and unjudged claim rows out (secondary family, reports.families).
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from reports import mechanism as MECH
from reports.claims import claim_row, reference_cell, side
from reports.render import fmt_pm
from reports.stats import summarize

BEFORE, AFTER = "before", "after"  # main epochs <= lr_step_epochs / later ones
LR_PHASE = "lr_phase"  # the column (a runs frame's "phase" is the selected epoch's)
PHASE_TEXT = {BEFORE: "before the first LR decay", AFTER: "after the first LR decay"}
STATS = ("err_l2", "raw_l2", "gain")
KEY = ["profile", "dataset", "variant", "differs", "config_key"]
PHASE_STEM, EPOCH_STEM = "memory_error_phases", "memory_error_epochs"  # tables/<stem>.csv


def schedule(config_key: str) -> tuple[int, int]:
    """(lr_step_epochs, epochs) of a run's config (reports.configs.config_key JSON)."""
    cfg = json.loads(config_key)
    return int(cfg["lr_step_epochs"]), int(cfg["epochs"])


def phase_of(epoch: int, lr_step_epochs: int) -> str:
    """Main epoch ``epoch`` (1-based) trains at the full LR up to lr_step_epochs, after the
    first decay from then on (StepLR, one step per epoch)."""
    return BEFORE if epoch <= lr_step_epochs else AFTER


def epochs_of(phase: str, lr_step_epochs: int, epochs: int) -> str:
    """The main epochs of a phase: 'epochs 1–2', 'epoch 3', '' where the phase is empty."""
    lo, hi = (1, min(lr_step_epochs, epochs)) if phase == BEFORE else (lr_step_epochs + 1, epochs)
    if hi < lo:
        return ""
    return f"epoch {lo}" if lo == hi else f"epochs {lo}–{hi}"


def _with_phase(runs: pd.DataFrame, memory: pd.DataFrame) -> pd.DataFrame:
    """Probe rows of the metric runs, with the run's config columns and its ``phase``."""
    metric = runs[runs["task"] == "metric"]
    cols = [c for c in (*KEY, "run_id", "seed", "batch_size") if c in metric]
    data = memory.merge(metric[cols], on="run_id", how="inner")
    if "differs" not in data:
        data = data.assign(differs="")
    step = data["config_key"].map(lambda k: schedule(k)[0])
    phase = [phase_of(int(e), int(s)) for e, s in zip(data["epoch"], step)]
    return data.assign(**{LR_PHASE: phase})


def run_stats_by(runs: pd.DataFrame, memory: pd.DataFrame, by: str) -> pd.DataFrame:
    """One row per (probed run, ``by``), ``by`` LR_PHASE or "epoch": the run's config columns
    and reports.mechanism.probe_stats over the probe points of that LR phase or epoch."""
    data = _with_phase(runs, memory)
    keys = [*KEY, "run_id", "seed", LR_PHASE] + (["epoch"] if by == "epoch" else [])
    rows = [{**dict(zip(keys, k)), **MECH.probe_stats(p)}
            for k, p in data.groupby(keys, sort=True, dropna=False)]  # fmt: skip
    return pd.DataFrame(rows, columns=[*keys, *MECH.STAT_COLUMNS[1:]])


def _summary(per_run: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    rows = []
    for k, sub in per_run.groupby([*KEY, *by], sort=True, dropna=False):
        row = {**dict(zip([*KEY, *by], k)), "n": len(sub)}
        for col in STATS:
            s = summarize(sub[col])
            row.update({f"{col}_mean": s.mean, f"{col}_std": s.std})
        row["run_ids"] = " ".join(sorted(sub["run_id"]))
        rows.append(row)
    cols = [*KEY, *by, "n", *(f"{c}_{x}" for c in STATS for x in ("mean", "std")), "run_ids"]
    return pd.DataFrame(rows, columns=cols)


def phase_table(runs: pd.DataFrame, memory: pd.DataFrame) -> pd.DataFrame:
    """Per (profile, dataset, variant, config, phase): mean and sample std over seeds of each
    run's memory error, un-adapted error and adaptation gain in that phase; ``epochs``: which."""
    table = _summary(run_stats_by(runs, memory, LR_PHASE), [LR_PHASE])
    spans = [epochs_of(p, *schedule(k)) for p, k in zip(table[LR_PHASE], table["config_key"])]
    rank = table[LR_PHASE].map({BEFORE: 0, AFTER: 1})  # before, then after
    order = table.assign(epochs=spans, _rank=rank).sort_values([*KEY, "_rank"], kind="stable")
    return order.drop(columns="_rank").reset_index(drop=True)


def epoch_table(runs: pd.DataFrame, memory: pd.DataFrame) -> pd.DataFrame:
    """Per (profile, dataset, variant, config, epoch): as ``phase_table``, with its phase."""
    table = _summary(run_stats_by(runs, memory, "epoch"), [LR_PHASE, "epoch"])
    return table.sort_values([*KEY, "epoch"], kind="stable").reset_index(drop=True)


def closer_phase_rows(runs: pd.DataFrame, memory: pd.DataFrame) -> list[dict[str, Any]]:
    """reports.mechanism.CLOSER_CLAIMS per LR phase, unjudged (secondary family): as
    reports.mechanism.closer_claim_rows (each run's log gain against 0, paired within the run),
    over the probe points of one phase; ids ``<claim id>@before`` / ``@after``."""
    stats = run_stats_by(runs, memory, LR_PHASE)[["run_id", LR_PHASE, MECH.LOG_GAIN]]
    rows = []
    for (profile, dataset), grp in MECH.groups(runs):
        batch, ratio = reference_cell(grp)
        for claim in MECH.CLOSER_CLAIMS:
            arm = side(grp, claim.a, batch, ratio).merge(stats, on="run_id", how="inner")
            for phase in (BEFORE, AFTER):
                part = arm[arm[LR_PHASE] == phase].dropna(subset=[MECH.LOG_GAIN])
                if part.empty:
                    continue
                span = epochs_of(phase, *schedule(part["config_key"].iloc[0]))
                where = f"{PHASE_TEXT[phase]}, {span}"
                rows.append(claim_row(
                    f"{claim.text}, {where}", claim.source, claim.relation, claim.a, claim.b,
                    profile, dataset, float(batch), part, part.assign(**{MECH.LOG_GAIN: 0.0}),
                    MECH.LOG_GAIN, math.nan, at=f"log adaptation gain, {where}",
                    claim_id=f"{claim.id}@{phase}",
                ))  # fmt: skip
    return rows


def display_phase_table(table: pd.DataFrame) -> pd.DataFrame:
    """The human form of ``phase_table``."""
    rows = [{
        "variant": r["variant"] + (f" ({r['differs']})" if r["differs"] else ""),
        "LR phase": f"{PHASE_TEXT[r[LR_PHASE]]} ({r['epochs']})", "n": str(r["n"]),
        "memory error (L2)": fmt_pm(r["err_l2_mean"], r["err_l2_std"], 4),
        "un-adapted error (L2)": fmt_pm(r["raw_l2_mean"], r["raw_l2_std"], 4),
        "adaptation gain": fmt_pm(r["gain_mean"], r["gain_std"], 3),
    } for r in table.to_dict("records")]  # fmt: skip
    return pd.DataFrame(rows)
