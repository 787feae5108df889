"""Every report figure at publication size: saved at 7 in (figures/<name>.*) and 3.5 in
(figures/column/<name>.*), PNG and PDF, read back from the bytes; all text at least 7 pt at that
size; no empty panels; the oracle drawn as a bound in the forest plot and in every per-epoch
figure; figures no longer backed by runs removed in every size."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from reports.build import _save_figure, compute, make_figures, write
from reports.figures import (
    ADAPTATION_GAIN,
    BOUND_GID,
    MEMORY_AGE,
    REGIMES,
    at_width,
    fig_adaptation_gain,
    fig_memory_age,
    fig_regimes,
)
from reports.load import label_runs, load_store, select_epoch
from reports.tables import load_reported

from .conftest import make_demo, make_run
from .overlap import text_overlaps
from .test_figures import moco_figure

ORACLE_LABEL = "oracle_xbm[refresh_interval=10]"  # as the tables label it (reports.load)
ORACLE_R1 = {0: 84.0, 1: 85.5, 2: 83.1}  # per seed
PER_EPOCH = ("drift", "distances", "recall_curves")  # the oracle drawn as a bound


def _memory(runs: pd.DataFrame) -> pd.DataFrame:
    """Probe rows for the xbm, xbn and oracle runs: 2 points an epoch, gain 1 + 0.1 * epoch."""
    rows = []
    for r in runs[runs["variant"].isin(["xbm", "xbn", "oracle_xbm"])].to_dict("records"):
        for epoch in range(1, 4):
            for _ in range(2):
                ages = {f"err_l2_age{q}": 0.1 * q for q in range(1, 5)}
                raws = {f"raw_l2_age{q}": 0.15 * q for q in range(1, 5)}
                gain = 1.0 if r["variant"] != "xbn" else 1.0 + 0.1 * epoch
                rows.append({"run_id": r["run_id"], "epoch": epoch, "gain": gain, **ages, **raws})
    return pd.DataFrame(rows)


def _regime_points() -> pd.DataFrame:
    rows = []
    for lr in (0.00025, 0.0005, 0.001):
        for m in (0.25, 0.5, 1.0):
            rows.append({"profile": "cpu", "dataset": "fashion-mnist", "setting": "",
                         "refresh": 10, "lr": lr, "memory_ratio": m, "cost": 1.0 + m,
                         "cost_low": 0.5, "cost_high": 2.5, "share_kind": "bounded",
                         "share": 0.4, "share_low": 0.1, "share_high": 0.7})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """(figures by name, the labelled runs, the epochs): demo-like runs, the oracle at a
    refresh interval of 10 (not its default), a batch sweep and a lambda sweep."""
    root = tmp_path_factory.mktemp("sizes") / "results"
    root.mkdir()
    make_demo(root)
    for seed, r1 in ORACLE_R1.items():
        make_run(root, dataset="fashion-mnist", variant="oracle_xbm", seed=seed, profile="cpu",
                 options={"refresh_interval": 10}, best_r1=r1, best_epoch=3,
                 superclass=True)  # fmt: skip
    for variant in ("no_xbm", "xbm", "xbn", "axbn"):
        for seed in range(2):
            make_run(root, dataset="fashion-mnist", variant=variant, seed=seed, profile="cpu",
                     batch=20, best_r1=79.0 + seed)  # fmt: skip
    for lam in (0.0, 0.4):
        make_run(root, dataset="cifar100", variant="pc_xbn", seed=0,
                 options={"lambda_mu": lam}, best_r1=60.0 + 10 * lam)  # fmt: skip
    store = load_store(root)
    runs = label_runs(select_epoch(store.done), None)
    figs = make_figures(runs, store.epochs, load_reported())
    memory = _memory(runs)
    figs[MEMORY_AGE] = fig_memory_age(runs, memory)
    figs[ADAPTATION_GAIN] = fig_adaptation_gain(runs, memory)
    figs[REGIMES] = fig_regimes(_regime_points())
    figs["moco"] = moco_figure()
    assert all(f is not None for f in figs.values()), [k for k, f in figs.items() if f is None]
    return figs, runs, store.epochs


def _png_inches(data: bytes) -> tuple[float, float, float]:
    """(width, height, dpi) of a PNG from its IHDR and pHYs chunks."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width_px, height_px = struct.unpack(">II", data[16:24])
    at = data.index(b"pHYs")
    ppx, ppy, unit = struct.unpack(">IIB", data[at + 4 : at + 13])
    assert unit == 1 and ppx == ppy  # pixels per metre
    dpi = ppx * 0.0254
    return width_px / dpi, height_px / dpi, dpi


def _pdf_media_box(data: bytes) -> list[float]:
    boxes = re.findall(rb"/MediaBox\s*\[\s*([-\d.\s]+)\]", data)
    assert len(boxes) == 1  # one page
    return [float(v) for v in boxes[0].split()]


def _sizes(fig: Figure) -> dict[float, Figure]:
    return {w: at_width(fig, w) for w in (7.0, 3.5)}


def _drawn_texts(fig: Figure) -> list[Text]:
    FigureCanvasAgg(fig)
    fig.draw_without_rendering()
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def _legend_texts(fig: Figure) -> list[str]:
    return [t.get_text() for leg in fig.legends for t in leg.get_texts()]


def test_saved_at_both_widths_as_png_and_pdf(drawn, tmp_path):
    figs, _, _ = drawn
    for name, fig in figs.items():
        _save_figure(fig, tmp_path / "figures" / name)
        for folder, inches in (("", 7.0), ("column", 3.5)):
            png = (tmp_path / "figures" / folder / f"{name}.png").read_bytes()
            width, height, dpi = _png_inches(png)
            assert width == pytest.approx(inches, abs=1 / dpi), (name, folder)
            assert dpi == pytest.approx(300, abs=0.01)
            pdf = (tmp_path / "figures" / folder / f"{name}.pdf").read_bytes()
            x0, y0, x1, y1 = _pdf_media_box(pdf)
            assert x1 - x0 == pytest.approx(inches * 72, abs=0.01), (name, folder)
            assert y1 - y0 == pytest.approx(height * 72, abs=72 / dpi)  # the same page


def test_every_text_is_at_least_7_points_and_none_overlaps(drawn):
    figs, _, _ = drawn
    for name, fig in figs.items():
        for inches, sized in _sizes(fig).items():
            assert sized.get_figwidth() == inches
            small = [(t.get_text(), t.get_fontsize()) for t in _drawn_texts(sized)]
            assert [s for s in small if s[1] < 7] == [], (name, inches)
            assert text_overlaps(sized) == [], (name, inches)


def test_no_empty_panels(drawn):
    figs, _, _ = drawn
    for name, fig in figs.items():
        for inches, sized in _sizes(fig).items():
            for ax in sized.axes:
                assert ax.axison, (name, inches)  # no switched-off slot left in the grid
                data = [ln for ln in ax.lines if len(ln.get_xdata())] + ax.collections
                assert data, (name, inches, ax.get_title())


def test_small_multiples_wrap_into_columns_at_column_width(drawn):
    figs, _, _ = drawn
    for inches, cols in ((7.0, 5), (3.5, 3)):
        fig = at_width(figs["recall_curves"], inches)
        assert len(fig.axes) == 9  # every demo variant but xbm; the oracle has none of its own
        assert len({round(ax.get_position().x0, 3) for ax in fig.axes}) == cols


def test_the_oracle_is_a_bound_in_every_per_epoch_figure(drawn):
    figs, runs, epochs = drawn
    ids = set(runs.loc[runs["variant"] == "oracle_xbm", "run_id"])
    assert len(ids) == len(ORACLE_R1)
    oracle = epochs[epochs["run_id"].isin(ids) & (epochs["phase"] == "main")]
    mean_r1 = oracle.groupby("epoch")["recall@1"].mean()
    for name in PER_EPOCH:
        for inches, fig in _sizes(figs[name]).items():
            assert f"{ORACLE_LABEL} (bound)" in _legend_texts(fig), (name, inches)
            for ax in fig.axes:
                (bound,) = [ln for ln in ax.lines if ln.get_label() == f"{ORACLE_LABEL} (bound)"]
                assert bound.get_linestyle() == "--"
                if name == "recall_curves":
                    assert list(bound.get_xdata()) == list(mean_r1.index)
                    assert list(bound.get_ydata()) == pytest.approx(mean_r1.to_numpy())


def test_the_adaptation_gain_leaves_the_oracle_out(drawn):
    """The oracle adapts nothing (gain 1 by construction): no line or panel of it."""
    figs, _, _ = drawn
    for fig in _sizes(figs[ADAPTATION_GAIN]).values():
        texts = [*_legend_texts(fig), *(ax.get_title() for ax in fig.axes)]
        assert not [t for t in texts if "oracle" in t]
        assert not [ln for ax in fig.axes for ln in ax.lines if "oracle" in ln.get_label()]


def test_the_oracle_is_in_the_forest_plot(drawn):
    figs, runs, _ = drawn
    at_ref = runs[(runs["dataset"] == "fashion-mnist") & (runs["batch_size"] != 20)]
    xbm = at_ref[at_ref["variant"] == "xbm"].set_index("seed")["recall@1"]
    diff = np.mean([ORACLE_R1[s] - xbm[s] for s in ORACLE_R1])  # paired by seed
    for fig in _sizes(figs["forest"]).values():
        (ax,) = fig.axes
        ticks = [t.get_text().replace("\n", "") for t in ax.get_yticklabels()]
        assert ticks[-2:] == ["bound", ORACLE_LABEL]  # its own family, last
        (line,) = [ln for ln in ax.lines if ln.get_gid() == BOUND_GID]
        assert line.get_xdata()[0] == pytest.approx(diff)
        assert f"{ORACLE_LABEL} − xbm (bound)" in _legend_texts(fig)


def test_every_line_has_a_legend_entry_or_is_its_panels_variant(drawn):
    figs, _, _ = drawn
    others = (ADAPTATION_GAIN, "superclass_topk", "recall_vs_batch_memory", "moco", MEMORY_AGE)
    for name in (*PER_EPOCH, *others):
        fig = figs[name]
        legend = set(_legend_texts(fig)) | {t.split(" (")[0] for t in _legend_texts(fig)}
        for ax in fig.axes:
            title = ax.get_title().replace("\n", "")
            for line in ax.lines:
                label = line.get_label()
                own = label == title or label == f"{title}, un-adapted"
                assert own or label in legend or label.startswith("_child"), (name, label)
            assert [ln for ln in ax.lines if ln.get_label().startswith("_child")] == [], name


def test_a_figure_without_runs_is_removed_in_every_size(results):
    for seed in range(2):
        for variant in ("xbm", "xbn"):
            make_run(results, dataset="fashion-mnist", variant=variant, seed=seed,
                     profile="cpu", best_r1=80.0 + seed)  # fmt: skip
    stale = [
        results / "report" / "figures" / folder / f"{REGIMES}.{fmt}"
        for folder in ("", "column")
        for fmt in ("png", "pdf")
    ]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"an old figure")
    report = compute(results)
    assert report.figures[REGIMES] is None
    write(report)
    assert [p for p in stale if p.exists()] == []
    kept = results / "report" / "figures" / "column" / "recall_curves.pdf"
    assert kept.read_bytes().startswith(b"%PDF")


def test_only_figures_of_this_module_are_redrawn():
    fig = Figure(figsize=(7.0, 3.0))
    assert at_width(fig, 7.0) is fig
    with pytest.raises(ValueError, match="redrawn"):
        at_width(fig, 3.5)


def test_saved_pdf_is_vector(drawn, tmp_path):
    figs, _, _ = drawn
    _save_figure(figs["forest"], tmp_path / "forest")
    pdf = (tmp_path / "column" / "forest.pdf").read_bytes()
    assert b"/Subtype /Image" not in pdf  # no raster inside
    assert Path(tmp_path / "forest.png").stat().st_size > 0
