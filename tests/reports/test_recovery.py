"""The share of the staleness cost recovered: Fieller's set and the share checked
against numbers worked out here (plain loops, the quadratic solved by hand, and the set's
definition: the paired t test of a - rho b = 0 is not rejected inside it), the bootstrap against
a loop over the same resamples, and the table gated by the staleness claim's verdict."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from reports import inference
from reports.build import compute, write
from reports.claims import ORACLE, judge_all, staleness_claim
from reports.inference import (
    BOOTSTRAP_SEED,
    BOUNDED,
    EVERYTHING,
    HOLDS,
    N_BOOTSTRAP,
    NONE,
    NOT_RESOLVED,
    TWO_RAYS,
    bootstrap_ratio,
    fieller,
    ratio_of_means,
)
from reports.load import load_store, select_epoch
from reports.mechanism import claim_rows, recovery_table
from reports.tables import load_reported

from .conftest import make_run

GAIN = [0.9, 1.6, 0.4, 1.1]  # V - XBM per seed
COST = [2.1, 2.9, 1.8, 2.6]  # oracle - XBM per seed


def fieller_by_hand(a: list[float], b: list[float], level: float = 0.95):
    """Means, variances and covariance of the means in plain loops, then the roots of
    A r^2 - 2 B r + C = 0 (Fieller 1954)."""
    n = len(a)
    ma, mb = sum(a) / n, sum(b) / n
    vaa = sum((x - ma) ** 2 for x in a) / (n - 1) / n
    vbb = sum((y - mb) ** 2 for y in b) / (n - 1) / n
    vab = sum((x - ma) * (y - mb) for x, y in zip(a, b)) / (n - 1) / n
    t2 = sps.t.ppf(0.5 + level / 2, n - 1) ** 2
    qa, qb, qc = mb * mb - t2 * vbb, ma * mb - t2 * vab, ma * ma - t2 * vaa
    root = math.sqrt(qb * qb - qa * qc)
    return ma / mb, sorted([(qb - root) / qa, (qb + root) / qa])


def t_test_p(a, b, rho):
    """The two-sided paired t p of mean(a - rho b) = 0: Fieller's set is where it is >= alpha."""
    return sps.ttest_1samp(np.subtract(a, np.multiply(rho, b)), 0.0).pvalue


def test_share_and_fieller_interval_against_a_hand_computation():
    share, (low, high) = fieller_by_hand(GAIN, COST)
    assert ratio_of_means(GAIN, COST) == pytest.approx(sum(GAIN) / sum(COST)) == share
    ci = fieller(GAIN, COST)
    assert ci.kind == BOUNDED and (ci.low, ci.high) == pytest.approx((low, high))
    assert low < share < high
    # the set's definition: the test of a - rho b = 0 sits exactly at alpha on its ends
    assert t_test_p(GAIN, COST, ci.low) == pytest.approx(0.05)
    assert t_test_p(GAIN, COST, ci.high) == pytest.approx(0.05)
    assert t_test_p(GAIN, COST, share) > 0.05 > t_test_p(GAIN, COST, high + 0.1)
    assert ci.text() == f"[{low:.2f}, {high:.2f}]"


def test_an_unresolved_cost_gives_an_unbounded_set_shown_as_such():
    cost = [1.5, -0.8, 2.0, -0.3]  # the cost's own t is far below t_{0.975, 3}
    gain = [1.0, 0.2, 1.4, 0.5]
    ci = fieller(gain, cost)
    assert ci.kind == TWO_RAYS and not ci.bounded
    assert t_test_p(gain, cost, ci.low) == pytest.approx(0.05)
    assert t_test_p(gain, cost, ci.high) == pytest.approx(0.05)
    assert t_test_p(gain, cost, (ci.low + ci.high) / 2) < 0.05  # the gap between the rays
    assert ci.text().startswith("unbounded: (−∞, ") and ci.text().endswith(", +∞)")
    flat = fieller([0.1, -0.1, 0.2, -0.2], [0.5, -0.5, 0.4, -0.4])  # nothing is rejected
    assert flat.kind == EVERYTHING and flat.text() == "unbounded: every value"
    assert fieller([1.0], [2.0]).kind == NONE
    with pytest.raises(ValueError, match="one pair per seed"):
        fieller([1.0, 2.0], [1.0])


def test_paired_bootstrap_keeps_each_seeds_pair_together():
    gain, cost = [0.9, 1.6, 0.4, 1.1, 0.7, 1.3], [2.1, 2.9, 1.8, 2.6, 2.2, 2.4]
    assert bootstrap_ratio(gain[:4], cost[:4]) is None  # below 5 seeds
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    idx = rng.integers(0, len(gain), (N_BOOTSTRAP, len(gain)))
    ratios = []
    for row in idx:  # one resample of seeds; the pair (gain_s, cost_s) moves together
        ratios.append(sum(gain[i] for i in row) / sum(cost[i] for i in row))
    # no resample's cost crosses 0: the percentile interval [r_(250), r_(9751)] of the ratios
    ratios = sorted(ratios)
    assert bootstrap_ratio(gain, cost) == pytest.approx((ratios[249], ratios[9750]))
    assert bootstrap_ratio(gain, [2.0, -2.0, 1.0, 0.5, 0.4, 0.1]) == (-math.inf, math.inf)


def _kept(gain, cost, rho, idx) -> bool:
    """rho is in the 95% bootstrap set of 1000 resamples: the number of resamples with
    mean(gain*) - rho mean(cost*) > 0 lies within [25, 975] (a plain loop)."""
    above = 0
    for row in idx:
        g = sum(gain[i] for i in row) / len(row)
        c = sum(cost[i] for i in row) / len(row)
        above += g - rho * c > 0
    return 25 <= above <= 975


def test_bootstrap_set_where_a_few_resampled_costs_cross_zero(monkeypatch):
    """One seed's cost far below 0: 1-2.5% of the resamples have a cost <= 0. The set stays
    bounded (fewer than 2.5% cross), and its ends are the outermost ratios kept by a plain loop
    that tests every candidate (each resample's ratio, and points just inside and outside)."""
    monkeypatch.setattr(inference, "N_BOOTSTRAP", 1000)
    cost = [1.5, 1.2, 2.0, -3.0, 1.8, 0.9, 1.4, 2.2, 1.0, 1.1]
    noise = [0.3, -0.4, 0.5, -0.2, 0.1, 0.6, -0.5, 0.2, 0.4, -0.1]
    gain = [0.8 * c + e for c, e in zip(cost, noise)]
    idx = np.random.default_rng(BOOTSTRAP_SEED).integers(0, len(cost), (1000, len(cost)))
    means = [(sum(gain[i] for i in r) / 10, sum(cost[i] for i in r) / 10) for r in idx]
    crossing = sum(c <= 0 for _, c in means)
    assert 0 < crossing < 25  # the case under test: a few, under 2.5% of 1000
    low, high = bootstrap_ratio(gain, cost)
    candidates = sorted(g / c for g, c in means if c != 0)
    kept = [r for r in candidates if _kept(gain, cost, r, idx)]
    # the set is [first kept ratio, next ratio above the last kept one): its closure is returned
    assert (low, high) == pytest.approx((min(kept), min(r for r in candidates if r > max(kept))))
    step = 1e-6 * (high - low)
    assert not _kept(gain, cost, low - step, idx) and not _kept(gain, cost, high + step, idx)
    assert _kept(gain, cost, high - step, idx) and _kept(gain, cost, (low + high) / 2, idx)


# ----- the table -------------------------------------------------------------------------------

R1 = {  # Recall@1 per seed; the oracle re-embeds every 10 steps
    "xbm": [60.0, 61.0, 59.5, 60.4], ORACLE: [62.1, 63.9, 61.3, 63.0],
    "xbn": [60.9, 62.6, 59.9, 61.5], "axbn": [61.2, 61.9, 60.4, 61.0],
}  # fmt: skip


def _store(root, r1):
    for variant, values in r1.items():
        opts = {"refresh_interval": 10} if variant == ORACLE else None
        for seed, x in enumerate(values):
            make_run(root, dataset="fashion-mnist", variant=variant, seed=seed, profile="cpu",
                     options=opts, best_r1=x, best_epoch=3)  # fmt: skip


def _table(root):
    runs = select_epoch(load_store(root).done)
    reported = load_reported()
    judged = judge_all(runs, reported, extra=claim_rows(runs, load_store(root).memory,
                                                             reported))  # fmt: skip
    return recovery_table(runs, judged), judged


def test_share_recovered_per_variant_where_the_cost_is_resolved(results):
    _store(results, R1)
    table, judged = _table(results)
    cost = np.subtract(R1[ORACLE], R1["xbm"])
    gap = judged[judged["claim_id"] == staleness_claim(10).id].iloc[0]
    assert gap["family"] == "primary" and gap["verdict"] == HOLDS
    assert table["variant"].tolist() == ["xbn", "axbn"]
    for r in table.to_dict("records"):
        gain = np.subtract(R1[r["variant"]], R1["xbm"])
        share, (low, high) = fieller_by_hand(list(gain), list(cost))
        assert r["n"] == 4 and r["cost"] == pytest.approx(cost.mean())
        assert r["share"] == pytest.approx(share) and r["cost_verdict"] == HOLDS
        assert (r["share_low"], r["share_high"]) == pytest.approx((low, high))
        assert r["note"] == "" and r["oracle"] == "oracle_xbm[refresh_interval=10]"
    text = write(compute(results)).read_text()
    assert "### Share of the staleness cost recovered" in text
    assert text.index("### Primary claims") < text.index("### Share of the staleness cost")
    assert text.index("### Share of the staleness cost") < text.index("## Secondary claims")
    csv = (results / "report" / "tables" / "staleness_recovery.csv").read_text()
    assert csv.startswith("profile,dataset,oracle,variant,n,cost,")
    claims_csv = (results / "report" / "tables" / "claims.csv").read_text()
    assert claims_csv.startswith("family,claim_id,claim,")


def test_share_is_not_shown_where_the_cost_is_not_resolved(results):
    _store(results, {**R1, ORACLE: [60.9, 60.2, 60.8, 60.1]})  # oracle ~ xbm
    table, _ = _table(results)
    assert len(table) == 2 and table["share"].isna().all() and table["share_low"].isna().all()
    assert (table["cost_verdict"] == NOT_RESOLVED).all() and (table["share_ci"] == "-").all()
    assert table["note"].str.contains("the staleness cost is not resolved").all()
    assert table["cost"].notna().all()  # the cost itself is still reported
