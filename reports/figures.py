"""Every figure of the report, and one look for all of them. No pyplot: each function returns a
matplotlib Figure (or None without runs) and the caller saves it.

Publication size: every figure function takes ``width``, the figure's width in inches, and lays
its panels out for it (panels wrap into rows so that each keeps at least its minimum width);
every text is set in points (``FONT_PT`` for titles and axis labels, ``SMALL_PT`` for ticks and
legends, never under ``MIN_FONT_PT``), so a figure saved at its own size (no scaling, no tight
bounding box) prints its text at those sizes. ``at_width`` redraws a figure of this module at
another width. Files (reports.build, ``SIZES``), each a PNG at ``DPI`` and a vector PDF beside it:

- ``figures/<name>.png`` and ``.pdf``: double-column width (``DOUBLE``, 7 in), what REPORT.md
  embeds;
- ``figures/column/<name>.png`` and ``.pdf``: single-column width (``COLUMN``, 3.5 in).

One look for every figure: one colour and one marker per variant (``VARIANT_COLOURS``), the
same in every figure, and small multiples that show each variant against XBM in grey
(``highlight_grid``), so that no panel holds more than two curves besides the oracle's bound.

Colours: Okabe & Ito's colour-blind-safe set plus two of Paul Tol's; XBM, the reference of the
highlight panels, is grey everywhere, no-XBM black. A label with a suffix (``pc_xbn_adjusted_
margin``, ``xbn+l2_bn``) takes its variant's colour (reports.figures.family's prefix rule).

Labels: a figure names a variant by the label its tables use (the runs' ``label`` column,
reports.load.label_runs, else reports.load.run_label: ``delayed_xbn[delay_epochs=2]``); colour,
marker and family come from the label's variant (reports.load.base_variant).

The oracle (``oracle_xbm``, the re-embedding bound) is drawn wherever it has runs, as a bound:
in the per-epoch figures a grey dashed line in every panel, named "<label> (bound)" in the
legend; in the forest plot its own rows under the family "bound" and a grey dashed vertical line
at its difference to XBM. Its runs at any ``refresh_interval`` count (each interval apart).

The headline figure: per (profile, dataset), every variant's difference to a reference variant
with its confidence interval (a forest plot), the reported difference beside it.

Readable in greyscale: references differ by marker and line style, not colour alone; the reported
difference is a hollow diamond. Variants are grouped by family (``FAMILIES``), each family under a
bold header row.

No empty panels: grid slots without data are removed, and reference lines are drawn only in
panels with data; every drawn line has a legend entry (a highlight panel's own variant: its
title).

One style throughout (seaborn whitegrid, one colour and marker per variant in every figure;
curves as small multiples, each variant against XBM in grey); bands are mean +- sample std over
seeds. Curves, drift, distances and superclass top-k use each (profile, dataset)'s reference
configuration (default head, options and margins, reference batch size and memory ratio, see
``reports.claims.reference_cell``), so sweeps do not blur them.
"""

from __future__ import annotations

import functools
import json
import math
import re
import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator

from bench.store import AGE_BUCKETS, TOP_K
from reports.claims import (
    ORACLE,
    at_reference_lr,
    forest_rows,
    reference_arms,
    reference_cell,
)
from reports.inference import BOUNDED
from reports.load import (
    Selector,
    base_variant,
    config_matches,
    ordered,
    run_label,
    uses_memory,
    variant_fact,
)
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

# ----- size and type ------------------------------------------------------------------------

DOUBLE, COLUMN = 7.0, 3.5  # inches: a double- and a single-column figure
# (folder under figures/, width): reports.build writes every figure at each
SIZES: tuple[tuple[str, float], ...] = (("", DOUBLE), ("column", COLUMN))
DPI = 300  # the PNGs' resolution; the PDFs are vector
FONT_PT, SMALL_PT = 8.0, 7.0  # titles and axis labels; ticks, legends and panel titles
MIN_FONT_PT = 7.0  # no text of a figure is smaller at the figure's own size
FONT_RC: dict[str, Any] = {
    "font.size": FONT_PT,
    "axes.titlesize": FONT_PT,
    "axes.labelsize": FONT_PT,
    "xtick.labelsize": SMALL_PT,
    "ytick.labelsize": SMALL_PT,
    "legend.fontsize": SMALL_PT,
    "legend.title_fontsize": SMALL_PT,
    "figure.titlesize": FONT_PT,
    "axes.linewidth": 0.6,
    "grid.linewidth": 0.5,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "xtick.major.pad": 2.0,
    "ytick.major.pad": 2.0,
    "axes.titlepad": 3.0,
    "axes.labelpad": 2.0,
    "legend.handlelength": 1.8,
    "legend.columnspacing": 1.2,
}
SAVE_RC = {"pdf.fonttype": 42}  # reports.build saves under these: TrueType, text stays text
CHAR_EM, BOLD_EM = 0.62, 0.68  # a character's mean advance in em (DejaVu Sans), for wrapping
Y_RESERVE = 0.5  # inches of a figure's width left for the first column's y label and ticks
PANEL_MIN_W, MAX_COLS = 0.95, 5  # inches: a small multiple never narrower; at most 5 a row
PLOT_MIN_W = 2.2  # inches: a panel with several variants (sweeps, MoCo) never narrower

REFERENCE = "xbm"  # drawn in grey in every highlight panel
REFERENCE_GREY = "0.55"
BOUND_GREY, BOUND_STYLES = "0.3", ("--", (0, (5, 1.5, 1, 1.5)))  # the oracle's dashed line(s)
OTHER_COLOUR, OTHER_MARKER = "#332288", "h"  # a label of no registered variant


def colour(label: str) -> str:
    """The colour of the label's variant (its class's ``COLOUR``), the same in every figure."""
    return variant_fact(label, "COLOUR", OTHER_COLOUR)


def marker(label: str) -> str:
    return variant_fact(label, "MARKER", OTHER_MARKER)


def palette(labels: Sequence[str]) -> dict[str, str]:
    return {v: colour(v) for v in ordered(labels)}


@contextmanager
def style(grid: bool = True) -> Iterator[None]:
    """The type sizes of ``FONT_RC`` (in points), over seaborn's whitegrid when ``grid``."""
    with ExitStack() as stack:
        if grid:
            stack.enter_context(sns.axes_style("whitegrid"))
        stack.enter_context(mpl.rc_context(FONT_RC))
        yield


def fit_columns(width: float, n: int, min_panel: float, reserve: float = Y_RESERVE) -> int:
    """How many panels of at least ``min_panel`` inches fit side by side in ``width``."""
    return max(1, min(max(n, 1), int((width - reserve) // min_panel)))


def text_width(text: str, size: float = SMALL_PT, bold: bool = False) -> float:
    """About how many inches a one-line text takes at ``size`` points."""
    return len(text) * size * (BOLD_EM if bold else CHAR_EM) / 72


def wrap(text: str, inches: float, size: float = FONT_PT, bold: bool = False) -> str:
    """Prose broken at spaces into lines of about ``inches``."""
    chars = max(8, int(inches * 72 / (size * (BOLD_EM if bold else CHAR_EM))))
    return "\n".join(textwrap.wrap(text, chars, break_long_words=False)) or text


def wrap_label(label: str, inches: float, size: float = SMALL_PT, bold: bool = False) -> str:
    """A variant label broken into lines of about ``inches``: before ``[``, ``(`` and ``+``,
    after ``,``, and (a part still too long) after ``_``; the text itself unchanged."""
    chars = max(6, int(inches * 72 / (size * (BOLD_EM if bold else CHAR_EM))))
    lines: list[str] = []
    for part in re.split(r"(?=[\[(+])|(?<=,)", label):
        if lines and len(lines[-1]) + len(part) <= chars:
            lines[-1] += part
            continue
        while len(part) > chars and "_" in part[1:chars]:
            cut = part.rindex("_", 1, chars) + 1
            lines.append(part[:cut])
            part = part[cut:]
        lines.append(part)
    return "\n".join(line for line in lines if line)


def finish(fig: Figure) -> Figure:
    """Ticks at ``SMALL_PT`` (matplotlib makes tick labels while drawing, after the rc context)
    and no text under ``MIN_FONT_PT``."""
    for ax in fig.axes:
        ax.tick_params(which="both", labelsize=SMALL_PT)
    for text in fig.findobj(Text):
        if text.get_fontsize() < MIN_FONT_PT:
            text.set_fontsize(MIN_FONT_PT)
    return fig


_REDRAW: WeakKeyDictionary[Figure, Callable[[float], Figure | None]] = WeakKeyDictionary()


def sized(make: Callable[..., Figure | None]) -> Callable[..., Figure | None]:
    """A figure function with ``width`` (inches, default ``DOUBLE``): its figure is finished
    (``finish``) and remembers how to draw itself at another width (``at_width``)."""

    @functools.wraps(make)
    def draw(*args: Any, width: float = DOUBLE, **kwargs: Any) -> Figure | None:
        fig = make(*args, width=width, **kwargs)
        if fig is not None:
            finish(fig)
            _REDRAW[fig] = functools.partial(_redraw, draw, args, kwargs)
        return fig

    return draw


def _redraw(draw: Callable[..., Figure | None], args: tuple, kwargs: dict, width: float):
    return draw(*args, width=width, **kwargs)


def at_width(fig: Figure, width: float) -> Figure:
    """``fig`` drawn ``width`` inches wide: itself at that width, else redrawn from its data
    (a figure of this module); another figure raises ValueError."""
    if math.isclose(fig.get_figwidth(), width, abs_tol=1e-6):
        return fig
    redraw = _REDRAW.get(fig)
    again = redraw(width) if redraw is not None else None
    if again is None:
        raise ValueError("only a figure drawn by reports.figures can be redrawn at another width")
    return again


def legend(fig: Figure, handles: Sequence[Line2D], width: float, title: str | None = None) -> None:
    """One legend below the panels, as many columns as its entries fit in ``width``."""
    longest = max(text_width(h.get_label()) for h in handles) + 0.45  # handle and gap
    ncols = max(1, min(len(handles), int((width - 0.2) // longest)))
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=ncols,
        fontsize=SMALL_PT,
        title=wrap(title, width - 0.2, SMALL_PT) if title else None,
        title_fontsize=SMALL_PT,
        frameon=False,
    )


def legend_height(handles: int, width: float, longest: int = 30, title: bool = False) -> float:
    """About how many inches ``legend`` takes (for the figure's height)."""
    ncols = max(1, min(handles, int((width - 0.2) // (longest * SMALL_PT * CHAR_EM / 72 + 0.45))))
    return 0.12 + (-(-handles // ncols) + title) * 0.16


# ----- labels -------------------------------------------------------------------------------


def display_labels(runs: pd.DataFrame) -> list[str]:
    """Each run's label as its tables show it: ``label`` (reports.load.label_runs) where the
    frame has it, else reports.load.run_label, else (a frame without the config's fields) the
    variant."""
    if "label" in runs.columns:
        return [str(v) for v in runs["label"]]
    needed = {"variant", "pos_margin", "neg_margin", "head", "variant_options"}
    if not needed <= set(runs.columns):
        return [str(v) for v in runs["variant"]]
    return [run_label(r) for r in runs.to_dict("records")]


def is_bound(label: str) -> bool:
    """A label of the oracle (``oracle_xbm``, at any refresh interval): drawn as a bound."""
    return base_variant(label) == ORACLE


def reference_label(labels: Sequence[str]) -> str | None:
    """The highlight panels' grey reference among ``labels``: ``REFERENCE`` itself, else the
    one label of its variant; None when there is none, or several."""
    if REFERENCE in labels:
        return REFERENCE
    refs = [v for v in dict.fromkeys(labels) if base_variant(v) == REFERENCE]
    return refs[0] if len(refs) == 1 else None


def bound_label(label: str) -> str:
    return f"{label} (bound)"


def bound_style(label: str, bounds: Sequence[str]) -> str | tuple:
    return BOUND_STYLES[list(bounds).index(label) % len(BOUND_STYLES)]


def bound_handles(bounds: Sequence[str]) -> list[Line2D]:
    return [
        Line2D(
            [],
            [],
            color=BOUND_GREY,
            linestyle=bound_style(b, bounds),
            linewidth=1.2,
            label=bound_label(b),
        )
        for b in bounds
    ]


# ----- small multiples ----------------------------------------------------------------------


class Grid(NamedTuple):
    """The small multiples' layout at a figure width: columns, one panel's inches."""

    ncols: int
    panel_w: float
    panel_h: float


def band(
    ax: Axes,
    data: pd.DataFrame,
    x: str,
    y: str,
    label: str,
    grey: bool = False,
    linestyle: str | tuple = "-",
    line_colour: str | None = None,
) -> None:
    """Mean of ``y`` over seeds against ``x``, with a +- sample-std band (one run: no band);
    ``grey``: the reference's plain grey line; ``line_colour``: a plain line of that colour
    (the oracle's bound). The line's label: ``label`` ("<label> (bound)" for a bound)."""
    stats = data.groupby(x, sort=True)[y].agg(["mean", "std"]).reset_index()
    plain = grey or line_colour is not None
    c = line_colour or (REFERENCE_GREY if grey else colour(label))
    ax.plot(
        stats[x],
        stats["mean"],
        color=c,
        linestyle=linestyle,
        marker=None if plain else marker(label),
        markersize=3,
        linewidth=1.2,
        zorder=2 if plain else 3,
        label=bound_label(label) if line_colour is not None else label,
    )
    if stats["std"].notna().any():
        lo, hi = stats["mean"] - stats["std"], stats["mean"] + stats["std"]
        ax.fill_between(stats[x], lo, hi, color=c, alpha=0.12 if plain else 0.22, linewidth=0)


def highlight_grid(
    fig: Figure | SubFigure,
    data: pd.DataFrame,
    x: str,
    y: str,
    xlabel: str,
    ylabel: str,
    grid: Grid,
    bounds: Sequence[str] = (),
) -> list[Axes]:
    """One small panel per variant label of ``data`` (column ``variant``) but the reference and
    the oracle, each showing that variant in its colour over the reference in grey and the
    oracle's bound dashed (``bounds``: the figure's oracle labels, for their line styles).
    Without a reference run every variant is drawn alone; with only the reference (and the
    oracle), it is."""
    labels = ordered(data["variant"])
    ref = reference_label(labels)
    own_bounds = [v for v in labels if is_bound(v)]
    bounds = list(bounds) or own_bounds
    shown = [v for v in labels if v != ref and v not in own_bounds]
    shown = shown or ([ref] if ref is not None else own_bounds)
    axes = panel_grid(fig, shown, xlabel, ylabel, grid)
    for ax, label in zip(axes, shown):
        if ref is not None and label != ref:
            band(ax, data[data["variant"] == ref], x, y, ref, grey=True)
        for b in own_bounds:
            if b != label:
                sub = data[data["variant"] == b]
                band(ax, sub, x, y, b, linestyle=bound_style(b, bounds), line_colour=BOUND_GREY)
        band(ax, data[data["variant"] == label], x, y, label)
    return axes


def panel_grid(
    fig: Figure | SubFigure, labels: Sequence[str], xlabel: str, ylabel: str, grid: Grid
) -> list[Axes]:
    """One small panel per label, titled in its colour; shared axes, wrapped into rows of
    ``grid.ncols``; x label under the lowest panel of each column, y label on the first
    column; the grid's unused slots removed."""
    ncols = grid.ncols
    nrows = -(-len(labels) // ncols)
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
    flat = list(axes.flat)
    for ax in flat[len(labels) :]:
        ax.remove()
    xlabel, ylabel = wrap(xlabel, grid.panel_w - 0.1, FONT_PT), wrap(ylabel, grid.panel_h, FONT_PT)
    for i, (ax, label) in enumerate(zip(flat, labels)):
        title = wrap_label(label, grid.panel_w - 0.1, SMALL_PT, bold=True)
        ax.set_title(title, color=colour(label), fontsize=SMALL_PT, fontweight="bold", pad=3)
        bottom = i + ncols >= len(labels)
        ax.set_xlabel(xlabel if bottom else "")
        ax.set_ylabel(ylabel if i % ncols == 0 else "")
        ax.tick_params(labelbottom=bottom)
    return flat[: len(labels)]


def highlight_legend(
    fig: Figure,
    refs: Sequence[str],
    bounds: Sequence[str],
    width: float,
    extra: Sequence[Line2D] = (),
) -> None:
    """What grey, colour and the dashed bound mean, once per figure, below the panels."""
    handles = [
        Line2D([], [], color=REFERENCE_GREY, linewidth=1.2, label=f"{r} (reference, every panel)")
        for r in refs
    ]
    handles.append(
        Line2D(
            [],
            [],
            color=colour("xbn"),
            marker=marker("xbn"),
            markersize=3,
            label="the panel's variant (its colour)",
        )
    )
    handles += [*bound_handles(bounds), *extra]
    legend(fig, handles, width, title="mean over seeds, band ± sample std")


def small_multiples_figure(
    blocks: int, variants: int, width: float, legend_h: float = 0.5
) -> tuple[Figure, list[SubFigure], Grid]:
    """A figure ``width`` inches wide of ``blocks`` stacked subfigures, each room for
    ``variants`` small panels wrapped into as many columns as fit."""
    ncols = min(fit_columns(width, variants, PANEL_MIN_W), MAX_COLS)
    nrows = -(-max(variants, 1) // ncols)
    panel_w = (width - Y_RESERVE) / ncols
    grid = Grid(ncols, panel_w, min(max(0.72 * panel_w, 1.0), 1.6))
    block_h = nrows * (grid.panel_h + 0.32) + 0.4  # titles and x labels; the block's title
    fig = Figure(figsize=(width, blocks * block_h + legend_h), layout="constrained")
    subs = fig.subfigures(blocks, 1, squeeze=False)[:, 0] if blocks > 1 else [fig.subfigures(1, 1)]
    return fig, list(subs), grid


def lines_legend(fig: Figure, labels: Sequence[str], width: float) -> None:
    """One legend for a figure with several variants per panel, below the panels."""
    handles = [
        Line2D([], [], color=colour(v), marker=marker(v), markersize=4, label=v)
        for v in ordered(labels)
    ]
    legend(fig, handles, width, title="variant")


# ----- the forest plot ----------------------------------------------------------------------

OTHER_FAMILY = "other"  # a label of no registered variant
BOUND_FAMILY = "bound"  # the oracle's rows, last
FOREST_REQUIRED = ("profile", "dataset", "variant", "reference", "diff", "ci_low", "ci_high")
CI_GID = "forest-ci"  # gid of every CI bar, so callers and tests can count them (ci_bar_count)
BOUND_GID = "oracle-bound"  # gid of the oracle's vertical line in a forest panel
FOREST_MIN_W = 3.0  # inches: a forest panel never narrower

# (marker, filled, line style, grey) per reference; others cycle through _EXTRA
_REF_STYLE = {"xbm": ("o", True, "-", "black"), "no_xbm": ("s", False, "--", "0.35")}
_EXTRA = [("^", True, ":", "0.2"), ("v", False, "-.", "0.5")]
_REPORTED = {"marker": "D", "markersize": 6, "markerfacecolor": "none", "color": "black"}


def family(variant: str) -> str:
    """The forest plot's group of a label's variant (its class's ``FAMILY``: no memory, memory,
    normalised memory, per-class; "bound" for the oracle), "other" for a label of no
    registered variant."""
    if is_bound(variant):
        return BOUND_FAMILY
    return variant_fact(variant, "FAMILY", OTHER_FAMILY)


def _ref_style(reference: str, references: list[str]) -> tuple[str, bool, str, str]:
    """A reference's style by its label, else by its label's variant."""
    for key in (reference, base_variant(reference)):
        if key in _REF_STYLE and not any(r != reference and r == key for r in references):
            return _REF_STYLE[key]
    others = [r for r in references if r not in _REF_STYLE and base_variant(r) not in _REF_STYLE]
    return _EXTRA[others.index(reference) % len(_EXTRA)] if reference in others else _EXTRA[0]


def _variant_order(variants: list[str]) -> list[tuple[str, list[str]]]:
    """[(family, [variants])]: families in the order the registry first names them, "other"
    and then "bound" last; within one, the registry's order (reports.load.ordered)."""
    shown = ordered(variants)
    registry = [family(v) for v in VARIANTS if not is_bound(v)]
    families = list(dict.fromkeys([*registry, OTHER_FAMILY, BOUND_FAMILY]))
    return [
        (f, [v for v in shown if family(v) == f])
        for f in families
        if any(family(v) == f for v in shown)
    ]


def _draw_panel(ax: Axes, data: pd.DataFrame, references: list[str], label_w: float) -> None:
    """Rows from the top: a bold header per family, then one slot per variant holding one bar
    per reference, offset vertically so bars never overlap; the oracle's rows (family "bound")
    labelled in grey, its difference to the first reference a dashed vertical line."""
    groups = _variant_order(list(dict.fromkeys(data["variant"])))
    refs = [r for r in references if r in set(data["reference"])]
    step = 0.5 / max(len(refs), 1)
    offsets = {r: (i - (len(refs) - 1) / 2) * step for i, r in enumerate(refs)}
    ticks, labels, headers, bounds, y = [], [], [], [], 0.0
    for fam, variants in groups:
        ticks.append(y)
        labels.append(fam)
        headers.append(y)
        y -= 1
        for variant in variants:
            ticks.append(y)
            labels.append(wrap_label(variant, label_w, SMALL_PT))
            if is_bound(variant):
                bounds.append(y)
            for row in data[data["variant"] == variant].itertuples(index=False):
                _draw_row(ax, row, y + offsets[row.reference], _ref_style(row.reference, refs))
            y -= 1
    for h in headers[1:]:
        ax.axhline(h + 0.5, color="0.8", linewidth=0.6)
    ax.axvline(0, color="0.55", linewidth=0.8, zorder=0)
    _draw_bounds(ax, data, refs)
    ax.set_yticks(ticks, labels)
    ax.tick_params(axis="y", length=0)
    for tick, pos in zip(ax.get_yticklabels(), ticks):
        if pos in headers:
            tick.set_fontweight("bold")
        if pos in bounds:
            tick.set_color(BOUND_GREY)
    ax.set_ylim(y + 0.5, 0.5)
    ax.grid(axis="x", color="0.9", linewidth=0.6)
    ax.set_axisbelow(True)


def _draw_bounds(ax: Axes, data: pd.DataFrame, refs: list[str]) -> None:
    """Per oracle label: a grey dashed vertical line at its difference to the first reference
    (its label: "<oracle> − <reference> (bound)")."""
    if not refs:
        return
    oracle = data[data["variant"].map(is_bound) & (data["reference"] == refs[0])]
    labels = ordered(oracle["variant"])
    for row in oracle.itertuples(index=False):
        if math.isfinite(row.diff):
            ax.axvline(
                row.diff,
                color=BOUND_GREY,
                linestyle=bound_style(row.variant, labels),
                linewidth=1.0,
                zorder=1,
                gid=BOUND_GID,
                label=f"{row.variant} − {refs[0]} (bound)",
            )


def _draw_row(ax: Axes, row, y: float, style: tuple[str, bool, str, str]) -> None:
    marker, filled, linestyle, grey = style
    if math.isfinite(row.ci_low) and math.isfinite(row.ci_high):
        ax.plot(
            [row.ci_low, row.ci_high],
            [y, y],
            color=grey,
            linestyle=linestyle,
            linewidth=1.4,
            solid_capstyle="butt",
            gid=CI_GID,
        )
        for end in (row.ci_low, row.ci_high):
            ax.plot([end, end], [y - 0.08, y + 0.08], color=grey, linewidth=1.0)
    if math.isfinite(row.diff):
        ax.plot(
            [row.diff],
            [y],
            marker=marker,
            color=grey,
            markersize=4.5,
            markerfacecolor=grey if filled else "white",
            linestyle="none",
            zorder=3,
        )
    reported = getattr(row, "reported_diff", math.nan)
    if reported is not None and math.isfinite(reported):
        ax.plot([reported], [y], linestyle="none", zorder=4, **_REPORTED)


def _forest_legend(
    fig: Figure, refs: list[str], level: float, has_reported: bool, width: float
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
    seen: dict[str, Line2D] = {}
    for ax in fig.axes:
        for line in ax.lines:
            if line.get_gid() == BOUND_GID and line.get_label() not in seen:
                seen[line.get_label()] = Line2D(
                    [],
                    [],
                    color=BOUND_GREY,
                    linestyle=line.get_linestyle(),
                    linewidth=1.0,
                    label=line.get_label(),
                )
    legend(fig, [*handles, *seen.values()], width)


def _forest_label_w(width: float, ncols: int) -> float:
    """Inches a forest panel's variant labels may take: about 40% of the panel."""
    return max(1.0, 0.4 * (width - 0.1) / ncols)


@sized
def forest_figure(
    rows: pd.DataFrame, metric: str = "Recall@1", level: float = 0.95, *, width: float = DOUBLE
) -> Figure | None:
    """One panel per (profile, dataset); one bar per row of ``rows``; panels wrapped into as
    many columns of at least ``FOREST_MIN_W`` inches as ``width`` holds.

    ``rows``: one row per (profile, dataset, variant, reference) with ``diff`` = variant minus
    reference, its CI ``ci_low``/``ci_high`` at ``level`` (NaN: only the point is drawn) and,
    optionally, ``reported_diff`` (NaN where no paper gives one); ``variant`` and ``reference``
    as the tables label them (``headline_rows``). A row whose variant is its own reference is
    an error. Returns None when ``rows`` is empty. Count the bars with ``ci_bar_count``.
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
    ncols = fit_columns(width, len(panels), FOREST_MIN_W, reserve=0.1)
    nrows = -(-len(panels) // ncols)
    label_w = _forest_label_w(width, ncols)
    wrapped = any("\n" in wrap_label(v, label_w) for v in rows["variant"])
    slot = (0.2 if wrapped else 0.16) + 0.05 * len(refs)  # inches per label row
    slots = max(
        grp["variant"].nunique() + len({family(v) for v in grp["variant"]}) for _, grp in panels
    )
    bounds = sum(1 for v in set(rows["variant"]) if is_bound(v))
    legend_h = legend_height(len(refs) + 1 + bounds, width, longest=36)
    height = nrows * (0.75 + slot * slots) + legend_h
    with style(grid=False):
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
        for ax, ((profile, dataset), grp) in zip(axes, panels):
            _draw_panel(ax, grp, refs, label_w)
            ax.set_title(f"{dataset} ({profile} profile)", fontsize=FONT_PT)
            ax.set_xlabel(f"difference in {metric} (points)", fontsize=FONT_PT)
        for ax in axes[len(panels) :]:
            ax.remove()
        has_reported = "reported_diff" in rows and rows["reported_diff"].notna().any()
        _forest_legend(fig, refs, level, bool(has_reported), width)
    return fig


def ci_bar_count(fig: Figure) -> int:
    """CI bars drawn in a forest figure (lines with gid CI_GID)."""
    return sum(1 for ax in fig.axes for line in ax.lines if line.get_gid() == CI_GID)


def oracle_at(run: dict[str, Any], batch: int, memory: float) -> bool:
    """Is ``run`` an oracle run at the (batch, memory) cell in the default head and margins,
    at whatever refresh interval (the oracle's options are its configuration)?"""
    if run["variant"] != ORACLE:
        return False
    opts = json.loads(run["variant_options"]) if isinstance(run["variant_options"], str) else {}
    return config_matches(Selector(ORACLE, options=tuple(sorted(opts.items()))), run, batch, memory)


def headline_rows(runs: pd.DataFrame, reported: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """reports.claims.forest_rows with the oracle at any refresh interval (forest_rows takes
    it at the default interval only; each other interval's runs are compared on their own,
    never pooled with another's) and ``variant``/``reference`` as the tables label them
    (``display_labels``)."""
    runs = runs.assign(label=display_labels(runs))
    metric = runs[runs["task"] == "metric"]
    parts = [forest_rows(runs, reported, level=level)]
    labels: dict[tuple[str, str, str], str] = {}
    for (profile, dataset), grp in metric.groupby(["profile", "dataset"], sort=True):
        arms = reference_arms(grp)
        for variant, arm in arms.items():
            labels[(profile, dataset, variant)] = ordered(arm["label"])[0]
        at_lr = at_reference_lr(grp)
        batch, memory = reference_cell(at_lr)
        taken = set(arms[ORACLE]["run_id"]) if ORACLE in arms else set()
        extra = at_lr[
            [
                oracle_at(r, batch, memory) and r["run_id"] not in taken
                for r in at_lr.to_dict("records")
            ]
        ]
        others = at_lr[at_lr["variant"] != ORACLE]
        for _, config in extra.groupby("config_key", sort=True):
            alone = pd.concat([others, config.assign(variant_options="{}")], ignore_index=True)
            rows = forest_rows(alone, reported, level=level)
            parts.append(rows[rows["variant"] == ORACLE].assign(variant=config["label"].iloc[0]))
    rows = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
    relabel: dict[str, list[str]] = {"variant": [], "reference": []}
    for r in rows.to_dict("records"):
        for col, values in relabel.items():
            values.append(labels.get((r["profile"], r["dataset"], r[col]), r[col]))
    return rows.assign(**relabel)


# ----- curves, sweeps and the mechanism -----------------------------------------------------

R1 = "Recall@1 (%)"
# the memory-error-by-age figure averages the probe points of each run's last AGE_EPOCHS main
# epochs: the memory's steady state, past the fast drift of the first epochs
AGE_EPOCHS = 2
ERR_AGE = tuple(f"err_l2_age{q}" for q in range(1, AGE_BUCKETS + 1))
RAW_AGE = tuple(f"raw_l2_age{q}" for q in range(1, AGE_BUCKETS + 1))


def _grid_for(
    n: int, width: float, legend_h: float, min_panel: float = PLOT_MIN_W
) -> tuple[Figure, list[Axes]]:
    """n panels ``width`` inches wide in all, wrapped into as many columns of at least
    ``min_panel`` inches as fit; the grid's unused slots removed."""
    ncols = fit_columns(width, n, min_panel)
    nrows = -(-n // ncols)
    panel_w = (width - Y_RESERVE) / ncols
    panel_h = min(max(0.7 * panel_w, 1.5), 2.4)
    fig = Figure(figsize=(width, nrows * (panel_h + 0.6) + legend_h), layout="constrained")
    flat = list(fig.subplots(nrows, ncols, squeeze=False).flat)
    for ax in flat[n:]:
        ax.remove()
    return fig, flat[:n]


def _lines(ax: Axes, data: pd.DataFrame, x: str, y: str) -> None:
    """Several variants in one panel (sweeps with few variants): colour and marker per variant;
    the oracle grey and dashed, a bound."""
    labels = ordered(data["variant"])
    bounds = [v for v in labels if is_bound(v)]
    for label in labels:
        own = data[data["variant"] == label]
        if label in bounds:
            band(ax, own, x, y, label, linestyle=bound_style(label, bounds), line_colour=BOUND_GREY)
        else:
            band(ax, own, x, y, label)


def _variant_handles(labels: Sequence[str]) -> list[Line2D]:
    shown = ordered(labels)
    plain = [
        Line2D([], [], color=colour(v), marker=marker(v), markersize=4, label=v)
        for v in shown
        if not is_bound(v)
    ]
    return plain + bound_handles([v for v in shown if is_bound(v)])


def _panel(profile: str, dataset: str) -> str:
    return f"{dataset} ({profile} profile)"


def reference_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Done runs in each (profile, dataset)'s reference configuration, and its oracle runs at
    any refresh interval (``oracle_at``), with a ``panel`` name and ``variant`` set to the
    runs' label as the tables show it (``display_labels``)."""
    parts = []
    for (profile, dataset), grp in runs.groupby(["profile", "dataset"], sort=True):
        grp = at_reference_lr(grp)
        batch, memory = reference_cell(grp)
        mask = [
            config_matches(Selector(r["variant"]), r, batch, memory) or oracle_at(r, batch, memory)
            for r in grp.to_dict("records")
        ]
        sel = grp[pd.Series(mask, index=grp.index, dtype=bool)]
        parts.append(sel.assign(panel=_panel(profile, dataset), variant=display_labels(sel)))
    return pd.concat(parts, ignore_index=True) if parts else runs.assign(panel=[])


def _per_epoch(epochs: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    ref = reference_runs(runs)[["run_id", "variant", "seed", "panel"]]
    main = epochs[epochs["phase"] == "main"]
    return main.merge(ref, on="run_id", how="inner")


def _shown_count(labels: Sequence[str]) -> int:
    """Panels of a highlight block: its labels but the reference and the oracle (at least 1)."""
    ref = reference_label(labels)
    return len([v for v in labels if v != ref and not is_bound(v)]) or 1


def highlight_figure(
    data: pd.DataFrame,
    blocks: list[tuple[str, str, str]],
    x: str,
    xlabel: str,
    ylabel: str,
    width: float = DOUBLE,
    extra: Sequence[Line2D] = (),
) -> Figure:
    """One block of small multiples (reports.figures.highlight_grid) per (panel, column, title)
    of ``blocks``, each titled "title: panel", stacked; one legend for the figure (``extra``:
    handles of what the caller adds to every panel)."""
    parts = [data[data["panel"] == p].dropna(subset=[c]) for p, c, _ in blocks]
    labels = [ordered(part["variant"]) for part in parts]
    refs = ordered({r for ls in labels if (r := reference_label(ls)) is not None})
    bounds = ordered({v for ls in labels for v in ls if is_bound(v)})
    n_handles = len(refs) + 1 + len(bounds) + len(extra)
    with style():
        fig, subs, grid = small_multiples_figure(
            len(blocks),
            max(_shown_count(ls) for ls in labels),
            width,
            legend_height(n_handles, width, title=True),
        )
        for sub, part, (panel, col, title) in zip(subs, parts, blocks):
            axes = highlight_grid(sub, part, x, col, xlabel, ylabel, grid, bounds)
            head = wrap(f"{title}: {panel}", width - 0.2, FONT_PT, bold=True)
            sub.suptitle(head, fontsize=FONT_PT, fontweight="bold")
            for ax in axes:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        highlight_legend(fig, refs, bounds, width, extra)
    return fig


@sized
def fig_epoch_metrics(
    epochs: pd.DataFrame,
    runs: pd.DataFrame,
    columns: dict[str, str],
    ylabel: str,
    *,
    width: float = DOUBLE,
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
    return highlight_figure(data, blocks, "epoch", "epoch", ylabel, width)


@sized
def fig_drift(epochs: pd.DataFrame, runs: pd.DataFrame, *, width: float = DOUBLE) -> Figure | None:
    """Paper fig. 3: mean and max feature drift ||z^k - z^(k-1)||_2 (paper eq. 5, delta k = 1)."""
    cols = {"drift_mean": "mean drift", "drift_max": "max drift"}
    return fig_epoch_metrics(epochs, runs, cols, "feature drift (L2 distance)", width=width)


@sized
def fig_distances(
    epochs: pd.DataFrame, runs: pd.DataFrame, *, width: float = DOUBLE
) -> Figure | None:
    """Average inter-embedding distance and average distance to the class mean per epoch."""
    cols = {"inter_dist": "inter-embedding distance", "intra_dist": "distance to class mean"}
    return fig_epoch_metrics(epochs, runs, cols, "average L2 distance", width=width)


@sized
def fig_curves(epochs: pd.DataFrame, runs: pd.DataFrame, *, width: float = DOUBLE) -> Figure | None:
    """Recall@1 on the test set per epoch, mean with a +- std band over seeds."""
    return fig_epoch_metrics(epochs, runs, {"recall@1": "Recall@1"}, R1, width=width)


def _sweep_data(runs: pd.DataFrame, axis: str) -> pd.DataFrame:
    """Plain-config rows of a sweep along 'batch_size' or 'memory_ratio', at the other's
    reference value; only variants run at two values or more (a lone point is no sweep);
    ``variant`` set to the runs' label (``display_labels``)."""
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
        sel = grp[pd.Series(mask, index=grp.index, dtype=bool)]
        sel = sel[sel.groupby("variant")[axis].transform("nunique") >= 2]  # swept variants only
        if len(sel):
            parts.append(sel.assign(panel=_panel(profile, dataset), variant=display_labels(sel)))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


@sized
def fig_batch_memory(runs: pd.DataFrame, *, width: float = DOUBLE) -> Figure | None:
    """Paper fig. 1: Recall@1 vs batch size and vs memory size, per dataset (one panel per
    (dataset, axis) with a sweep, wrapped into rows)."""
    by_batch, by_memory = _sweep_data(runs, "batch_size"), _sweep_data(runs, "memory_ratio")
    if by_batch.empty and by_memory.empty:
        return None
    if not by_memory.empty:
        by_memory = by_memory.assign(memory_pct=100 * by_memory["memory_ratio"])
    panels = sorted(set(by_batch.get("panel", [])) | set(by_memory.get("panel", [])))
    items = []
    for panel in panels:
        for data, x, xlabel in (
            (by_batch, "batch_size", "batch size (images)"),
            (by_memory, "memory_pct", "memory size (% of training set)"),
        ):
            sub = data[data["panel"] == panel] if not data.empty else data
            if not sub.empty:
                items.append((panel, sub, x, xlabel))
    labels = ordered(pd.concat([sub["variant"] for _, sub, _, _ in items]))
    with style():
        fig, axes = _grid_for(len(items), width, legend_height(len(labels), width, title=True))
        for ax, (panel, sub, x, xlabel) in zip(axes, items):
            _lines(ax, sub, x, "recall@1")
            ax.set(title=wrap(panel, ax_width(fig, ax, width)), xlabel=xlabel, ylabel=R1)
            if x == "batch_size":  # log-2 axis, ticked at the batch sizes that were run
                sizes = sorted(sub["batch_size"].unique())
                ax.set_xscale("log", base=2)
                ax.set_xticks(sizes, [str(int(b)) for b in sizes])
                ax.minorticks_off()
        legend(fig, _variant_handles(labels), width, title="variant")
    return fig


def ax_width(fig: Figure, ax: Axes, width: float) -> float:
    """About the inches one panel of ``ax``'s grid has (for wrapping its title)."""
    ncols = ax.get_subplotspec().get_gridspec().ncols
    return max(1.0, (width - Y_RESERVE) / ncols - 0.1)


@sized
def fig_superclass(runs: pd.DataFrame, *, width: float = DOUBLE) -> Figure | None:
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
    fig = highlight_figure(long, blocks, "k", "k (nearest superclass means)", "top-k (%)", width)
    for ax in fig.axes:
        ax.set_xticks(range(1, 6))
    return fig


def _lambda(options: str, name: str) -> float | None:
    opts = json.loads(options)
    others = {k for k in opts if k != name}
    if others & {"lambda_mu", "lambda_sigma"} or set(opts) - {"lambda_mu", "lambda_sigma"}:
        return None  # a run of the other sweep, or with other options
    return float(opts.get(name, variant_options("pc_xbn")[name]))


@sized
def fig_pc_sweep(
    runs: pd.DataFrame, reported: pd.DataFrame, *, width: float = DOUBLE
) -> Figure | None:
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
    n_panels = len({p for data in frames.values() for p in data["panel"]})
    with style():
        fig, axes = _grid_for(len(frames), width, legend_height(n_panels + 1, width, longest=30))
        for ax, (name, data) in zip(axes, frames.items()):
            sns.lineplot(
                data=data, x="lam", y="recall@1", hue="panel", errorbar="sd", marker="o", ax=ax
            )
            rep = reported[reported["variant"].str.startswith(f"pc_xbn[{name}=")]
            lam = rep["variant"].str.extract(r"=([0-9.]+)\]")[0].astype(float)
            ax.plot(lam, rep["mean"], "x--", color="grey", label="thesis table 5.14 (cifar100)")
            ax.get_legend().remove()  # one legend below the panels, never over a curve
            ax.set(title=f"PC-XBN sweep over {name}", xlabel=name, ylabel=R1)
        handles: dict[str, Any] = {}
        for ax in axes:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(label, handle)
        fig.legend(
            list(handles.values()),
            list(handles),
            loc="outside lower center",
            ncols=max(1, min(len(handles), int((width - 0.2) // 2.2))),
            fontsize=SMALL_PT,
            frameon=False,
        )
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


@sized
def fig_memory_age(
    runs: pd.DataFrame, memory: pd.DataFrame, *, width: float = DOUBLE
) -> Figure | None:
    """Memory error against entry age per variant, one block per (profile, dataset):
    solid, the stored entries as the loss sees them (mean +- std over seeds); dashed, the
    un-adapted copy (mean over seeds), what plain XBM would hold. ``age_profile``'s numbers."""
    data = age_profile(runs, memory).dropna(subset=["err", "raw"], how="all")
    if data.empty:
        return None
    panels = sorted(data["panel"].unique())
    most = max(data.loc[data["panel"] == p, "variant"].nunique() for p in panels)
    with style():
        fig, subs, grid = small_multiples_figure(
            len(panels), most, width, legend_height(2, width, title=True)
        )
        for sub, panel in zip(subs, panels):
            part = data[data["panel"] == panel]
            labels = ordered(part["variant"])
            axes = panel_grid(sub, labels, "age quarter", "L2 to fresh", grid)
            for ax, label in zip(axes, labels):
                own = part[part["variant"] == label]
                band(ax, own.dropna(subset=["err"]), "age", "err", label)
                raw = own.groupby("age", sort=True)["raw"].mean()
                ax.plot(
                    raw.index,
                    raw.to_numpy(),
                    color=colour(label),
                    linestyle="--",
                    linewidth=1.1,
                    label=f"{label}, un-adapted",
                )
                ax.set_xticks(range(1, AGE_BUCKETS + 1))
            head = wrap(f"memory error by entry age: {panel}", width - 0.2, FONT_PT, bold=True)
            sub.suptitle(head, fontsize=FONT_PT, fontweight="bold")
        handles = [
            Line2D([], [], color="0.3", linewidth=1.2, label="stored, as the loss sees it"),
            Line2D(
                [],
                [],
                color="0.3",
                linewidth=1.1,
                linestyle="--",
                label="un-adapted copy (what XBM holds)",
            ),
        ]
        title = (
            f"mean over seeds and the last {AGE_EPOCHS} epochs' probe points; "
            "age quarter 1: the youngest entries"
        )
        legend(fig, handles, width, title=title)
    return fig


def gain_per_epoch(runs: pd.DataFrame, memory: pd.DataFrame) -> pd.DataFrame:
    """Per reference run and main epoch: the mean adaptation gain (raw_l2_mean / err_l2_mean,
    the probe's ``gain``) over the epoch's probe points; epochs without a gain dropped."""
    data = _probed(runs, memory)
    keys = ["run_id", "variant", "panel", "epoch"]
    return data.groupby(keys, sort=True)["gain"].mean().reset_index().dropna(subset=["gain"])


NOTHING_ADAPTED = "gain 1: nothing adapted"


@sized
def fig_adaptation_gain(
    runs: pd.DataFrame, memory: pd.DataFrame, *, width: float = DOUBLE
) -> Figure | None:
    """Adaptation gain per epoch, each variant against XBM (gain 1: nothing adapted), mean +-
    std over seeds of ``gain_per_epoch``; dotted: gain 1. The oracle is left out: it adapts
    nothing (its gain is 1 by construction), so its line would bound nothing here."""
    data = gain_per_epoch(runs, memory)
    data = data[~data["variant"].map(is_bound)]
    if data.empty:
        return None
    blocks = [(panel, "gain", "adaptation gain") for panel in sorted(data["panel"].unique())]
    one = {"color": "0.3", "linestyle": ":", "linewidth": 0.8}
    extra = [Line2D([], [], label=NOTHING_ADAPTED, **one)]
    fig = highlight_figure(data, blocks, "epoch", "epoch", "un-adapted / adapted L2", width, extra)
    for ax in fig.axes:  # only panels with data: the grid's unused slots are gone
        ax.axhline(1.0, zorder=1, label=NOTHING_ADAPTED, **one)
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
        markersize=3.5,
        capsize=2.5,
        linewidth=1.1,
    )
    bars.lines[0].set_gid(gid)


LEVELS = "dotted: no cost; none and all of it recovered"


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
        markersize=6,
        gid="unbounded",
        transform=near_bottom,
    )
    cost_ax.axhline(0.0, color="0.3", linestyle=":", linewidth=0.8, label=LEVELS)
    for level in (0.0, 1.0):
        share_ax.axhline(level, color="0.3", linestyle=":", linewidth=0.8, label=LEVELS)
    share_ax.set_xticks(sorted(cell["memory_ratio"].unique()))
    cost_ax.set_xticks(sorted(cell["memory_ratio"].unique()))


REGIME_MIN_W = 1.35  # inches: a regimes panel never narrower


@sized
def fig_regimes(points: pd.DataFrame, *, width: float = DOUBLE) -> Figure | None:
    """Per block (profile, dataset, setting, refresh interval), one pair of panels per LR,
    wrapped into as many columns as ``width`` holds: top, the staleness cost against memory
    ratio; below, XBN's share of it (``points``: reports.mechanism.regime_points). None
    without a point."""
    if points.empty:
        return None
    blocks = list(points.groupby(["profile", "dataset", "setting", "refresh"], sort=True))
    ncols = fit_columns(width, max(b["lr"].nunique() for _, b in blocks), REGIME_MIN_W, 0.7)
    rows = [-(-b["lr"].nunique() // ncols) for _, b in blocks]  # pairs of rows per block
    panel_h = 1.55
    legend_h = legend_height(4, width, longest=44, title=True)
    with style():
        fig = Figure(
            figsize=(width, sum(rows) * 2 * (panel_h + 0.35) + legend_h), layout="constrained"
        )
        axes = fig.subplots(2 * sum(rows), ncols, squeeze=False)
        used: set[tuple[int, int]] = set()
        top = 0
        for ((profile, dataset, _, refresh), block), n_rows in zip(blocks, rows):
            lrs = sorted(block["lr"].unique())
            for k, lr in enumerate(lrs):
                i, j = top + 2 * (k // ncols), k % ncols
                cost_ax, share_ax = axes[i, j], axes[i + 1, j]
                used |= {(i, j), (i + 1, j)}
                _regime_panel(cost_ax, share_ax, block[block["lr"] == lr])
                cost_ax.set_title(f"{dataset} ({profile})\nlr {lr:g}", fontsize=FONT_PT)
                share_ax.set_xlabel("memory ratio")
                if j == 0:
                    cost_ax.set_ylabel(f"oracle (every {refresh})\n− xbm, Recall@1 pts")
                    share_ax.set_ylabel("share recovered\nby xbn")
            top += 2 * n_rows
        for (i, j), ax in np.ndenumerate(axes):
            if (i, j) not in used:
                ax.remove()
        _regimes_legend(fig, width)
    return fig


def _regimes_legend(fig: Figure, width: float) -> None:
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
        Line2D([], [], color="0.3", linestyle=":", linewidth=0.8, label=LEVELS),
    ]
    legend(fig, handles, width, title="paired by seed; no Holm (estimates, not claims)")


MOCO_FIGURE = ("moco_knn", "k-NN accuracy per epoch, MoCo with and without XBN (paper fig. 2)")
EARLY = "the early epoch (the MoCo claim's)"


@sized
def fig_moco(epochs: pd.DataFrame, runs: pd.DataFrame, *, width: float = DOUBLE) -> Figure | None:
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
    variants = ordered(data["variant"])
    with style():
        fig, axes = _grid_for(len(panels), width, legend_height(len(variants) + 1, width))
        for ax, panel in zip(axes, panels):
            sub = data[data["panel"] == panel]
            _lines(ax, sub, "epoch", MOCO_METRIC)
            for line in ax.lines:  # named as in the legend and the MoCo table
                line.set_label(MOCO_NAMES.get(str(line.get_label()), line.get_label()))
            early = early_epoch(sub["profile"].iloc[0], int(sub["epoch"].max()))
            ax.axvline(early, color="grey", linestyle=":", linewidth=1, label=EARLY)
            title = wrap(panel, ax_width(fig, ax, width))
            ax.set(title=title, xlabel="epoch", ylabel="k-NN accuracy (%)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        handles = [
            Line2D(
                [], [], color=colour(v), marker=marker(v), markersize=4, label=MOCO_NAMES.get(v, v)
            )
            for v in variants
        ]
        handles.append(Line2D([], [], color="grey", linestyle=":", linewidth=1, label=EARLY))
        legend(fig, handles, width)
    return fig
