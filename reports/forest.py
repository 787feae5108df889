"""The headline figure: per (profile, dataset), every variant's difference to a reference variant
with its confidence interval (a forest plot), the reported difference beside it.

Readable in greyscale: references differ by marker and line style, not colour alone; the reported
difference is a hollow diamond. Variants are grouped by family (``FAMILIES``), each family under a
bold header row. No pyplot: the function returns a ``matplotlib.figure.Figure``; the caller saves.
"""

from __future__ import annotations

import math

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

# family of each variant name; a label with a suffix (no_xbm_512, pc_xbn_adjusted_margin, xbn+l2_bn)
# takes its variant's family; anything unknown is "other"
FAMILIES: dict[str, str] = {
    "no_xbm": "no memory",
    "xbm": "memory",
    "xbm_star": "memory",
    "oracle_xbm": "memory",
    "xbn": "normalised memory",
    "axbn": "normalised memory",
    "delayed_xbn": "normalised memory",
    "centre_xbn": "normalised memory",
    "scaled_xbn": "normalised memory",
    "pc_xbn": "per-class",
    "sc_xbn": "per-class",
}
FAMILY_ORDER = ("no memory", "memory", "normalised memory", "per-class", "other")
REQUIRED = ("profile", "dataset", "variant", "reference", "diff", "ci_low", "ci_high")
CI_GID = "forest-ci"  # gid of every CI bar, so callers and tests can count them (ci_bar_count)

# (marker, filled, line style, grey) per reference; others cycle through _EXTRA
_REF_STYLE = {"xbm": ("o", True, "-", "black"), "no_xbm": ("s", False, "--", "0.35")}
_EXTRA = [("^", True, ":", "0.2"), ("v", False, "-.", "0.5")]
_REPORTED = {"marker": "D", "markersize": 7, "markerfacecolor": "none", "color": "black"}


def family(variant: str) -> str:
    """FAMILIES[variant], else the family of the longest known name the label starts with
    (followed by ``_``, ``+`` or ``[``), else "other"."""
    if variant in FAMILIES:
        return FAMILIES[variant]
    known = [k for k in FAMILIES if variant.startswith(k) and variant[len(k)] in "_+["]
    return FAMILIES[max(known, key=len)] if known else "other"


def _ref_style(reference: str, references: list[str]) -> tuple[str, bool, str, str]:
    if reference in _REF_STYLE:
        return _REF_STYLE[reference]
    others = [r for r in references if r not in _REF_STYLE]
    return _EXTRA[others.index(reference) % len(_EXTRA)]


def _variant_order(variants: list[str]) -> list[tuple[str, list[str]]]:
    """[(family, [variants])] in FAMILY_ORDER, variants in FAMILIES' order, unknown ones sorted."""
    rank = {v: i for i, v in enumerate(FAMILIES)}
    groups = []
    for fam in FAMILY_ORDER:
        members = [v for v in variants if family(v) == fam]
        if members:
            groups.append((fam, sorted(members, key=lambda v: (rank.get(v, len(rank)), v))))
    return groups


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


def _legend(fig: Figure, refs: list[str], level: float, has_reported: bool, wide: bool) -> None:
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
    missing = [c for c in REQUIRED if c not in rows.columns]
    if missing:
        raise ValueError(f"forest rows need columns {REQUIRED}, missing {missing}")
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
    _legend(fig, refs, level, bool(has_reported), wide=ncols > 1)
    return fig


def ci_bar_count(fig: Figure) -> int:
    """CI bars drawn in a forest figure (lines with gid CI_GID)."""
    return sum(1 for ax in fig.axes for line in ax.lines if line.get_gid() == CI_GID)
