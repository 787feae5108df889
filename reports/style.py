"""One look for every figure: one colour and one marker per variant (``VARIANT_COLOURS``), the
same in every figure, and small multiples that show each variant against XBM in grey
(``highlight_grid``), so that no panel holds more than two curves. No pyplot.

Colours: Okabe & Ito's colour-blind-safe set plus two of Paul Tol's; XBM, the reference of the
highlight panels, is grey everywhere, no-XBM black. A label with a suffix (``pc_xbn_adjusted_
margin``, ``xbn+l2_bn``) takes its variant's colour (reports.forest.family's prefix rule).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D

REFERENCE = "xbm"  # drawn in grey in every highlight panel
VARIANT_COLOURS: dict[str, str] = {
    "no_xbm": "#000000",
    "xbm": "#8c8c8c",
    "xbm_star": "#56b4e9",
    "xbn": "#0072b2",
    "axbn": "#009e73",
    "delayed_xbn": "#e69f00",
    "centre_xbn": "#cc79a7",
    "scaled_xbn": "#d55e00",
    "pc_xbn": "#882255",
    "sc_xbn": "#999933",
    "oracle_xbm": "#663333",  # the bound (re-embedded memory, beyond the sources): Tol's dark red
}
VARIANT_MARKERS: dict[str, str] = {
    "no_xbm": "s", "xbm": "o", "xbm_star": "P", "xbn": "^", "axbn": "v", "delayed_xbn": "<",
    "centre_xbn": ">", "scaled_xbn": "D", "pc_xbn": "X", "sc_xbn": "*", "oracle_xbm": "p",
}  # fmt: skip
OTHER_COLOUR, OTHER_MARKER = "#332288", "h"  # a label of no known variant
ORDER = tuple(VARIANT_COLOURS)
PANEL_W, PANEL_H = 2.4, 1.9  # inches per small-multiple panel
MAX_COLS = 5


def base_variant(label: str) -> str | None:
    """The known variant a label names: itself, else the longest known name it starts with
    followed by ``_``, ``+``, ``[`` or `` ``; None for anything else."""
    if label in VARIANT_COLOURS:
        return label
    known = [k for k in VARIANT_COLOURS if label.startswith(k) and label[len(k)] in "_+[ ("]
    return max(known, key=len) if known else None


def colour(label: str) -> str:
    return VARIANT_COLOURS.get(base_variant(label) or "", OTHER_COLOUR)


def marker(label: str) -> str:
    return VARIANT_MARKERS.get(base_variant(label) or "", OTHER_MARKER)


def ordered(labels: Sequence[str]) -> list[str]:
    """Labels once each, known variants in ``ORDER``, then the rest sorted."""
    present = list(dict.fromkeys(labels))
    rank = {v: i for i, v in enumerate(ORDER)}
    return sorted(present, key=lambda v: (rank.get(base_variant(v) or "", len(rank)), v))


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
    ax.plot(stats[x], stats["mean"], color=c, marker=None if grey else marker(label),
            markersize=3.5, linewidth=1.4, zorder=2 if grey else 3)  # fmt: skip
    if stats["std"].notna().any():
        lo, hi = stats["mean"] - stats["std"], stats["mean"] + stats["std"]
        ax.fill_between(stats[x], lo, hi, color=c, alpha=0.15 if grey else 0.22, linewidth=0)


def highlight_grid(fig: Figure | SubFigure, data: pd.DataFrame, x: str, y: str, xlabel: str,
                   ylabel: str) -> list[Axes]:  # fmt: skip
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


def panel_grid(fig: Figure | SubFigure, labels: Sequence[str], xlabel: str,
               ylabel: str) -> list[Axes]:  # fmt: skip
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
        Line2D([], [], color=colour("xbn"), marker=marker("xbn"), markersize=3.5,
               label="the panel's variant (its colour in every figure)"),
    ]  # fmt: skip
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize="small",
               title="mean over seeds, band ± sample std", title_fontsize="small")  # fmt: skip


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
    handles = [Line2D([], [], color=colour(v), marker=marker(v), markersize=4, label=v)
               for v in ordered(labels)]  # fmt: skip
    fig.legend(handles=handles, title="variant", loc="outside right upper", fontsize="small")
