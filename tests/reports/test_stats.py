"""Statistics against plain-Python arithmetic (scipy only for the t distribution's tail)."""

from __future__ import annotations

import math
import statistics

import pytest
from scipy import stats as sps

from reports.stats import (
    FAILS,
    HOLDS,
    TOO_FEW,
    Summary,
    spread_of_difference,
    summarize,
    verdict,
    welch_p,
    welch_t_df,
)  # fmt: skip


def hand_welch(a: list[float], b: list[float]) -> tuple[float, float]:
    ma, mb = statistics.mean(a), statistics.mean(b)
    va, vb = statistics.stdev(a) ** 2 / len(a), statistics.stdev(b) ** 2 / len(b)
    t = (ma - mb) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return t, df


def test_summarize_is_mean_and_sample_std():
    xs = [80.1, 80.5, 79.9]
    s = summarize(xs)
    assert s.mean == pytest.approx(statistics.mean(xs))
    assert s.std == pytest.approx(statistics.stdev(xs))  # ddof = 1
    assert s.n == 3


def test_summarize_one_and_none():
    assert summarize([70.0]).std != summarize([70.0]).std  # NaN
    assert summarize([]).n == 0


def test_welch_matches_hand_formula():
    a, b = [80.1, 80.5, 79.9], [76.0, 78.9, 75.5, 77.0]
    t, df = hand_welch(a, b)
    assert welch_t_df(summarize(a), summarize(b)) == pytest.approx((t, df))
    assert welch_p(summarize(a), summarize(b)) == pytest.approx(2 * sps.t.sf(abs(t), df))
    assert welch_p(summarize(a), summarize(b), "greater") == pytest.approx(sps.t.sf(t, df))
    assert welch_p(summarize(a), summarize(b), "less") == pytest.approx(sps.t.cdf(t, df))


def test_welch_needs_two_runs_each():
    assert math.isnan(welch_p(Summary(80, math.nan, 1), Summary(70, 1.0, 3)))


def test_spread_of_difference():
    a, b = Summary(80, 0.3, 3), Summary(76, 2.0, 4)
    assert spread_of_difference(a, b) == pytest.approx(math.sqrt(0.09 / 3 + 4.0 / 4))


def test_verdict_greater():
    a, b = [80.1, 80.5, 79.9], [76.0, 78.9, 75.5]
    t, df = hand_welch(a, b)
    result, p = verdict("A > B", summarize(a), summarize(b))
    assert p == pytest.approx(sps.t.sf(t, df)) and p < 0.05
    assert result == HOLDS
    assert verdict("A > B", summarize(b), summarize(a))[0] == FAILS
    assert verdict("A < B", summarize(b), summarize(a))[0] == HOLDS


def test_verdict_greater_but_not_significant():
    a, b = [80.0, 82.0, 78.0], [79.0, 79.5, 78.5]  # d = 0.5, noisy
    assert verdict("A > B", summarize(a), summarize(b))[0] == FAILS


def test_verdict_matches_uses_max_of_one_point_and_two_spreads():
    b = Summary(80.0, 0.1, 3)
    assert verdict("A ~ B", Summary(80.9, 0.1, 3), b)[0] == HOLDS  # within 1 point
    assert verdict("A ~ B", Summary(78.9, 0.1, 3), b)[0] == FAILS
    wide = Summary(82.5, 2.0, 3)  # spread sqrt(4/3 + 0.01/3) = 1.156 -> tol 2.31
    assert verdict("A ~ B", Summary(77.8, 2.0, 3), b)[0] == HOLDS
    assert verdict("A ~ B", wide, b)[0] == FAILS
    assert verdict("A >= B - tol", Summary(85.0, 0.1, 3), b)[0] == HOLDS
    assert verdict("A >= B - tol", Summary(78.5, 0.1, 3), b)[0] == FAILS


def test_verdict_not_enough_runs():
    assert verdict("A > B", Summary(90, math.nan, 1), Summary(70, 1, 3))[0] == TOO_FEW
    assert verdict("A ~ B", Summary(math.nan, math.nan, 0), Summary(70, 1, 3))[0] == TOO_FEW


def test_verdict_identical_seeds():
    assert verdict("A > B", Summary(81, 0.0, 2), Summary(80, 0.0, 2))[0] == HOLDS


def test_unknown_relation():
    with pytest.raises(ValueError, match="unknown relation"):
        verdict("A >> B", Summary(1, 1, 2), Summary(1, 1, 2))
