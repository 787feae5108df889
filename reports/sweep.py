"""Thesis table 5.14 (the PC-XBN lambda sweep on CIFAR-100) under its two readings, side by side.

Tables 5.14 and 5.15 cannot both describe the default margins: at lambda_mu 0.5, lambda_sigma 1
table 5.14 gives 85.0, table 5.15 39.69 with the default margins and 80.07 with the adjusted ones.
So the ``thesis-pc-sweep`` study runs the sweep twice (bench.studies): reading A with the
protocol's default miner margins (0.2/0.8), reading B with the adjusted margins of thesis
appendix 9 (0.1/2.0). Each point of table 5.14 (Recall@1 at one swept lambda, the other at its
default) is compared with the study runs of its cell under either reading: the same cell, but for
the margins (reports.reported.match_runs).

Which reading the reported numbers fit (``sweep_verdict``), a rule fixed before any run:

1. Points: the table's rows with at least one run under both readings. Fewer than
   ``MIN_POINTS`` (2): "not enough runs".
2. A reading's error at a point is |mean over seeds - reported|; its fit is the mean absolute
   difference (MAD) over the points.
3. Closer reading: D = MAD_A - MAD_B, with the 95% t interval of the mean of the per-point
   differences e_A - e_B (paired over the points, n - 1 df: the sweep's points are the
   replicates). The interval above 0: B is closer, by D points; below 0: A is closer, by -D;
   containing 0: neither is. With zero spread the interval is the point D.
4. A reading fits when at least half of the points are reproduced under it, by the tables'
   per-number rule (|diff| <= max(1 point, 2 x spread); the thesis ran once and gives no std).

Verdicts: "fits reading R better by X points" (R is closer and fits); "neither fits; reading R
is closer by X points" (R is closer, but does not fit); "neither fits" (neither is closer, none
fits); "cannot tell the readings apart" (neither is closer, at least one fits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from reports.inference import TOO_FEW, one_sample_difference
from reports.render import REPRODUCED, fmt_ci, fmt_num, fmt_pm, number_verdict
from reports.reported import ADJUSTED_MARGINS, DEFAULT_MARGINS, match_runs, parse_label
from reports.tables import compare_row, one_run_per_seed

SWEEP_KEY = "thesis table 5.14"
SWEEP_STEM = "thesis_table5_14_readings"  # its files under report/tables/
# reading -> (what it is, the miner margins pos/neg); bench.studies labels its blocks the same way
READINGS: dict[str, tuple[str, tuple[float, float]]] = {
    "A": ("default margins 0.2/0.8", DEFAULT_MARGINS),
    "B": ("adjusted margins 0.1/2.0 (thesis appendix 9)", ADJUSTED_MARGINS),
}
MIN_POINTS = 2  # a t interval over the points needs two
LEVEL = 0.95
PER_READING = ("n", "mean", "std", "diff", "verdict", "run_ids")
COLUMNS = ["lambda", "value", "metric", "reported"] + [
    f"{c}_{r}" for r in READINGS for c in PER_READING
]


@dataclass(frozen=True)
class SweepVerdict:
    points: int  # table rows with runs under both readings
    mad: dict[str, float]  # reading -> mean |ours - reported| over those points
    reproduced: dict[str, int]  # reading -> points reproduced
    diff: float  # MAD_A - MAD_B
    ci: tuple[float, float]  # its LEVEL t interval (paired over the points)
    closer: str | None  # the reading the interval says is closer, None when it contains 0
    text: str


def swept_option(label: str) -> tuple[str, float]:
    """'pc_xbn[lambda_mu=0.2]' -> ('lambda_mu', 0.2): the one option a sweep row sets."""
    options = parse_label(label).options
    if len(options) != 1:
        raise ValueError(f"table 5.14 row {label!r} must set exactly one option")
    name, value = options[0]
    return name, float(value)


def sweep_points(runs: pd.DataFrame, reported: pd.DataFrame) -> pd.DataFrame:
    """One row per point of table 5.14: the reported value and, per reading, our runs' n, mean,
    std, ours - reported, the per-number verdict and the run ids. ``runs``: select_epoch output
    of the study runs (reports.configs.study_runs), one run per config and seed."""
    rows = []
    for rep in reported[reported["key"] == SWEEP_KEY].to_dict("records"):
        name, value = swept_option(str(rep["variant"]))
        row = {"lambda": name, "value": value, "metric": rep["metric"],
               "reported": float(rep["mean"])}  # fmt: skip
        for reading, (_, margins) in READINGS.items():
            matched = one_run_per_seed(match_runs(rep, runs, margins))
            c = compare_row(rep, matched[rep["metric"]])
            row.update({
                f"n_{reading}": c["n"], f"mean_{reading}": c["ours_mean"],
                f"std_{reading}": c["ours_std"], f"diff_{reading}": c["diff"],
                f"verdict_{reading}": number_verdict(c),
                f"run_ids_{reading}": " ".join(sorted(matched["run_id"])),
            })  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def has_runs(points: pd.DataFrame) -> bool:
    """Whether any point has a run under either reading (the report shows the section then)."""
    return bool(len(points)) and bool((points[[f"n_{r}" for r in READINGS]] > 0).any(axis=None))


def _wording(closer: str | None, fits: dict[str, bool], diff: float) -> str:
    if closer is None:
        return "cannot tell the readings apart" if any(fits.values()) else "neither fits"
    if fits[closer]:
        return f"fits reading {closer} better by {abs(diff):.2f} points"
    return f"neither fits; reading {closer} is closer by {abs(diff):.2f} points"


def sweep_verdict(points: pd.DataFrame) -> SweepVerdict:
    """Which reading table 5.14's numbers fit (the rule in the module docstring)."""
    both = points[(points["n_A"] > 0) & (points["n_B"] > 0)]
    k = len(both)
    err = {r: both[f"diff_{r}"].abs().to_numpy(dtype=float) for r in READINGS}
    mad = {r: float(e.mean()) if k else math.nan for r, e in err.items()}
    reproduced = {r: int((both[f"verdict_{r}"] == REPRODUCED).sum()) for r in READINGS}
    if k < MIN_POINTS:
        return SweepVerdict(k, mad, reproduced, math.nan, (math.nan, math.nan), None, TOO_FEW)
    d = one_sample_difference(list(err["A"] - err["B"]), 0.0)  # mean = MAD_A - MAD_B
    low, high = d.ci(LEVEL)
    closer = "B" if low > 0 else "A" if high < 0 else None
    fits = {r: 2 * n >= k for r, n in reproduced.items()}
    return SweepVerdict(k, mad, reproduced, d.diff, (low, high), closer,
                        _wording(closer, fits, d.diff))  # fmt: skip


def display_sweep(points: pd.DataFrame) -> pd.DataFrame:
    """The human form of ``sweep_points``: each reading's mean ± std (n), its difference to the
    reported number and the per-number verdict."""
    rows = []
    for p in points.to_dict("records"):
        row = {"lambda": f"{p['lambda']} = {p['value']:.1f}", "reported": f"{p['reported']:.2f}"}
        for r, (name, _) in READINGS.items():
            n = int(p[f"n_{r}"])
            ours = f"{fmt_pm(p[f'mean_{r}'], p[f'std_{r}'])} (n={n})" if n else "not run"
            row.update({f"{r}: {name}": ours, f"{r} − reported": fmt_num(p[f"diff_{r}"]),
                        f"{r} verdict": p[f"verdict_{r}"]})  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def verdict_text(v: SweepVerdict) -> str:
    """The verdict with the numbers behind it, one paragraph of Markdown."""
    if v.text == TOO_FEW:
        return (f"**Verdict: {TOO_FEW}**: {v.points} point(s) of table 5.14 have runs under both "
                f"readings; the comparison needs {MIN_POINTS}.\n")  # fmt: skip
    mads = ", ".join(f"reading {r} {v.mad[r]:.2f}" for r in READINGS)
    kept = ", ".join(f"{r} {v.reproduced[r]} of {v.points}" for r in READINGS)
    return (
        f"Over the {v.points} points with runs under both readings, mean |ours − reported|: "
        f"{mads} (A − B = {fmt_ci(v.diff, *v.ci)}, {LEVEL:.0%} t interval over the points). "
        f"Points reproduced: {kept}. **Verdict: {v.text}.**\n"
    )
