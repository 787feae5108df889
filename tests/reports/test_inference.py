"""reports.inference against scipy/statsmodels directly and hand formulas on fixed numbers."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower, TTestPower
from statsmodels.stats.weightstats import ttost_paired

from reports.inference import (
    HOLDS,
    NOT_RESOLVED,
    REFUTED,
    TOO_FEW,
    Hypothesis,
    decision_p,
    judge,
    judge_family,
    min_detectable_difference,
    one_sample_difference,
    paired_difference,
    read_ci,
    seeds_needed,
    welch_difference,
    welch_from_stats,
)

A = [71.2, 73.9, 70.4, 72.8, 74.1, 71.7, 73.0]
B = [70.1, 73.5, 69.0, 72.9, 72.6, 71.1, 72.2]
GREATER, LESS = Hypothesis("greater"), Hypothesis("less")


def by_seed(values: list[float], first: int = 0) -> dict[int, float]:
    return {first + i: v for i, v in enumerate(values)}


@pytest.fixture(autouse=True)
def _no_warnings():
    """Zero spread and small n must not divide by zero or warn."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize("n", [2, 3, 7])
def test_paired_matches_ttest_rel_and_hand_ci(n):
    d = paired_difference(by_seed(A[:n]), by_seed(B[:n]))
    ref = sps.ttest_rel(A[:n], B[:n])
    diffs = np.subtract(A[:n], B[:n])
    half = sps.t.ppf(0.975, n - 1) * diffs.std(ddof=1) / math.sqrt(n)
    assert (d.n, d.df) == (n, n - 1)
    assert d.diff == pytest.approx(diffs.mean())
    assert d.ci() == pytest.approx((diffs.mean() - half, diffs.mean() + half))
    assert d.ci() == pytest.approx(tuple(ref.confidence_interval(0.95)))
    assert d.p_two_sided() == pytest.approx(ref.pvalue)
    assert d.p_above() == pytest.approx(sps.ttest_rel(A[:n], B[:n], alternative="greater").pvalue)
    assert d.p_below() == pytest.approx(sps.ttest_rel(A[:n], B[:n], alternative="less").pvalue)


def test_paired_uses_only_seeds_present_and_finite_in_both():
    a = by_seed(A[:4]) | {10: 99.0, 2: math.nan}
    b = by_seed(B[:4]) | {11: 0.0}
    d = paired_difference(a, b)
    kept = [0, 1, 3]
    assert d.n == 3
    assert d.diff == pytest.approx(np.mean([A[i] - B[i] for i in kept]))


def test_wilcoxon_only_from_six_pairs_and_equal_to_the_exact_hand_value():
    assert paired_difference(by_seed(A[:5]), by_seed(B[:5])).wilcoxon_p is None
    # six positive, distinct differences: W- = 0, exact two-sided p = 2 / 2^6
    a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    b = [x - k * 0.1 for k, x in enumerate(a, start=1)]
    assert paired_difference(by_seed(a), by_seed(b)).wilcoxon_p == pytest.approx(2 / 64)


def test_correlation_is_pearson_and_none_where_undefined():
    d = paired_difference(by_seed(A), by_seed(B))
    assert d.correlation == pytest.approx(np.corrcoef(A, B)[0, 1])
    assert paired_difference(by_seed(A[:2]), by_seed(B[:2])).correlation is None
    assert paired_difference(by_seed(A[:4]), by_seed([70.0] * 4)).correlation is None


def test_bootstrap_check_from_five_seeds_close_to_scipy_and_seeded():
    assert paired_difference(by_seed(A[:4]), by_seed(B[:4])).bootstrap_ci is None
    d = paired_difference(by_seed(A), by_seed(B))
    ref = sps.bootstrap(
        (np.subtract(A, B),), np.mean, n_resamples=10_000, method="percentile", rng=1
    ).confidence_interval
    assert d.bootstrap_ci == pytest.approx((ref.low, ref.high), abs=0.05)
    assert paired_difference(by_seed(A), by_seed(B)).bootstrap_ci == d.bootstrap_ci
    w = welch_difference(A, B)
    assert w.bootstrap_ci[0] < w.diff < w.bootstrap_ci[1]


@pytest.mark.parametrize("nb", [2, 4, 7])
def test_welch_matches_scipy_and_the_welch_satterthwaite_df(nb):
    w = welch_difference(A, B[:nb])
    ref = sps.ttest_ind(A, B[:nb], equal_var=False)
    va, vb = np.var(A, ddof=1) / len(A), np.var(B[:nb], ddof=1) / nb
    df = (va + vb) ** 2 / (va**2 / (len(A) - 1) + vb**2 / (nb - 1))
    assert w.df == pytest.approx(df)
    assert w.se == pytest.approx(math.sqrt(va + vb))
    assert w.p_two_sided() == pytest.approx(ref.pvalue)
    assert w.ci() == pytest.approx(tuple(ref.confidence_interval(0.95)))
    half = sps.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert w.ci() == pytest.approx((w.diff - half, w.diff + half))


def test_welch_from_stats_equals_welch_on_samples_and_scipy_from_stats():
    b = B[:3]
    w = welch_from_stats(np.mean(A), np.std(A, ddof=1), len(A), np.mean(b), np.std(b, ddof=1), 3)
    ref = welch_difference(A, b)
    assert (w.diff, w.se, w.df, w.sd) == pytest.approx((ref.diff, ref.se, ref.df, ref.sd))
    assert w.ci() == pytest.approx(ref.ci())
    scipy_p = sps.ttest_ind_from_stats(
        np.mean(A), np.std(A, ddof=1), len(A), np.mean(b), np.std(b, ddof=1), 3, equal_var=False
    ).pvalue
    assert w.p_two_sided() == pytest.approx(scipy_p)
    one = welch_from_stats(80.0, math.nan, 3, 79.0, 0.5, 3)  # no std on one side: no interval
    assert math.isnan(one.ci()[0]) and math.isnan(one.p_two_sided())
    assert one.diff == pytest.approx(1.0)


def test_one_sample_against_a_reported_value_matches_ttest_1samp():
    d = one_sample_difference(A, 72.5)
    ref = sps.ttest_1samp(A, 72.5)
    assert d.diff == pytest.approx(np.mean(A) - 72.5)
    assert d.p_two_sided() == pytest.approx(ref.pvalue)
    assert d.ci() == pytest.approx(tuple(ref.confidence_interval(0.95)) - np.float64(72.5))


@pytest.mark.parametrize(
    "diff",
    [
        paired_difference({0: 70.0}, {0: 69.0}),
        paired_difference({0: 70.0}, {1: 69.0}),
        welch_difference([70.0], B),
        welch_difference([], []),
        one_sample_difference([70.0], 69.0),
    ],
)
def test_fewer_than_two_runs_is_not_enough_runs_without_exception(diff):
    v = judge(diff, GREATER)
    assert v.verdict == TOO_FEW
    assert math.isnan(v.p) and all(math.isnan(x) for x in v.ci)
    assert math.isnan(min_detectable_difference(diff))
    with pytest.raises(ValueError, match="n >= 2"):
        seeds_needed(diff)


def test_identical_results_are_a_point_at_zero():
    """Zero spread rule: identical numbers seed for seed -> CI [0, 0], taken at its word."""
    d = paired_difference({0: 70.0, 1: 72.0}, {0: 70.0, 1: 72.0})
    assert d.zero_spread and d.ci() == (0.0, 0.0) and math.isnan(d.p_two_sided())
    assert judge(d, GREATER).verdict == NOT_RESOLVED
    assert judge(d, Hypothesis("matches", 1.0)).verdict == HOLDS
    assert judge(d, Hypothesis("at_least", 1.0)).verdict == HOLDS
    assert judge(d, Hypothesis("greater", effect=2.0)).verdict == REFUTED
    assert judge(d, GREATER).note == "zero spread: identical results"
    w = welch_difference([70.0, 70.0, 70.0], [70.0, 70.0])
    assert w.zero_spread and judge(w, Hypothesis("matches", 1.0)).verdict == HOLDS


def test_equal_nonzero_differences_are_not_resolved():
    """Zero spread rule: a constant non-zero difference gives no verdict (quantisation)."""
    d = paired_difference({0: 70.1, 1: 72.1, 2: 75.1}, {0: 70.0, 1: 72.0, 2: 75.0})
    assert d.zero_spread and d.sd == 0
    for hyp in (GREATER, LESS, Hypothesis("matches", 1.0)):
        v = judge(d, hyp)
        assert (v.verdict, v.note, v.seeds_needed) == (NOT_RESOLVED, "zero spread", None)
        assert v.ci == (d.diff, d.diff) and math.isnan(v.mdd)
    with pytest.raises(ValueError, match="non-zero spread"):
        seeds_needed(d)


SEEDS = [70.0, 75.0, 80.0, 85.0, 90.0]
NOISE = [0.1, -0.05, 0.02, -0.1, 0.07]


def test_pairing_matters_with_a_shared_seed_effect():
    a = by_seed([x + 0.5 for x in SEEDS])
    b = by_seed([x + e for x, e in zip(SEEDS, NOISE)])
    paired = paired_difference(a, b)
    welch = welch_difference(list(a.values()), list(b.values()))
    assert paired.correlation > 0.999
    assert judge(paired, GREATER).verdict == HOLDS
    assert judge(welch, GREATER).verdict == NOT_RESOLVED
    assert paired.diff == pytest.approx(welch.diff)


def test_pairing_and_welch_agree_without_a_seed_effect():
    a = by_seed([80.5 + e for e in NOISE])
    b = by_seed([80.0 + e for e in reversed(NOISE)])
    paired = paired_difference(a, b)
    welch = welch_difference(list(a.values()), list(b.values()))
    assert judge(paired, GREATER).verdict == judge(welch, GREATER).verdict == HOLDS
    assert judge(paired, LESS).verdict == judge(welch, LESS).verdict == REFUTED


def test_verdicts_read_from_the_95_ci():
    d = paired_difference(by_seed(A), by_seed(B))  # CI about [0.22, 1.26]
    lo, hi = d.ci()
    assert 0 < lo < hi < 1.5
    assert judge(d, GREATER).verdict == HOLDS
    assert judge(d, LESS).verdict == REFUTED
    assert judge(d, Hypothesis("greater", effect=1.5)).verdict == REFUTED  # CI below the size
    assert judge(d, Hypothesis("greater", effect=1.0)).verdict == HOLDS
    assert judge(d, Hypothesis("less", effect=-1.0)).verdict == REFUTED
    assert judge(d, Hypothesis("at_least", 0.5)).verdict == HOLDS
    flipped = paired_difference(by_seed(B), by_seed(A))
    assert judge(flipped, Hypothesis("at_least", 0.1)).verdict == REFUTED  # hi < -0.1
    assert judge(flipped, Hypothesis("at_least", 1.0)).verdict == NOT_RESOLVED
    two = paired_difference(by_seed(A[:2]), by_seed(B[:2]))  # n = 2: t_{0.975, 1} = 12.7
    assert judge(two, GREATER).verdict == NOT_RESOLVED


def test_matches_is_tost_at_the_90_ci():
    a = [80.0, 81.0, 82.0, 80.5, 81.5, 80.2]
    b = [x + e for x, e in zip(a, [0.1, -0.2, 0.15, -0.05, 0.1, -0.1])]
    d = paired_difference(by_seed(a), by_seed(b))
    m = 0.5
    tost_p = ttost_paired(np.array(a), np.array(b), -m, m)[0]
    assert decision_p(d, Hypothesis("matches", m)) == pytest.approx(tost_p)
    lo, hi = d.ci(0.90)
    assert -m < lo < hi < m
    assert judge(d, Hypothesis("matches", m)).verdict == HOLDS
    assert judge(d, Hypothesis("matches", m)).level == pytest.approx(0.90)
    narrow = abs(d.diff) + 0.01  # contains 0 but the 90% CI crosses the margin
    assert judge(d, Hypothesis("matches", narrow)).verdict == NOT_RESOLVED
    far = paired_difference(by_seed([x + 3 for x in a]), by_seed(b))  # CI wholly above m
    assert far.ci(0.90)[0] > 1.0
    assert judge(far, Hypothesis("matches", 1.0)).verdict == REFUTED
    assert decision_p(far, Hypothesis("matches", 1.0)) == pytest.approx(far.p_above(1.0))


@pytest.mark.parametrize(
    "hyp", [GREATER, LESS, Hypothesis("greater", effect=1.5), Hypothesis("matches", 0.9)]
)
def test_decision_p_is_the_level_at_which_the_ci_decides(hyp):
    d = paired_difference(by_seed(A), by_seed(B))
    p = decision_p(d, hyp)
    assert read_ci(d, hyp, alpha=p * 1.001)[0] != NOT_RESOLVED
    assert read_ci(d, hyp, alpha=p * 0.999)[0] == NOT_RESOLVED


def test_holm_adjusts_as_statsmodels_and_hand_and_the_ci_agrees():
    rng = np.random.default_rng(3)
    base = rng.normal(75, 3, 6)
    items = []
    for shift in (1.2, 0.4, 0.15, -0.6, 0.0):
        a = base + shift + rng.normal(0, 0.3, 6)
        items.append((paired_difference(by_seed(list(a)), by_seed(list(base))), GREATER))
    items.append((paired_difference({0: 1.0}, {0: 0.0}), GREATER))  # not in the family
    verdicts = judge_family(items)
    ps = np.array([decision_p(d, h) for d, h in items[:-1]])
    holm = multipletests(ps, alpha=0.05, method="holm")[1]
    order = np.argsort(ps)  # Holm by hand: running max of (m - k) p_(k)
    hand = np.maximum.accumulate(np.minimum(1, (len(ps) - np.arange(len(ps))) * ps[order]))
    assert [v.p_holm for v in verdicts[:-1]] == pytest.approx(list(holm))
    assert list(np.asarray(holm)[order]) == pytest.approx(list(hand))
    assert verdicts[-1].verdict == TOO_FEW and math.isnan(verdicts[-1].p_holm)
    assert verdicts[int(order[0])].level == pytest.approx(1 - 0.05 / len(ps))
    for v in verdicts[:-1]:
        resolved = v.verdict != NOT_RESOLVED
        assert resolved == (v.p_holm < 0.05)
        assert resolved == (not v.ci[0] <= 0 <= v.ci[1])
    decided = [v.verdict for v in verdicts[:-1]]
    assert HOLDS in decided and NOT_RESOLVED in decided


def test_holm_can_turn_a_lone_holds_into_not_resolved():
    weak = paired_difference(by_seed([0.5, 0.2, 0.9, 0.3, 0.6, -0.1]), by_seed([0.0] * 6))
    alone = judge(weak, GREATER)
    assert alone.verdict == HOLDS and alone.level == 0.95
    assert alone.p == pytest.approx(sps.ttest_1samp([0.5, 0.2, 0.9, 0.3, 0.6, -0.1], 0).pvalue)
    noise = paired_difference(by_seed(A), by_seed(A[2:] + A[:2]))  # mean difference 0: p = 1
    family = judge_family([(weak, GREATER), (noise, GREATER), (noise, LESS)])
    assert family[0].p_holm == pytest.approx(3 * alone.p)
    assert family[0].verdict == NOT_RESOLVED
    assert family[0].level == pytest.approx(1 - 0.05 / 3)
    assert family[0].ci == pytest.approx(weak.ci(1 - 0.05 / 3))
    assert family[0].ci[0] < 0 < family[0].ci[1]


@pytest.mark.parametrize("n", [2, 3, 5, 10])
def test_min_detectable_difference_is_statsmodels_solution_times_sd(n):
    d = paired_difference(by_seed(A[:n] + A[: max(0, n - 7)]), by_seed(B[:n] + B[: max(0, n - 7)]))
    es = TTestPower().solve_power(None, d.n, 0.05, 0.8, alternative="two-sided")
    assert min_detectable_difference(d) == pytest.approx(es * d.sd)
    w = welch_difference(A, B[:n])
    es = TTestIndPower().solve_power(None, len(A), 0.05, 0.8, ratio=w.n_b / len(A))
    assert min_detectable_difference(w) == pytest.approx(es * w.sd)


def test_seeds_needed_is_statsmodels_solution_rounded_up():
    d = paired_difference(by_seed(A[:3]), by_seed(B[:3]))  # d / sd about 0.9
    n = TTestPower().solve_power(abs(d.diff) / d.sd, None, 0.05, 0.8, alternative="two-sided")
    assert seeds_needed(d) == math.ceil(n)
    b = [x - 1.0 for x in B]
    w = welch_difference(A, b)
    pooled = math.sqrt((np.var(A, ddof=1) + np.var(b, ddof=1)) / 2)
    n = TTestIndPower().solve_power(abs(w.diff) / pooled, None, 0.05, 0.8, ratio=1.0)
    assert seeds_needed(w) == math.ceil(n)
    n = TTestPower().solve_power(0.4 / d.sd, None, 0.05, 0.8, alternative="larger")
    assert seeds_needed(d, 0.4, "larger") == math.ceil(n)


def test_seeds_needed_more_than_fifty_is_none_and_flagged():
    a = by_seed([x + 0.05 for x in SEEDS])
    b = by_seed([x + e * 4 for x, e in zip(SEEDS, NOISE)])
    d = paired_difference(a, b)
    assert TTestPower().solve_power(abs(d.diff) / d.sd, None, 0.05, 0.8) > 50
    assert seeds_needed(d) is None
    v = judge(d, GREATER)
    assert (v.verdict, v.seeds_needed, v.more_than_max) == (NOT_RESOLVED, None, True)


def test_a_large_effect_at_two_seeds_has_finite_power():
    """scipy's nct.cdf is NaN deep in the lower tail; the two-sided power must not be."""
    a = by_seed([x + 0.5 for x in SEEDS])
    b = by_seed([x + e for x, e in zip(SEEDS, NOISE)])
    d = paired_difference(a, b)  # d / sd about 6
    n = TTestPower().solve_power(abs(d.diff) / d.sd, None, 0.05, 0.8)
    assert seeds_needed(d) == math.ceil(n) == 3


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"relation": "beats"}, "relation must be one of"),
        ({"relation": "matches"}, "margin > 0"),
        ({"relation": "at_least", "margin": -1.0}, "margin must be >= 0"),
        ({"relation": "greater", "effect": -1.0}, "claimed direction"),
        ({"relation": "matches", "margin": 1.0, "effect": 1.0}, "claimed direction"),
    ],
)
def test_hypothesis_rejects_bad_claims(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Hypothesis(**kwargs)
