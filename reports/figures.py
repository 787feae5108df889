"""Figures: each function takes frames and returns a matplotlib Figure (or None when no run is
behind it); the caller saves and closes. No pyplot: figures are ``matplotlib.figure.Figure``.

One style throughout (reports.style: seaborn whitegrid, one colour and marker per variant in
every figure; curves as small multiples, each variant against XBM in grey); bands are mean +-
sample std over seeds. Curves, drift, distances and superclass top-k use each
(profile, dataset)'s reference configuration (default head, options and margins, reference batch
size and memory ratio, see ``reports.claims.reference_cell``), so sweeps do not blur them.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from bench.store import AGE_BUCKETS
from reports import style as S
from reports.claims import at_reference_lr, reference_cell
from reports.load import TOP_K
from reports.reported import Selector, config_matches

R1 = "Recall@1 (%)"
# the memory-error-by-age figure averages the probe points of each run's last AGE_EPOCHS main
# epochs: the memory's steady state, past the fast drift of the first epochs
AGE_EPOCHS = 2
ERR_AGE = tuple(f"err_l2_age{q}" for q in range(1, AGE_BUCKETS + 1))
RAW_AGE = tuple(f"raw_l2_age{q}" for q in range(1, AGE_BUCKETS + 1))


def _grid(nrows: int, ncols: int) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(4.4 * ncols, 3.4 * nrows), layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _lines(ax: Axes, data: pd.DataFrame, x: str, y: str) -> None:
    """Several variants in one panel (sweeps with few variants): colour and marker per variant."""
    for label in S.ordered(data["variant"]):
        S.band(ax, data[data["variant"] == label], x, y, label)


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
        grp = at_reference_lr(grp)
        batch, memory = reference_cell(grp)
        mask = [config_matches(Selector(r["variant"]), r, batch, memory)
                for r in grp.to_dict("records")]  # fmt: skip
        parts.append(grp[mask].assign(panel=_panel(profile, dataset)))
    return pd.concat(parts, ignore_index=True) if parts else runs.assign(panel=[])


def _per_epoch(epochs: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    ref = reference_runs(runs)[["run_id", "variant", "seed", "panel"]]
    main = epochs[epochs["phase"] == "main"]
    return main.merge(ref, on="run_id", how="inner")


def highlight_figure(data: pd.DataFrame, blocks: list[tuple[str, str, str]], x: str,
                     xlabel: str, ylabel: str) -> Figure:  # fmt: skip
    """One block of small multiples (reports.style.highlight_grid) per (panel, column, title)
    of ``blocks``, each titled "title: panel", stacked; one legend for the figure."""
    n_variants = max(
        len([v for v in S.ordered(data[data["panel"] == p]["variant"]) if v != S.REFERENCE]) or 1
        for p, _, _ in blocks
    )
    with S.style():
        fig, subs = S.small_multiples_figure(len(blocks), n_variants)
        for sub, (panel, col, title) in zip(subs, blocks):
            part = data[data["panel"] == panel].dropna(subset=[col])
            S.highlight_grid(sub, part, x, col, xlabel, ylabel)
            sub.suptitle(f"{title}: {panel}", fontsize="medium", fontweight="bold")
            for ax in sub.axes:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        S.highlight_legend(fig)
    return fig


def fig_epoch_metrics(epochs: pd.DataFrame, runs: pd.DataFrame, columns: dict[str, str],
                      ylabel: str) -> Figure | None:  # fmt: skip
    """Per (profile, dataset) and metrics.csv column: each variant against XBM per epoch."""
    data = _per_epoch(epochs, runs)
    data = data.dropna(subset=list(columns), how="all")
    if data.empty:
        return None
    blocks = [
        (panel, col, title)
        for panel in sorted(data["panel"].unique())
        for col, title in columns.items()
        if data.loc[data["panel"] == panel, col].notna().any()
    ]
    return highlight_figure(data, blocks, "epoch", "epoch", ylabel)


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
    reference value; only variants run at two values or more (a lone point is no sweep)."""
    parts = []
    for (profile, dataset), grp in runs.groupby(["profile", "dataset"], sort=True):
        grp = at_reference_lr(grp)
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
        sel = sel[sel.groupby("variant")[axis].transform("nunique") >= 2]  # swept variants only
        if len(sel):
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
    variants = pd.concat([by_batch.get("variant", pd.Series(dtype=str)),
                          by_memory.get("variant", pd.Series(dtype=str))])  # fmt: skip
    with S.style():
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
                _lines(ax, sub, x, "recall@1")
                ax.set(title=panel, xlabel=label, ylabel=R1)
            if top.axison:  # log-2 axis, ticked at the batch sizes that were run
                sizes = sorted(by_batch.loc[by_batch["panel"] == panel, "batch_size"].unique())
                top.set_xscale("log", base=2)
                top.set_xticks(sizes, [str(int(b)) for b in sizes])
                top.minorticks_off()
        S.lines_legend(fig, list(variants))
    return fig


def fig_superclass(runs: pd.DataFrame) -> Figure | None:
    """Thesis table 5.16 as a plot: superclass top-k (k = 1..5), each variant against XBM."""
    ref = reference_runs(runs)
    long = ref.melt(id_vars=["run_id", "variant", "panel"], value_vars=list(TOP_K),
                    var_name="k", value_name="top_k").dropna(subset=["top_k"])  # fmt: skip
    if long.empty:
        return None
    long["k"] = long["k"].str.replace("superclass_top", "").astype(int)
    blocks = [
        (panel, "top_k", "superclass in the top k") for panel in sorted(long["panel"].unique())
    ]
    fig = highlight_figure(long, blocks, "k", "k (nearest superclass means)", "top-k (%)")
    for ax in fig.axes:
        ax.set_xticks(range(1, 6))
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
    with S.style():
        fig, axes = _grid(1, len(frames))
        for j, (name, data) in enumerate(frames.items()):
            ax = axes[0, j]
            sns.lineplot(data=data, x="lam", y="recall@1", hue="panel", errorbar="sd",
                         marker="o", ax=ax)  # fmt: skip
            rep = reported[reported["variant"].str.startswith(f"pc_xbn[{name}=")]
            lam = rep["variant"].str.extract(r"=([0-9.]+)\]")[0].astype(float)
            ax.plot(lam, rep["mean"], "x--", color="grey", label="thesis table 5.14 (cifar100)")
            ax.get_legend().remove()  # one legend below the panels, never over a curve
            ax.set(title=f"PC-XBN sweep over {name}", xlabel=name, ylabel=R1)
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize="small")
    return fig


def _probed(runs: pd.DataFrame, memory: pd.DataFrame) -> pd.DataFrame:
    """Probe rows (reports.load.Store.memory) of the reference runs, with variant and panel."""
    ref = reference_runs(runs)[["run_id", "variant", "seed", "panel"]]
    return memory.merge(ref, on="run_id", how="inner")


def age_profile(runs: pd.DataFrame, memory: pd.DataFrame, last: int = AGE_EPOCHS) -> pd.DataFrame:
    """Per reference run and age bucket (1 = youngest quarter of the memory's span): ``err``
    and ``raw``, the mean over the probe points of the run's last ``last`` main epochs of
    err_l2_age<q> (the memory as the loss sees it) and raw_l2_age<q> (un-adapted, what plain
    XBM holds); buckets empty at every point are NaN."""
    data = _probed(runs, memory)
    late = data[data["epoch"] > data.groupby("run_id")["epoch"].transform("max") - last]
    per_run = late.groupby(["run_id", "variant", "panel"], sort=True)[[*ERR_AGE, *RAW_AGE]]
    means = per_run.mean().reset_index()
    parts = [means[["run_id", "variant", "panel"]].assign(age=q, err=means[e], raw=means[r])
             for q, (e, r) in enumerate(zip(ERR_AGE, RAW_AGE), start=1)]  # fmt: skip
    cols = ["run_id", "variant", "panel", "age", "err", "raw"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def fig_memory_age(runs: pd.DataFrame, memory: pd.DataFrame) -> Figure | None:
    """Memory error against entry age per variant (issue 14), one block per (profile, dataset):
    solid, the stored entries as the loss sees them (mean +- std over seeds); dashed, the
    un-adapted copy (mean over seeds), what plain XBM would hold. ``age_profile``'s numbers."""
    data = age_profile(runs, memory).dropna(subset=["err", "raw"], how="all")
    if data.empty:
        return None
    panels = sorted(data["panel"].unique())
    width = max(data.loc[data["panel"] == p, "variant"].nunique() for p in panels)
    with S.style():
        fig, subs = S.small_multiples_figure(len(panels), width)
        for sub, panel in zip(subs, panels):
            part = data[data["panel"] == panel]
            labels = S.ordered(part["variant"])
            axes = S.panel_grid(sub, labels, "age quarter (1 = youngest)", "L2 to fresh")
            for ax, label in zip(axes, labels):
                own = part[part["variant"] == label]
                S.band(ax, own.dropna(subset=["err"]), "age", "err", label)
                raw = own.groupby("age", sort=True)["raw"].mean()
                ax.plot(raw.index, raw.to_numpy(), color=S.colour(label), linestyle="--",
                        linewidth=1.2)  # fmt: skip
                ax.set_xticks(range(1, AGE_BUCKETS + 1))
            sub.suptitle(f"memory error by entry age: {panel}", fontsize="medium",
                         fontweight="bold")  # fmt: skip
        handles = [
            Line2D([], [], color="0.3", linewidth=1.4, label="stored, as the loss sees it"),
            Line2D([], [], color="0.3", linewidth=1.2, linestyle="--",
                   label="un-adapted copy (what XBM holds)"),
        ]  # fmt: skip
        fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize="small",
                   title=f"mean over seeds and the last {AGE_EPOCHS} epochs' probe points",
                   title_fontsize="small")  # fmt: skip
    return fig


def gain_per_epoch(runs: pd.DataFrame, memory: pd.DataFrame) -> pd.DataFrame:
    """Per reference run and main epoch: the mean adaptation gain (raw_l2_mean / err_l2_mean,
    the probe's ``gain``) over the epoch's probe points; epochs without a gain dropped."""
    data = _probed(runs, memory)
    keys = ["run_id", "variant", "panel", "epoch"]
    return data.groupby(keys, sort=True)["gain"].mean().reset_index().dropna(subset=["gain"])


def fig_adaptation_gain(runs: pd.DataFrame, memory: pd.DataFrame) -> Figure | None:
    """Adaptation gain per epoch, each variant against XBM (gain 1: nothing adapted), mean +-
    std over seeds of ``gain_per_epoch``; dotted: gain 1."""
    data = gain_per_epoch(runs, memory)
    if data.empty:
        return None
    blocks = [(panel, "gain", "adaptation gain") for panel in sorted(data["panel"].unique())]
    fig = highlight_figure(data, blocks, "epoch", "epoch", "un-adapted / adapted L2")
    for ax in fig.axes:
        ax.axhline(1.0, color="0.3", linestyle=":", linewidth=0.8, zorder=1)
    return fig
