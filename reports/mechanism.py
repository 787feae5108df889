"""The mechanism, measured: memory error and adaptation gain per run, per LR phase and per epoch,
the oracle's claims, the share of the staleness cost each adapting variant recovers, and the
staleness cost across training regimes.

The mechanism, measured: how far each variant's memory is from the current
embeddings, what its adaptation gains over the un-adapted copy (what plain XBM would hold), and
the bound that a memory re-embedded every ``refresh_interval`` steps (``oracle_xbm``; default 1,
every step) puts on Recall@1. Every text that says how often the oracle re-embeds takes the
interval from the runs' variant options (``refresh_interval``), never assumes it.

Reads the store's ``memory`` frame (memory_error.csv, one row per probe point,
bench.store.MEMORY_ERROR_COLUMNS) and a runs frame (reports.load.select_epoch). Pure: frames in,
frames or unjudged claim rows out (reports.claims.claim_row; judged with every other claim).

Per run (``run_stats``), over its probe points:

- ``err_l2``, ``raw_l2``, ``pair_jaccard``: means over every probe point (NaN fields skipped);
- ``log_gain``: the mean of log(raw_l2_mean / err_l2_mean) over the points where the memory was
  adapted (``adapting`` == 1), points where either error is 0 left out; a run that never adapts
  (xbm, xbm_star, the oracle) over all its points: 0 where the two copies are one (gain 1), NaN
  where there is nothing to divide. ``gain`` = exp(log_gain), the geometric mean of the
  per-point gains: the number the claims test, in the table's units.

Runs without memory_error.csv (records from before the probe, MoCo runs) have no statistics:
``unprobed`` lists them, the report says so, nothing fails.

The oracle's claims (``oracle_claim_rows``) compare an oracle config's runs with the runs of each
other variant at the (profile, dataset)'s reference cell (variants at their default options, as
every claim's side) whose config is the oracle's apart from the variant and the variant's own
options (reports.inference.pairable: the same training setting, so the arms pair by seed): the
oracle's refresh_interval never keeps it from its comparison, another epochs, memory ratio, lr ...
does. Oracle configs with different intervals are kept apart: each has its own rows, whose claim
text and source name its interval.

The mechanism per LR phase: memory error and adaptation gain before and after the
first LR decay, per epoch, and the memory-closer claims judged per phase.

The trainer's StepLR (bench.engine.metric) steps once after every main epoch, so main epochs
1 .. lr_step_epochs train at the full LR and every later epoch after the first decay
(``phase_of``). A run's numbers over the probe points of one phase, or one epoch, follow
reports.mechanism's rules (``probe_stats``: error means over the points, the gain the geometric
mean over the adapting points). Averaged over a whole run, a gain above 1 before the decay and
below 1 after it can read as "no gain" (about 1.2 and below 1 on the Fashion-MNIST
demo, 0.96 over the run); these tables and claims keep the phases apart. Pure: frames in, frames
and unjudged claim rows out (secondary family, reports.claims).

The share of the staleness cost recovered by each adapting variant.

Per (profile, dataset) at its reference cell (reports.claims.reference_cell), for each
``oracle_xbm`` config there (reports.mechanism.oracle_configs: each refresh interval apart) and
each adapting variant V (reports.claims.ADAPTING) trained as the oracle apart from the variant
(reports.mechanism.same_setting): share = (V - XBM) / (oracle - XBM) on Recall@1, the ratio of
the per-seed mean differences over the seeds the three arms share, with Fieller's 95% set and a
paired bootstrap check (reports.inference). The share is reported only where the staleness cost
itself is resolved, i.e. where the primary claim "the oracle beats XBM" holds in the judged
claims table (reports.claims); elsewhere the row keeps the cost and says why the share is not
shown. Pure: frames in, frames and text out.

The staleness cost and the share of it that XBN recovers across training regimes (study
``demo-regimes``: memory ratio x LR x {xbm, xbn, oracle_xbm} x seeds).

The claims are judged at one reference cell (reports.claims.reference_cell); this figure groups
the runs by cell itself. A cell is one ``oracle_xbm`` config (any memory ratio, any LR, each
refresh interval apart) with the ``xbm`` and ``xbn`` runs (default options) trained as it apart
from the variant (reports.mechanism.same_setting), so runs trained differently are never pooled.
Per cell, over the seeds the three arms share: the staleness cost, oracle - XBM on Recall@1, with
its paired t 95% CI (reports.inference.paired_difference), and XBN's share of it, (XBN - XBM) /
(oracle - XBM), with Fieller's 95% set (reports.mechanism.paired_share). Neither is a claim: no
Holm. The share is drawn where its set is bounded (equivalently: the cost's own 95% t interval
excludes 0); elsewhere the cell is marked "unbounded", never given a number.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from reports.claims import (
    ADAPTING,
    BOUND_CLAIM,
    CLOSER_CLAIMS,
    METRIC,
    ORACLE,
    STALENESS_CLAIM,
    Claim,
    at_reference_lr,
    bound_claim,
    claim_row,
    reference_cell,
    refresh_interval,
    reported_diff,
    side,
    staleness_claim,
)
from reports.inference import (
    HOLDS,
    bootstrap_ratio,
    by_seed,
    fieller,
    pairable,
    paired_difference,
    ratio_of_means,
    summarize,
)
from reports.load import PAPER_PROFILE, run_label, variant_rank
from reports.tables import NO_VALUE, fmt_num, fmt_pm, to_markdown

LOG_GAIN = "log_gain"
STAT_COLUMNS = [
    "run_id",
    "points",
    "adapting_points",
    "err_l2",
    "raw_l2",
    LOG_GAIN,
    "gain",
    "pair_jaccard",
]
TABLE_COLUMNS = [
    "profile",
    "dataset",
    "variant",
    "label",
    "differs",
    "n",
    "points",
    "err_l2_mean",
    "err_l2_std",
    "raw_l2_mean",
    "raw_l2_std",
    "gain_mean",
    "gain_std",
    "pair_jaccard_mean",
    "pair_jaccard_std",
    "run_ids",
]
UNPROBED_COLUMNS = ["run_id", "profile", "dataset", "variant", "seed"]


def point_log_gains(probe: pd.DataFrame) -> pd.Series:
    """log(raw_l2_mean / err_l2_mean) of each probe point; NaN where either is 0 or missing."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lg = np.log(probe["raw_l2_mean"].astype(float) / probe["err_l2_mean"].astype(float))
    return lg.where(np.isfinite(lg))


def probe_stats(probe: pd.DataFrame) -> dict[str, Any]:
    """``STAT_COLUMNS`` but run_id over some probe points of one run (module docstring)."""
    lg = point_log_gains(probe)
    adapting = probe["adapting"] == 1
    log_gain = float((lg[adapting] if adapting.any() else lg).mean())
    return {
        "points": len(probe),
        "adapting_points": int(adapting.sum()),
        "err_l2": float(probe["err_l2_mean"].astype(float).mean()),
        "raw_l2": float(probe["raw_l2_mean"].astype(float).mean()),
        LOG_GAIN: log_gain,
        "gain": math.exp(log_gain) if math.isfinite(log_gain) else math.nan,
        "pair_jaccard": float(probe["pair_jaccard"].astype(float).mean()),
    }


def run_stats(memory: pd.DataFrame) -> pd.DataFrame:
    """One row per probed run (``STAT_COLUMNS``, see the module docstring)."""
    rows = [{"run_id": rid, **probe_stats(p)} for rid, p in memory.groupby("run_id", sort=True)]
    return pd.DataFrame(rows, columns=STAT_COLUMNS)


def probed(runs: pd.DataFrame, memory: pd.DataFrame) -> pd.DataFrame:
    """The metric runs of ``runs`` that have probe rows, with their ``run_stats``."""
    metric = runs[runs["task"] == "metric"]
    return metric.merge(run_stats(memory), on="run_id", how="inner")


def unprobed(runs: pd.DataFrame, memory: pd.DataFrame) -> pd.DataFrame:
    """The metric runs without memory_error.csv (``UNPROBED_COLUMNS``), left out of this part
    of the report: records from before the probe existed."""
    metric = runs[runs["task"] == "metric"]
    missing = metric[~metric["run_id"].isin(set(memory["run_id"]))]
    return missing[UNPROBED_COLUMNS].reset_index(drop=True)


def shown_label(run: Mapping[str, Any] | pd.Series) -> str:
    """The label a run has in every table and figure: its ``label`` (reports.load.label_runs:
    the variant with its options, and what differs from its study cell), else ``run_label``."""
    label = run.get("label")
    return str(label) if isinstance(label, str) and label else run_label(run)


def memory_table(runs: pd.DataFrame, memory: pd.DataFrame) -> pd.DataFrame:
    """One row per (profile, dataset, variant, config) of probed runs: memory error (err_l2),
    the un-adapted copy's error (raw_l2), adaptation gain and mined-pair agreement, each the
    mean and sample std over seeds of the per-run values (``run_stats``). ``differs``: what sets
    a config apart (reports.load.label_runs; "" where absent)."""
    data = probed(runs, memory)
    rows = []
    for (profile, dataset, variant, _), sub in data.groupby(
        ["profile", "dataset", "variant", "config_key"], sort=True
    ):
        row = {
            "profile": profile,
            "dataset": dataset,
            "variant": variant,
            "label": shown_label(sub.iloc[0]),
            "differs": sub["differs"].iloc[0] if "differs" in sub else "",
            "n": len(sub),
            "points": int(sub["points"].sum()),
            "run_ids": " ".join(sorted(sub["run_id"])),
        }
        for col in ("err_l2", "raw_l2", "gain", "pair_jaccard"):
            s = summarize(sub[col])
            row.update({f"{col}_mean": s.mean, f"{col}_std": s.std})
        rows.append(row)
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    rank = table["variant"].map(variant_rank)
    order = table.assign(_rank=rank).sort_values(["profile", "dataset", "_rank", "differs"])
    return order.drop(columns="_rank").reset_index(drop=True)


def display_memory_table(table: pd.DataFrame) -> pd.DataFrame:
    """The human form of ``memory_table``."""
    shown = {  # display column -> (table column stem, digits)
        "memory error (L2)": ("err_l2", 4),
        "un-adapted error (L2)": ("raw_l2", 4),
        "adaptation gain": ("gain", 3),
        "pair agreement (Jaccard)": ("pair_jaccard", 3),
    }
    rows = [
        {
            "dataset": f"{r['dataset']} ({r['profile']})",
            "variant": r["label"],
            "n": str(r["n"]),
            **{name: fmt_pm(r[f"{c}_mean"], r[f"{c}_std"], d) for name, (c, d) in shown.items()},
        }
        for r in table.to_dict("records")
    ]
    return pd.DataFrame(rows, columns=["dataset", "variant", "n", *shown])


def groups(runs: pd.DataFrame) -> Iterator[tuple[tuple[str, str], pd.DataFrame]]:
    """((profile, dataset), its metric runs at the reference LR), as every claim is judged."""
    metric = runs[runs["task"] == "metric"]
    for key, grp in metric.groupby(["profile", "dataset"], sort=True):
        yield key, at_reference_lr(grp)


def closer_claim_rows(runs: pd.DataFrame, memory: pd.DataFrame) -> list[dict[str, Any]]:
    """``CLOSER_CLAIMS`` on every (profile, dataset) where the variant has probed runs at the
    reference cell (reports.claims.reference_cell), unjudged. Within each run the adapted memory
    and its un-adapted copy were probed at the same steps: A is the run's log gain, B the same
    runs with log gain 0 (the un-adapted copy against itself), so the paired t over seeds is the
    t of the per-seed log gains against 0."""
    stats = run_stats(memory)[["run_id", LOG_GAIN]]
    rows = []
    for (profile, dataset), grp in groups(runs):
        batch, ratio = reference_cell(grp)
        for claim in CLOSER_CLAIMS:
            arm = side(grp, claim.a, batch, ratio).merge(stats, on="run_id", how="inner")
            arm = arm.dropna(subset=[LOG_GAIN])
            if arm.empty:
                continue
            rows.append(
                claim_row(
                    claim.text,
                    claim.source,
                    claim.relation,
                    claim.a,
                    claim.b,
                    profile,
                    dataset,
                    float(batch),
                    arm,
                    arm.assign(**{LOG_GAIN: 0.0}),
                    LOG_GAIN,
                    math.nan,
                    at="log adaptation gain over the adapting probe points",
                    claim_id=claim.id,
                )
            )
    return rows


def oracle_configs(runs: pd.DataFrame, batch: int, memory: float) -> Iterator[pd.DataFrame]:
    """The oracle runs of one (profile, dataset) at its reference cell (batch size, memory
    ratio), whatever their variant options, one frame per config (config_key order)."""
    at_cell = (
        (runs["variant"] == ORACLE)
        & (runs["batch_size"].astype(int) == int(batch))
        & np.isclose(runs["memory_ratio"].astype(float), memory, rtol=1e-9, atol=1e-9)
    )
    for _, oracle in runs[at_cell].groupby("config_key", sort=True):
        yield oracle


def same_setting(runs: pd.DataFrame, key: str) -> pd.DataFrame:
    """The runs trained as config ``key`` apart from the variant and its options
    (reports.inference.pairable)."""
    mask = [pairable(k, key) for k in runs["config_key"]]
    return runs[pd.Series(mask, index=runs.index, dtype=bool)]


def _oracle_row(
    claim: Claim, oracle: pd.DataFrame, b: pd.DataFrame, batch: int, reported: pd.DataFrame
) -> dict[str, Any]:
    """One oracle claim's unjudged row; column ``a`` names the oracle with its options."""
    profile, dataset = oracle["profile"].iloc[0], oracle["dataset"].iloc[0]
    rep = reported_diff(claim, dataset, reported) if profile == PAPER_PROFILE else math.nan
    return claim_row(
        claim.text,
        claim.source,
        claim.relation,
        run_label(oracle.iloc[0]),
        claim.b,
        profile,
        dataset,
        float(batch),
        oracle,
        b,
        METRIC,
        rep,
        claim_id=claim.id,
    )


def oracle_claim_rows(runs: pd.DataFrame, reported: pd.DataFrame) -> list[dict[str, Any]]:
    """For each ``oracle_xbm`` config at a (profile, dataset)'s reference cell (any
    refresh_interval, each config apart): ``bound_claim`` against every other variant with runs
    there, and ``staleness_claim`` (the Recall@1 gap xbm -> oracle_xbm), side B only its runs of
    the oracle's training setting (``same_setting``); unjudged, A − B paired by seed where the
    runs pair (reports.claims.claim_row). Column ``a``: the oracle's label with its options
    (reports.load.run_label: ``oracle_xbm[refresh_interval=5]``)."""
    rows = []
    for _, grp in groups(runs):
        batch, ratio = reference_cell(grp)
        variants = sorted({v for v in grp["variant"] if v != ORACLE}, key=variant_rank)
        # intervals kept apart, never pooled: a 1-step and a 5-step oracle are different
        # bounds, an arm holds one config (reports.inference.one_config), and each row set's
        # claim text and source name its own interval
        for oracle in oracle_configs(grp, batch, ratio):
            key = oracle["config_key"].iloc[0]
            interval = refresh_interval(oracle["variant_options"].iloc[0])
            claims = (*(bound_claim(v, interval) for v in variants), staleness_claim(interval))
            for claim in claims:
                b = same_setting(side(grp, claim.b, batch, ratio), key)
                if not b.empty:
                    rows.append(_oracle_row(claim, oracle, b, batch, reported))
    return rows


def claim_rows(
    runs: pd.DataFrame, memory: pd.DataFrame, reported: pd.DataFrame
) -> list[dict[str, Any]]:
    """Every mechanism claim, unjudged: judged with the rest of the claims table, each in its
    family (reports.claims.judge_all's ``extra``)."""
    return [*closer_claim_rows(runs, memory), *oracle_claim_rows(runs, reported)]


def untested(judged: pd.DataFrame) -> list[Claim]:
    """The mechanism claims with no row in the judged claims table (no probed or no oracle
    runs); the bound claim counts as tested when any of its per-variant rows is there."""
    seen = set(judged["claim"]) if len(judged) else set()
    out = [c for c in CLOSER_CLAIMS if c.text not in seen]
    if not any(t.startswith(BOUND_CLAIM.text) for t in seen):
        out.append(BOUND_CLAIM)
    if not any(t.startswith(STALENESS_CLAIM.text) for t in seen):
        out.append(STALENESS_CLAIM)
    return out


def mechanism_claims(judged: pd.DataFrame) -> pd.DataFrame:
    """The rows of the judged claims table that are mechanism claims (the closer-memory claims
    per LR phase too: reports.mechanism, ids ``<closer id>@<phase>``)."""
    closer = tuple(c.id for c in CLOSER_CLAIMS)
    oracle = tuple(c.text for c in (BOUND_CLAIM, STALENESS_CLAIM))
    return judged[
        judged["claim_id"].str.startswith(closer) | judged["claim"].str.startswith(oracle)
    ]


def refresh_intervals(runs: pd.DataFrame) -> list[int]:
    """The refresh_interval values of the ``oracle_xbm`` runs in ``runs``, ascending."""
    oracle = runs.loc[runs["variant"] == ORACLE, "variant_options"]
    return sorted({refresh_interval(o) for o in oracle})


BEFORE, AFTER = "before", "after"  # main epochs <= lr_step_epochs / later ones
LR_PHASE = "lr_phase"  # the column (a runs frame's "phase" is the selected epoch's)
PHASE_TEXT = {BEFORE: "before the first LR decay", AFTER: "after the first LR decay"}
PHASE_STATS = ("err_l2", "raw_l2", "gain")
PHASE_KEY = ["profile", "dataset", "variant", "differs", "config_key"]
PHASE_STEM, EPOCH_STEM = "memory_error_phases", "memory_error_epochs"  # tables/<stem>.csv


def schedule(config_key: str) -> tuple[int, int]:
    """(lr_step_epochs, epochs) of a run's config (reports.load.config_key JSON)."""
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
    cols = [c for c in (*PHASE_KEY, "run_id", "seed", "batch_size") if c in metric]
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
    keys = [*PHASE_KEY, "run_id", "seed", LR_PHASE] + (["epoch"] if by == "epoch" else [])
    rows = [
        {**dict(zip(keys, k)), **probe_stats(p)}
        for k, p in data.groupby(keys, sort=True, dropna=False)
    ]
    return pd.DataFrame(rows, columns=[*keys, *STAT_COLUMNS[1:]])


def _phase_summary(per_run: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    rows = []
    for k, sub in per_run.groupby([*PHASE_KEY, *by], sort=True, dropna=False):
        row = {**dict(zip([*PHASE_KEY, *by], k)), "n": len(sub)}
        for col in PHASE_STATS:
            s = summarize(sub[col])
            row.update({f"{col}_mean": s.mean, f"{col}_std": s.std})
        row["run_ids"] = " ".join(sorted(sub["run_id"]))
        rows.append(row)
    cols = [
        *PHASE_KEY,
        *by,
        "n",
        *(f"{c}_{x}" for c in PHASE_STATS for x in ("mean", "std")),
        "run_ids",
    ]
    return pd.DataFrame(rows, columns=cols)


def phase_table(runs: pd.DataFrame, memory: pd.DataFrame) -> pd.DataFrame:
    """Per (profile, dataset, variant, config, phase): mean and sample std over seeds of each
    run's memory error, un-adapted error and adaptation gain in that phase; ``epochs``: which."""
    table = _phase_summary(run_stats_by(runs, memory, LR_PHASE), [LR_PHASE])
    spans = [epochs_of(p, *schedule(k)) for p, k in zip(table[LR_PHASE], table["config_key"])]
    labels = {k: shown_label(g.iloc[0]) for k, g in runs.groupby("config_key", sort=False)}
    table = table.assign(
        epochs=spans,
        label=table["config_key"].map(labels),
        _phase=table[LR_PHASE].map({BEFORE: 0, AFTER: 1}),  # before, then after
        _variant=table["variant"].map(variant_rank),  # the registry's order, as every table
    )
    keys = ["profile", "dataset", "_variant", "differs", "config_key", "_phase"]
    order = table.sort_values(keys, kind="stable")
    return order.drop(columns=["_phase", "_variant"]).reset_index(drop=True)


def epoch_table(runs: pd.DataFrame, memory: pd.DataFrame) -> pd.DataFrame:
    """Per (profile, dataset, variant, config, epoch): as ``phase_table``, with its phase."""
    table = _phase_summary(run_stats_by(runs, memory, "epoch"), [LR_PHASE, "epoch"])
    return table.sort_values([*PHASE_KEY, "epoch"], kind="stable").reset_index(drop=True)


def closer_phase_rows(runs: pd.DataFrame, memory: pd.DataFrame) -> list[dict[str, Any]]:
    """reports.claims.CLOSER_CLAIMS per LR phase, unjudged (secondary family): as
    reports.mechanism.closer_claim_rows (each run's log gain against 0, paired within the run),
    over the probe points of one phase; ids ``<claim id>@before`` / ``@after``."""
    stats = run_stats_by(runs, memory, LR_PHASE)[["run_id", LR_PHASE, LOG_GAIN]]
    rows = []
    for (profile, dataset), grp in groups(runs):
        batch, ratio = reference_cell(grp)
        for claim in CLOSER_CLAIMS:
            arm = side(grp, claim.a, batch, ratio).merge(stats, on="run_id", how="inner")
            for phase in (BEFORE, AFTER):
                part = arm[arm[LR_PHASE] == phase].dropna(subset=[LOG_GAIN])
                if part.empty:
                    continue
                span = epochs_of(phase, *schedule(part["config_key"].iloc[0]))
                where = f"{PHASE_TEXT[phase]}, {span}"
                rows.append(
                    claim_row(
                        f"{claim.text}, {where}",
                        claim.source,
                        claim.relation,
                        claim.a,
                        claim.b,
                        profile,
                        dataset,
                        float(batch),
                        part,
                        part.assign(**{LOG_GAIN: 0.0}),
                        LOG_GAIN,
                        math.nan,
                        at=f"log adaptation gain, {where}",
                        claim_id=f"{claim.id}@{phase}",
                    )
                )
    return rows


def display_phase_table(table: pd.DataFrame) -> pd.DataFrame:
    """The human form of ``phase_table``."""
    rows = [
        {
            "variant": r["label"],
            "LR phase": f"{PHASE_TEXT[r[LR_PHASE]]} ({r['epochs']})",
            "n": str(r["n"]),
            "memory error (L2)": fmt_pm(r["err_l2_mean"], r["err_l2_std"], 4),
            "un-adapted error (L2)": fmt_pm(r["raw_l2_mean"], r["raw_l2_std"], 4),
            "adaptation gain": fmt_pm(r["gain_mean"], r["gain_std"], 3),
        }
        for r in table.to_dict("records")
    ]
    return pd.DataFrame(rows)


RECOVERY_COLUMNS = [
    "profile",
    "dataset",
    "oracle",
    "variant",
    "n",
    "cost",
    "cost_verdict",
    "share",
    "share_low",
    "share_high",
    "share_ci",
    "boot_low",
    "boot_high",
    "note",
    "run_ids",
]
RECOVERY_STEM = "staleness_recovery"  # tables/staleness_recovery.{md,csv,tex}
NO_STALENESS_ROW = "no staleness claim judged"


def paired_share(
    oracle: pd.DataFrame, xbm: pd.DataFrame, variant: pd.DataFrame, metric: str = METRIC
) -> dict[str, Any]:
    """Over the seeds all three arms share: ``n``, the mean staleness cost (oracle - XBM),
    the share (reports.inference.ratio_of_means of V - XBM over oracle - XBM), its Fieller set
    (``ci``, reports.inference.RatioCI) and bootstrap interval (``boot``, None below 5 seeds)."""
    o, x, v = (by_seed(arm, metric) for arm in (oracle, xbm, variant))
    seeds = sorted(o.keys() & x.keys() & v.keys())
    gain = [v[s] - x[s] for s in seeds]  # what V recovers, per seed
    cost = [o[s] - x[s] for s in seeds]  # what staleness costs, per seed
    return {
        "n": len(seeds),
        "cost": float(np.mean(cost)) if seeds else math.nan,
        "share": ratio_of_means(gain, cost),
        "ci": fieller(gain, cost),
        "boot": bootstrap_ratio(gain, cost),
    }


def _cost_verdict(judged: pd.DataFrame, claim_id: str, profile: str, dataset: str) -> str:
    if judged.empty:
        return NO_STALENESS_ROW
    row = judged[
        (judged["claim_id"] == claim_id)
        & (judged["profile"] == profile)
        & (judged["dataset"] == dataset)
    ]
    return str(row["verdict"].iloc[0]) if len(row) else NO_STALENESS_ROW


def _recovery_row(oracle: pd.DataFrame, xbm: pd.DataFrame, arm: pd.DataFrame, verdict: str) -> dict:
    s = paired_share(oracle, xbm, arm)
    boot = s["boot"] or (math.nan, math.nan)
    row = {
        "profile": oracle["profile"].iloc[0],
        "dataset": oracle["dataset"].iloc[0],
        "oracle": run_label(oracle.iloc[0]),
        "variant": arm["variant"].iloc[0],
        "n": s["n"],
        "cost": s["cost"],
        "cost_verdict": verdict,
        "share": s["share"],
        "share_low": s["ci"].low,
        "share_high": s["ci"].high,
        "share_ci": s["ci"].text(),
        "boot_low": boot[0],
        "boot_high": boot[1],
        "note": "",
        "run_ids": " ".join(sorted({*oracle["run_id"], *xbm["run_id"], *arm["run_id"]})),
    }
    if s["n"] < 2:
        why = f"not shown: {s['n']} seed(s) shared by the oracle, xbm and {row['variant']}"
    elif verdict != HOLDS:
        why = f'not shown: the staleness cost is not resolved ("the oracle beats XBM": {verdict})'
    else:
        return row
    blank = dict.fromkeys(("share", "share_low", "share_high", "boot_low", "boot_high"), math.nan)
    return {**row, **blank, "share_ci": NO_VALUE, "note": why}


def recovery_table(runs: pd.DataFrame, judged: pd.DataFrame) -> pd.DataFrame:
    """One row per (profile, dataset, oracle config, adapting variant) with runs
    (``RECOVERY_COLUMNS``); ``judged``: the judged claims table, whose staleness rows gate the
    share."""
    rows = []
    for (profile, dataset), grp in groups(runs):
        batch, ratio = reference_cell(grp)
        for oracle in oracle_configs(grp, batch, ratio):
            key = oracle["config_key"].iloc[0]
            xbm = same_setting(side(grp, "xbm", batch, ratio), key)
            if xbm.empty:
                continue
            interval = refresh_interval(oracle["variant_options"].iloc[0])
            verdict = _cost_verdict(judged, staleness_claim(interval).id, profile, dataset)
            for variant in ADAPTING:
                arm = same_setting(side(grp, variant, batch, ratio), key)
                if not arm.empty:
                    rows.append(_recovery_row(oracle, xbm, arm, verdict))
    return pd.DataFrame(rows, columns=RECOVERY_COLUMNS)


def display_recovery(table: pd.DataFrame) -> pd.DataFrame:
    """The human form of ``recovery_table``."""
    rows = [
        {
            "dataset": f"{r['dataset']} ({r['profile']})",
            "oracle": r["oracle"],
            "variant": r["variant"],
            "n": str(r["n"]),
            "staleness cost (oracle − xbm)": fmt_num(r["cost"]),
            "cost verdict": r["cost_verdict"],
            "share recovered": fmt_num(r["share"]),
            "Fieller 95%": r["share_ci"],
            "bootstrap 95%": (
                NO_VALUE
                if pd.isna(r["boot_low"])
                else f"[{fmt_num(r['boot_low'])}, {fmt_num(r['boot_high'])}]"
            ),
            "note": r["note"] or NO_VALUE,
        }
        for r in table.to_dict("records")
    ]
    return pd.DataFrame(rows)


def recovery_section(table: pd.DataFrame) -> str:
    """REPORT.md's paragraph on the share recovered (under the primary claims)."""
    head = "### Share of the staleness cost recovered\n\n"
    if table is None or table.empty:
        return head + (
            "Not computed: no `oracle_xbm`, `xbm` and adapting-variant runs of one "
            "training setting side by side.\n\n"
        )
    links = " · ".join(f"[{x}](tables/{RECOVERY_STEM}.{x})" for x in ("md", "csv", "tex"))
    return (
        head
        + (
            "share = (V − XBM) / (oracle − XBM) on Recall@1: 0, the variant recovers none of what "
            "staleness costs; 1, all of it. The ratio of the mean per-seed differences over the "
            "seeds the three arms share (they pair by seed), with **Fieller's 95% confidence set** "
            "(Fieller 1954; exact for normal per-seed differences at any n; where the cost is not "
            "clearly above 0 the set is unbounded and is shown so, never as a number) and, as a "
            "check (n ≥ 5), the same construction with a paired bootstrap's percentiles in place "
            "of t (unbounded where 2.5% or more of the resampled costs are ≤ 0). "
            "Not Holm-adjusted: an estimate, not a claim. "
            'Shown only where the staleness cost itself is resolved (the primary claim "the oracle '
            f'beats XBM" holds); elsewhere the note says why. {links}\n\n'
        )
        + to_markdown(display_recovery(table))
        + "\n"
    )


REGIME_FREE = ("variant", "variant_options", "memory_ratio", "lr")  # what the figure's axes vary
REGIME_COLUMNS = [
    "profile",
    "dataset",
    "setting",
    "refresh",
    "lr",
    "memory_ratio",
    "n",
    "cost",
    "cost_low",
    "cost_high",
    "share",
    "share_low",
    "share_high",
    "share_kind",
]


def _regime_setting(config_key: str) -> str:
    """The config without the fields the figure varies: the cells of one block share it."""
    cfg = json.loads(config_key)
    return json.dumps({k: v for k, v in cfg.items() if k not in REGIME_FREE}, sort_keys=True)


def _regime_point(oracle: pd.DataFrame, xbm: pd.DataFrame, xbn: pd.DataFrame) -> dict:
    key = oracle["config_key"].iloc[0]
    cost = paired_difference(by_seed(oracle, METRIC), by_seed(xbm, METRIC))
    low, high = cost.ci(0.95)
    share = paired_share(oracle, xbm, xbn)
    return {
        "profile": oracle["profile"].iloc[0],
        "dataset": oracle["dataset"].iloc[0],
        "setting": _regime_setting(key),
        "refresh": refresh_interval(oracle["variant_options"].iloc[0]),
        "lr": float(json.loads(key)["lr"]),
        "memory_ratio": float(oracle["memory_ratio"].iloc[0]),
        "n": share["n"],
        "cost": cost.diff,
        "cost_low": low,
        "cost_high": high,
        "share": share["share"],
        "share_low": share["ci"].low,
        "share_high": share["ci"].high,
        "share_kind": share["ci"].kind,
    }


def regime_points(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per cell with an oracle, xbm and xbn arm (``REGIME_COLUMNS``); blocks (profile,
    dataset, setting, refresh) with fewer than two cells are dropped: no regime varies there."""
    metric = runs[runs["task"] == "metric"]
    rows = []
    for _, grp in metric.groupby(["profile", "dataset"], sort=True):
        xbm_all = grp[grp["variant"] == "xbm"]
        xbn_all = grp[(grp["variant"] == "xbn") & (grp["variant_options"] == "{}")]
        for key, oracle in grp[grp["variant"] == ORACLE].groupby("config_key", sort=True):
            xbm, xbn = same_setting(xbm_all, key), same_setting(xbn_all, key)
            if len(xbm) and len(xbn):
                rows.append(_regime_point(oracle, xbm, xbn))
    points = pd.DataFrame(rows, columns=REGIME_COLUMNS)
    if points.empty:
        return points
    block = ["profile", "dataset", "setting", "refresh"]
    cells = points.groupby(block)["lr"].transform("size")
    return points[cells >= 2].sort_values([*block, "lr", "memory_ratio"]).reset_index(drop=True)
