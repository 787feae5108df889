"""The staleness cost and the share of it that XBN recovers across training regimes (issue 23,
study ``demo-regimes``: memory ratio x LR x {xbm, xbn, oracle_xbm} x seeds).

The claims are judged at one reference cell (reports.claims.reference_cell); this figure groups
the runs by cell itself. A cell is one ``oracle_xbm`` config (any memory ratio, any LR, each
refresh interval apart) with the ``xbm`` and ``xbn`` runs (default options) trained as it apart
from the variant (reports.mechanism.same_setting), so runs trained differently are never pooled.
Per cell, over the seeds the three arms share: the staleness cost, oracle - XBM on Recall@1, with
its paired t 95% CI (reports.inference.paired_difference), and XBN's share of it, (XBN - XBM) /
(oracle - XBM), with Fieller's 95% set (reports.recovery.paired_share). Neither is a claim: no
Holm. The share is drawn where its set is bounded (equivalently: the cost's own 95% t interval
excludes 0); elsewhere the cell is marked "unbounded", never given a number.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from reports import mechanism as MECH
from reports import style as S
from reports.claims import METRIC
from reports.inference import paired_difference
from reports.pairing import by_seed
from reports.ratio import BOUNDED
from reports.recovery import paired_share

FREE = ("variant", "variant_options", "memory_ratio", "lr")  # what the figure's axes vary
COLUMNS = [
    "profile", "dataset", "setting", "refresh", "lr", "memory_ratio", "n", "cost", "cost_low",
    "cost_high", "share", "share_low", "share_high", "share_kind",
]  # fmt: skip


def _setting(config_key: str) -> str:
    """The config without the fields the figure varies: the cells of one block share it."""
    cfg = json.loads(config_key)
    return json.dumps({k: v for k, v in cfg.items() if k not in FREE}, sort_keys=True)


def _point(oracle: pd.DataFrame, xbm: pd.DataFrame, xbn: pd.DataFrame) -> dict:
    key = oracle["config_key"].iloc[0]
    cost = paired_difference(by_seed(oracle, METRIC), by_seed(xbm, METRIC))
    low, high = cost.ci(0.95)
    share = paired_share(oracle, xbm, xbn)
    return {
        "profile": oracle["profile"].iloc[0], "dataset": oracle["dataset"].iloc[0],
        "setting": _setting(key),
        "refresh": MECH.refresh_interval(oracle["variant_options"].iloc[0]),
        "lr": float(json.loads(key)["lr"]), "memory_ratio": float(oracle["memory_ratio"].iloc[0]),
        "n": share["n"], "cost": cost.diff, "cost_low": low, "cost_high": high,
        "share": share["share"], "share_low": share["ci"].low, "share_high": share["ci"].high,
        "share_kind": share["ci"].kind,
    }  # fmt: skip


def regime_points(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per cell with an oracle, xbm and xbn arm (``COLUMNS``); blocks (profile, dataset,
    setting, refresh) with fewer than two cells are dropped: no regime varies there."""
    metric = runs[runs["task"] == "metric"]
    rows = []
    for _, grp in metric.groupby(["profile", "dataset"], sort=True):
        xbm_all = grp[grp["variant"] == "xbm"]
        xbn_all = grp[(grp["variant"] == "xbn") & (grp["variant_options"] == "{}")]
        for key, oracle in grp[grp["variant"] == MECH.ORACLE].groupby("config_key", sort=True):
            xbm, xbn = MECH.same_setting(xbm_all, key), MECH.same_setting(xbn_all, key)
            if len(xbm) and len(xbn):
                rows.append(_point(oracle, xbm, xbn))
    points = pd.DataFrame(rows, columns=COLUMNS)
    if points.empty:
        return points
    block = ["profile", "dataset", "setting", "refresh"]
    cells = points.groupby(block)["lr"].transform("size")
    return points[cells >= 2].sort_values([*block, "lr", "memory_ratio"]).reset_index(drop=True)


def _errorbar(ax: Axes, x, y, low, high, colour: str, gid: str) -> None:
    """Points with their interval; ``gid`` names the data line (not the caps) for readers."""
    y, low, high = (np.asarray(v, dtype=float) for v in (y, low, high))
    bars = ax.errorbar(x, y, yerr=[y - low, high - y], color=colour, marker="o", markersize=4,
                       capsize=3, linewidth=1.3)  # fmt: skip
    bars.lines[0].set_gid(gid)


def _panel(cost_ax: Axes, share_ax: Axes, cell: pd.DataFrame) -> None:
    x = cell["memory_ratio"]
    _errorbar(cost_ax, x, cell["cost"], cell["cost_low"], cell["cost_high"],
              S.colour(MECH.ORACLE), "cost")  # fmt: skip
    shown = cell[cell["share_kind"] == BOUNDED]
    _errorbar(share_ax, shown["memory_ratio"], shown["share"], shown["share_low"],
              shown["share_high"], S.colour("xbn"), "share")  # fmt: skip
    hidden = cell.loc[cell["share_kind"] != BOUNDED, "memory_ratio"]
    near_bottom = share_ax.get_xaxis_transform()  # x in data, y in axes units
    share_ax.plot(hidden, np.full(len(hidden), 0.06), linestyle="none", marker="x",
                  color="0.45", markersize=7, gid="unbounded", transform=near_bottom)  # fmt: skip
    cost_ax.axhline(0.0, color="0.3", linestyle=":", linewidth=0.8)
    for level in (0.0, 1.0):
        share_ax.axhline(level, color="0.3", linestyle=":", linewidth=0.8)
    share_ax.set_xticks(sorted(cell["memory_ratio"].unique()))


def fig_regimes(runs: pd.DataFrame) -> Figure | None:
    """Per block, one column per LR: top, the staleness cost against memory ratio; bottom,
    XBN's share of it (``regime_points``). None without at least two cells in a block."""
    points = regime_points(runs)
    if points.empty:
        return None
    blocks = list(points.groupby(["profile", "dataset", "setting", "refresh"], sort=True))
    ncols = max(b["lr"].nunique() for _, b in blocks)
    with S.style():
        fig = Figure(figsize=(3.0 * ncols + 0.6, 4.6 * len(blocks) + 0.6), layout="constrained")
        axes = fig.subplots(2 * len(blocks), ncols, squeeze=False, sharex="col")
        for i, ((profile, dataset, _, refresh), block) in enumerate(blocks):
            lrs = sorted(block["lr"].unique())
            for j in range(ncols):
                cost_ax, share_ax = axes[2 * i, j], axes[2 * i + 1, j]
                if j >= len(lrs):
                    cost_ax.set_axis_off(), share_ax.set_axis_off()
                    continue
                _panel(cost_ax, share_ax, block[block["lr"] == lrs[j]])
                cost_ax.set_title(f"{dataset} ({profile}), lr {lrs[j]:g}", fontsize="medium")
                share_ax.set_xlabel("memory ratio")
            axes[2 * i, 0].set_ylabel(f"oracle (every {refresh}) − xbm\nRecall@1 points")
            axes[2 * i + 1, 0].set_ylabel("share recovered by xbn")
        _legend(fig)
    return fig


def _legend(fig: Figure) -> None:
    handles = [
        Line2D([], [], color=S.colour(MECH.ORACLE), marker="o", label="staleness cost, 95% t CI"),
        Line2D([], [], color=S.colour("xbn"), marker="o", label="xbn's share, Fieller 95%"),
        Line2D([], [], color="0.45", marker="x", linestyle="none",
               label="share unbounded (cost not resolved)"),
    ]  # fmt: skip
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=3,
        fontsize="small",
        title="paired by seed; no Holm (estimates, not claims)",
        title_fontsize="small",
    )
