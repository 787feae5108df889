"""The claims' two families: which claim is primary, and Holm run per (family,
profile, dataset), so that secondary claims and other datasets never move a primary verdict.
Holm is recomputed here by hand from the paired t p-values."""

from __future__ import annotations

import pytest
from pandas.testing import assert_frame_equal
from scipy import stats as sps

from reports.claims import (
    MOCO_CLAIM,
    PRIMARY,
    PRIMARY_FAMILY,
    SECONDARY_FAMILY,
    bound_claim,
    family_of,
    judge_all,
    staleness_claim,
    unknown_primary,
)
from reports.load import load_store, select_epoch
from reports.tables import load_reported

from .conftest import make_run

XBN, XBM, NO_XBM = [80.0, 80.6, 81.5, 80.9], [76.0, 78.9, 75.5, 77.2], [74.0, 76.5, 74.1, 75.0]
SECONDARY_R1 = {  # variants whose claims are all secondary
    "delayed_xbn": [80.2, 80.1, 81.9, 80.7], "centre_xbn": [80.1, 80.5, 81.4, 81.0],
    "xbm_star": [77.0, 79.1, 76.9, 77.5],
}  # fmt: skip


def _runs(root, values: dict[str, list[float]], dataset: str = "sop") -> None:
    for variant, r1 in values.items():
        for seed, x in enumerate(r1):
            make_run(root, dataset=dataset, variant=variant, seed=seed, best_r1=x)


def _judged(root):
    return judge_all(select_epoch(load_store(root).done, "best"), load_reported())


def _primary(judged, dataset: str = "sop"):
    rows = judged[(judged["family"] == PRIMARY_FAMILY) & (judged["dataset"] == dataset)]
    return rows.set_index("claim_id")[["p", "p_holm", "level", "ci_low", "ci_high", "verdict"]]


def holm_by_hand(ps: dict[str, float]) -> dict[str, float]:
    """Holm's step-down adjusted p (Holm 1979) in a plain loop: the k-th smallest p times
    (m - k), running maximum, capped at 1."""
    order = sorted(ps, key=ps.get)
    out, running = {}, 0.0
    for k, key in enumerate(order):
        running = max(running, min(1.0, (len(order) - k) * ps[key]))
        out[key] = running
    return out


def test_primary_ids_name_known_claims():
    assert unknown_primary() == []
    assert PRIMARY == ("xbm>no_xbm", "oracle>xbm", "xbn>xbm")


def test_every_variant_of_a_primary_claim_runs_the_demos_powered_seeds():
    """The demo is designed for the primary claims: both sides of each run every seed of the
    primary block (bench/studies.py), the other variants fewer."""
    from bench.studies import DEMO_SEEDS, cells
    from reports.claims import (
        CLAIMS,
        ORACLE,
        PRIMARY,
    )

    sides = {s for c in CLAIMS if c.id in PRIMARY for s in (c.a, c.b)} | {ORACLE, "xbm"}
    demo = cells("demo")
    seeds = {v: {c.seed for c in demo if c.variant == v} for v in {c.variant for c in demo}}
    assert all(seeds[v] == set(DEMO_SEEDS) for v in sides)
    assert all(len(seeds[v]) < len(DEMO_SEEDS) for v in set(seeds) - sides)


@pytest.mark.parametrize(
    ("claim_id", "family"),
    [("xbn>xbm", PRIMARY_FAMILY), (staleness_claim(10).id, PRIMARY_FAMILY),
     (staleness_claim(1).id, PRIMARY_FAMILY), (bound_claim("xbn", 10).id,
     SECONDARY_FAMILY), ("xbn:closer", SECONDARY_FAMILY), (MOCO_CLAIM.id, SECONDARY_FAMILY),
     ("delayed>xbn", SECONDARY_FAMILY), ("axbn>xbn@small", SECONDARY_FAMILY)],
)  # fmt: skip
def test_family_of_a_row(claim_id, family):
    assert family_of(claim_id) == family


def test_secondary_claims_do_not_change_a_primary_p_holm(results):
    _runs(results, {"xbn": XBN, "xbm": XBM, "no_xbm": NO_XBM})
    before = _primary(_judged(results))
    p = {"xbn>xbm": sps.ttest_rel(XBN, XBM).pvalue, "xbm>no_xbm": sps.ttest_rel(XBM, NO_XBM).pvalue}
    assert before["p_holm"].dropna().to_dict() == pytest.approx(holm_by_hand(p))
    _runs(results, SECONDARY_R1)
    judged = _judged(results)
    secondary = judged[judged["family"] == SECONDARY_FAMILY].set_index("claim_id")
    assert {"delayed>xbn", "centre~xbn", "xbm_star>xbm", "xbn>xbm_star"} <= set(secondary.index)
    after = _primary(judged)
    assert_frame_equal(after, before)  # p, p_holm, CI level, CI, verdict
    # the secondary family has its own Holm: its m counts its own tested claims only
    tested = secondary[secondary["p"].notna()]
    assert tested["p_holm"].to_dict() == pytest.approx(holm_by_hand(tested["p"].to_dict()))
    assert judged["family"].tolist() == sorted(judged["family"])  # primary rows first


def test_holm_runs_per_dataset(results):
    _runs(results, {"xbn": XBN, "xbm": XBM, "no_xbm": NO_XBM})
    before = _primary(_judged(results))
    _runs(results, {"xbn": XBM, "xbm": XBN, "no_xbm": NO_XBM}, dataset="inshop")
    judged = _judged(results)
    assert_frame_equal(_primary(judged), before)
    assert _primary(judged, "inshop")["p"].notna().sum() == 2  # judged too, on its own
