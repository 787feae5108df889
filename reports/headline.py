"""The rows of the headline forest plot (reports.forest): per (profile, dataset), every
variant's difference to each reference variant at the reference cell, with its CI, paired by
seed where the runs pair (reports.pairing), and the reported difference where a source gives
both numbers. Pure: frames in, a frame out."""

from __future__ import annotations

import math

import pandas as pd

from reports.claims import METRIC, at_reference_lr, reference_cell, reported_difference
from reports.pairing import compare
from reports.reported import PAPER_PROFILE, Selector, config_matches

REFERENCES = ("xbm", "no_xbm")  # every variant against plain XBM and against no memory
COLUMNS = [
    "profile", "dataset", "variant", "reference", "method", "n", "diff", "ci_low", "ci_high",
    "reported_diff",
]  # fmt: skip


def reference_arms(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """{variant: its runs} of one (profile, dataset) in the reference configuration: default
    head, options and margins, the reference LR, batch size and memory ratio
    (claims.at_reference_lr, claims.reference_cell)."""
    runs = at_reference_lr(runs)
    batch, memory = reference_cell(runs)
    mask = [config_matches(Selector(r["variant"]), r, batch, memory)
            for r in runs.to_dict("records")]  # fmt: skip
    ref = runs[pd.Series(mask, index=runs.index, dtype=bool)]
    return {str(v): grp for v, grp in ref.groupby("variant", sort=False)}


def forest_rows(
    runs: pd.DataFrame,
    reported: pd.DataFrame,
    metric: str = METRIC,
    level: float = 0.95,
    references: tuple[str, ...] = REFERENCES,
) -> pd.DataFrame:
    """One row per (profile, dataset, variant, reference) where both have runs: diff =
    mean(variant) - mean(reference), its CI at ``level`` (NaN where either side has n < 2:
    the figure draws the point only), the test used and n."""
    rows = []
    metric_runs = runs[runs["task"] == "metric"]
    for (profile, dataset), grp in metric_runs.groupby(["profile", "dataset"], sort=True):
        arms = reference_arms(grp)
        for ref in (r for r in references if r in arms):
            for variant, arm in arms.items():
                if variant == ref:
                    continue
                d = compare(arm, arms[ref], metric)
                low, high = d.ci(level)
                rep = (reported_difference(variant, ref, dataset, reported, metric)
                       if profile == PAPER_PROFILE else math.nan)  # fmt: skip
                rows.append({
                    "profile": profile, "dataset": dataset, "variant": variant,
                    "reference": ref, "method": d.method, "n": d.n, "diff": d.diff,
                    "ci_low": low, "ci_high": high, "reported_diff": rep,
                })  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)
