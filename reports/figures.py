"""Every figure of the report, and one look for all of them. No pyplot: each function returns a
matplotlib Figure (or None without runs) and the caller saves it.

One look for every figure: one colour and one marker per variant (``VARIANT_COLOURS``), the
same in every figure, and small multiples that show each variant against XBM in grey
(``highlight_grid``), so that no panel holds more than two curves. No pyplot.

Colours: Okabe & Ito's colour-blind-safe set plus two of Paul Tol's; XBM, the reference of the
highlight panels, is grey everywhere, no-XBM black. A label with a suffix (``pc_xbn_adjusted_
margin``, ``xbn+l2_bn``) takes its variant's colour (reports.figures.family's prefix rule).

The headline figure: per (profile, dataset), every variant's difference to a reference variant
with its confidence interval (a forest plot), the reported difference beside it.

Readable in greyscale: references differ by marker and line style, not colour alone; the reported
difference is a hollow diamond. Variants are grouped by family (``FAMILIES``), each family under a
bold header row. No pyplot: the function returns a ``matplotlib.figure.Figure``; the caller saves.

Figures: each function takes frames and returns a matplotlib Figure (or None when no run is
behind it); the caller saves and closes. No pyplot: figures are ``matplotlib.figure.Figure``.

One style throughout (reports.figures: seaborn whitegrid, one colour and marker per variant in
every figure; curves as small multiples, each variant against XBM in grey); bands are mean +-
sample std over seeds. Curves, drift, distances and superclass top-k use each
(profile, dataset)'s reference configuration (default head, options and margins, reference batch
size and memory ratio, see ``reports.claims.reference_cell``), so sweeps do not blur them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from bench.store import AGE_BUCKETS, TOP_K
from reports.claims import ORACLE, at_reference_lr, reference_cell
from reports.inference import BOUNDED
from reports.load import Selector, config_matches, ordered, uses_memory, variant_fact
from reports.tables import MOCO_METRIC, MOCO_NAMES, early_epoch, moco_runs
from variants import VARIANTS
from variants.registry import variant_options

# figure name -> (title, study whose runs would draw it)
HEADLINE = "forest"
REGIMES = "staleness_regimes"  # reports.mechanism
FIGURES: dict[str, tuple[str, str]] = {
    # the headline figure: drawn right after the claims table, first among the figures
    "forest": (
        "Every variant's difference to XBM and to no-XBM (Recall@1, 95% CI)",
        "demo",
    ),
    "recall_vs_batch_memory": (
        "Recall@1 vs batch size and memory size (paper fig. 1)",
        "paper-fig1",
    ),
    "drift": ("Mean and max feature drift per epoch (paper fig. 3)", "paper-table1"),
    "distances": ("Inter-embedding distance and distance to class mean per epoch", "thesis"),
    "recall_curves": ("Recall@1 per epoch, mean ± std over seeds", "paper-table1"),
    "pc_lambda_sweep": ("PC-XBN lambda sweep (thesis table 5.14)", "thesis-pc-sweep"),
    "superclass_topk": ("Superclass top-k, k = 1..5 (thesis table 5.16)", "thesis"),
    REGIMES: (
        "Staleness cost (oracle − XBM) and the share XBN recovers vs memory ratio, per LR",
        "demo-regimes",
    ),
}

# the mechanism section's figures (reports.markdown), drawn there, not under "Figures"
MEMORY_AGE, ADAPTATION_GAIN = "memory_error_age", "adaptation_gain"
MECHANISM_FIGURES: dict[str, str] = {
    MEMORY_AGE: "Memory error vs entry age per variant (solid: as the loss sees it; dashed: "
    "un-adapted, what XBM holds)",
    ADAPTATION_GAIN: "Adaptation gain per epoch (un-adapted / adapted L2 error), mean ± std "
    "over seeds",
}
MEMORY_TABLE = "memory_error"  # tables/memory_error.{md,csv,tex}

REFERENCE = "xbm"  # drawn in grey in every highlight panel
OTHER_COLOUR, OTHER_MARKER = "#332288", "h"  # a label of no registered variant
PANEL_W, PANEL_H = 2.4, 1.9  # inches per small-multiple panel
MAX_COLS = 5


def colour(label: str) -> str:
    """The colour of the label's variant (its class's ``COLOUR``), the same in every figure."""
    return variant_fact(label, "COLOUR", OTHER_COLOUR)


def marker(label: str) -> str:
    return variant_fact(label, "MARKER", OTHER_MARKER)


def palette(labels: Sequence[str]) -> dict[str, str]:
    return {v: colour(v) for v in ordered(labels)}


@contextmanager
def style() -> Iterator[None]:
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.8):
        yield


def band(ax: Axes, data: pd.DataFrame, x: str, y: str, label: str, grey: bool = False) -> None:
    """Mean of ``y`` over seeds against ``x``, with a +- sample-std band (one run: no band)."""
    stats = data.groupby(x, sort=True)[y].agg(["mean", "std"]).reset_index()
    c = "0.55" if grey else colour(label)
    ax.plot(
        stats[x],
        stats["mean"],
        color=c,
        marker=None if grey else marker(label),
        markersize=3.5,
        linewidth=1.4,
        zorder=2 if grey else 3,
    )
    if stats["std"].notna().any():
        lo, hi = stats["mean"] - stats["std"], stats["mean"] + stats["std"]
        ax.fill_between(stats[x], lo, hi, color=c, alpha=0.15 if grey else 0.22, linewidth=0)


def highlight_grid(
    fig: Figure | SubFigure, data: pd.DataFrame, x: str, y: str, xlabel: str, ylabel: str
) -> list[Axes]:
    """One small panel per variant label of ``data`` (column ``variant``) but the reference,
    each showing that variant in its colour over the reference in grey; shared axes, wrapped
    into rows of ``MAX_COLS``; x label on the bottom row, y label on the first column.
    Without a reference run every variant is drawn alone; with only the reference, it is."""
    labels = ordered(data["variant"])
    ref = REFERENCE if REFERENCE in labels else None
    shown = [v for v in labels if v != ref] or labels
    axes = panel_grid(fig, shown, xlabel, ylabel)
    for ax, label in zip(axes, shown):
        if ref is not None and label != ref:
            band(ax, data[data["variant"] == ref], x, y, ref, grey=True)
        band(ax, data[data["variant"] == label], x, y, label)
    return axes


def panel_grid(
    fig: Figure | SubFigure, labels: Sequence[str], xlabel: str, ylabel: str
) -> list[Axes]:
    """One small panel per label, titled in its colour; shared axes, wrapped into rows of
    ``MAX_COLS``; x label on the bottom row, y label on the first column; unused axes off."""
    ncols = min(len(labels), MAX_COLS)
    nrows = -(-len(labels) // ncols)
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
    flat = list(axes.flat)
    for ax, label in zip(flat, labels):
        ax.set_title(label, color=colour(label), fontsize="medium", fontweight="bold", pad=3)
    for i, ax in enumerate(flat):
        col = i % ncols
        if i >= len(labels):
            ax.set_axis_off()
            continue
        ax.set_xlabel(xlabel if i + ncols >= len(labels) else "")
        ax.set_ylabel(ylabel if col == 0 else "")
        ax.tick_params(labelbottom=i + ncols >= len(labels), labelsize="small")
    return flat[: len(labels)]


def highlight_legend(fig: Figure) -> None:
    """What grey and colour mean, once per figure, below the panels."""
    handles = [
        Line2D([], [], color="0.55", linewidth=1.4, label=f"{REFERENCE} (reference, every panel)"),
        Line2D(
            [],
            [],
            color=colour("xbn"),
            marker=marker("xbn"),
            markersize=3.5,
            label="the panel's variant (its colour in every figure)",
        ),
    ]
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=2,
        fontsize="small",
        title="mean over seeds, band ± sample std",
        title_fontsize="small",
    )


def small_multiples_figure(blocks: int, variants: int) -> tuple[Figure, list[SubFigure]]:
    """A figure of ``blocks`` stacked subfigures, each room for ``variants`` small panels."""
    ncols = min(max(variants, 1), MAX_COLS)
    nrows = -(-max(variants, 1) // ncols)
    fig = Figure(
        figsize=(PANEL_W * ncols + 0.6, (PANEL_H * nrows + 0.5) * blocks + 0.7),
        layout="constrained",
    )
    subs = fig.subfigures(blocks, 1, squeeze=False)[:, 0] if blocks > 1 else [fig.subfigures(1, 1)]
    return fig, list(subs)


def lines_legend(fig: Figure, labels: Sequence[str]) -> None:
    """One legend for a figure with several variants per panel, outside the panels."""
    handles = [
        Line2D([], [], color=colour(v), marker=marker(v), markersize=4, label=v)
        for v in ordered(labels)
    ]
    fig.legend(handles=handles, title="variant", loc="outside right upper", fontsize="small")


OTHER_FAMILY = "other"  # a label of no registered variant
FOREST_REQUIRED = ("profile", "dataset", "variant", "reference", "diff", "ci_low", "ci_high")
CI_GID = "forest-ci"  # gid of every CI bar, so callers and tests can count them (ci_bar_count)

# (marker, filled, line style, grey) per reference; others cycle through _EXTRA
_REF_STYLE = {"xbm": ("o", True, "-", "black"), "no_xbm": ("s", False, "--", "0.35")}
_EXTRA = [("^", True, ":", "0.2"), ("v", False, "-.", "0.5")]
_REPORTED = {"marker": "D", "markersize": 7, "markerfacecolor": "none", "color": "black"}


def family(variant: str) -> str:
    """The forest plot's group of a label's variant (its class's ``FAMILY``: no memory, memory,
    normalised memory, per-class), "other" for a label of no registered variant."""
    return variant_fact(variant, "FAMILY", OTHER_FAMILY)


def _ref_style(reference: str, references: list[str]) -> tuple[str, bool, str, str]:
    if reference in _REF_STYLE:
        return _REF_STYLE[reference]
    others = [r for r in references if r not in _REF_STYLE]
    return _EXTRA[others.index(reference) % len(_EXTRA)]


def _variant_order(variants: list[str]) -> list[tuple[str, list[str]]]:
    """[(family, [variants])]: families in the order the registry first names them, "other"
    last; within one, the registry's order (reports.load.ordered)."""
    shown = ordered(variants)
    families = list(dict.fromkeys([family(v) for v in VARIANTS] + [OTHER_FAMILY]))
    return [
        (f, [v for v in shown if family(v) == f])
        for f in families
        if any(family(v) == f for v in shown)
    ]


def _draw_panel(ax: Axes, data: pd.DataFrame, references: list[str]) -> None:
    """Rows from the top: a bold header per family, then one slot per variant holding one bar
    per reference, offset vertically so bars never overlap."""
    groups = _variant_order(list(dict.fromkeys(data["variant"])))
    refs = [r for r in references if r in set(data["reference"])]
    step = 0.5 / max(len(refs), 1)
    offsets = {r: (i - (len(refs) - 1) / 2) * step for i, r in enumerate(refs)}
    ticks, labels, headers, y = [], [], [], 0.0
    for fam, variants in groups:
        ticks.append(y)
        labels.append(fam)
        headers.append(y)
        y -= 1
        for variant in variants:
            ticks.append(y)
            labels.append(variant)
            for row in data[data["variant"] == variant].itertuples(index=False):
                _draw_row(ax, row, y + offsets[row.reference], _ref_style(row.reference, refs))
            y -= 1
    for h in headers[1:]:
        ax.axhline(h + 0.5, color="0.8", linewidth=0.6)
    ax.axvline(0, color="0.55", linewidth=0.8, zorder=0)
    ax.set_yticks(ticks, labels)
    ax.tick_params(axis="y", length=0)
    for tick, pos in zip(ax.get_yticklabels(), ticks):
        if pos in headers:
            tick.set_fontweight("bold")
    ax.set_ylim(y + 0.5, 0.5)
    ax.grid(axis="x", color="0.9", linewidth=0.6)
    ax.set_axisbelow(True)


def _draw_row(ax: Axes, row, y: float, style: tuple[str, bool, str, str]) -> None:
    marker, filled, linestyle, grey = style
    if math.isfinite(row.ci_low) and math.isfinite(row.ci_high):
        ax.plot(
            [row.ci_low, row.ci_high],
            [y, y],
            color=grey,
            linestyle=linestyle,
            linewidth=1.6,
            solid_capstyle="butt",
            gid=CI_GID,
        )
        for end in (row.ci_low, row.ci_high):
            ax.plot([end, end], [y - 0.08, y + 0.08], color=grey, linewidth=1.2)
    if math.isfinite(row.diff):
        ax.plot(
            [row.diff],
            [y],
            marker=marker,
            color=grey,
            markersize=5.5,
            markerfacecolor=grey if filled else "white",
            linestyle="none",
            zorder=3,
        )
    reported = getattr(row, "reported_diff", math.nan)
    if reported is not None and math.isfinite(reported):
        ax.plot([reported], [y], linestyle="none", zorder=4, **_REPORTED)


def _forest_legend(
    fig: Figure, refs: list[str], level: float, has_reported: bool, wide: bool
) -> None:
    handles = []
    for ref in refs:
        marker, filled, linestyle, grey = _ref_style(ref, refs)
        handles.append(
            Line2D(
                [],
                [],
                color=grey,
                linestyle=linestyle,
                marker=marker,
                markerfacecolor=grey if filled else "white",
                label=f"difference to {ref}, {level:.0%} CI",
            )
        )
    if has_reported:
        handles.append(Line2D([], [], linestyle="none", label="reported difference", **_REPORTED))
    ncols = len(handles) if wide else 1  # one panel is too narrow for a one-line legend
    fig.legend(handles=handles, loc="outside lower center", ncols=ncols, fontsize="small")


def forest_figure(
    rows: pd.DataFrame, metric: str = "Recall@1", level: float = 0.95, max_cols: int = 3
) -> Figure | None:
    """One panel per (profile, dataset); one bar per row of ``rows``.

    ``rows``: one row per (profile, dataset, variant, reference) with ``diff`` = variant minus
    reference, its CI ``ci_low``/``ci_high`` at ``level`` (NaN: only the point is drawn) and,
    optionally, ``reported_diff`` (NaN where no paper gives one). A row whose variant is its own
    reference is an error. Returns None when ``rows`` is empty. Count the bars with
    ``ci_bar_count``.
    """
    missing = [c for c in FOREST_REQUIRED if c not in rows.columns]
    if missing:
        raise ValueError(f"forest rows need columns {FOREST_REQUIRED}, missing {missing}")
    self_ref = rows[rows["variant"] == rows["reference"]]
    if len(self_ref):
        raise ValueError(f"a variant cannot be its own reference: {sorted(set(self_ref.variant))}")
    if rows.empty:
        return None
    refs = list(dict.fromkeys(rows["reference"]))
    panels = list(rows.groupby(["profile", "dataset"], sort=True))
    ncols = min(len(panels), max_cols)
    nrows = -(-len(panels) // ncols)
    slots = max(
        grp["variant"].nunique() + len({family(v) for v in grp["variant"]}) for _, grp in panels
    )
    height = 0.9 + (0.2 + 0.07 * len(refs)) * slots * nrows  # inches: one slot per label row
    fig = Figure(figsize=(4.6 * ncols, height), layout="constrained")
    axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
    for ax, ((profile, dataset), grp) in zip(axes, panels):
        _draw_panel(ax, grp, refs)
        ax.set_title(f"{dataset} ({profile} profile)", fontsize="medium")
        ax.set_xlabel(f"difference in {metric} (points)", fontsize="small")
        ax.tick_params(labelsize="small")
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    has_reported = "reported_diff" in rows and rows["reported_diff"].notna().any()
    _forest_legend(fig, refs, level, bool(has_reported), wide=ncols > 1)
    return fig


def ci_bar_count(fig: Figure) -> int:
    """CI bars drawn in a forest figure (lines with gid CI_GID)."""
    return sum(1 for ax in fig.axes for line in ax.lines if line.get_gid() == CI_GID)


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
    for label in ordered(data["variant"]):
        band(ax, data[data["variant"] == label], x, y, label)


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
        mask = [
            config_matches(Selector(r["variant"]), r, batch, memory) for r in grp.to_dict("records")
        ]
        parts.append(grp[mask].assign(panel=_panel(profile, dataset)))
    return pd.concat(parts, ignore_index=True) if parts else runs.assign(panel=[])


def _per_epoch(epochs: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    ref = reference_runs(runs)[["run_id", "variant", "seed", "panel"]]
    main = epochs[epochs["phase"] == "main"]
    return main.merge(ref, on="run_id", how="inner")


def highlight_figure(
    data: pd.DataFrame, blocks: list[tuple[str, str, str]], x: str, xlabel: str, ylabel: str
) -> Figure:
    """One block of small multiples (reports.figures.highlight_grid) per (panel, column, title)
    of ``blocks``, each titled "title: panel", stacked; one legend for the figure."""
    n_variants = max(
        len([v for v in ordered(data[data["panel"] == p]["variant"]) if v != REFERENCE]) or 1
        for p, _, _ in blocks
    )
    with style():
        fig, subs = small_multiples_figure(len(blocks), n_variants)
        for sub, (panel, col, title) in zip(subs, blocks):
            part = data[data["panel"] == panel].dropna(subset=[col])
            highlight_grid(sub, part, x, col, xlabel, ylabel)
            sub.suptitle(f"{title}: {panel}", fontsize="medium", fontweight="bold")
            for ax in sub.axes:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        highlight_legend(fig)
    return fig


def fig_epoch_metrics(
    epochs: pd.DataFrame, runs: pd.DataFrame, columns: dict[str, str], ylabel: str
) -> Figure | None:
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
            mask = [
                uses_memory(r["variant"])
                and config_matches(Selector(r["variant"]), r, batch, r["memory_ratio"])
                for r in recs
            ]
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
    variants = pd.concat(
        [
            by_batch.get("variant", pd.Series(dtype=str)),
            by_memory.get("variant", pd.Series(dtype=str)),
        ]
    )
    with style():
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
        lines_legend(fig, list(variants))
    return fig


def fig_superclass(runs: pd.DataFrame) -> Figure | None:
    """Thesis table 5.16 as a plot: superclass top-k (k = 1..5), each variant against XBM."""
    ref = reference_runs(runs)
    long = ref.melt(
        id_vars=["run_id", "variant", "panel"],
        value_vars=list(TOP_K),
        var_name="k",
        value_name="top_k",
    ).dropna(subset=["top_k"])
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
    return float(opts.get(name, variant_options("pc_xbn")[name]))


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
    with style():
        fig, axes = _grid(1, len(frames))
        for j, (name, data) in enumerate(frames.items()):
            ax = axes[0, j]
            sns.lineplot(
                data=data, x="lam", y="recall@1", hue="panel", errorbar="sd", marker="o", ax=ax
            )
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
    parts = [
        means[["run_id", "variant", "panel"]].assign(age=q, err=means[e], raw=means[r])
        for q, (e, r) in enumerate(zip(ERR_AGE, RAW_AGE), start=1)
    ]
    cols = ["run_id", "variant", "panel", "age", "err", "raw"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def fig_memory_age(runs: pd.DataFrame, memory: pd.DataFrame) -> Figure | None:
    """Memory error against entry age per variant, one block per (profile, dataset):
    solid, the stored entries as the loss sees them (mean +- std over seeds); dashed, the
    un-adapted copy (mean over seeds), what plain XBM would hold. ``age_profile``'s numbers."""
    data = age_profile(runs, memory).dropna(subset=["err", "raw"], how="all")
    if data.empty:
        return None
    panels = sorted(data["panel"].unique())
    width = max(data.loc[data["panel"] == p, "variant"].nunique() for p in panels)
    with style():
        fig, subs = small_multiples_figure(len(panels), width)
        for sub, panel in zip(subs, panels):
            part = data[data["panel"] == panel]
            labels = ordered(part["variant"])
            axes = panel_grid(sub, labels, "age quarter (1 = youngest)", "L2 to fresh")
            for ax, label in zip(axes, labels):
                own = part[part["variant"] == label]
                band(ax, own.dropna(subset=["err"]), "age", "err", label)
                raw = own.groupby("age", sort=True)["raw"].mean()
                ax.plot(
                    raw.index, raw.to_numpy(), color=colour(label), linestyle="--", linewidth=1.2
                )
                ax.set_xticks(range(1, AGE_BUCKETS + 1))
            sub.suptitle(
                f"memory error by entry age: {panel}", fontsize="medium", fontweight="bold"
            )
        handles = [
            Line2D([], [], color="0.3", linewidth=1.4, label="stored, as the loss sees it"),
            Line2D(
                [],
                [],
                color="0.3",
                linewidth=1.2,
                linestyle="--",
                label="un-adapted copy (what XBM holds)",
            ),
        ]
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncols=2,
            fontsize="small",
            title=f"mean over seeds and the last {AGE_EPOCHS} epochs' probe points",
            title_fontsize="small",
        )
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


def _errorbar(ax: Axes, x, y, low, high, colour: str, gid: str) -> None:
    """Points with their interval; ``gid`` names the data line (not the caps) for readers."""
    y, low, high = (np.asarray(v, dtype=float) for v in (y, low, high))
    bars = ax.errorbar(
        x,
        y,
        yerr=[y - low, high - y],
        color=colour,
        marker="o",
        markersize=4,
        capsize=3,
        linewidth=1.3,
    )
    bars.lines[0].set_gid(gid)


def _regime_panel(cost_ax: Axes, share_ax: Axes, cell: pd.DataFrame) -> None:
    x = cell["memory_ratio"]
    _errorbar(cost_ax, x, cell["cost"], cell["cost_low"], cell["cost_high"], colour(ORACLE), "cost")
    shown = cell[cell["share_kind"] == BOUNDED]
    _errorbar(
        share_ax,
        shown["memory_ratio"],
        shown["share"],
        shown["share_low"],
        shown["share_high"],
        colour("xbn"),
        "share",
    )
    hidden = cell.loc[cell["share_kind"] != BOUNDED, "memory_ratio"]
    near_bottom = share_ax.get_xaxis_transform()  # x in data, y in axes units
    share_ax.plot(
        hidden,
        np.full(len(hidden), 0.06),
        linestyle="none",
        marker="x",
        color="0.45",
        markersize=7,
        gid="unbounded",
        transform=near_bottom,
    )
    cost_ax.axhline(0.0, color="0.3", linestyle=":", linewidth=0.8)
    for level in (0.0, 1.0):
        share_ax.axhline(level, color="0.3", linestyle=":", linewidth=0.8)
    share_ax.set_xticks(sorted(cell["memory_ratio"].unique()))


def fig_regimes(points: pd.DataFrame) -> Figure | None:
    """Per block, one column per LR: top, the staleness cost against memory ratio; bottom,
    XBN's share of it (``points``: reports.mechanism.regime_points). None without a point."""
    if points.empty:
        return None
    blocks = list(points.groupby(["profile", "dataset", "setting", "refresh"], sort=True))
    ncols = max(b["lr"].nunique() for _, b in blocks)
    with style():
        fig = Figure(figsize=(3.0 * ncols + 0.6, 4.6 * len(blocks) + 0.6), layout="constrained")
        axes = fig.subplots(2 * len(blocks), ncols, squeeze=False, sharex="col")
        for i, ((profile, dataset, _, refresh), block) in enumerate(blocks):
            lrs = sorted(block["lr"].unique())
            for j in range(ncols):
                cost_ax, share_ax = axes[2 * i, j], axes[2 * i + 1, j]
                if j >= len(lrs):
                    cost_ax.set_axis_off(), share_ax.set_axis_off()
                    continue
                _regime_panel(cost_ax, share_ax, block[block["lr"] == lrs[j]])
                cost_ax.set_title(f"{dataset} ({profile}), lr {lrs[j]:g}", fontsize="medium")
                share_ax.set_xlabel("memory ratio")
            axes[2 * i, 0].set_ylabel(f"oracle (every {refresh}) − xbm\nRecall@1 points")
            axes[2 * i + 1, 0].set_ylabel("share recovered by xbn")
        _regimes_legend(fig)
    return fig


def _regimes_legend(fig: Figure) -> None:
    handles = [
        Line2D([], [], color=colour(ORACLE), marker="o", label="staleness cost, 95% t CI"),
        Line2D([], [], color=colour("xbn"), marker="o", label="xbn's share, Fieller 95%"),
        Line2D(
            [],
            [],
            color="0.45",
            marker="x",
            linestyle="none",
            label="share unbounded (cost not resolved)",
        ),
    ]
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=3,
        fontsize="small",
        title="paired by seed; no Holm (estimates, not claims)",
        title_fontsize="small",
    )


MOCO_FIGURE = ("moco_knn", "k-NN accuracy per epoch, MoCo with and without XBN (paper fig. 2)")


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
    with style():
        fig, axes = _grid_for(len(panels))
        for ax, panel in zip(axes, panels):
            sub = data[data["panel"] == panel]
            _lines(ax, sub, "epoch", MOCO_METRIC)
            early = early_epoch(sub["profile"].iloc[0], int(sub["epoch"].max()))
            ax.axvline(early, color="grey", linestyle=":", linewidth=1)
            ax.set(title=panel, xlabel="epoch", ylabel="k-NN accuracy (%)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        handles = [
            Line2D(
                [], [], color=colour(v), marker=marker(v), markersize=4, label=MOCO_NAMES.get(v, v)
            )
            for v in ordered(data["variant"])
        ]
        fig.legend(handles=handles, loc="outside right upper", fontsize="small")
    return fig
