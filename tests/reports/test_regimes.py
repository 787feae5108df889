"""The demo-regimes figure: cells grouped by (memory ratio, lr), the staleness cost and
XBN's share of it per cell checked against a hand computation, the drawn points read back from
the figure, and no figure without such runs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from reports.build import compute, write
from reports.claims import ORACLE, staleness_claim
from reports.figures import REGIMES, fig_regimes
from reports.inference import BOUNDED
from reports.load import load_store, select_epoch
from reports.mechanism import regime_points

from .conftest import make_run
from .overlap import text_overlaps

MEMORY, LRS = (0.25, 0.5), (0.0005, 0.001)
XBM = [60.0, 61.2, 59.4]  # per seed, every cell
COST = {  # oracle - xbm per seed, per (memory ratio, lr): grows with the memory
    (0.25, 0.0005): [0.6, -0.5, 0.2],  # not resolved: the share is unbounded
    (0.25, 0.001): [1.0, 1.3, 0.8],
    (0.5, 0.0005): [1.8, 2.2, 1.5],
    (0.5, 0.001): [2.6, 3.1, 2.4],
}
GAIN = [0.5, 0.7, 0.2]  # xbn - xbm per seed, every cell


def _regime_runs(root, cells=COST) -> None:
    for (memory, lr), cost in cells.items():
        arms = {"xbm": XBM, "xbn": np.add(XBM, GAIN), ORACLE: np.add(XBM, cost)}
        for variant, values in arms.items():
            opts = {"refresh_interval": 10} if variant == ORACLE else None
            for seed, x in enumerate(values):
                make_run(root, dataset="fashion-mnist", variant=variant, seed=seed,
                         profile="cpu", options=opts, memory=memory, lr=lr,
                         best_r1=round(float(x), 4), best_epoch=3)  # fmt: skip


def _runs(root):
    return select_epoch(load_store(root).done)


def _by_hand(cost: list[float]) -> dict[str, float]:
    n = len(cost)
    mean = sum(cost) / n
    se = math.sqrt(sum((c - mean) ** 2 for c in cost) / (n - 1) / n)
    half = sps.t.ppf(0.975, n - 1) * se
    return {"cost": mean, "low": mean - half, "high": mean + half,
            "share": sum(GAIN) / sum(cost), "resolved": mean - half > 0}  # fmt: skip


def test_regime_points_group_by_memory_ratio_and_lr(results):
    _regime_runs(results)
    points = regime_points(_runs(results)).set_index(["memory_ratio", "lr"])
    assert sorted(points.index) == sorted(COST)
    for cell, cost in COST.items():
        row, hand = points.loc[cell], _by_hand(cost)
        assert row["n"] == 3 and row["refresh"] == 10
        assert row["cost"] == pytest.approx(hand["cost"])
        assert (row["cost_low"], row["cost_high"]) == pytest.approx((hand["low"], hand["high"]))
        assert row["share"] == pytest.approx(hand["share"])
        # Fieller's set is bounded exactly where the cost's own t interval excludes 0
        assert (row["share_kind"] == BOUNDED) == hand["resolved"]
    assert points.loc[(0.25, 0.0005), "share_kind"] != BOUNDED


def test_regimes_figure_draws_one_panel_per_lr(results):
    _regime_runs(results)
    fig = fig_regimes(regime_points(_runs(results)))
    assert fig is not None and text_overlaps(fig) == []
    for lr in LRS:
        (cost_ax,) = [a for a in fig.axes if a.get_title().endswith(f"lr {lr:g}")]
        (line,) = [ln for ln in cost_ax.lines if ln.get_gid() == "cost"]
        assert list(line.get_xdata()) == list(MEMORY)
        assert line.get_ydata() == pytest.approx([_by_hand(COST[(m, lr)])["cost"] for m in MEMORY])
    share_lines = [ln for a in fig.axes for ln in a.lines if ln.get_gid() == "share"]
    drawn = sorted(y for ln in share_lines for y in ln.get_ydata())
    expected = sorted(_by_hand(c)["share"] for c in COST.values() if _by_hand(c)["resolved"])
    assert drawn == pytest.approx(expected)  # the unresolved cell has no number...
    marks = [ln for a in fig.axes for ln in a.lines if ln.get_gid() == "unbounded"]
    assert [x for ln in marks for x in ln.get_xdata()] == [0.25]  # ...but a mark


def test_no_regimes_figure_without_such_runs(results):
    _regime_runs(results, {(0.5, 0.001): COST[(0.5, 0.001)]})  # one cell: the demo's
    points = regime_points(_runs(results))
    assert points.empty and fig_regimes(points) is None
    report = compute(results)
    assert report.figures[REGIMES] is None
    text = write(report).read_text()
    assert "`xbmbench reproduce --study demo-regimes`" in text
    assert not (results / "report" / "figures" / f"{REGIMES}.png").exists()


def test_claims_beside_an_lr_sweep_are_judged_at_the_reference_lr(results):
    """Study cells at several LRs: each claim arm keeps one config (no 'an arm holds 2 configs'),
    at the most common LR, ties to the lower median (here 0.0005 of two); the figure shows all."""
    _regime_runs(results)
    cells = [json.loads(p.read_text()) for p in (results / "runs").glob("*/config.json")]
    report = compute(results, cells=cells)
    gap = report.claims[report.claims["claim_id"] == staleness_claim(10).id].iloc[0]
    assert gap["n"] == 3 and gap["diff"] == pytest.approx(np.mean(COST[(0.25, 0.0005)]))
    assert report.figures[REGIMES] is not None
