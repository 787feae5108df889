"""Pure statistics behind the tables and the claims: numbers in, numbers out, no I/O.

Spread over seeds is the sample standard deviation (ddof = 1), as the papers' "mean +- std over
three runs" most likely is; one run has no std (NaN).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

from scipy import stats as sps

ALPHA = 0.05  # significance level of the one-sided Welch test behind "A beats B"
MATCH_TOL = 1.0  # Recall@1 points: "matches" may differ by max(MATCH_TOL, 2 x spread)


class Summary(NamedTuple):
    mean: float
    std: float  # sample std, ddof = 1; NaN for n < 2
    n: int


def summarize(values: Iterable[float]) -> Summary:
    """mean = sum(x) / n; std = sqrt(sum((x - mean)^2) / (n - 1))."""
    xs = [float(x) for x in values if not math.isnan(float(x))]
    n = len(xs)
    if n == 0:
        return Summary(math.nan, math.nan, 0)
    mean = sum(xs) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else math.nan
    return Summary(mean, std, n)


def spread_of_difference(a: Summary, b: Summary) -> float:
    """Standard error of mean(A) - mean(B): sqrt(sA^2 / nA + sB^2 / nB)."""
    if a.n < 2 or b.n < 2:
        return math.nan
    return math.sqrt(a.std**2 / a.n + b.std**2 / b.n)


def welch_t_df(a: Summary, b: Summary) -> tuple[float, float]:
    """Welch: t = (mA - mB) / se, se^2 = vA + vB with v = s^2 / n,
    df = (vA + vB)^2 / (vA^2 / (nA - 1) + vB^2 / (nB - 1)) (Welch-Satterthwaite)."""
    va, vb = a.std**2 / a.n, b.std**2 / b.n
    se = math.sqrt(va + vb)
    if se == 0:
        return math.nan, math.nan
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    return (a.mean - b.mean) / se, df


def welch_p(a: Summary, b: Summary, alternative: str = "two-sided") -> float:
    """p-value of Welch's t-test (unequal variances); NaN when n < 2 or a std is unknown.

    ``alternative``: "two-sided", "greater" (H1: mean A > mean B) or "less".
    """
    if a.n < 2 or b.n < 2 or math.isnan(a.std) or math.isnan(b.std):
        return math.nan
    if a.std == 0 and b.std == 0:
        return math.nan
    res = sps.ttest_ind_from_stats(
        a.mean, a.std, a.n, b.mean, b.std, b.n, equal_var=False, alternative=alternative
    )
    return float(res.pvalue)


HOLDS, FAILS, TOO_FEW = "holds", "does not hold", "not enough runs"


def verdict(relation: str, a: Summary, b: Summary) -> tuple[str, float]:
    """Judge one claim on two groups of runs; returns (verdict, one-sided p or NaN).

    Rules (d = mean A - mean B, s = spread_of_difference):
    - either side with n < 2 -> "not enough runs";
    - "A > B": holds iff d > 0 and the one-sided Welch p (H1: A > B) < ALPHA; when both stds
      are 0 (identical seeds) the test is undefined and d > 0 decides;
    - "A < B": the mirror image;
    - "A ~ B" (matches): holds iff |d| <= max(MATCH_TOL, 2 s);
    - "A >= B - tol" (at least matches): holds iff d >= -max(MATCH_TOL, 2 s).
    """
    if a.n < 2 or b.n < 2:
        return TOO_FEW, math.nan
    d = a.mean - b.mean
    tol = max(MATCH_TOL, 2 * spread_of_difference(a, b))
    if relation in ("A > B", "A < B"):
        sign = 1 if relation == "A > B" else -1
        p = welch_p(a, b, "greater" if sign > 0 else "less")
        ok = sign * d > 0 and (p < ALPHA if not math.isnan(p) else True)
        return (HOLDS if ok else FAILS), p
    if relation == "A ~ B":
        return (HOLDS if abs(d) <= tol else FAILS), math.nan
    if relation == "A >= B - tol":
        return (HOLDS if d >= -tol else FAILS), math.nan
    raise ValueError(
        f"unknown relation {relation!r}; use 'A > B', 'A < B', 'A ~ B', 'A >= B - tol'"
    )
