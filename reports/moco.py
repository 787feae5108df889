"""MoCo runs (task "moco", paper appendix B and figure 2): k-NN accuracy per epoch with and
without XBN, a table of early, last and best accuracies, and the claim "XBN speeds up MoCo early
in training". Pure: frames in, frames or a Figure out. MoCo runs never enter the metric tables.
"""

from __future__ import annotations

import math

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from reports import style as S
from reports.claims import Claim, claim_row
from reports.figures import _grid_for, _lines, _panel
from reports.render import fmt_pm
from reports.reported import PAPER_PROFILE
from reports.stats import summarize

METRIC = "knn_acc"
# The epoch the claim is judged at: the paper's epoch 15 (of 200, "~4 points at epoch 15 on
# CIFAR-10 and CIFAR-100"); the cpu profile trains 10 epochs, so its early epoch is 2: past the
# first epoch (queue still filling, noisiest k-NN), before the cosine LR has fallen by much.
EARLY_EPOCH = {"paper": 15, "cpu": 2}
REPORTED_EARLY_GAIN = 4.0  # paper appendix B: about 4 points at epoch 15, both datasets
MOCO_CLAIM = Claim(
    "moco_xbn_early",
    "XBN speeds up MoCo early in training (k-NN accuracy at an early epoch)",
    "paper fig. 2, appendix B",
    "xbn",
    "xbm",
    "A > B",
)
NAMES = {"xbm": "MoCo (xbm)", "xbn": "MoCo+XBN (xbn)"}
FIGURE = ("moco_knn", "k-NN accuracy per epoch, MoCo with and without XBN (paper fig. 2)")
TABLE_COLUMNS = [
    "profile",
    "dataset",
    "variant",
    "differs",
    "n",
    "early_epoch",
    "early_mean",
    "early_std",
    "last_epoch",
    "last_mean",
    "last_std",
    "best_mean",
    "best_std",
    "best_epoch_mean",
    "run_ids",
]


def early_epoch(profile: str, epochs: int) -> int:
    """The claim's epoch for a profile; other profiles: 15/200 of their epochs (at least 1)."""
    return min(EARLY_EPOCH.get(profile, max(1, round(epochs * 15 / 200))), max(epochs, 1))


def moco_runs(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[(runs["task"] == "moco") & (runs["status"] == "done")]


def at_epoch(epochs: pd.DataFrame, run_ids, epoch: int) -> pd.Series:
    """k-NN accuracy of each run at one main-phase epoch (runs that lack it are left out)."""
    rows = epochs[
        epochs["run_id"].isin(set(run_ids))
        & (epochs["phase"] == "main")
        & (epochs["epoch"] == epoch)
    ]
    return rows.set_index("run_id")[METRIC]


def _groups(runs: pd.DataFrame, epochs: pd.DataFrame):
    """(profile, dataset, last epoch, early epoch, that cell's runs) for every MoCo cell."""
    done = moco_runs(runs)
    for (profile, dataset), grp in done.groupby(["profile", "dataset"], sort=True):
        last = int(grp["last_epoch"].max())
        yield profile, dataset, last, early_epoch(profile, last), grp


def moco_table(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """One row per (profile, dataset, variant, config): k-NN accuracy at the early epoch, at the
    last epoch (no test-set selection) and at the best epoch, mean and sample std over seeds.
    ``differs``: what sets a config apart (reports.configs.label_runs; "" where absent)."""
    rows = []
    done = moco_runs(runs)
    keys = ["profile", "dataset", "variant", "config_key"]
    for (profile, dataset, variant, _), sub in done.groupby(keys, sort=True):
        last = int(sub["last_epoch"].max())
        early = early_epoch(profile, last)
        e = summarize(at_epoch(epochs, sub["run_id"], early))
        f, b = summarize(sub["last_knn_acc"]), summarize(sub["best_knn_acc"])
        rows.append(
            {
                "profile": profile,
                "dataset": dataset,
                "variant": variant,
                "differs": sub["differs"].iloc[0] if "differs" in sub else "",
                "n": len(sub),
                "early_epoch": early,
                "early_mean": e.mean,
                "early_std": e.std,
                "last_epoch": last,
                "last_mean": f.mean,
                "last_std": f.std,
                "best_mean": b.mean,
                "best_std": b.std,
                "best_epoch_mean": float(sub["best_epoch"].mean()),
                "run_ids": " ".join(sorted(sub["run_id"])),
            }
        )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def display_moco_table(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "dataset": f"{r['dataset']} ({r['profile']})",
                "run": NAMES.get(r["variant"], r["variant"])
                + (f" ({r['differs']})" if r["differs"] else ""),
                "n": str(r["n"]),
                "early (epoch)": f"{fmt_pm(r['early_mean'], r['early_std'])} ({r['early_epoch']})",
                "last (epoch)": f"{fmt_pm(r['last_mean'], r['last_std'])} ({r['last_epoch']})",
                "best": fmt_pm(r["best_mean"], r["best_std"]),
                "best epoch (mean)": f"{r['best_epoch_mean']:.1f}",
            }
            for r in table.to_dict("records")
        ]
    )


def _arm(grp: pd.DataFrame, epochs: pd.DataFrame, variant: str, epoch: int) -> pd.DataFrame:
    """The runs of one variant with their k-NN accuracy at ``epoch`` (runs without it dropped)."""
    runs = grp[grp["variant"] == variant]
    acc = at_epoch(epochs, runs["run_id"], epoch)
    return runs.assign(**{METRIC: runs["run_id"].map(acc)}).dropna(subset=[METRIC])


def moco_claim_rows(runs: pd.DataFrame, epochs: pd.DataFrame) -> list[dict]:
    """MOCO_CLAIM on every (profile, dataset) with MoCo runs, as unjudged rows of the claims
    table (reports.claims.claim_row): k-NN accuracy of xbn vs xbm at the early epoch, paired
    by seed where the runs pair (reports.pairing)."""
    rows = []
    for profile, dataset, _, early, grp in _groups(runs, epochs):
        paper = profile == PAPER_PROFILE
        reported = REPORTED_EARLY_GAIN if paper and dataset in ("cifar10", "cifar100") else math.nan
        rows.append(claim_row(
            MOCO_CLAIM.text, MOCO_CLAIM.source, MOCO_CLAIM.relation,
            MOCO_CLAIM.a, MOCO_CLAIM.b, profile, dataset, float(grp["batch_size"].iloc[0]),
            _arm(grp, epochs, MOCO_CLAIM.a, early), _arm(grp, epochs, MOCO_CLAIM.b, early),
            METRIC, reported, at=f"epoch {early}", claim_id=MOCO_CLAIM.id,
        ))  # fmt: skip
    return rows


def fig_moco(epochs: pd.DataFrame, runs: pd.DataFrame) -> Figure | None:
    """Paper fig. 2: k-NN accuracy per epoch (epoch 0: the untrained encoder), MoCo vs MoCo+XBN,
    one panel per (profile, dataset), mean and +- std band over seeds; dotted: the early epoch."""
    done = moco_runs(runs)
    data = epochs[
        epochs["run_id"].isin(set(done["run_id"])) & epochs["phase"].isin(("init", "main"))
    ]
    if data.empty:
        return None
    data = data.merge(done[["run_id", "variant", "profile", "dataset"]], on="run_id")
    data = data.assign(panel=[_panel(p, d) for p, d in zip(data["profile"], data["dataset"])])
    panels = sorted(data["panel"].unique())
    with S.style():
        fig, axes = _grid_for(len(panels))
        for ax, panel in zip(axes, panels):
            sub = data[data["panel"] == panel]
            _lines(ax, sub, "epoch", METRIC)
            early = early_epoch(sub["profile"].iloc[0], int(sub["epoch"].max()))
            ax.axvline(early, color="grey", linestyle=":", linewidth=1)
            ax.set(title=panel, xlabel="epoch", ylabel="k-NN accuracy (%)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        handles = [Line2D([], [], color=S.colour(v), marker=S.marker(v), markersize=4,
                          label=NAMES.get(v, v)) for v in S.ordered(data["variant"])]  # fmt: skip
        fig.legend(handles=handles, loc="outside right upper", fontsize="small")
    return fig
