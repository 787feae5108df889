"""The primary claims' design check (issue 23): could the runs detect the effect the demo was
designed for?

For each judged primary row, from its own spread: the power of its test to detect a true
|A - B| of ``DESIGN_EFFECT`` Recall@1 points, the smallest |A - B| it detects with power
``POWER``, and the seeds that effect needs, all at alpha / k, k the primary claims with a p in
its (profile, dataset) group: Holm's first, strictest threshold (Holm 1979), so a claim that
clears it clears every later one. Power: reports.inference (statsmodels' t-test power, Cohen
1988). Pure: a judged claims frame in, a frame out.
"""

from __future__ import annotations

import math

import pandas as pd

from reports.families import PRIMARY_FAMILY
from reports.inference import (
    ALPHA,
    MAX_SEEDS,
    POWER,
    Difference,
    min_detectable_difference,
    power_at,
    seeds_needed,
)  # fmt: skip

DESIGN_EFFECT = 1.5  # Recall@1 points the demo's primary claims are designed to detect (issue 23)
COLUMNS = ["claim", "profile", "dataset", "k", "alpha_k", "n", "sd", "power_at_effect",
           "mdd_at_alpha_k", "seeds_for_effect"]  # fmt: skip


def _difference(row: dict) -> Difference:
    """The row's test as a Difference with its spread (sd) and n; se = sd / sqrt(n)."""
    n, sd = int(row["n"]), float(row["sd"])
    df = n - 1.0 if row["method"] != "welch" else 2.0 * n - 2.0
    return Difference(row["method"], float(row["diff"]), sd / math.sqrt(n), df, n,
                      int(row["n_a"]), int(row["n_b"]), sd)  # fmt: skip


def primary_design(
    judged: pd.DataFrame, effect: float = DESIGN_EFFECT, alpha: float = ALPHA, power: float = POWER
) -> pd.DataFrame:
    """One row per primary claim with a spread (n >= 2, sd > 0): ``COLUMNS``."""
    rows = []
    if judged.empty:
        return pd.DataFrame(columns=COLUMNS)
    primary = judged[(judged["family"] == PRIMARY_FAMILY) & judged["p"].notna()]
    for (profile, dataset), group in primary.groupby(["profile", "dataset"], sort=False):
        k = len(group)
        for row in group.to_dict("records"):
            if not (row["n"] >= 2 and row["sd"] > 0):
                continue
            diff = _difference(row)
            n_eff = seeds_needed(diff, effect, alpha=alpha / k, power=power)
            rows.append({
                "claim": row["claim"], "profile": profile, "dataset": dataset, "k": k,
                "alpha_k": alpha / k, "n": diff.n, "sd": diff.sd,
                "power_at_effect": power_at(diff, diff.n, effect, alpha / k, "two-sided"),
                "mdd_at_alpha_k": min_detectable_difference(diff, alpha / k, power),
                "seeds_for_effect": n_eff if n_eff is not None else math.nan,
            })  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def design_text(design: pd.DataFrame, effect: float = DESIGN_EFFECT, power: float = POWER) -> str:
    """REPORT.md's paragraph under the primary table."""
    if design.empty:
        return ""
    lines = [
        f"Design check: each primary claim's power to detect a true difference of {effect:g} "
        f"Recall@1 points at alpha / k (Holm's strictest threshold over the k primary claims of "
        f"its dataset), from its own spread (sd of the per-seed differences); the demo was "
        f"designed for power {power:g} there ([csv](tables/primary_design.csv)).\n",
        "| claim | where | n | sd | power at "
        f"{effect:g} | detects (power {power:g}) | seeds for {effect:g} |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in design.to_dict("records"):
        need = (f"more than {MAX_SEEDS}" if math.isnan(r["seeds_for_effect"])
                else str(int(r["seeds_for_effect"])))  # fmt: skip
        lines.append(
            f"| {r['claim']} | {r['dataset']}, alpha/{r['k']} | {r['n']} | {r['sd']:.2f} | "
            f"{r['power_at_effect']:.2f} | {r['mdd_at_alpha_k']:.2f} | {need} |"
        )
    return "\n".join(lines) + "\n\n"
