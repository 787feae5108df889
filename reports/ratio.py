"""The ratio of two paired mean differences with its confidence set: the share of the staleness
cost that an adapting variant recovers (issue 23). Pure: numbers in, numbers out.

Per seed s (the runs pair by seed, reports.pairing): a_s = V_s - X_s (what variant V gains over
XBM) and b_s = O_s - X_s (the staleness cost: the oracle over XBM), in Recall@1 points. The share
is the ratio of the means, R = mean(a) / mean(b) = (mean V - mean X) / (mean O - mean X): 0 when V
recovers nothing, 1 when it recovers the whole cost. (Not the mean of the per-seed ratios, which
one seed with a small cost would dominate.)

Confidence set: Fieller's (Fieller 1954, J. R. Stat. Soc. B 16; Franz 2007, "Ratios: a short
guide to confidence limits and proper use"), exact for normal per-seed differences at any n,
where the delta method and the bootstrap are not. With means a_bar, b_bar, sample (co)variances
s_aa, s_bb, s_ab of the per-seed pairs (a_s, b_s), v_xy = s_xy / n and
t = t_{(1 + level)/2, n - 1}, it is the set of rho with
(a_bar - rho b_bar)^2 <= t^2 (v_aa - 2 rho v_ab + rho^2 v_bb), i.e.

    A rho^2 - 2 B rho + C <= 0,   A = b_bar^2 - t^2 v_bb,  B = a_bar b_bar - t^2 v_ab,
                                  C = a_bar^2 - t^2 v_aa,  D = B^2 - A C.

A > 0 (the cost's own t statistic exceeds t: the cost is resolved at this level): the bounded
interval (B -+ sqrt(D)) / A. A <= 0: the set is unbounded: two rays (-inf, r1] U [r2, inf) where
D > 0, every real number otherwise; ``RatioCI`` says which, and no number stands in for it.
The percentile bootstrap (``bootstrap_ratio``) is a check, as the claims table's (n >= 5).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from reports.inference import BOOTSTRAP_SEED, MIN_N_BOOTSTRAP, N_BOOTSTRAP

BOUNDED, TWO_RAYS, EVERYTHING, NONE = "bounded", "two rays", "every value", "none"


@dataclass(frozen=True)
class RatioCI:
    """A Fieller confidence set: ``kind`` BOUNDED is [low, high]; TWO_RAYS is
    (-inf, low] U [high, inf); EVERYTHING is the real line (low, high = -inf, inf); NONE: no set
    (fewer than 2 seeds; low, high NaN)."""

    kind: str
    low: float
    high: float

    @property
    def bounded(self) -> bool:
        return self.kind == BOUNDED

    def text(self, digits: int = 2) -> str:
        """'[0.12, 0.80]', 'unbounded: (−∞, -0.40] ∪ [2.10, +∞)', 'unbounded: every value'."""
        if self.kind == BOUNDED:
            return f"[{self.low:.{digits}f}, {self.high:.{digits}f}]"
        if self.kind == TWO_RAYS:
            return f"unbounded: (−∞, {self.low:.{digits}f}] ∪ [{self.high:.{digits}f}, +∞)"
        return "unbounded: every value" if self.kind == EVERYTHING else "-"


def _pairs(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"a and b must be 1-D of one length (one pair per seed), got "
                         f"{x.shape} and {y.shape}")  # fmt: skip
    return x, y


def ratio_of_means(a: Sequence[float], b: Sequence[float]) -> float:
    """mean(a) / mean(b); NaN where mean(b) is 0 or there is no pair."""
    x, y = _pairs(a, b)
    if not len(x) or y.mean() == 0:
        return math.nan
    return float(x.mean() / y.mean())


def fieller(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> RatioCI:
    """Fieller's confidence set of mean(a) / mean(b) over paired samples (module docstring)."""
    x, y = _pairs(a, b)
    n = len(x)
    if n < 2:
        return RatioCI(NONE, math.nan, math.nan)
    cov = np.cov(x, y, ddof=1) / n  # [[v_aa, v_ab], [v_ab, v_bb]]: variances of the means
    t2 = float(sps.t.ppf(0.5 + level / 2, n - 1)) ** 2
    am, bm = float(x.mean()), float(y.mean())
    qa = bm**2 - t2 * cov[1, 1]
    qb = am * bm - t2 * cov[0, 1]
    qc = am**2 - t2 * cov[0, 0]
    disc = qb**2 - qa * qc
    if qa > 0:  # D >= 0 here up to rounding: the point estimate lies in the set
        root = math.sqrt(max(disc, 0.0))
        return RatioCI(BOUNDED, (qb - root) / qa, (qb + root) / qa)
    if qa < 0 and disc > 0:
        r1, r2 = sorted(((qb - math.sqrt(disc)) / qa, (qb + math.sqrt(disc)) / qa))
        return RatioCI(TWO_RAYS, r1, r2)
    return RatioCI(EVERYTHING, -math.inf, math.inf)


def bootstrap_ratio(a: Sequence[float], b: Sequence[float],
                    level: float = 0.95) -> tuple[float, float] | None:  # fmt: skip
    """Paired percentile bootstrap (Efron 1979) of mean(a) / mean(b): seeds resampled with
    replacement, the pair (a_s, b_s) kept together, N_BOOTSTRAP times, generator seeded with
    BOOTSTRAP_SEED. None below MIN_N_BOOTSTRAP seeds; (-inf, inf) where a resample's mean(b) is
    0 or of the other sign than mean(b) (its ratio is unbounded, so is the interval)."""
    x, y = _pairs(a, b)
    if len(x) < MIN_N_BOOTSTRAP:
        return None
    idx = np.random.default_rng(BOOTSTRAP_SEED).integers(0, len(x), (N_BOOTSTRAP, len(x)))
    num, den = x[idx].mean(axis=1), y[idx].mean(axis=1)
    if not np.all(np.sign(den) == np.sign(y.mean())) or y.mean() == 0:
        return -math.inf, math.inf
    lo, hi = np.percentile(num / den, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)
