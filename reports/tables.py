"""Runs -> comparison tables (pure: DataFrames in, DataFrames out).

Every table is long: one row per (configuration, metric) with our mean +- std over seeds (sample
std, ddof = 1) and n, the reported mean +- std and runs count, the difference ours - reported with
its 95% CI and two-sided p: Welch's t where the source gives a std and a runs count >= 2 (and we
have n >= 2), else the one-sample t of our runs against the reported mean taken as exact.

Runs are pooled only within one config (``config_key``, reports.configs) and each seed counts
once: a reported number is compared with the study runs of the cell that targets it, and every
other run gets a row of its own config, labelled with what differs (``label``).

``n_init`` / ``n_warmup``: of a row's n runs, how many had their selected epoch before the main
phase: the network as loaded (epoch -1, phase "init") or after the warm-up (epoch 0), which the
best epoch may be (XBN paper, footnote 6: the best L2+BN numbers of its table 3 are the
pre-trained network's).
"""

from __future__ import annotations

import math

import pandas as pd

from bench.store import SUMMARY_PHASE
from reports.configs import label_runs
from reports.inference import Difference, one_sample_difference, welch_from_stats
from reports.reported import match_runs
from reports.stats import PRE_MAIN_COUNTS, summarize

COLUMNS = [
    "table", "dataset", "variant", "batch_size", "memory_ratio", "metric", "n", "ours_mean",
    "ours_std", "reported_mean", "reported_std", "reported_runs", "diff", "ci_low", "ci_high", "p",
    "test", "run_ids", *PRE_MAIN_COUNTS.values(),
]  # fmt: skip
GROUP_KEYS = ["profile", "dataset", "label", "batch_size", "memory_ratio", "config_key"]
GROUP_METRICS = ("recall@1", "recall@10")


def one_run_per_seed(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` of one config, checked: a seed counted twice would shrink the std and inflate n."""
    twice = runs["seed"][runs["seed"].duplicated()]
    if len(twice):
        raise ValueError(f"seed(s) {sorted(set(twice))} counted twice in one group: "
                         f"{' '.join(sorted(runs['run_id']))}")  # fmt: skip
    return runs


def pre_main_counts(runs: pd.DataFrame) -> dict[str, int]:
    """{n_init: k, n_warmup: k}: runs whose selected epoch is that pre-main phase."""
    return {
        col: int((runs[SUMMARY_PHASE] == phase).sum()) for phase, col in PRE_MAIN_COUNTS.items()
    }


def ours_minus_reported(ours: pd.Series, reported: dict) -> Difference:
    """ours - reported: Welch from the reported summary (mean, std, runs) where it gives a std and
    at least two runs; else the one-sample t against the reported mean (reports.inference)."""
    rep_std = float(reported["std"])
    rep_n = int(reported["runs"]) if not pd.isna(reported["runs"]) else 0
    if not math.isnan(rep_std) and rep_n >= 2:
        s = summarize(ours)
        return welch_from_stats(s.mean, s.std, s.n, float(reported["mean"]), rep_std, rep_n)
    return one_sample_difference(list(ours), float(reported["mean"]))


def compare_row(reported: dict, ours: pd.Series) -> dict:
    """One reported row beside our runs' values ``ours``: diff = ours - reported with its 95% CI
    and two-sided p (``ours_minus_reported``; NaN where a side has n < 2 or no spread)."""
    s = summarize(ours)
    rep_std = float(reported["std"])
    rep_n = int(reported["runs"]) if not pd.isna(reported["runs"]) else 0
    d = ours_minus_reported(ours, reported)
    low, high = d.ci(0.95)
    return {
        "n": s.n, "ours_mean": s.mean, "ours_std": s.std,
        "reported_mean": float(reported["mean"]), "reported_std": rep_std,
        "reported_runs": rep_n if rep_n else math.nan,
        "diff": s.mean - float(reported["mean"]) if s.n else math.nan,
        "ci_low": low, "ci_high": high, "p": d.p_two_sided(), "test": d.method,
    }  # fmt: skip


def reported_comparison(runs: pd.DataFrame, reported: pd.DataFrame) -> pd.DataFrame:
    """Every reported row with our matching runs (``runs``: select_epoch output of the study runs,
    reports.configs.study_runs, one run per config and seed)."""
    rows = []
    for rep in reported.to_dict("records"):
        matched = match_runs(rep, runs)
        if matched["config_key"].nunique() > 1:  # one cell targets each reported row
            raise ValueError(f"reported row {rep['key']} / {rep['dataset']} / {rep['variant']} "
                             f"matches {matched['config_key'].nunique()} configs")  # fmt: skip
        one_run_per_seed(matched)
        ours = matched[rep["metric"]] if len(matched) else pd.Series(dtype=float)
        rows.append({
            "table": rep["key"], "dataset": rep["dataset"], "variant": rep["variant"],
            "batch_size": int(rep["batch_size"]), "memory_ratio": float(rep["memory_ratio"]),
            "metric": rep["metric"], **compare_row(rep, ours),
            "run_ids": " ".join(sorted(matched["run_id"])), **pre_main_counts(matched),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def group_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs with no reported value, one row per config and metric; reported columns stay NaN
    ("-"). The variant column is ``label`` (reports.configs.label_runs: made here when absent).

    Table name: "<profile> runs on <dataset>" (one table per (profile, dataset)).
    """
    if runs.empty:
        return pd.DataFrame(columns=COLUMNS)
    frame = runs if "label" in runs else label_runs(runs, None)
    rows = []
    for key, grp in frame.groupby(GROUP_KEYS, sort=True):
        profile, dataset, label, batch, memory, _ = key
        one_run_per_seed(grp)
        for metric in GROUP_METRICS:
            s = summarize(grp[metric])
            rows.append({
                "table": f"{profile} runs on {dataset}", "dataset": dataset, "variant": label,
                "batch_size": int(batch), "memory_ratio": float(memory), "metric": metric,
                "n": s.n, "ours_mean": s.mean, "ours_std": s.std,
                "run_ids": " ".join(sorted(grp["run_id"])), **pre_main_counts(grp),
            })  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def all_tables(runs: pd.DataFrame, study: pd.DataFrame,
               reported: pd.DataFrame) -> dict[str, pd.DataFrame]:  # fmt: skip
    """{table name: table}: the source tables that have at least one run, then one table per
    (profile, dataset) for the runs no reported row claims. ``runs``: every done run, labelled
    (reports.configs.label_runs); ``study``: those that may be compared with reported numbers
    (reports.configs.study_runs). Source tables without any run are left out here (REPORT.md
    lists them)."""
    out: dict[str, pd.DataFrame] = {}
    comparison = reported_comparison(study, reported)
    for key, tab in comparison.groupby("table", sort=False):
        if tab["n"].sum() > 0:
            out[str(key)] = tab.reset_index(drop=True)
    claimed = {r for ids in comparison["run_ids"] for r in ids.split()}
    rest = group_table(runs[~runs["run_id"].isin(claimed)])
    for key, tab in rest.groupby("table", sort=True):
        out[str(key)] = tab.reset_index(drop=True)
    return out


def tables_without_runs(runs: pd.DataFrame, reported: pd.DataFrame) -> list[str]:
    comparison = reported_comparison(runs, reported)
    sums = comparison.groupby("table", sort=False)["n"].sum()
    return [str(k) for k, v in sums.items() if v == 0]


def selection_gain(runs: pd.DataFrame) -> pd.DataFrame:
    """What selecting the best epoch on the test set adds: mean over runs of best - last,
    per (profile, dataset) and overall (profile "all")."""
    if runs.empty:
        return pd.DataFrame(columns=["profile", "dataset", "n", "gain_r1", "gain_r10"])
    g = runs.assign(
        gain_r1=runs["best_recall@1"] - runs["last_recall@1"],
        gain_r10=runs["best_recall@10"] - runs["last_recall@10"],
    )
    per = g.groupby(["profile", "dataset"], sort=True).agg(
        n=("run_id", "size"), gain_r1=("gain_r1", "mean"), gain_r10=("gain_r10", "mean")
    )
    per = per.reset_index()
    total = pd.DataFrame([{
        "profile": "all", "dataset": "all", "n": len(g),
        "gain_r1": g["gain_r1"].mean(), "gain_r10": g["gain_r10"].mean(),
    }])  # fmt: skip
    return pd.concat([per, total], ignore_index=True)
