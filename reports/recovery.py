"""The share of the staleness cost recovered by each adapting variant (issue 23).

Per (profile, dataset) at its reference cell (reports.claims.reference_cell), for each
``oracle_xbm`` config there (reports.mechanism.oracle_configs: each refresh interval apart) and
each adapting variant V (reports.mechanism.ADAPTING) trained as the oracle apart from the variant
(reports.mechanism.same_setting): share = (V - XBM) / (oracle - XBM) on Recall@1, the ratio of
the per-seed mean differences over the seeds the three arms share, with Fieller's 95% set and a
paired bootstrap check (reports.ratio). The share is reported only where the staleness cost
itself is resolved, i.e. where the primary claim "the oracle beats XBM" holds in the judged
claims table (reports.families); elsewhere the row keeps the cost and says why the share is not
shown. Pure: frames in, frames and text out.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from reports import mechanism as MECH
from reports.claims import METRIC, reference_cell, side
from reports.inference import HOLDS
from reports.pairing import by_seed
from reports.ratio import bootstrap_ratio, fieller, ratio_of_means
from reports.render import NO_VALUE, fmt_num, to_markdown
from reports.reported import run_label

COLUMNS = [
    "profile", "dataset", "oracle", "variant", "n", "cost", "cost_verdict", "share",
    "share_low", "share_high", "share_ci", "boot_low", "boot_high", "note", "run_ids",
]  # fmt: skip
STEM = "staleness_recovery"  # tables/staleness_recovery.{md,csv,tex}
NO_STALENESS_ROW = "no staleness claim judged"


def paired_share(oracle: pd.DataFrame, xbm: pd.DataFrame, variant: pd.DataFrame,
                 metric: str = METRIC) -> dict[str, Any]:  # fmt: skip
    """Over the seeds all three arms share: ``n``, the mean staleness cost (oracle - XBM),
    the share (reports.ratio.ratio_of_means of V - XBM over oracle - XBM), its Fieller set
    (``ci``, reports.ratio.RatioCI) and bootstrap interval (``boot``, None below 5 seeds)."""
    o, x, v = (by_seed(arm, metric) for arm in (oracle, xbm, variant))
    seeds = sorted(o.keys() & x.keys() & v.keys())
    gain = [v[s] - x[s] for s in seeds]  # what V recovers, per seed
    cost = [o[s] - x[s] for s in seeds]  # what staleness costs, per seed
    return {
        "n": len(seeds), "cost": float(np.mean(cost)) if seeds else math.nan,
        "share": ratio_of_means(gain, cost), "ci": fieller(gain, cost),
        "boot": bootstrap_ratio(gain, cost),
    }  # fmt: skip


def _cost_verdict(judged: pd.DataFrame, claim_id: str, profile: str, dataset: str) -> str:
    if judged.empty:
        return NO_STALENESS_ROW
    row = judged[(judged["claim_id"] == claim_id) & (judged["profile"] == profile)
                 & (judged["dataset"] == dataset)]  # fmt: skip
    return str(row["verdict"].iloc[0]) if len(row) else NO_STALENESS_ROW


def _row(oracle: pd.DataFrame, xbm: pd.DataFrame, arm: pd.DataFrame, verdict: str) -> dict:
    s = paired_share(oracle, xbm, arm)
    boot = s["boot"] or (math.nan, math.nan)
    row = {
        "profile": oracle["profile"].iloc[0], "dataset": oracle["dataset"].iloc[0],
        "oracle": run_label(oracle.iloc[0]), "variant": arm["variant"].iloc[0],
        "n": s["n"], "cost": s["cost"], "cost_verdict": verdict, "share": s["share"],
        "share_low": s["ci"].low, "share_high": s["ci"].high, "share_ci": s["ci"].text(),
        "boot_low": boot[0], "boot_high": boot[1], "note": "",
        "run_ids": " ".join(sorted({*oracle["run_id"], *xbm["run_id"], *arm["run_id"]})),
    }  # fmt: skip
    if s["n"] < 2:
        why = f"not shown: {s['n']} seed(s) shared by the oracle, xbm and {row['variant']}"
    elif verdict != HOLDS:
        why = f'not shown: the staleness cost is not resolved ("the oracle beats XBM": {verdict})'
    else:
        return row
    blank = dict.fromkeys(("share", "share_low", "share_high", "boot_low", "boot_high"), math.nan)
    return {**row, **blank, "share_ci": NO_VALUE, "note": why}


def recovery_table(runs: pd.DataFrame, judged: pd.DataFrame) -> pd.DataFrame:
    """One row per (profile, dataset, oracle config, adapting variant) with runs (``COLUMNS``);
    ``judged``: the judged claims table, whose staleness rows gate the share."""
    rows = []
    for (profile, dataset), grp in MECH.groups(runs):
        batch, ratio = reference_cell(grp)
        for oracle in MECH.oracle_configs(grp, batch, ratio):
            key = oracle["config_key"].iloc[0]
            xbm = MECH.same_setting(side(grp, "xbm", batch, ratio), key)
            if xbm.empty:
                continue
            interval = MECH.refresh_interval(oracle["variant_options"].iloc[0])
            verdict = _cost_verdict(judged, MECH.staleness_claim(interval).id, profile, dataset)
            for variant in MECH.ADAPTING:
                arm = MECH.same_setting(side(grp, variant, batch, ratio), key)
                if not arm.empty:
                    rows.append(_row(oracle, xbm, arm, verdict))
    return pd.DataFrame(rows, columns=COLUMNS)


def display_recovery(table: pd.DataFrame) -> pd.DataFrame:
    """The human form of ``recovery_table``."""
    rows = [{
        "dataset": f"{r['dataset']} ({r['profile']})", "oracle": r["oracle"],
        "variant": r["variant"], "n": str(r["n"]),
        "staleness cost (oracle − xbm)": fmt_num(r["cost"]), "cost verdict": r["cost_verdict"],
        "share recovered": fmt_num(r["share"]), "Fieller 95%": r["share_ci"],
        "bootstrap 95%": (NO_VALUE if pd.isna(r["boot_low"])
                          else f"[{fmt_num(r['boot_low'])}, {fmt_num(r['boot_high'])}]"),
        "note": r["note"] or NO_VALUE,
    } for r in table.to_dict("records")]  # fmt: skip
    return pd.DataFrame(rows)


def recovery_section(table: pd.DataFrame) -> str:
    """REPORT.md's paragraph on the share recovered (under the primary claims)."""
    head = "### Share of the staleness cost recovered\n\n"
    if table is None or table.empty:
        return head + ("Not computed: no `oracle_xbm`, `xbm` and adapting-variant runs of one "
                       "training setting side by side.\n\n")  # fmt: skip
    links = " · ".join(f"[{x}](tables/{STEM}.{x})" for x in ("md", "csv", "tex"))
    return (
        head
        + (
            "share = (V − XBM) / (oracle − XBM) on Recall@1: 0, the variant recovers none of what "
            "staleness costs; 1, all of it. The ratio of the mean per-seed differences over the "
            "seeds the three arms share (they pair by seed), with **Fieller's 95% confidence set** "
            "(Fieller 1954; exact for normal per-seed differences at any n; where the cost is not "
            "clearly above 0 the set is unbounded and is shown so, never as a number) and a paired "
            "percentile bootstrap as a check (n ≥ 5). Not Holm-adjusted: an estimate, not a claim. "
            'Shown only where the staleness cost itself is resolved (the primary claim "the oracle '
            f'beats XBM" holds); elsewhere the note says why. {links}\n\n'
        )
        + to_markdown(display_recovery(table))
        + "\n"
    )
