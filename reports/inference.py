"""Statistics, numbers in and numbers out, each rule citing its equation or source: summaries
over seeds, which runs pair and the difference of two arms, tests, confidence intervals, power,
the claims' verdicts under Holm, and the ratio of two paired differences (Fieller).

Inference on per-seed results: differences with confidence intervals, power, and the four
verdicts of the claims table. Pure: numbers in, numbers out, no I/O.

Conventions: the difference is Delta = mean(A) - mean(B) in the metric's units (Recall@1 points);
spreads are sample standard deviations (ddof = 1); every interval is a t interval
d +- t_{1 - alpha/2, df} * se. Runs of two variants with the same seed share their random draws,
so they are compared as pairs (``paired_difference``); Welch is for numbers that were not drawn
together (reported values, other profiles).

Zero spread. When every per-seed difference is identical (paired) or both arms are constant
(Welch), se = 0, the t statistic is undefined (0/0 or x/0) and the t interval degenerates to the
point [d, d]: ``Difference.ci`` returns that point and every p-value is NaN, as scipy's. The
verdict rule (``judge``): when d == 0 exactly, the two arms gave the same numbers seed for seed
(one computation, up to determinism), so the point interval is taken at its word; when d != 0, a
few equal differences are far more likely Recall@K's quantisation (it moves in steps of
100 / queries points) than a deterministic shift, so no verdict is read from it: "not resolved"
with the note "zero spread". Neither case has a p-value, so neither enters the Holm family.

Which runs of two arms are pairs (common random numbers), and the difference of two arms.

The engine re-seeds python, numpy and torch from (seed, epoch) before model construction, before
each warm-up epoch and before each main epoch (bench.engine.metric.seed_everything); the
training subset and the drift probe come from their own fixed generators. No variant, loss or
miner draws from a generator during a step, so two runs with the same seed and the same config
apart from the variant start from the same weights, warm up identically, and see the same
sampler order and the same augmentation draws, batch for batch. Their results are therefore a
pair: the per-seed difference cancels the seed's shared effect (``paired_difference``).

Pairing rule (``pairable``): the two configs are equal on every field of ``config_key`` except
``PAIR_FREE`` (the variant and its options) and the fields ``make_config`` sets from the
variant (``VARIANT_SET``: no_xbm's memory_ratio of 0), and the seed is the same. Anything else
that differs (batch size, margins, profile, epochs, ...) makes the arms unpaired: Welch.

The ratio of two paired mean differences with its confidence set: the share of the staleness
cost that an adapting variant recovers. Pure: numbers in, numbers out.

Per seed s (the runs pair by seed, reports.inference): a_s = V_s - X_s (what variant V gains over
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
A paired bootstrap set (``bootstrap_ratio``: Fieller's construction with the bootstrap's
percentiles in place of t) is a check, as the claims table's bootstrap is (n >= 5).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower, TTestPower

from reports.load import pairable


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


ALPHA = 0.05  # family-wise error rate of the claims table; two-sided 95% CIs for directions
POWER = 0.8  # target power of the minimum detectable difference and the seeds-needed search
MAX_SEEDS = 50  # the seeds-needed search stops here ("more than 50")
N_BOOTSTRAP = 10_000  # resamples of the percentile bootstrap over seeds
BOOTSTRAP_SEED = 0  # its generator is seeded: the same runs give the same interval
MIN_N_WILCOXON = 6  # below 6 pairs the exact signed-rank test cannot reach p < 0.05 two-sided
MIN_N_BOOTSTRAP = 5  # below 5 seeds the bootstrap distribution has too few distinct values
DEFAULT_MARGIN = 1.0  # Recall@1 points: equivalence margin of "matches", fixed before the runs

HOLDS, REFUTED, NOT_RESOLVED, TOO_FEW = "holds", "refuted", "not resolved", "not enough runs"
RELATIONS = ("greater", "less", "at_least", "matches")


@dataclass(frozen=True)
class Difference:
    """Delta = mean(A) - mean(B) with the t distribution of its estimate.

    ``n``: pairs (paired), seeds of A (one-sample), min(n_a, n_b) (Welch). ``sd``: spread that
    power is computed in: sd of the per-seed differences (paired), of A (one-sample), the pooled
    sd (Welch). ``se``/``df``: standard error and degrees of freedom of ``diff``; NaN when there
    are too few runs, se = 0 with zero spread.
    """

    method: str  # "paired", "welch" or "one-sample"
    diff: float
    se: float
    df: float
    n: int
    n_a: int
    n_b: int
    sd: float
    wilcoxon_p: float | None = None  # two-sided signed-rank p, paired with n >= 6 only
    correlation: float | None = None  # Pearson r of A and B over shared seeds, paired only
    bootstrap_ci: tuple[float, float] | None = None  # 95% percentile bootstrap, n >= 5

    @property
    def enough(self) -> bool:
        """At least two runs on every side that has runs (a spread can be estimated)."""
        return self.n >= 2

    @property
    def zero_spread(self) -> bool:
        return self.enough and self.se == 0

    def ci(self, level: float = 0.95) -> tuple[float, float]:
        """d -+ t_{(1+level)/2, df} * se (Student 1908; df from Welch 1947 for Welch)."""
        if not self.enough:
            return math.nan, math.nan
        if self.zero_spread:
            return self.diff, self.diff
        half = sps.t.ppf(0.5 + level / 2, self.df) * self.se
        return float(self.diff - half), float(self.diff + half)

    def p_above(self, null: float = 0.0) -> float:
        """One-sided p of H0: Delta <= null against H1: Delta > null: P(T_df >= (d - null) / se)."""
        return float(sps.t.sf((self.diff - null) / self.se, self.df)) if self._tested else math.nan

    def p_below(self, null: float = 0.0) -> float:
        """One-sided p of H0: Delta >= null against H1: Delta < null: P(T_df <= (d - null) / se)."""
        return float(sps.t.cdf((self.diff - null) / self.se, self.df)) if self._tested else math.nan

    def p_two_sided(self, null: float = 0.0) -> float:
        """2 min(p_above, p_below): scipy's ttest_rel / ttest_ind / ttest_1samp p for null = 0."""
        if not self._tested:
            return math.nan
        return min(1.0, 2 * min(self.p_above(null), self.p_below(null)))

    @property
    def _tested(self) -> bool:
        return self.enough and self.se > 0


def _finite(values: Sequence[float]) -> np.ndarray:
    x = np.asarray([float(v) for v in values], dtype=float)
    return x[np.isfinite(x)]


def _bootstrap_mean(samples: Sequence[np.ndarray]) -> tuple[float, float]:
    """Percentile bootstrap (Efron 1979) of sum_k sign_k * mean(sample_k): each sample resampled
    with replacement on its own, N_BOOTSTRAP times, generator seeded with BOOTSTRAP_SEED."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    stat = np.zeros(N_BOOTSTRAP)
    for sign, x in zip((1.0, -1.0), samples):
        stat += sign * x[rng.integers(0, len(x), (N_BOOTSTRAP, len(x)))].mean(axis=1)
    lo, hi = np.percentile(stat, [2.5, 97.5])
    return float(lo), float(hi)


def _mean_sd(x: np.ndarray) -> tuple[float, float]:
    """Mean and sample sd; exactly (x0, 0) for a constant array, where floating-point sums
    would leave a spread of 1e-17 and an absurd t statistic."""
    if np.ptp(x) == 0:
        return float(x[0]), 0.0
    return float(x.mean()), float(x.std(ddof=1))


def paired_difference(a_by_seed: Mapping[int, float], b_by_seed: Mapping[int, float]) -> Difference:
    """Paired t on the per-seed differences d_s = a_s - b_s of the seeds present (and finite) in
    both: mean d, sd s_d, se = s_d / sqrt(n), df = n - 1 (Student 1908; scipy.stats.ttest_rel).
    Checks: Wilcoxon signed-rank p (Wilcoxon 1945, scipy.stats.wilcoxon, two-sided) where n >= 6;
    the bootstrap percentile CI where n >= 5; Pearson r of a_s and b_s (what pairing bought:
    var(d) = var(a) + var(b) - 2 r sd(a) sd(b)), None for n < 3 or a constant arm."""
    seeds = sorted(
        s
        for s in a_by_seed.keys() & b_by_seed.keys()
        if math.isfinite(float(a_by_seed[s])) and math.isfinite(float(b_by_seed[s]))
    )
    a = np.array([float(a_by_seed[s]) for s in seeds])
    b = np.array([float(b_by_seed[s]) for s in seeds])
    n = len(seeds)
    if n < 2:
        d = float(a[0] - b[0]) if n else math.nan
        return Difference("paired", d, math.nan, math.nan, n, n, n, math.nan)
    mean, sd = _mean_sd(a - b)
    wilcoxon = None
    if n >= MIN_N_WILCOXON:
        # all-zero differences carry no signed ranks: no evidence either way, p = 1
        wilcoxon = 1.0 if sd == 0 and mean == 0 else float(sps.wilcoxon(a - b).pvalue)
    corr = None
    if n >= 3 and np.ptp(a) > 0 and np.ptp(b) > 0:
        corr = float(sps.pearsonr(a, b).statistic)
    boot = _bootstrap_mean([a - b]) if n >= MIN_N_BOOTSTRAP else None
    return Difference("paired", mean, sd / math.sqrt(n), n - 1.0, n, n, n, sd, wilcoxon, corr, boot)


def welch_difference(a: Sequence[float], b: Sequence[float]) -> Difference:
    """Welch's unequal-variance t (Welch 1947): se^2 = v_a + v_b with v = s^2 / n,
    df = (v_a + v_b)^2 / (v_a^2 / (n_a - 1) + v_b^2 / (n_b - 1)) (Welch-Satterthwaite);
    scipy.stats.ttest_ind(equal_var=False). ``sd`` is the pooled sd
    sqrt(((n_a - 1) s_a^2 + (n_b - 1) s_b^2) / (n_a + n_b - 2)), the unit of TTestIndPower.
    Bootstrap check (each arm resampled on its own) where both arms have n >= 5."""
    xa, xb = _finite(a), _finite(b)
    na, nb = len(xa), len(xb)
    diff = float(xa.mean() - xb.mean()) if na and nb else math.nan
    if na < 2 or nb < 2:
        return Difference("welch", diff, math.nan, math.nan, min(na, nb), na, nb, math.nan)
    (ma, sa), (mb, sb) = _mean_sd(xa), _mean_sd(xb)
    va, vb = sa**2 / na, sb**2 / nb
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1)) if se > 0 else math.nan
    pooled = math.sqrt(((na - 1) * sa**2 + (nb - 1) * sb**2) / (na + nb - 2))
    boot = _bootstrap_mean([xa, xb]) if min(na, nb) >= MIN_N_BOOTSTRAP else None
    return Difference("welch", ma - mb, se, df, min(na, nb), na, nb, pooled, bootstrap_ci=boot)


def welch_from_stats(
    mean_a: float, sd_a: float, n_a: int, mean_b: float, sd_b: float, n_b: int
) -> Difference:
    """Welch's t from two summaries (mean, sample sd, n), for a side known only by its summary
    (a reported mean +- std over its runs): the formulas of ``welch_difference``;
    scipy.stats.ttest_ind_from_stats(equal_var=False). No bootstrap (no samples)."""
    na, nb = int(n_a), int(n_b)
    diff = float(mean_a) - float(mean_b) if na and nb else math.nan
    sds = (float(sd_a), float(sd_b))
    if na < 2 or nb < 2 or not all(math.isfinite(s) for s in sds):
        return Difference("welch", diff, math.nan, math.nan, min(na, nb), na, nb, math.nan)
    sa, sb = sds
    va, vb = sa**2 / na, sb**2 / nb
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1)) if se > 0 else math.nan
    pooled = math.sqrt(((na - 1) * sa**2 + (nb - 1) * sb**2) / (na + nb - 2))
    return Difference("welch", diff, se, df, min(na, nb), na, nb, pooled)


def one_sample_difference(a: Sequence[float], reported: float) -> Difference:
    """mean(A) - reported, for a reported value without a std: one-sample t, se = s_a / sqrt(n),
    df = n - 1 (Student 1908; scipy.stats.ttest_1samp(a, reported)); bootstrap where n >= 5."""
    x = _finite(a)
    n = len(x)
    if n < 2:
        d = float(x[0] - reported) if n else math.nan
        return Difference("one-sample", d, math.nan, math.nan, n, n, 0, math.nan)
    mean, sd = _mean_sd(x)
    boot = _bootstrap_mean([x - float(reported)]) if n >= MIN_N_BOOTSTRAP else None
    return Difference(
        "one-sample",
        mean - float(reported),
        sd / math.sqrt(n),
        n - 1.0,
        n,
        n,
        0,
        sd,
        bootstrap_ci=boot,
    )


# --- power (Cohen 1988, through statsmodels' solvers) -------------------------------------------


def power_at(diff: Difference, n: int, effect: float, alpha: float, alternative: str) -> float:
    """Power of the test behind ``diff`` with n seeds (per arm for Welch, as a 1:1 design) at a
    true |Delta| = effect, in units of diff.sd.

    Two-sided power is statsmodels' own sum of its two one-sided powers at alpha / 2; the
    wrong-direction term is taken as 0 where it is NaN: scipy 1.17's nct.cdf returns NaN deep in
    the lower tail (there it is below 1e-16), which would make the whole power NaN."""
    es = effect / diff.sd
    if diff.method == "welch":  # equal-variance approximation of Welch's power (pooled sd)
        solver, kwargs = TTestIndPower(), {"ratio": 1.0}
    else:
        solver, kwargs = TTestPower(), {}
    if alternative != "two-sided":
        return float(solver.power(es, n, alpha, alternative=alternative, **kwargs))
    toward = float(solver.power(es, n, alpha / 2, alternative="larger", **kwargs))
    away = float(solver.power(es, n, alpha / 2, alternative="smaller", **kwargs))
    return toward + (away if math.isfinite(away) else 0.0)


def _check_spread(diff: Difference) -> None:
    if not diff.enough or diff.zero_spread:
        raise ValueError(
            f"power needs n >= 2 and a non-zero spread, got n = {diff.n}, sd = {diff.sd}"
        )


def min_detectable_difference(
    diff: Difference, alpha: float = ALPHA, power: float = POWER
) -> float:
    """The smallest |Delta| a two-sided t-test at ``alpha`` detects with probability ``power``,
    given the observed sd and n: effect size from statsmodels' solve_power times sd.
    Paired / one-sample: TTestPower (one-sample t on the differences, df = n - 1); Welch:
    TTestIndPower with nobs1 = n_a, ratio = n_b / n_a, an equal-variance approximation in units
    of the pooled sd. NaN where the spread is undefined (n < 2) or zero."""
    if not diff.enough or diff.zero_spread:
        return math.nan
    if diff.method == "welch":
        es = TTestIndPower().solve_power(
            None, diff.n_a, alpha, power, ratio=diff.n_b / diff.n_a, alternative="two-sided"
        )
    else:
        es = TTestPower().solve_power(None, diff.n, alpha, power, alternative="two-sided")
    return float(es) * diff.sd


def seeds_needed(
    diff: Difference,
    effect: float | None = None,
    alternative: str = "two-sided",
    alpha: float = ALPHA,
    power: float = POWER,
    max_seeds: int = MAX_SEEDS,
) -> int | None:
    """Smallest n in 2..max_seeds whose power at a true |Delta| = ``effect`` (default: the
    observed |d|) and the observed sd reaches ``power``; n is pairs (paired), runs (one-sample)
    or runs per arm (Welch, 1:1). None: more than ``max_seeds`` (or effect 0). Equals
    ceil(solve_power(nobs=None)) of the same statsmodels class where that solver converges.
    Raises ValueError where the spread is undefined (n < 2) or zero."""
    _check_spread(diff)
    effect = abs(diff.diff) if effect is None else abs(effect)
    if effect == 0:
        return None
    for n in range(2, max_seeds + 1):
        if power_at(diff, n, effect, alpha, alternative) >= power:
            return n
    return None


# --- verdicts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hypothesis:
    """What a claim asserts about Delta = A - B.

    ``greater``/``less``: Delta > 0 / Delta < 0; ``effect`` (optional, signed, e.g. the paper's
    difference) is the size the claim states. ``at_least``: non-inferiority, Delta > -margin
    ("A at least matches B"). ``matches``: equivalence, |Delta| < margin (Schuirmann 1987).
    The margin is fixed before the runs (DEFAULT_MARGIN), never derived from their spread.
    """

    relation: str
    margin: float = 0.0
    effect: float | None = None

    def __post_init__(self) -> None:
        if self.relation not in RELATIONS:
            raise ValueError(f"relation must be one of {RELATIONS}, got {self.relation!r}")
        if self.relation == "matches" and not self.margin > 0:
            raise ValueError(f"a 'matches' claim needs a margin > 0, got {self.margin}")
        if not self.margin >= 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")
        if self.effect is not None:
            sign = {"greater": 1, "less": -1}.get(self.relation)
            if sign is None or sign * self.effect <= 0:
                raise ValueError(
                    f"effect {self.effect} must lie in the claimed direction of a greater/less "
                    f"claim, got relation {self.relation!r}"
                )


@dataclass(frozen=True)
class Verdict:
    verdict: str  # HOLDS, REFUTED, NOT_RESOLVED or TOO_FEW
    ci: tuple[float, float]  # the interval the verdict is read from
    level: float  # its confidence level (0.95 / 0.90 alone; Holm's step level in a family)
    p: float  # decision p-value (see decision_p); NaN where no test applies
    p_holm: float  # Holm-adjusted p; equals p when judged alone
    mdd: float  # min_detectable_difference at ALPHA and POWER
    seeds_needed: int | None  # seeds that would resolve the observed difference, see judge
    more_than_max: bool  # seeds_needed is None because even MAX_SEEDS would not do
    note: str = ""


def _orient(hyp: Hypothesis) -> tuple[int, float, float | None]:
    """(sign, null, effect) of a directional claim: it asserts sign * Delta > sign * null."""
    if hyp.relation == "at_least":
        return 1, -hyp.margin, None
    return (1 if hyp.relation == "greater" else -1), 0.0, hyp.effect


def decision_p(diff: Difference, hyp: Hypothesis) -> float:
    """The smallest alpha at which ``read_ci`` gives a verdict other than "not resolved"; its
    tests are the ones the CIs invert (NaN for n < 2 or zero spread).

    Directional (95% CI, two-sided): 2 min(p toward the claim at the null, p away from it at the
    null, p below the claimed effect). Matches (90% CI, TOST, Schuirmann 1987):
    min(max(p_above(-m), p_below(m)), p_above(m), p_below(-m)): the TOST p for equivalence, the
    one-sided p's for a difference beyond the margin; the two events are disjoint, so the
    decision errs with probability <= alpha whatever the true Delta.
    """
    if not diff.enough or diff.zero_spread:
        return math.nan
    if hyp.relation == "matches":
        m = hyp.margin
        tost = max(diff.p_above(-m), diff.p_below(m))
        return min(tost, diff.p_above(m), diff.p_below(-m))
    sign, null, effect = _orient(hyp)
    ps = [diff.p_above(null), diff.p_below(null)]
    if effect is not None:
        ps.append(diff.p_below(effect) if sign > 0 else diff.p_above(effect))
    return min(1.0, 2 * min(ps))


def read_ci(diff: Difference, hyp: Hypothesis, alpha: float = ALPHA) -> tuple[str, float]:
    """(verdict, CI level) read from the CI at level 1 - alpha (directional) or 1 - 2 alpha
    (matches: the TOST's 90% interval at alpha 0.05). No spread rule here: see ``judge``.

    Directional, in the claim's orientation (sign * CI): refuted when the CI lies wholly below
    the null, or wholly below the claimed effect; holds when it lies wholly above the null;
    else not resolved. Matches: holds when the CI lies within (-m, m); refuted when it lies
    wholly beyond m or wholly beyond -m (|Delta| > m shown); else not resolved.
    """
    if hyp.relation == "matches":
        level = 1 - 2 * alpha
        lo, hi = diff.ci(level)
        m = hyp.margin
        if -m < lo and hi < m:
            return HOLDS, level
        return (REFUTED if lo > m or hi < -m else NOT_RESOLVED), level
    level = 1 - alpha
    sign, null, effect = _orient(hyp)
    lo, hi = sorted(sign * x for x in diff.ci(level))
    if hi < sign * null or (effect is not None and hi < sign * effect):
        return REFUTED, level
    return (HOLDS if lo > sign * null else NOT_RESOLVED), level


def _seeds(diff: Difference, hyp: Hypothesis, alpha: float) -> int | None:
    """Seeds that would resolve the observed difference at the claim's own test: directional,
    two-sided against the null (0, or -margin for at_least); matches, the one-sided test
    against the nearer margin (toward equivalence when |d| < m, beyond it when |d| > m), the
    usual approximation of TOST power that ignores the far margin."""
    if hyp.relation == "matches":
        gap = hyp.margin - abs(diff.diff)
        return seeds_needed(diff, gap, "larger", alpha) if gap else None
    _, null, _ = _orient(hyp)
    return seeds_needed(diff, diff.diff - null, "two-sided", alpha)


def _judge_at(diff: Difference, hyp: Hypothesis, alpha: float, p: float, p_holm: float) -> Verdict:
    level = 1 - 2 * alpha if hyp.relation == "matches" else 1 - alpha
    if not diff.enough:
        return Verdict(TOO_FEW, diff.ci(level), level, p, p_holm, math.nan, None, False)
    if diff.zero_spread:
        point = (diff.diff, diff.diff)
        if diff.diff != 0:
            return Verdict(
                NOT_RESOLVED, point, level, p, p_holm, math.nan, None, False, "zero spread"
            )
        verdict, level = read_ci(diff, hyp, alpha)
        return Verdict(
            verdict,
            point,
            level,
            p,
            p_holm,
            math.nan,
            None,
            False,
            "zero spread: identical results",
        )
    verdict, level = read_ci(diff, hyp, alpha)
    needed = _seeds(diff, hyp, ALPHA)
    return Verdict(
        verdict,
        diff.ci(level),
        level,
        p,
        p_holm,
        min_detectable_difference(diff),
        needed,
        needed is None,
    )


def judge(diff: Difference, hyp: Hypothesis, alpha: float = ALPHA) -> Verdict:
    """One claim on its own: the verdict read from the 95% CI (90% for matches), with the
    zero-spread rule of the module docstring, the minimum detectable difference, and the seeds
    that would resolve the observed difference (at alpha 0.05 and power 0.8, up to MAX_SEEDS)."""
    p = decision_p(diff, hyp)
    return _judge_at(diff, hyp, alpha, p, p)


def judge_family(
    items: Sequence[tuple[Difference, Hypothesis]], alpha: float = ALPHA
) -> list[Verdict]:
    """Claims judged together with family-wise error rate ``alpha`` (Holm 1979, statsmodels
    multipletests(method="holm")) over the claims that have a decision p.

    Reconciling the CI with Holm: claim i is read from its CI at level 1 - alpha_i with
    alpha_i = alpha * p_i / p~_i (p~_i its Holm-adjusted p). Without the step-down's running
    maximum, alpha_i = alpha / (m - rank + 1): the level Holm tested claim i at (Bonferroni's
    1 - alpha / m for the smallest p); where an earlier claim stopped the procedure, the running
    maximum tightens it. Since the CI excludes the null exactly when p_i < alpha_i, that is when
    p~_i < alpha, verdict and displayed CI always agree, and "holds"/"refuted" are Holm's
    rejections. Directions are read from the two-sided tests' signs, which Holm's procedure
    controls too (Shaffer 1980). These are per-claim intervals at Holm's levels, not
    simultaneous intervals (Holm has no simple compatible ones; Strassburger & Bretz 2008).
    Claims without a p (n < 2, zero spread) are judged alone and are not counted in m.
    """
    ps = [decision_p(d, h) for d, h in items]
    tested = [i for i, p in enumerate(ps) if math.isfinite(p)]
    adjusted = dict.fromkeys(range(len(items)), math.nan)
    if tested:
        _, p_holm, _, _ = multipletests([ps[i] for i in tested], alpha=alpha, method="holm")
        adjusted.update(zip(tested, (float(x) for x in p_holm)))
    out = []
    for i, (diff, hyp) in enumerate(items):
        p, p_adj = ps[i], adjusted[i]
        if i not in tested:
            out.append(_judge_at(diff, hyp, alpha, p, p_adj))
            continue
        level_alpha = alpha * p / p_adj if p > 0 else alpha / len(tested)
        out.append(_judge_at(diff, hyp, level_alpha, p, p_adj))
    return out


def by_seed(runs: pd.DataFrame, metric: str) -> dict[int, float]:
    """{seed: value} of one arm; a seed counted twice is an error (it would fake a pair)."""
    twice = runs["seed"][runs["seed"].duplicated()]
    if len(twice):
        raise ValueError(
            f"seed(s) {sorted(set(twice))} twice in one arm: {' '.join(sorted(runs['run_id']))}"
        )
    return {int(s): float(v) for s, v in zip(runs["seed"], runs[metric])}


def one_config(runs: pd.DataFrame) -> str | None:
    """The config_key of an arm; None for an empty arm; more than one config is an error
    (reports never pool runs trained differently)."""
    keys = list(dict.fromkeys(runs["config_key"]))
    if len(keys) > 1:
        raise ValueError(f"an arm holds {len(keys)} configs: {' '.join(sorted(runs['run_id']))}")
    return keys[0] if keys else None


def arms_paired(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Both arms non-empty, their configs pairable and at least two seeds shared."""
    ka, kb = one_config(a), one_config(b)
    if ka is None or kb is None or not pairable(ka, kb):
        return False
    return len(set(a["seed"]) & set(b["seed"])) >= 2


def compare(a: pd.DataFrame, b: pd.DataFrame, metric: str) -> Difference:
    """mean(A) - mean(B) of ``metric``: paired over the shared seeds where the arms pair
    (``arms_paired``), Welch over every run of each arm otherwise. ``a``/``b``: runs frames
    with ``config_key``, ``seed``, ``run_id`` and ``metric``."""
    if arms_paired(a, b):
        return paired_difference(by_seed(a, metric), by_seed(b, metric))
    by_seed(a, metric), by_seed(b, metric)  # the seed check, paired or not
    return welch_difference(a[metric], b[metric])


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
        raise ValueError(
            f"a and b must be 1-D of one length (one pair per seed), got {x.shape} and {y.shape}"
        )
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


def bootstrap_ratio(
    a: Sequence[float], b: Sequence[float], level: float = 0.95
) -> tuple[float, float] | None:
    """Paired bootstrap (Efron 1979) set of mean(a) / mean(b): seeds resampled with replacement,
    the pair (a_s, b_s) kept together, N_BOOTSTRAP times, generator seeded with BOOTSTRAP_SEED;
    None below MIN_N_BOOTSTRAP seeds.

    Fieller's construction with the bootstrap in place of the t distribution: rho is in the set
    when the percentile interval of the resampled mean(a) - rho mean(b) holds 0, i.e. when
    F(rho), the share of resamples with mean(a*) - rho mean(b*) > 0, lies in
    [(1 - level) / 2, (1 + level) / 2]. Where every resample's mean(b*) has mean(b)'s sign this
    is the percentile interval of the resampled ratios, [r_(k), r_(N - k + 1)] with
    k = ceil(N (1 - level) / 2). Where some resamples' mean(b*) cross 0 (a small cost), the set
    stays bounded while fewer than N (1 - level) / 2 of them do (the bootstrap's own test that
    the cost is not 0), as Fieller's does while the cost's t test rejects 0; returned is the
    hull (low, high) of the set, (-inf, inf) where it is unbounded."""
    x, y = _pairs(a, b)
    if len(x) < MIN_N_BOOTSTRAP:
        return None
    idx = np.random.default_rng(BOOTSTRAP_SEED).integers(0, len(x), (N_BOOTSTRAP, len(x)))
    num, den = x[idx].mean(axis=1), y[idx].mean(axis=1)
    tail = (1 - level) / 2
    # F(rho) is a step function that changes only at the resamples' ratios (den != 0)
    moving = den != 0
    ratio = num[moving] / den[moving]
    order = np.argsort(ratio, kind="stable")
    ratio, positive = ratio[order], den[moving][order] > 0
    fixed = np.count_nonzero(~moving & (num > 0))  # den 0: num - rho den > 0 for every rho
    # F on the open gap j (j = 0 .. len(ratio)) below ratio[j] and above ratio[j - 1]:
    # positive-den resamples whose ratio lies above rho, negative-den ones whose ratio lies below
    pos_above = np.count_nonzero(positive) - np.concatenate(([0], np.cumsum(positive)))
    neg_below = np.concatenate(([0], np.cumsum(~positive)))
    share = (pos_above + neg_below + fixed) / len(num)
    inside = np.flatnonzero((share >= tail - 1e-12) & (share <= 1 - tail + 1e-12))
    if not len(inside) or inside[0] == 0 or inside[-1] == len(ratio):
        return -math.inf, math.inf  # no rho is kept, or a ray to -inf or +inf is: unbounded
    return float(ratio[inside[0] - 1]), float(ratio[inside[-1]])
