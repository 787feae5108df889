"""The mechanism, measured (issue 14): how far each variant's memory is from the current
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
options (reports.pairing.pairable: the same training setting, so the arms pair by seed): the
oracle's refresh_interval never keeps it from its comparison, another epochs, memory ratio, lr ...
does. Oracle configs with different intervals are kept apart: each has its own rows, whose claim
text and source name its interval.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from reports import style as S
from reports.claims import (
    METRIC,
    Claim,
    at_reference_lr,
    claim_row,
    reference_cell,
    reported_diff,
    side,
)
from reports.pairing import pairable
from reports.render import fmt_pm
from reports.reported import PAPER_PROFILE, run_label
from reports.stats import summarize

ORACLE = "oracle_xbm"  # re-embeds the stored entries every refresh_interval steps
# oracle_xbm's option and its default (variants/oracle_xbm.py; reports never imports variants):
# the store drops an option at its default, so a run without it re-embedded every step
REFRESH, DEFAULT_REFRESH = "refresh_interval", 1
# the variants whose whole point is adapting the memory (DESIGN.md's table; delayed_xbn is xbn
# after its delay and is left to the table and figures)
ADAPTING = ("xbn", "axbn", "pc_xbn", "sc_xbn", "centre_xbn", "scaled_xbn")
NAMES = {
    "xbn": "XBN", "axbn": "AXBN", "pc_xbn": "PC-XBN", "sc_xbn": "SC-XBN",
    "centre_xbn": "Centre XBN", "scaled_xbn": "Scaled XBN",
}  # fmt: skip
LOG_GAIN = "log_gain"
MECHANISM_SOURCE = "XBN paper sec. 3, eqs. 3-6 (the drift the normalisation corrects)"
ORACLE_SOURCE = ("beyond the sources: oracle_xbm re-embeds the memory every refresh_interval "
                 "steps")  # fmt: skip
CLOSER_CLAIMS: tuple[Claim, ...] = tuple(
    Claim(f"{v}:closer",
          f"{NAMES[v]} brings the memory closer to the current embeddings than XBM "
          "(A − B: log adaptation gain)",
          MECHANISM_SOURCE, v, f"{v} un-adapted", "A > B")
    for v in ADAPTING
)  # fmt: skip
BOUND_CLAIM = Claim("oracle>=every", "The oracle bounds every variant's Recall@1",
                    ORACLE_SOURCE, ORACLE, "every variant", "A >= B - tol")  # fmt: skip
STALENESS_CLAIM = Claim("oracle>xbm", "Staleness costs XBM Recall@1: the oracle beats XBM",
                        ORACLE_SOURCE, ORACLE, "xbm", "A > B")  # fmt: skip
STAT_COLUMNS = ["run_id", "points", "adapting_points", "err_l2", "raw_l2", LOG_GAIN, "gain",
                "pair_jaccard"]  # fmt: skip
TABLE_COLUMNS = [
    "profile", "dataset", "variant", "differs", "n", "points", "err_l2_mean", "err_l2_std",
    "raw_l2_mean", "raw_l2_std", "gain_mean", "gain_std", "pair_jaccard_mean",
    "pair_jaccard_std", "run_ids",
]  # fmt: skip
UNPROBED_COLUMNS = ["run_id", "profile", "dataset", "variant", "seed"]


def refresh_interval(options: str | Mapping[str, Any]) -> int:
    """An oracle run's refresh_interval from its variant_options (dict or canonical JSON);
    ``DEFAULT_REFRESH`` where the record has none (the store drops an option at its default)."""
    opts = json.loads(options) if isinstance(options, str) else dict(options)
    return int(opts.get(REFRESH, DEFAULT_REFRESH))


def every(interval: int) -> str:
    """1 -> 'every step', 5 -> 'every 5 steps'."""
    return "every step" if interval == 1 else f"every {interval} steps"


def refresh_text(interval: int) -> str:
    """How often the oracle re-embeds: 1 -> 'every step (refresh_interval=1)',
    5 -> 'every 5 steps (refresh_interval=5)'."""
    return f"{every(interval)} ({REFRESH}={interval})"


def oracle_source(interval: int) -> str:
    """``ORACLE_SOURCE`` with the interval the runs used."""
    return f"beyond the sources: oracle_xbm re-embeds the memory {refresh_text(interval)}"


def bound_claim(variant: str, interval: int = DEFAULT_REFRESH) -> Claim:
    """BOUND_CLAIM against one variant: oracle_xbm, re-embedding every ``interval`` steps, at
    least matches it (within the margin)."""
    return Claim(f"oracle[{interval}]>={variant}",
                 f"{BOUND_CLAIM.text} (vs {variant}; oracle re-embeds {every(interval)})",
                 oracle_source(interval), ORACLE, variant, BOUND_CLAIM.relation)  # fmt: skip


def staleness_claim(interval: int = DEFAULT_REFRESH) -> Claim:
    """STALENESS_CLAIM for an oracle re-embedding every ``interval`` steps."""
    return Claim(f"oracle[{interval}]>xbm",
                 f"{STALENESS_CLAIM.text} (oracle re-embeds {every(interval)})",
                 oracle_source(interval), ORACLE, "xbm", STALENESS_CLAIM.relation)  # fmt: skip


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
        "points": len(probe), "adapting_points": int(adapting.sum()),
        "err_l2": float(probe["err_l2_mean"].astype(float).mean()),
        "raw_l2": float(probe["raw_l2_mean"].astype(float).mean()),
        LOG_GAIN: log_gain, "gain": math.exp(log_gain) if math.isfinite(log_gain) else math.nan,
        "pair_jaccard": float(probe["pair_jaccard"].astype(float).mean()),
    }  # fmt: skip


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


def _variant_rank(variant: str) -> int:
    base = S.base_variant(variant) or variant
    return S.ORDER.index(base) if base in S.ORDER else len(S.ORDER)


def memory_table(runs: pd.DataFrame, memory: pd.DataFrame) -> pd.DataFrame:
    """One row per (profile, dataset, variant, config) of probed runs: memory error (err_l2),
    the un-adapted copy's error (raw_l2), adaptation gain and mined-pair agreement, each the
    mean and sample std over seeds of the per-run values (``run_stats``). ``differs``: what sets
    a config apart (reports.configs.label_runs; "" where absent)."""
    data = probed(runs, memory)
    rows = []
    for (profile, dataset, variant, _), sub in data.groupby(
        ["profile", "dataset", "variant", "config_key"], sort=True
    ):
        row = {"profile": profile, "dataset": dataset, "variant": variant,
               "differs": sub["differs"].iloc[0] if "differs" in sub else "", "n": len(sub),
               "points": int(sub["points"].sum()),
               "run_ids": " ".join(sorted(sub["run_id"]))}  # fmt: skip
        for col in ("err_l2", "raw_l2", "gain", "pair_jaccard"):
            s = summarize(sub[col])
            row.update({f"{col}_mean": s.mean, f"{col}_std": s.std})
        rows.append(row)
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    rank = table["variant"].map(_variant_rank)
    order = table.assign(_rank=rank).sort_values(["profile", "dataset", "_rank", "differs"])
    return order.drop(columns="_rank").reset_index(drop=True)


def display_memory_table(table: pd.DataFrame) -> pd.DataFrame:
    """The human form of ``memory_table``."""
    shown = {  # display column -> (table column stem, digits)
        "memory error (L2)": ("err_l2", 4), "un-adapted error (L2)": ("raw_l2", 4),
        "adaptation gain": ("gain", 3), "pair agreement (Jaccard)": ("pair_jaccard", 3),
    }  # fmt: skip
    rows = [
        {
            "dataset": f"{r['dataset']} ({r['profile']})",
            "variant": r["variant"] + (f" ({r['differs']})" if r["differs"] else ""),
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
            rows.append(claim_row(
                claim.text, claim.source, claim.relation, claim.a, claim.b, profile, dataset,
                float(batch), arm, arm.assign(**{LOG_GAIN: 0.0}), LOG_GAIN, math.nan,
                at="log adaptation gain over the adapting probe points", claim_id=claim.id,
            ))  # fmt: skip
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
    (reports.pairing.pairable)."""
    mask = [pairable(k, key) for k in runs["config_key"]]
    return runs[pd.Series(mask, index=runs.index, dtype=bool)]


def _oracle_row(claim: Claim, oracle: pd.DataFrame, b: pd.DataFrame, batch: int,
                reported: pd.DataFrame) -> dict[str, Any]:  # fmt: skip
    """One oracle claim's unjudged row; column ``a`` names the oracle with its options."""
    profile, dataset = oracle["profile"].iloc[0], oracle["dataset"].iloc[0]
    rep = reported_diff(claim, dataset, reported) if profile == PAPER_PROFILE else math.nan
    return claim_row(claim.text, claim.source, claim.relation, run_label(oracle.iloc[0]),
                     claim.b, profile, dataset, float(batch), oracle, b, METRIC, rep,
                     claim_id=claim.id)  # fmt: skip


def oracle_claim_rows(runs: pd.DataFrame, reported: pd.DataFrame) -> list[dict[str, Any]]:
    """For each ``oracle_xbm`` config at a (profile, dataset)'s reference cell (any
    refresh_interval, each config apart): ``bound_claim`` against every other variant with runs
    there, and ``staleness_claim`` (the Recall@1 gap xbm -> oracle_xbm), side B only its runs of
    the oracle's training setting (``same_setting``); unjudged, A − B paired by seed where the
    runs pair (reports.claims.claim_row). Column ``a``: the oracle's label with its options
    (reports.reported.run_label: ``oracle_xbm[refresh_interval=5]``)."""
    rows = []
    for _, grp in groups(runs):
        batch, ratio = reference_cell(grp)
        variants = sorted({v for v in grp["variant"] if v != ORACLE}, key=_variant_rank)
        # intervals kept apart, never pooled: a 1-step and a 5-step oracle are different
        # bounds, an arm holds one config (reports.pairing.one_config), and each row set's
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


def claim_rows(runs: pd.DataFrame, memory: pd.DataFrame,
               reported: pd.DataFrame) -> list[dict[str, Any]]:  # fmt: skip
    """Every mechanism claim, unjudged: judged with the rest of the claims table, each in its
    family (reports.families.judge_all's ``extra``)."""
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
    per LR phase too: reports.phases, ids ``<closer id>@<phase>``)."""
    closer = tuple(c.id for c in CLOSER_CLAIMS)
    oracle = tuple(c.text for c in (BOUND_CLAIM, STALENESS_CLAIM))
    return judged[
        judged["claim_id"].str.startswith(closer) | judged["claim"].str.startswith(oracle)
    ]


def staleness_rows(judged: pd.DataFrame) -> pd.DataFrame:
    """The rows of the judged claims table that are ``staleness_claim`` rows (any interval)."""
    return judged[judged["claim"].str.startswith(STALENESS_CLAIM.text)]


def refresh_intervals(runs: pd.DataFrame) -> list[int]:
    """The refresh_interval values of the ``oracle_xbm`` runs in ``runs``, ascending."""
    oracle = runs.loc[runs["variant"] == ORACLE, "variant_options"]
    return sorted({refresh_interval(o) for o in oracle})
