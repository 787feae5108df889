"""Figures: each function takes frames and returns a matplotlib Figure (or None when no run is
behind it); the caller saves and closes. No pyplot: figures are ``matplotlib.figure.Figure``.

One style throughout (seaborn whitegrid, one colour per variant in every figure); bands are
mean +- sample std over seeds. Curves, drift, distances and superclass top-k use each
(profile, dataset)'s reference configuration (default head, options and margins, reference batch
size and memory ratio, see ``reports.claims.reference_cell``), so sweeps do not blur them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from reports.claims import reference_cell
from reports.load import TOP_K
from reports.reported import Selector, config_matches

VARIANT_ORDER = (
    "no_xbm", "xbm", "xbm_star", "xbn", "axbn", "pc_xbn", "sc_xbn", "delayed_xbn",
    "centre_xbn", "scaled_xbn",
)  # fmt: skip
_COLOURS = sns.color_palette("tab10", len(VARIANT_ORDER))
PALETTE = dict(zip(VARIANT_ORDER, _COLOURS))
R1 = "Recall@1 (%)"


@contextmanager
def _style() -> Iterator[None]:
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.9):
        yield


def _grid(nrows: int, ncols: int) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(4.4 * ncols, 3.4 * nrows), layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _palette(variants: pd.Series) -> tuple[list[str], dict]:
    present = list(dict.fromkeys(variants))
    order = [v for v in VARIANT_ORDER if v in present] + sorted(
        v for v in present if v not in VARIANT_ORDER
    )
    extra = sns.color_palette("dark", max(len(order), 1))
    return order, {v: PALETTE.get(v, extra[i]) for i, v in enumerate(order)}


def _lines(ax: Axes, data: pd.DataFrame, x: str, y: str, pal: dict) -> None:
    order = [v for v in pal if v in set(data["variant"])]
    sns.lineplot(data=data, x=x, y=y, hue="variant", hue_order=order, palette=pal, ax=ax,
                 errorbar="sd", marker="o", markersize=4, legend=False)  # fmt: skip


def _legend(fig: Figure, pal: dict) -> None:
    """One legend for the whole figure, outside the panels, so no curve is hidden."""
    handles = [Line2D([], [], color=c, marker="o", markersize=4, label=v) for v, c in pal.items()]
    fig.legend(handles=handles, title="variant", loc="outside right upper", fontsize="small")


def _grid_for(n: int, max_cols: int = 3) -> tuple[Figure, list[Axes]]:
    """n panels wrapped into rows of at most max_cols; unused axes switched off."""
    ncols = min(n, max_cols)
    nrows = -(-n // ncols)
    fig, axes = _grid(nrows, ncols)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_axis_off()
    return fig, flat[:n]


def _panel(profile: str, dataset: str) -> str:
    return f"{dataset} ({profile} profile)"


def reference_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Done runs in each (profile, dataset)'s reference configuration, with a ``panel`` name."""
    parts = []
    for (profile, dataset), grp in runs.groupby(["profile", "dataset"], sort=True):
        batch, memory = reference_cell(grp)
        mask = [config_matches(Selector(r["variant"]), r, batch, memory)
                for r in grp.to_dict("records")]  # fmt: skip
        parts.append(grp[mask].assign(panel=_panel(profile, dataset)))
    return pd.concat(parts, ignore_index=True) if parts else runs.assign(panel=[])


def _per_epoch(epochs: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    ref = reference_runs(runs)[["run_id", "variant", "seed", "panel"]]
    main = epochs[epochs["phase"] == "main"]
    return main.merge(ref, on="run_id", how="inner")


def fig_epoch_metrics(epochs: pd.DataFrame, runs: pd.DataFrame, columns: dict[str, str],
                      ylabel: str) -> Figure | None:  # fmt: skip
    """Rows: (profile, dataset); columns: the given metrics.csv columns against the epoch."""
    data = _per_epoch(epochs, runs)
    data = data.dropna(subset=list(columns), how="all")
    if data.empty:
        return None
    panels = sorted(data["panel"].unique())
    cells = [(panel, col, title) for panel in panels for col, title in columns.items()]
    _, pal = _palette(data["variant"])
    with _style():
        fig, axes = _grid_for(len(cells), max_cols=max(len(columns), 3 if len(columns) == 1 else 2))
        for ax, (panel, col, title) in zip(axes, cells):
            _lines(ax, data[data["panel"] == panel], "epoch", col, pal)
            ax.set(title=f"{title}: {panel}", xlabel="epoch", ylabel=ylabel)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _legend(fig, pal)
    return fig


def fig_drift(epochs: pd.DataFrame, runs: pd.DataFrame) -> Figure | None:
    """Paper fig. 3: mean and max feature drift ||z^k - z^(k-1)||_2 (paper eq. 5, delta k = 1)."""
    cols = {"drift_mean": "mean drift", "drift_max": "max drift"}
    return fig_epoch_metrics(epochs, runs, cols, "feature drift (L2 distance)")


def fig_distances(epochs: pd.DataFrame, runs: pd.DataFrame) -> Figure | None:
    """Average inter-embedding distance and average distance to the class mean per epoch."""
    cols = {"inter_dist": "inter-embedding distance", "intra_dist": "distance to class mean"}
    return fig_epoch_metrics(epochs, runs, cols, "average L2 distance")


def fig_curves(epochs: pd.DataFrame, runs: pd.DataFrame) -> Figure | None:
    """Recall@1 on the test set per epoch, mean with a +- std band over seeds."""
    return fig_epoch_metrics(epochs, runs, {"recall@1": "Recall@1"}, R1)


def _sweep_data(runs: pd.DataFrame, axis: str) -> pd.DataFrame:
    """Plain-config rows of a sweep along 'batch_size' or 'memory_ratio', at the other's
    reference value."""
    parts = []
    for (profile, dataset), grp in runs.groupby(["profile", "dataset"], sort=True):
        batch, memory = reference_cell(grp)
        recs = grp.to_dict("records")
        if axis == "batch_size":
            mask = [
                config_matches(Selector(r["variant"]), r, r["batch_size"], memory) for r in recs
            ]
        else:
            mask = [r["variant"] != "no_xbm" and config_matches(
                Selector(r["variant"]), r, batch, r["memory_ratio"]) for r in recs]  # fmt: skip
        sel = grp[mask]
        if sel[axis].nunique() >= 2:
            parts.append(sel.assign(panel=_panel(profile, dataset)))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def fig_batch_memory(runs: pd.DataFrame) -> Figure | None:
    """Paper fig. 1: Recall@1 vs batch size (top) and vs memory size (bottom), per dataset."""
    by_batch, by_memory = _sweep_data(runs, "batch_size"), _sweep_data(runs, "memory_ratio")
    if by_batch.empty and by_memory.empty:
        return None
    if not by_memory.empty:
        by_memory = by_memory.assign(memory_pct=100 * by_memory["memory_ratio"])
    panels = sorted(set(by_batch.get("panel", [])) | set(by_memory.get("panel", [])))
    _, pal = _palette(pd.concat([by_batch.get("variant", pd.Series(dtype=str)),
                                 by_memory.get("variant", pd.Series(dtype=str))]))  # fmt: skip
    with _style():
        fig, axes = _grid(2, len(panels))
        for j, panel in enumerate(panels):
            top, bottom = axes[0, j], axes[1, j]
            for ax, data, x, label in (
                (top, by_batch, "batch_size", "batch size (images)"),
                (bottom, by_memory, "memory_pct", "memory size (% of training set)"),
            ):
                sub = data[data["panel"] == panel] if not data.empty else data
                if sub.empty:
                    ax.set_axis_off()
                    continue
                _lines(ax, sub, x, "recall@1", pal)
                ax.set(title=panel, xlabel=label, ylabel=R1)
            if top.axison:  # log-2 axis, ticked at the batch sizes that were run
                sizes = sorted(by_batch.loc[by_batch["panel"] == panel, "batch_size"].unique())
                top.set_xscale("log", base=2)
                top.set_xticks(sizes, [str(int(b)) for b in sizes])
                top.minorticks_off()
        _legend(fig, pal)
    return fig


def fig_superclass(runs: pd.DataFrame) -> Figure | None:
    """Thesis table 5.16 as a plot: superclass top-k (k = 1..5) per variant."""
    ref = reference_runs(runs)
    long = ref.melt(id_vars=["run_id", "variant", "panel"], value_vars=list(TOP_K),
                    var_name="k", value_name="top_k").dropna(subset=["top_k"])  # fmt: skip
    if long.empty:
        return None
    long["k"] = long["k"].str.replace("superclass_top", "").astype(int)
    panels = sorted(long["panel"].unique())
    _, pal = _palette(long["variant"])
    with _style():
        fig, axes = _grid_for(len(panels))
        for ax, panel in zip(axes, panels):
            _lines(ax, long[long["panel"] == panel], "k", "top_k", pal)
            ax.set(title=panel, xlabel="k (nearest superclass means)",
                   ylabel="superclass in top-k (%)", xticks=range(1, 6))  # fmt: skip
        _legend(fig, pal)
    return fig


def _lambda(options: str, name: str) -> float | None:
    opts = json.loads(options)
    others = {k for k in opts if k != name}
    if others & {"lambda_mu", "lambda_sigma"} or set(opts) - {"lambda_mu", "lambda_sigma"}:
        return None  # a run of the other sweep, or with other options
    return float(opts.get(name, {"lambda_mu": 0.5, "lambda_sigma": 1.0}[name]))


def fig_pc_sweep(runs: pd.DataFrame, reported: pd.DataFrame) -> Figure | None:
    """Thesis table 5.14 as a plot: PC-XBN Recall@1 against lambda_mu and lambda_sigma
    (thesis eq. 4.3); ours as mean +- std over seeds, the thesis' numbers as crosses."""
    pc = runs[(runs["variant"] == "pc_xbn") & (runs["pos_margin"].round(6) == 0.2)]
    frames = {}
    for name in ("lambda_mu", "lambda_sigma"):
        vals = pc["variant_options"].map(lambda o, n=name: _lambda(o, n))
        sub = pc.assign(lam=vals).dropna(subset=["lam"])
        sub = sub.assign(panel=[_panel(p, d) for p, d in zip(sub["profile"], sub["dataset"])])
        swept = sub.groupby("panel")["lam"].transform("nunique") >= 2  # a sweep, not one point
        if swept.any():
            frames[name] = sub[swept]
    if not frames:
        return None
    with _style():
        fig, axes = _grid(1, len(frames))
        for j, (name, data) in enumerate(frames.items()):
            ax = axes[0, j]
            sns.lineplot(data=data, x="lam", y="recall@1", hue="panel", errorbar="sd",
                         marker="o", ax=ax)  # fmt: skip
            rep = reported[reported["variant"].str.startswith(f"pc_xbn[{name}=")]
            lam = rep["variant"].str.extract(r"=([0-9.]+)\]")[0].astype(float)
            ax.plot(lam, rep["mean"], "x--", color="grey", label="thesis table 5.14 (cifar100)")
            ax.legend(fontsize="small")
            ax.set(title=f"PC-XBN sweep over {name}", xlabel=name, ylabel=R1)
    return fig
