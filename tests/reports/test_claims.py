"""Claims judged on runs with known numbers; differences, CIs and Holm recomputed with scipy and
statsmodels in the test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from reports.claims import CLAIMS, HYPOTHESES, hypothesis, judge_all, reference_cell
from reports.inference import (
    DEFAULT_MARGIN,
    HOLDS,
    NOT_RESOLVED,
    TOO_FEW,
    Hypothesis,
    judge,
    welch_difference,
)
from reports.load import load_store, parse_label, select_epoch
from reports.tables import display_claims, load_reported

from .conftest import make_run

XBN, XBM = [80.0, 80.6, 81.5, 80.9], [76.0, 78.9, 75.5, 77.2]
XBN_BEATS_XBM, XBM_BEATS_NO = "XBN beats XBM on every dataset", "XBM beats no-XBM"


def _judged(results):
    return judge_all(select_epoch(load_store(results).done, "best"), load_reported())


def _row(judged, claim_text, dataset="sop"):
    rows = judged[(judged["claim"] == claim_text) & (judged["dataset"] == dataset)]
    assert len(rows) == 1
    return rows.iloc[0]


def _runs(results, variant, values, dataset="sop", **kw):
    for seed, r1 in enumerate(values):
        make_run(results, dataset=dataset, variant=variant, seed=seed, best_r1=r1, **kw)


def test_claim_labels_parse_and_cover_the_brief():
    for c in CLAIMS:
        parse_label(c.a), parse_label(c.b)
        assert c.relation in HYPOTHESES
    assert len(CLAIMS) >= 12


def test_relations_map_to_the_four_hypotheses():
    assert hypothesis("A > B") == Hypothesis("greater")
    assert hypothesis("A < B") == Hypothesis("less")
    assert hypothesis("A ~ B") == Hypothesis("matches", DEFAULT_MARGIN)
    assert hypothesis("A >= B - tol") == Hypothesis("at_least", DEFAULT_MARGIN)
    with pytest.raises(ValueError, match="unknown relation 'A >> B'"):
        hypothesis("A >> B")


def test_paired_claim_against_ttest_rel(results):
    _runs(results, "xbn", XBN)
    _runs(results, "xbm", XBM)
    make_run(results, dataset="sop", variant="no_xbm", seed=0, best_r1=75.9)
    judged = _judged(results)
    row = _row(judged, XBN_BEATS_XBM)
    ref = sps.ttest_rel(XBN, XBM)
    assert row["method"] == "paired" and row["n"] == 4
    assert row["diff"] == pytest.approx(np.mean(XBN) - np.mean(XBM))
    # the only claim with a p: Holm over one claim is the claim alone, at 95%
    assert row["level"] == pytest.approx(0.95) and row["p_holm"] == pytest.approx(ref.pvalue)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(ref.confidence_interval()))
    assert row["correlation"] == pytest.approx(sps.pearsonr(XBN, XBM).statistic)
    assert row["verdict"] == (HOLDS if row["ci_low"] > 0 else NOT_RESOLVED)
    assert row["reported_diff"] == pytest.approx(80.62 - 76.80)  # paper table 1
    assert row["scale"] == "paper"
    # one no_xbm run: not enough runs, and no seeds-needed number
    too_few = _row(judged, XBM_BEATS_NO)
    assert too_few["verdict"] == TOO_FEW and math.isnan(too_few["seeds_needed"])
    shown = display_claims(judged).set_index("claim")
    assert shown.loc[XBM_BEATS_NO, "seeds needed"] == "-"
    assert shown.loc[XBN_BEATS_XBM, "test"] == "paired t"


def test_pairing_matters_strong_shared_seed_effect(results):
    """Seeds move both variants by several points together: the per-seed differences are
    tight (paired holds), the arms' spreads are wide (Welch cannot tell)."""
    xbm = [70.0, 75.0, 80.0, 72.0]
    xbn = [x + d for x, d in zip(xbm, [0.5, 0.6, 0.4, 0.55])]
    _runs(results, "xbn", xbn)
    _runs(results, "xbm", xbm)
    row = _row(_judged(results), XBN_BEATS_XBM)
    assert row["method"] == "paired" and row["verdict"] == HOLDS
    assert row["correlation"] > 0.99
    welch = judge(welch_difference(xbn, xbm), Hypothesis("greater"))
    assert welch.verdict == NOT_RESOLVED
    assert welch.ci[0] < 0 < row["ci_low"]


def test_pairing_and_welch_agree_without_a_seed_effect(results):
    xbn, xbm = [81.0, 81.2, 80.9, 81.1], [80.0, 80.1, 79.9, 80.05]
    _runs(results, "xbn", xbn)
    _runs(results, "xbm", xbm)
    row = _row(_judged(results), XBN_BEATS_XBM)
    assert row["method"] == "paired" and row["verdict"] == HOLDS
    assert judge(welch_difference(xbn, xbm), Hypothesis("greater")).verdict == HOLDS


def test_arms_trained_differently_are_compared_by_welch(results):
    _runs(results, "xbn", XBN, epochs=4)  # not the xbm runs' schedule: no common draws
    _runs(results, "xbm", XBM)
    row = _row(_judged(results), XBN_BEATS_XBM)
    ref = sps.ttest_ind(XBN, XBM, equal_var=False)
    assert row["method"] == "welch" and math.isnan(row["correlation"])
    assert row["p_holm"] == pytest.approx(ref.pvalue)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(ref.confidence_interval()))


def test_holm_within_the_primary_family(results):
    """Both claims are primary (reports.claims.PRIMARY) on one dataset: one Holm family of 2."""
    no_xbm = [74.0, 76.5, 74.1, 75.0]
    _runs(results, "xbn", XBN)
    _runs(results, "xbm", XBM)
    _runs(results, "no_xbm", no_xbm)
    judged = _judged(results)
    tested = judged[judged["p"].notna()].reset_index(drop=True)
    assert set(tested["claim"]) == {XBN_BEATS_XBM, XBM_BEATS_NO}
    p = [sps.ttest_rel(XBN, XBM).pvalue, sps.ttest_rel(XBM, no_xbm).pvalue]
    by_claim = dict(zip([XBN_BEATS_XBM, XBM_BEATS_NO], p))
    holm = dict(zip(by_claim, multipletests(p, method="holm")[1]))
    for r in tested.to_dict("records"):
        assert r["p"] == pytest.approx(by_claim[r["claim"]])
        assert r["p_holm"] == pytest.approx(holm[r["claim"]])
        assert r["level"] == pytest.approx(1 - 0.05 * r["p"] / r["p_holm"])
        diff = np.subtract(*{XBN_BEATS_XBM: (XBN, XBM), XBM_BEATS_NO: (XBM, no_xbm)}[r["claim"]])
        half = sps.t.ppf(0.5 + r["level"] / 2, 3) * np.std(diff, ddof=1) / 2
        assert (r["ci_low"], r["ci_high"]) == pytest.approx((diff.mean() - half,
                                                             diff.mean() + half))  # fmt: skip


def test_matches_at_least_and_falls_below(results):
    xbn = [80.0, 80.4, 80.2, 80.3, 80.1]
    _runs(results, "xbn", xbn, dataset="cifar100")
    _runs(results, "centre_xbn", [x + d for x, d in zip(xbn, [0.1, -0.1, 0.05, 0.0, 0.1])],
          dataset="cifar100")  # fmt: skip
    _runs(results, "scaled_xbn", [x - 0.3 for x in xbn], dataset="cifar100")
    _runs(results, "pc_xbn", [40.0, 41.0, 40.5, 40.2, 40.8], dataset="cifar100")
    judged = _judged(results)
    centre = _row(judged, "Centre XBN matches XBN", "cifar100")
    assert centre["verdict"] == HOLDS and -1 < centre["ci_low"] < centre["ci_high"] < 1
    assert centre["level"] >= 0.9  # the TOST's 90% CI, widened by Holm
    scaled = _row(judged, "Scaled XBN matches or beats XBN", "cifar100")
    # every per-seed difference is -0.3: zero spread, a non-zero difference is not read
    assert scaled["verdict"] == NOT_RESOLVED and scaled["note"] == "zero spread"
    below = _row(judged, "PC-XBN falls below XBN (default margins)", "cifar100")
    assert below["verdict"] == HOLDS and below["ci_high"] < 0
    assert below["wilcoxon_p"] != below["wilcoxon_p"]  # NaN: Wilcoxon from 6 pairs
    assert below["boot_low"] < below["diff"] < below["boot_high"]  # bootstrap from 5 seeds


def test_small_batch_claim_uses_smallest_batch_below_reference(results):
    for seed in range(3):
        make_run(results, dataset="inshop", variant="xbn", seed=seed, best_r1=80.0 + seed)
        make_run(results, dataset="inshop", variant="axbn", seed=seed, best_r1=80.0 + seed)
    for batch, gain in ((16, 2.0), (32, 0.0)):
        for seed in range(2):
            make_run(results, dataset="inshop", variant="xbn", seed=seed, batch=batch,
                     best_r1=70.0 + seed)  # fmt: skip
            make_run(results, dataset="inshop", variant="axbn", seed=seed, batch=batch,
                     best_r1=70.0 + gain + seed)  # fmt: skip
    judged = _judged(results)
    small = _row(judged, "AXBN beats XBN at small batch sizes", "inshop")
    assert small["batch_size"] == 16 and small["diff"] == pytest.approx(2.0)
    assert _row(judged, "AXBN at least matches XBN", "inshop")["batch_size"] == 64


def test_no_xbm_512_is_unpaired_and_reference_cell(results):
    for seed in range(3):
        make_run(results, dataset="sop", variant="xbn", seed=seed, best_r1=81.0 + 0.1 * seed)
    for seed in range(2):
        make_run(results, dataset="sop", variant="no_xbm", seed=seed, batch=512, memory=0.0,
                 best_r1=79.6 + 0.1 * seed)  # fmt: skip
    runs = select_epoch(load_store(results).done)
    assert reference_cell(runs) == (64, 0.5)
    row = _row(_judged(results), "No-XBM at batch 512 stays below XBN")
    assert row["n_b"] == 2 and row["diff"] == pytest.approx(81.1 - 79.65)
    assert row["method"] == "welch"  # another batch size: other sampler draws, no pairs
    assert row["verdict"] == HOLDS


def test_demo_scale_label_and_no_xbm_pairs_with_xbm(results):
    for seed in range(2):
        make_run(results, dataset="fashion-mnist", variant="xbm", seed=seed, profile="cpu",
                 batch=32, best_r1=85.0 + seed)  # fmt: skip
        make_run(results, dataset="fashion-mnist", variant="no_xbm", seed=seed, profile="cpu",
                 batch=32, best_r1=84.0 + seed)  # fmt: skip
    row = _row(_judged(results), XBM_BEATS_NO, "fashion-mnist")
    assert row["scale"] == "demo-scale (cpu profile)" and row["batch_size"] == 32
    assert row["diff"] == pytest.approx(1.0)
    # no_xbm's memory ratio 0 is set by its variant: the runs still pair (zero spread here)
    assert row["method"] == "paired" and row["note"] == "zero spread"
    assert math.isnan(row["reported_diff"])
