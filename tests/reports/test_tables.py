"""Aggregation against hand-computed numbers: means, sample stds, differences with their CIs,
Welch and one-sample p."""

from __future__ import annotations

import math
import statistics

import pytest
from scipy import stats as sps

from bench.studies import study_cells
from reports.build import compute, write
from reports.load import label_runs, load_store, select_epoch
from reports.tables import display_table, group_table, selection_gain, with_verdicts

from .conftest import make_run
from .test_main_table import retrieval

SOP_XBN = [80.0, 80.6, 81.5]  # paper table 1: sop xbn recall@1 80.62 +- 0.17 (n = 3)
STUDIES = ("paper-table1", "paper-table3", "thesis", "demo-fashion")


def _runs(results, epoch="best"):
    return select_epoch(load_store(results).done, epoch)


def _tables(results, epoch="best", cells=STUDIES):
    return compute(results, epoch, with_figures=False, cells=study_cells(cells)).tables


@pytest.fixture
def grid(results):
    for seed, r1 in enumerate(SOP_XBN):
        make_run(results, dataset="sop", variant="xbn", seed=seed, best_r1=r1)
    make_run(results, dataset="sop", variant="xbm", seed=0, best_r1=70.0, head="l2_ln")
    make_run(results, dataset="fashion-mnist", variant="xbn", seed=0, best_r1=85.0, profile="cpu")
    make_run(results, dataset="fashion-mnist", variant="xbn", seed=1, best_r1=86.0, profile="cpu")
    return results


def test_reported_row_against_hand_numbers(grid):
    table = _tables(grid)["paper table 1"]
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
    assert row["test"] == "welch" and row["p"] == pytest.approx(2 * sps.t.sf(abs(t), df))
    half = sps.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((mean - 80.62 - half,
                                                             mean - 80.62 + half))  # fmt: skip
    r10 = table[
        (table["table"] == "paper table 1")
        & (table["dataset"] == "sop")
        & (table["variant"] == "xbn")
        & (table["metric"] == "recall@10")
    ].iloc[0]
    assert r10["ours_mean"] == pytest.approx(mean + 10)


def test_one_sample_without_reported_std_and_no_p_with_one_run(grid):
    tables = _tables(grid)
    table = tables["paper table 3"]
    t3 = table[
        (table["table"] == "paper table 3")
        & (table["variant"] == "xbm+l2_ln")
        & (table["metric"] == "recall@1")
    ].iloc[0]
    assert t3["n"] == 1 and t3["diff"] == pytest.approx(70.0 - 79.51)
    assert math.isnan(t3["p"]) and math.isnan(t3["ours_std"]) and math.isnan(t3["ci_low"])
    table = tables["thesis table 7.1"]
    t71 = table[
        (table["table"] == "thesis table 7.1")
        & (table["dataset"] == "sop")
        & (table["variant"] == "xbn")
        & (table["metric"] == "recall@1")
    ].iloc[0]
    # the thesis gives no std: one-sample t against its number taken as exact
    ref = sps.ttest_1samp(SOP_XBN, t71["reported_mean"])
    assert t71["n"] == 3 and t71["test"] == "one-sample"
    assert t71["p"] == pytest.approx(ref.pvalue)
    assert (t71["ci_low"], t71["ci_high"]) == pytest.approx(
        tuple(ref.confidence_interval(0.95) - t71["reported_mean"])
    )


def test_not_run_rows_and_dash_rows(grid):
    report = compute(grid, with_figures=False, cells=study_cells(STUDIES))
    tables = report.tables
    shown = display_table(tables["paper table 1"])
    inshop = shown[(shown["dataset"] == "inshop") & (shown["variant"] == "xbm")]
    assert set(inshop["ours (mean ± std)"]) == {"not run"}
    assert set(inshop["verdict"]) == {"not run"}
    assert inshop["reported"].iloc[0] == "86.17 ± 0.18 (n=3)"
    demo = display_table(tables["cpu runs on fashion-mnist"])
    r1 = demo[demo["metric"] == "recall@1"].iloc[0]
    assert r1["ours (mean ± std)"] == f"85.50 ± {statistics.stdev([85.0, 86.0]):.2f}"
    shown_cols = ("reported", "diff [95% CI]", "p", "test", "verdict")
    assert tuple(r1[c] for c in shown_cols) == ("-",) * len(shown_cols)
    assert "paper table 2" not in tables  # no runs behind it
    assert "paper table 2" in report.missing_tables


def test_number_verdicts(grid):
    table = with_verdicts(_tables(grid)["paper table 1"])
    pick = table[
        (table["table"] == "paper table 1")
        & (table["dataset"] == "sop")
        & (table["variant"] == "xbn")
    ].set_index("metric")["verdict"]
    # recall@1: |80.70 - 80.62| <= 1 -> reproduced; recall@10: |90.70 - 91.85| > max(1, 2 x 0.44)
    assert pick["recall@1"] == "reproduced" and pick["recall@10"] == "not reproduced"


def test_best_and_last(grid):
    best = _tables(grid, "best")["paper table 1"]
    last = _tables(grid, "last")["paper table 1"]
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


DEMO = {"xbm": [74.0, 76.5, 75.1], "xbn": [78.0, 77.2, 79.3], "no_xbm": [70.0, 71.5, 70.4]}
ODD_R1 = 60.0  # xbm, seed 0, trained 2 epochs instead of the demo's 5


@pytest.fixture
def demo_and_odd(results):
    """Three demo cells x 3 seeds, plus a 2-epoch xbm run of seed 0 (as `xbmbench run --epochs 2`
    into the demo's results folder would write)."""
    for variant, values in DEMO.items():
        for seed, r1 in enumerate(values):
            make_run(results, dataset="fashion-mnist", variant=variant, seed=seed, best_r1=r1,
                     profile="cpu")  # fmt: skip
    odd = make_run(results, dataset="fashion-mnist", variant="xbm", seed=0, best_r1=ODD_R1,
                   profile="cpu", epochs=2)  # fmt: skip
    return results, odd


def _r1_rows(table):
    return table[table["metric"] == "recall@1"].set_index("variant")


@pytest.mark.parametrize("cells", [("demo-fashion",), None], ids=["with cells", "without cells"])
def test_an_odd_run_leaves_the_demo_table_alone(demo_and_odd, cells):
    results, odd = demo_and_odd
    report = compute(
        results, with_figures=False, cells=None if cells is None else study_cells(cells)
    )
    rows = _r1_rows(report.tables["cpu runs on fashion-mnist"])
    xbm = rows.loc["xbm" if cells else "xbm (epochs=5)"]  # without cells both say what differs
    assert xbm["n"] == 3 and odd not in xbm["run_ids"]
    assert xbm["ours_mean"] == pytest.approx(sum(DEMO["xbm"]) / 3)
    assert xbm["ours_std"] == pytest.approx(statistics.stdev(DEMO["xbm"]))
    alone = rows.loc["xbm (epochs=2)"]
    assert (alone["n"], alone["ours_mean"], alone["run_ids"]) == (1, ODD_R1, odd)
    assert math.isnan(alone["ours_std"])
    assert rows.loc["xbn", "ours_mean"] == pytest.approx(sum(DEMO["xbn"]) / 3)
    assert len(rows) == 4  # no_xbm, xbm, xbm (epochs=2), xbn
    claim = report.claims.set_index("claim").loc["XBM beats no-XBM"]
    if cells:  # the claim is judged on the three demo runs of each side, the odd run aside
        assert (claim["n_a"], claim["n_b"]) == (3, 3)
        assert claim["mean_a"] == pytest.approx(sum(DEMO["xbm"]) / 3)
    else:  # two configs under one label: neither side is guessed
        assert claim["n_a"] == 0 and claim["n_b"] == 3


SOP_XBN_LR = 50.0  # a paper-profile xbn run on sop with lr 1e-3 instead of the paper's 1e-4


def test_a_paper_run_with_an_override_is_not_compared_with_the_paper(grid):
    other = make_run(grid, dataset="sop", variant="xbn", seed=0, best_r1=SOP_XBN_LR, lr=1e-3)
    report = compute(grid, with_figures=False, cells=study_cells(STUDIES))
    t1 = report.tables["paper table 1"]
    row = t1[(t1["dataset"] == "sop") & (t1["variant"] == "xbn") & (t1["metric"] == "recall@1")]
    row = row.iloc[0]
    assert row["n"] == 3 and row["ours_mean"] == pytest.approx(sum(SOP_XBN) / 3)
    assert other not in row["run_ids"]
    rest = _r1_rows(report.tables["paper runs on sop"])
    assert rest.loc["xbn (lr=0.001)", "run_ids"] == other
    assert rest.loc["xbn (lr=0.001)", "ours_mean"] == SOP_XBN_LR


def test_without_cells_no_run_meets_a_reported_number(grid):
    report = compute(grid, with_figures=False)
    assert not any(name.startswith("paper table") for name in report.tables)
    assert "paper table 1" in report.missing_tables
    r1 = _r1_rows(report.tables["paper runs on sop"])
    assert r1.loc["xbn", "n"] == 3 and r1.loc["xbn", "ours_mean"] == pytest.approx(80.7)


def test_a_seed_counts_once_per_config(results):
    """Two records of one config and seed (here: the same run with a note added) count once:
    the one with the smaller run id."""
    a = make_run(results, dataset="fashion-mnist", variant="xbm", seed=0, best_r1=70.0,
                 profile="cpu")  # fmt: skip
    b = make_run(results, dataset="fashion-mnist", variant="xbm", seed=0, best_r1=90.0,
                 profile="cpu", deviations=("copied from another results folder",))  # fmt: skip
    make_run(results, dataset="fashion-mnist", variant="xbm", seed=1, best_r1=80.0, profile="cpu")
    report = compute(results, with_figures=False, cells=study_cells(("demo-fashion",)))
    row = _r1_rows(report.tables["cpu runs on fashion-mnist"]).loc["xbm"]
    kept = 70.0 if a < b else 90.0
    assert row["n"] == 2 and row["ours_mean"] == pytest.approx((kept + 80.0) / 2)
    assert report.duplicates["run_id"].tolist() == [max(a, b)]


def test_group_table_refuses_a_seed_twice(results):
    for r1 in (70.0, 90.0):
        make_run(results, dataset="fashion-mnist", variant="xbm", seed=0, best_r1=r1,
                 profile="cpu", deviations=(f"copy {r1}",))  # fmt: skip
    runs = label_runs(_runs(results), None)
    with pytest.raises(ValueError, match=r"seed\(s\) \[0\] counted twice"):
        group_table(runs)


# paper table 3, xbm+l2_bn on SOP: per seed (best epoch, its Recall@1); epoch -1 is the network
# as loaded, 0 the warm-up (XBN paper footnote 6: that row's best is the pre-trained network)
L2_BN = {0: (-1, 48.9), 1: (-1, 49.1), 2: (0, 48.5), 3: (4, 47.0)}


def test_best_at_the_network_as_loaded_is_reported_and_table3_says_so(results):
    for seed, (epoch, r1) in L2_BN.items():
        make_run(results, dataset="sop", variant="xbm", head="l2_bn", seed=seed, best_r1=r1,
                 last_r1=r1 - 3, best_epoch=epoch, phases=True)  # fmt: skip
    report = compute(results, with_figures=False, cells=study_cells(STUDIES))
    t3 = report.tables["paper table 3"]
    row = t3[(t3["variant"] == "xbm+l2_bn") & (t3["metric"] == "recall@1")].iloc[0]
    r1s = [r1 for _, r1 in L2_BN.values()]
    assert row["n"] == 4 and row["ours_mean"] == pytest.approx(statistics.mean(r1s))
    assert (row["n_init"], row["n_warmup"]) == (2, 1)
    shown = display_table(t3).set_index(["variant", "metric"])
    note = shown.loc[("xbm+l2_bn", "recall@1"), "selected epoch"]
    assert note == ("best = network as loaded (epoch −1) in 2 of 4 seeds; "
                    "best = after the warm-up (epoch 0) in 1 of 4 seeds")  # fmt: skip
    assert shown.loc[("xbm+l2_ln", "recall@1"), "selected epoch"] == ""  # not run: nothing
    text = write(report).read_text()
    assert "| best = network as loaded (epoch −1) in 2 of 4 seeds; best = after" in text
    assert "footnote 6" in text
    stem = report.results / "report" / "tables" / "paper_table3"
    assert "network as loaded" in stem.with_suffix(".md").read_text()
    assert "n_init" in stem.with_suffix(".csv").read_text()
    last = compute(results, "last", with_figures=False, cells=study_cells(STUDIES))
    t3_last = last.tables["paper table 3"]
    assert (t3_last["n_init"] == 0).all() and "selected epoch" not in display_table(t3_last)
    row = t3_last[(t3_last["variant"] == "xbm+l2_bn") & (t3_last["metric"] == "recall@1")]
    assert row["ours_mean"].iloc[0] == pytest.approx(statistics.mean(r1s) - 3)


def test_no_selected_epoch_column_when_every_best_is_trained(grid):
    assert "selected epoch" not in display_table(_tables(grid)["paper table 1"])


# MAP@R and R-Precision beside Recall@K: (best MAP@R or None for a record written before it)
RETRIEVAL = {"xbn": [0.40, 0.42, 0.47], "xbm": [0.35, None, 0.37], "no_xbm": [None, None, None]}


def _retrieval_store(results):
    for variant, maps in RETRIEVAL.items():
        for seed, best_map in enumerate(maps):
            run_id = make_run(
                results,
                dataset="fashion-mnist",
                variant=variant,
                seed=seed,
                best_r1=70.0 + seed,
                profile="cpu",
            )
            retrieval(results, run_id, best_map, 10.0)
    return results


def _by_hand(values):
    xs = [x for x in values if x is not None]
    return statistics.mean(xs), statistics.stdev(xs), len(xs)


def test_group_table_carries_map_at_r_and_r_precision(results):
    table = group_table(label_runs(_runs(_retrieval_store(results)), None))
    for variant, maps in RETRIEVAL.items():
        rows = table[table["variant"] == variant]
        assert len(rows) == 2  # Recall@1 and Recall@10, each with the config's retrieval numbers
        if all(m is None for m in maps):
            assert (rows["map@r_n"] == 0).all() and rows["map@r_mean"].isna().all()
            continue
        mean, std, k = _by_hand(maps)
        assert rows["map@r_mean"].tolist() == pytest.approx([mean, mean])
        assert rows["map@r_std"].tolist() == pytest.approx([std, std])
        assert rows["map@r_n"].tolist() == [k, k]
        prec = _by_hand([m + 0.05 if m is not None else None for m in maps])
        assert rows["r_precision_mean"].iloc[0] == pytest.approx(prec[0])
        assert rows["r_precision_std"].iloc[0] == pytest.approx(prec[1])


def test_display_table_shows_map_at_r_beside_recall(results):
    table = group_table(label_runs(_runs(_retrieval_store(results)), None))
    shown = display_table(table)
    cols = list(shown.columns)
    assert cols[cols.index("n") + 1 : cols.index("n") + 3] == ["MAP@R", "R-Precision"]
    rows = shown.set_index(["variant", "metric"])
    mean, std, _ = _by_hand(RETRIEVAL["xbn"])
    assert rows.loc[("xbn", "recall@1"), "MAP@R"] == f"{mean:.2f} ± {std:.2f}"
    prec = _by_hand([m + 0.05 for m in RETRIEVAL["xbn"]])
    assert rows.loc[("xbn", "recall@1"), "R-Precision"] == f"{prec[0]:.2f} ± {prec[1]:.2f}"
    assert rows.loc[("xbn", "recall@10"), "MAP@R"] == ""  # the config's number, shown once
    assert rows.loc[("xbm", "recall@1"), "MAP@R"] == "0.36 ± 0.01 (n=2)"  # 2 of its 3 runs
    assert rows.loc[("no_xbm", "recall@1"), "MAP@R"] == "-"  # records from before MAP@R
    assert rows.loc[("no_xbm", "recall@1"), "R-Precision"] == "-"


def test_a_reported_table_shows_the_map_at_r_of_its_runs(results):
    maps = [0.5, 0.6, 0.7]
    for seed, (r1, best_map) in enumerate(zip(SOP_XBN, maps)):
        run_id = make_run(results, dataset="sop", variant="xbn", seed=seed, best_r1=r1)
        retrieval(results, run_id, best_map, 100.0)
    table = _tables(results)["paper table 1"]
    row = table[(table["dataset"] == "sop") & (table["variant"] == "xbn")].iloc[0]
    mean, std, k = _by_hand(maps)
    assert (row["map@r_mean"], row["map@r_std"], row["map@r_n"]) == pytest.approx((mean, std, k))
    shown = display_table(table)
    sop = shown[(shown["dataset"] == "sop") & (shown["variant"] == "xbn")]
    assert sop["MAP@R"].tolist() == [f"{mean:.2f} ± {std:.2f}", ""]
    inshop = shown[(shown["dataset"] == "inshop") & (shown["variant"] == "xbm")]
    assert inshop["MAP@R"].tolist() == ["-", ""]  # not run
