"""Aggregation against hand-computed numbers: means, sample stds, differences, Welch p."""

from __future__ import annotations

import math
import statistics

import pytest
from scipy import stats as sps

from reports.load import load_store, select_epoch
from reports.render import display_table, with_verdicts
from reports.reported import load_reported
from reports.tables import all_tables, reported_comparison, selection_gain, tables_without_runs

from .conftest import make_run

SOP_XBN = [80.0, 80.6, 81.5]  # paper table 1: sop xbn recall@1 80.62 +- 0.17 (n = 3)


def _runs(results, epoch="best"):
    return select_epoch(load_store(results).done, epoch)


@pytest.fixture
def grid(results):
    for seed, r1 in enumerate(SOP_XBN):
        make_run(results, dataset="sop", variant="xbn", seed=seed, best_r1=r1)
    make_run(results, dataset="sop", variant="xbm", seed=0, best_r1=70.0, head="l2_ln")
    make_run(results, dataset="fashion-mnist", variant="xbn", seed=0, best_r1=85.0,
             profile="cpu", batch=32)  # fmt: skip
    make_run(results, dataset="fashion-mnist", variant="xbn", seed=1, best_r1=86.0,
             profile="cpu", batch=32)  # fmt: skip
    return results


def test_reported_row_against_hand_numbers(grid):
    table = reported_comparison(_runs(grid), load_reported())
    row = table[
        (table["table"] == "paper table 1")
        & (table["dataset"] == "sop")
        & (table["variant"] == "xbn")
        & (table["metric"] == "recall@1")
    ].iloc[0]
    mean, std = statistics.mean(SOP_XBN), statistics.stdev(SOP_XBN)
    assert row["n"] == 3
    assert row["ours_mean"] == pytest.approx(mean) and row["ours_std"] == pytest.approx(std)
    assert row["reported_mean"] == 80.62 and row["reported_std"] == 0.17
    assert row["diff"] == pytest.approx(mean - 80.62)
    va, vb = std**2 / 3, 0.17**2 / 3  # Welch, written out
    t = (mean - 80.62) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)
    assert row["welch_p"] == pytest.approx(2 * sps.t.sf(abs(t), df))
    r10 = table[
        (table["table"] == "paper table 1")
        & (table["dataset"] == "sop")
        & (table["variant"] == "xbn")
        & (table["metric"] == "recall@10")
    ].iloc[0]
    assert r10["ours_mean"] == pytest.approx(mean + 10)


def test_no_p_without_reported_std_or_with_one_run(grid):
    table = reported_comparison(_runs(grid), load_reported())
    t3 = table[
        (table["table"] == "paper table 3")
        & (table["variant"] == "xbm+l2_ln")
        & (table["metric"] == "recall@1")
    ].iloc[0]
    assert t3["n"] == 1 and t3["diff"] == pytest.approx(70.0 - 79.51)
    assert math.isnan(t3["welch_p"]) and math.isnan(t3["ours_std"])
    t71 = table[
        (table["table"] == "thesis table 7.1")
        & (table["dataset"] == "sop")
        & (table["variant"] == "xbn")
        & (table["metric"] == "recall@1")
    ].iloc[0]
    assert t71["n"] == 3 and math.isnan(t71["welch_p"])  # the thesis gives no std


def test_not_run_rows_and_dash_rows(grid):
    tables = all_tables(_runs(grid), load_reported())
    shown = display_table(tables["paper table 1"])
    inshop = shown[(shown["dataset"] == "inshop") & (shown["variant"] == "xbm")]
    assert set(inshop["ours (mean ± std)"]) == {"not run"}
    assert set(inshop["verdict"]) == {"not run"}
    assert inshop["reported"].iloc[0] == "86.17 ± 0.18 (n=3)"
    demo = display_table(tables["cpu runs on fashion-mnist"])
    r1 = demo[demo["metric"] == "recall@1"].iloc[0]
    assert r1["ours (mean ± std)"] == f"85.50 ± {statistics.stdev([85.0, 86.0]):.2f}"
    assert (r1["reported"], r1["diff"], r1["Welch p"], r1["verdict"]) == ("-", "-", "-", "-")
    assert "paper table 2" not in tables  # no runs behind it
    assert "paper table 2" in tables_without_runs(_runs(grid), load_reported())


def test_number_verdicts(grid):
    table = with_verdicts(reported_comparison(_runs(grid), load_reported()))
    pick = table[
        (table["table"] == "paper table 1")
        & (table["dataset"] == "sop")
        & (table["variant"] == "xbn")
    ].set_index("metric")["verdict"]
    # recall@1: |80.70 - 80.62| <= 1 -> reproduced; recall@10: |90.70 - 91.85| > max(1, 2 x 0.44)
    assert pick["recall@1"] == "reproduced" and pick["recall@10"] == "not reproduced"


def test_best_and_last(grid):
    best = reported_comparison(_runs(grid, "best"), load_reported())
    last = reported_comparison(_runs(grid, "last"), load_reported())
    key = (
        (best["table"] == "paper table 1")
        & (best["variant"] == "xbn")
        & (best["dataset"] == "sop")
        & (best["metric"] == "recall@1")
    )
    assert best[key]["ours_mean"].iloc[0] - last[key]["ours_mean"].iloc[0] == pytest.approx(1.0)


def test_selection_gain(results):
    make_run(results, dataset="sop", variant="xbn", seed=0, best_r1=80.0, last_r1=79.0)
    make_run(results, dataset="sop", variant="xbn", seed=1, best_r1=80.0, last_r1=77.0)
    gain = selection_gain(load_store(results).done)
    total = gain[gain["profile"] == "all"].iloc[0]
    assert total["n"] == 2 and total["gain_r1"] == pytest.approx((1.0 + 3.0) / 2)
