"""The qualitative claims of the paper and the thesis, as data, judged on our runs.

A claim compares variant label A with label B (grammar of ``reports.reported``) on Recall@1 of the
selected epoch, per (profile, dataset). Both sides are taken at the same cell: the reference
batch size (the most common batch size among that profile's done runs on that dataset, ties to the
smaller: 64 for the paper grid) and the reference memory ratio (the most common non-zero one),
unless the label fixes the batch (``no_xbm_512``) or the claim asks for ``small`` batches (the
smallest batch size below the reference where both A and B have runs). Verdict rules: see
``reports.stats.verdict``. The runs given are the study runs (reports.configs.comparable_runs),
so that a side is one config, each seed once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from reports.reported import PAPER_PROFILE, config_matches, parse_label
from reports.stats import spread_of_difference, summarize, verdict


@dataclass(frozen=True)
class Claim:
    id: str
    text: str
    source: str
    a: str  # variant label of side A
    b: str  # variant label of side B
    relation: str  # "A > B", "A < B", "A ~ B" (matches), "A >= B - tol" (at least matches)
    batch: str = "ref"  # "ref" or "small"


CLAIMS: tuple[Claim, ...] = (
    Claim("xbm>no_xbm", "XBM beats no-XBM", "thesis 5.4.2, tables 5.2-5.3", "xbm", "no_xbm",
          "A > B"),
    Claim("xbn>xbm", "XBN beats XBM on every dataset", "paper table 1, sec. 5.2", "xbn", "xbm",
          "A > B"),
    Claim("axbn>=xbn", "AXBN at least matches XBN", "paper table 1", "axbn", "xbn", "A >= B - tol"),
    Claim("axbn>xbn@small", "AXBN beats XBN at small batch sizes", "paper fig. 1, sec. 5.2",
          "axbn", "xbn", "A > B", batch="small"),
    Claim("xbm_star>xbm", "XBM* (XBM + minibatch loss) beats XBM", "paper table 2, sec. 5.2",
          "xbm_star", "xbm", "A > B"),
    Claim("xbn>xbm_star", "XBN beats XBM*", "paper table 2", "xbn", "xbm_star", "A > B"),
    Claim("xbn>no_xbm_512", "No-XBM at batch 512 stays below XBN", "paper table 2, sec. 5.2",
          "xbn", "no_xbm_512", "A > B"),
    Claim("delayed>xbn", "Delayed XBN beats XBN", "thesis 5.4.3, table 5.6", "delayed_xbn", "xbn",
          "A > B"),
    Claim("centre~xbn", "Centre XBN matches XBN", "thesis 5.4.3, tables 5.8-5.9", "centre_xbn",
          "xbn", "A ~ B"),
    Claim("scaled>=xbn", "Scaled XBN matches or beats XBN", "thesis 5.4.3, tables 5.10-5.11",
          "scaled_xbn", "xbn", "A >= B - tol"),
    Claim("pc_xbn<xbn", "PC-XBN falls below XBN (default margins)",
          "thesis 5.4.4, tables 5.12-5.13",
          "pc_xbn", "xbn", "A < B"),
    Claim("pc_xbn_adj>pc_xbn", "PC-XBN recovers with adjusted margins (pos 0.1, neg 2.0)",
          "thesis 5.4.4, table 5.15", "pc_xbn_adjusted_margin", "pc_xbn", "A > B"),
    Claim("sc_xbn>pc_xbn", "SC-XBN beats PC-XBN", "thesis 5.4.5, table 5.17", "sc_xbn", "pc_xbn",
          "A > B"),
)  # fmt: skip

METRIC = "recall@1"


def _mode(values: pd.Series) -> float:
    counts = values.value_counts()
    return float(min(counts[counts == counts.max()].index)) if len(counts) else math.nan


def reference_cell(runs: pd.DataFrame) -> tuple[int, float]:
    """(reference batch size, reference memory ratio) of one (profile, dataset)'s runs."""
    batch = _mode(runs["batch_size"])
    memory = _mode(runs.loc[runs["memory_ratio"] > 0, "memory_ratio"])
    return (int(batch) if not math.isnan(batch) else 0), memory


def side(runs: pd.DataFrame, label: str, batch: int, memory: float) -> pd.DataFrame:
    """Runs of one claim side at one cell (runs: done runs of one profile and dataset)."""
    sel = parse_label(label)
    mask = [config_matches(sel, r, batch, memory) for r in runs.to_dict("records")]
    return runs[pd.Series(mask, index=runs.index, dtype=bool)]


def claim_batch(claim: Claim, runs: pd.DataFrame, ref_batch: int, memory: float) -> int | None:
    """The batch size a claim is judged at; None when 'small' has no batch below the reference
    with runs on both sides."""
    if claim.batch == "ref":
        return ref_batch
    for b in sorted(int(x) for x in runs["batch_size"].unique() if int(x) < ref_batch):
        if len(side(runs, claim.a, b, memory)) and len(side(runs, claim.b, b, memory)):
            return b
    return None


def reported_diff(claim: Claim, dataset: str, reported: pd.DataFrame) -> float:
    """mean(A) - mean(B) in the first source table that reports both on this dataset."""
    if claim.batch != "ref":
        return math.nan
    rep = reported[(reported["metric"] == METRIC) & (reported["dataset"] == dataset)]
    for _, tab in rep.groupby("key", sort=False):
        a, b = tab[tab["variant"] == claim.a], tab[tab["variant"] == claim.b]
        if len(a) and len(b):
            return float(a["mean"].iloc[0]) - float(b["mean"].iloc[0])
    return math.nan


def judge(claim: Claim, runs: pd.DataFrame, reported: pd.DataFrame) -> dict:
    """One claim on one (profile, dataset)'s done runs (select_epoch output)."""
    ref_batch, memory = reference_cell(runs)
    batch = claim_batch(claim, runs, ref_batch, memory)
    empty = runs.iloc[0:0]
    a = side(runs, claim.a, batch, memory) if batch else empty
    b = side(runs, claim.b, batch, memory) if batch else empty
    sa, sb = summarize(a[METRIC]), summarize(b[METRIC])
    result, p = verdict(claim.relation, sa, sb)
    profile, dataset = runs["profile"].iloc[0], runs["dataset"].iloc[0]
    return {
        "claim": claim.text, "source": claim.source, "relation": claim.relation,
        "a": claim.a, "b": claim.b, "profile": profile, "dataset": dataset,
        "scale": "paper" if profile == PAPER_PROFILE else f"demo-scale ({profile} profile)",
        "batch_size": batch if batch else math.nan, "n_a": sa.n, "mean_a": sa.mean,
        "std_a": sa.std, "n_b": sb.n, "mean_b": sb.mean, "std_b": sb.std,
        "diff": sa.mean - sb.mean if sa.n and sb.n else math.nan,
        "spread": spread_of_difference(sa, sb), "p_one_sided": p, "verdict": result,
        "reported_diff": reported_diff(claim, dataset, reported) if profile == PAPER_PROFILE
        else math.nan,
    }  # fmt: skip


def judge_all(runs: pd.DataFrame, reported: pd.DataFrame,
              claims: tuple[Claim, ...] = CLAIMS) -> pd.DataFrame:  # fmt: skip
    """Every claim on every (profile, dataset) with done runs; rows where neither side has a
    run are dropped (the claim was not tested there)."""
    rows = []
    metric_runs = runs[runs["task"] == "metric"]
    for _, grp in metric_runs.groupby(["profile", "dataset"], sort=True):
        for claim in claims:
            row = judge(claim, grp, reported)
            if row["n_a"] or row["n_b"]:
                rows.append(row)
    return pd.DataFrame(rows)


def untested_claims(judged: pd.DataFrame, claims: tuple[Claim, ...] = CLAIMS) -> list[Claim]:
    seen = set(judged["claim"]) if len(judged) else set()
    return [c for c in claims if c.text not in seen]
