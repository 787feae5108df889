"""The forest plot (reports.figures.forest_figure): one CI bar per (variant, reference) row,
greyscale styles, no text overlaps."""

from __future__ import annotations

import itertools
import math

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from reports.figures import BOUND_GID, CI_GID, ci_bar_count, family, forest_figure

from .overlap import text_overlaps

VARIANTS = [
    "no_xbm",
    "xbm",
    "xbm_star",
    "xbn",
    "axbn",
    "pc_xbn",
    "sc_xbn",
    "pc_xbn_adjusted_margin",
]


def forest_rows(panels, references=("xbm", "no_xbm"), seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for profile, dataset in panels:
        for variant, ref in itertools.product(VARIANTS, references):
            if variant == ref:
                continue
            d, half = rng.normal(0.5, 1.0), abs(rng.normal(0.8, 0.3))
            reported = rng.normal(1.0, 1.0) if ref == "xbm" and profile == "paper" else math.nan
            rows.append({"profile": profile, "dataset": dataset, "variant": variant,
                         "reference": ref, "diff": d, "ci_low": d - half, "ci_high": d + half,
                         "reported_diff": reported})  # fmt: skip
    return pd.DataFrame(rows)


PANELS = [("paper", "sop"), ("paper", "inshop"), ("cpu", "demo"), ("paper", "deepfashion2")]


@pytest.mark.parametrize(
    "panels,references",
    [(PANELS[:1], ("xbm",)), (PANELS[:2], ("xbm", "no_xbm")), (PANELS, ("xbm", "no_xbm"))],
)
def test_one_ci_bar_per_variant_reference_pair(panels, references):
    rows = forest_rows(panels, references)
    fig = forest_figure(rows)
    pairs = len(set(zip(rows.profile, rows.dataset, rows.variant, rows.reference)))
    assert ci_bar_count(fig) == pairs == len(rows)
    assert sum(ax.axison for ax in fig.axes) == len(panels)


def test_a_row_without_ci_draws_its_point_but_no_bar():
    rows = forest_rows(PANELS[:1])
    rows.loc[0, ["ci_low", "ci_high"]] = math.nan
    assert ci_bar_count(forest_figure(rows)) == len(rows) - 1


def test_references_differ_by_line_style_and_marker_not_colour_alone():
    fig = forest_figure(forest_rows(PANELS[:1]))
    styles = {line.get_linestyle() for line in fig.axes[0].lines if line.get_gid() == CI_GID}
    assert styles == {"-", "--"}
    legend = fig.legends[0]
    markers = [h.get_marker() for h in legend.legend_handles]
    assert len(set(markers)) == len(markers) == 3  # xbm, no_xbm, reported


@pytest.mark.parametrize("n_panels", [1, 2, 4])
def test_no_two_texts_overlap(n_panels):
    fig = forest_figure(forest_rows(PANELS[:n_panels]))
    assert text_overlaps(fig) == []


def test_saves_to_png(tmp_path):
    fig = forest_figure(forest_rows(PANELS[:2]))
    path = tmp_path / "forest.png"
    fig.savefig(path, dpi=80)
    image = matplotlib.image.imread(path)
    assert image.shape[0] == pytest.approx(fig.get_figheight() * 80, abs=2)
    assert image.shape[1] == pytest.approx(fig.get_figwidth() * 80, abs=2)


def test_family_by_name_then_by_label_prefix_then_other():
    assert family("xbn") == "normalised memory"
    assert family("pc_xbn_adjusted_margin") == family("pc_xbn") == "per-class"
    assert family("no_xbm_512") == family("no_xbm") == "no memory"
    assert family("xbn+l2_bn") == family("xbn[foo=1]") == "normalised memory"
    assert family("xbnx") == family("mystery") == "other"


def test_families_are_header_rows_in_order():
    fig = forest_figure(forest_rows(PANELS[:1]))
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[0] == "no memory" and labels.index("memory") < labels.index("per-class")
    bold = [t.get_text() for t in fig.axes[0].get_yticklabels() if t.get_fontweight() == "bold"]
    assert bold == ["no memory", "memory", "normalised memory", "per-class"]


def test_empty_rows_give_none_and_bad_rows_raise():
    rows = forest_rows(PANELS[:1])
    assert forest_figure(rows.iloc[0:0]) is None
    with pytest.raises(ValueError, match="missing \\['ci_high'\\]"):
        forest_figure(rows.drop(columns="ci_high"))
    bad = rows.copy()
    bad.loc[0, "reference"] = bad.loc[0, "variant"]
    with pytest.raises(ValueError, match="own reference"):
        forest_figure(bad)


def test_the_oracle_is_drawn_as_a_bound_in_its_own_family_last():
    rows = forest_rows(PANELS[:1])
    label = "oracle_xbm[refresh_interval=5]"  # a label as the tables write it
    oracle = [
        {"profile": "paper", "dataset": "sop", "variant": label, "reference": ref, "diff": d,
         "ci_low": d - 1.0, "ci_high": d + 1.0, "reported_diff": math.nan}
        for ref, d in (("xbm", 2.5), ("no_xbm", 4.0))
    ]  # fmt: skip
    fig = forest_figure(pd.concat([rows, pd.DataFrame(oracle)], ignore_index=True))
    ax = fig.axes[0]
    ticks = [t.get_text().replace("\n", "") for t in ax.get_yticklabels()]
    assert ticks[-2:] == ["bound", label]
    (bound,) = [line for line in ax.lines if line.get_gid() == BOUND_GID]
    assert list(bound.get_xdata()) == [2.5, 2.5] and bound.get_linestyle() == "--"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert f"{label} − xbm (bound)" in legend
    assert ci_bar_count(fig) == len(rows) + 2
