"""The qualitative claims of the paper and the thesis, as data, judged on our runs.

A claim compares variant label A with label B (grammar of ``reports.reported``) on Recall@1 of the
selected epoch, per (profile, dataset). Both sides are taken at the same cell: the reference
batch size (the most common batch size among that profile's done runs on that dataset, ties to the
smaller: 64 for the paper grid) and the reference memory ratio (the most common non-zero one),
unless the label fixes the batch (``no_xbm_512``) or the claim asks for ``small`` batches (the
smallest batch size below the reference where both A and B have runs). Verdict rules: see
``hypothesis`` and reports.inference (four verdicts, Holm within each family of
reports.families). The two sides are compared by a paired t on per-seed differences where
their runs pair (reports.pairing: the same config apart from the variant, the same seeds), by
Welch otherwise. The runs given are the
study runs (reports.configs.comparable_runs), so that a side is one config, each seed once.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from reports.inference import (
    DEFAULT_MARGIN,
    Difference,
    Hypothesis,
    Verdict,
    judge_family,
)  # fmt: skip
from reports.pairing import compare
from reports.reported import PAPER_PROFILE, config_matches, parse_label
from reports.stats import summarize


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
# the claims' grammar -> what the claim asserts about Delta = A - B (reports.inference)
HYPOTHESES: dict[str, Hypothesis] = {
    "A > B": Hypothesis("greater"),
    "A < B": Hypothesis("less"),
    "A ~ B": Hypothesis("matches", DEFAULT_MARGIN),
    "A >= B - tol": Hypothesis("at_least", DEFAULT_MARGIN),
}
DIFF_KEY, HYP_KEY = "_difference", "_hypothesis"  # private keys of an unjudged row
COLUMNS = [
    "family", "claim_id", "claim", "source", "relation", "a", "b", "profile", "dataset", "scale",
    "batch_size", "n_a", "mean_a", "std_a", "n_b", "mean_b", "std_b", "method", "n", "diff",
    "sd", "ci_low", "ci_high", "level", "p", "p_holm", "mdd", "seeds_needed", "more_than_max",
    "correlation", "wilcoxon_p", "boot_low", "boot_high", "note", "verdict", "reported_diff",
    "run_ids",
]  # fmt: skip


def hypothesis(relation: str) -> Hypothesis:
    """HYPOTHESES[relation]; an unknown relation is an error listing the known ones."""
    if relation not in HYPOTHESES:
        raise ValueError(f"unknown relation {relation!r}; use {', '.join(map(repr, HYPOTHESES))}")
    return HYPOTHESES[relation]


def _mode(values: pd.Series) -> float:
    counts = values.value_counts()
    return float(min(counts[counts == counts.max()].index)) if len(counts) else math.nan


def reference_cell(runs: pd.DataFrame) -> tuple[int, float]:
    """(reference batch size, reference memory ratio) of one (profile, dataset)'s runs."""
    batch = _mode(runs["batch_size"])
    memory = _mode(runs.loc[runs["memory_ratio"] > 0, "memory_ratio"])
    return (int(batch) if not math.isnan(batch) else 0), memory


def _lr(config_key: str) -> float:
    return float(json.loads(config_key).get("lr", math.nan))


def at_reference_lr(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of one (profile, dataset) at its reference LR: the most common one, ties to the
    lower median of the tied values (the middle of an LR sweep such as demo-regimes' 0.5x, 1x,
    2x). Claims are judged there, so that a sweep over the LR never puts two configs in an arm
    (reports.pairing.one_config); the regimes figure (reports.regimes) shows the other LRs."""
    if runs.empty:
        return runs
    lr = runs["config_key"].map(_lr)
    counts = lr.value_counts()
    tied = sorted(counts[counts == counts.max()].index)
    return runs[(lr == tied[(len(tied) - 1) // 2]).to_numpy()]


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


def reported_difference(a: str, b: str, dataset: str, reported: pd.DataFrame,
                        metric: str = METRIC) -> float:  # fmt: skip
    """mean(a) - mean(b) in the first source table that reports both labels on this dataset
    (NaN where none does)."""
    rep = reported[(reported["metric"] == metric) & (reported["dataset"] == dataset)]
    for _, tab in rep.groupby("key", sort=False):
        ra, rb = tab[tab["variant"] == a], tab[tab["variant"] == b]
        if len(ra) and len(rb):
            return float(ra["mean"].iloc[0]) - float(rb["mean"].iloc[0])
    return math.nan


def reported_diff(claim: Claim, dataset: str, reported: pd.DataFrame) -> float:
    """The claim's difference in the source's own numbers (reference batch claims only)."""
    if claim.batch != "ref":
        return math.nan
    return reported_difference(claim.a, claim.b, dataset, reported)


def side_summary(values: pd.Series) -> dict[str, float]:
    s = summarize(values)
    return {"n": s.n, "mean": s.mean, "std": s.std}


def claim_row(text: str, source: str, relation: str, a: str, b: str, profile: str,
              dataset: str, batch: float, runs_a: pd.DataFrame, runs_b: pd.DataFrame,
              metric: str, reported: float, at: str = "",
              claim_id: str = "") -> dict[str, Any]:  # fmt: skip
    """One unjudged row of the claims table: the two arms summarised and their ``Difference``
    (reports.pairing.compare) with the claim's ``Hypothesis``, under private keys that
    ``judge_rows`` consumes. ``at``: where the relation is read, shown after it ("epoch 2");
    ``claim_id``: the claim's id, which decides its family (reports.families)."""
    sa, sb = side_summary(runs_a[metric]), side_summary(runs_b[metric])
    return {
        "claim_id": claim_id, "claim": text, "source": source,
        "relation": f"{relation} at {at}" if at else relation, "a": a, "b": b,
        "profile": profile, "dataset": dataset,
        "scale": "paper" if profile == PAPER_PROFILE else f"demo-scale ({profile} profile)",
        "batch_size": batch, "n_a": sa["n"], "mean_a": sa["mean"], "std_a": sa["std"],
        "n_b": sb["n"], "mean_b": sb["mean"], "std_b": sb["std"], "reported_diff": reported,
        "run_ids": " ".join(sorted({*runs_a["run_id"], *runs_b["run_id"]})),  # each run once
        DIFF_KEY: compare(runs_a, runs_b, metric), HYP_KEY: hypothesis(relation),
    }  # fmt: skip


def judge(claim: Claim, runs: pd.DataFrame, reported: pd.DataFrame) -> dict[str, Any]:
    """One claim on one (profile, dataset)'s runs (select_epoch output), unjudged."""
    ref_batch, memory = reference_cell(runs)
    batch = claim_batch(claim, runs, ref_batch, memory)
    empty = runs.iloc[0:0]
    a = side(runs, claim.a, batch, memory) if batch else empty
    b = side(runs, claim.b, batch, memory) if batch else empty
    profile, dataset = runs["profile"].iloc[0], runs["dataset"].iloc[0]
    rep = reported_diff(claim, dataset, reported) if profile == PAPER_PROFILE else math.nan
    return claim_row(claim.text, claim.source, claim.relation, claim.a, claim.b, profile,
                     dataset, batch if batch else math.nan, a, b, METRIC, rep,
                     claim_id=claim.id)  # fmt: skip


def _verdict_columns(diff: Difference, v: Verdict) -> dict[str, Any]:
    boot = diff.bootstrap_ci or (math.nan, math.nan)
    return {
        "method": diff.method, "n": diff.n, "diff": diff.diff, "sd": diff.sd, "ci_low": v.ci[0],
        "ci_high": v.ci[1], "level": v.level, "p": v.p, "p_holm": v.p_holm, "mdd": v.mdd,
        "seeds_needed": v.seeds_needed if v.seeds_needed is not None else math.nan,
        "more_than_max": v.more_than_max,
        "correlation": diff.correlation if diff.correlation is not None else math.nan,
        "wilcoxon_p": diff.wilcoxon_p if diff.wilcoxon_p is not None else math.nan,
        "boot_low": boot[0], "boot_high": boot[1], "note": v.note, "verdict": v.verdict,
    }  # fmt: skip


def judge_rows(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """``rows`` judged as one family: family-wise error ``ALPHA`` across them (Holm,
    reports.inference.judge_family); each CI at the level Holm tested it. Which rows form a
    family: reports.families."""
    if not rows:
        return pd.DataFrame(columns=COLUMNS)
    verdicts = judge_family([(r[DIFF_KEY], r[HYP_KEY]) for r in rows])
    out = []
    for r, v in zip(rows, verdicts):
        plain = {k: x for k, x in r.items() if k not in (DIFF_KEY, HYP_KEY)}
        out.append({**plain, **_verdict_columns(r[DIFF_KEY], v)})
    return pd.DataFrame(out, columns=COLUMNS)


def claim_rows(runs: pd.DataFrame, reported: pd.DataFrame,
               claims: tuple[Claim, ...] = CLAIMS) -> list[dict[str, Any]]:  # fmt: skip
    """Every claim on every (profile, dataset) with done runs, unjudged; rows where neither
    side has a run are dropped (the claim was not tested there)."""
    rows = []
    metric_runs = runs[runs["task"] == "metric"]
    for _, grp in metric_runs.groupby(["profile", "dataset"], sort=True):
        grp = at_reference_lr(grp)
        for claim in claims:
            row = judge(claim, grp, reported)
            if row["n_a"] or row["n_b"]:
                rows.append(row)
    return rows


def untested_claims(judged: pd.DataFrame, claims: tuple[Claim, ...] = CLAIMS) -> list[Claim]:
    seen = set(judged["claim"]) if len(judged) else set()
    return [c for c in claims if c.text not in seen]
