"""Claims judged on runs with known numbers; verdicts recomputed by hand."""

from __future__ import annotations

import math
import statistics

import pytest
from scipy import stats as sps

from reports.claims import CLAIMS, judge_all, reference_cell
from reports.load import load_store, select_epoch
from reports.reported import load_reported, parse_label

from .conftest import make_run

XBN, XBM, NO_XBM = [80.0, 80.6, 81.5], [76.0, 78.9, 75.5], [75.9, 76.0]


def _judged(results):
    return judge_all(select_epoch(load_store(results).done, "best"), load_reported())


def _row(judged, claim_text, dataset="sop"):
    rows = judged[(judged["claim"] == claim_text) & (judged["dataset"] == dataset)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_claim_labels_parse_and_cover_the_brief():
    for c in CLAIMS:
        parse_label(c.a), parse_label(c.b)
    assert len(CLAIMS) >= 12


def test_xbn_beats_xbm_by_hand(results):
    for seed, r1 in enumerate(XBN):
        make_run(results, dataset="sop", variant="xbn", seed=seed, best_r1=r1)
    for seed, r1 in enumerate(XBM):
        make_run(results, dataset="sop", variant="xbm", seed=seed, best_r1=r1)
    make_run(results, dataset="sop", variant="no_xbm", seed=0, best_r1=NO_XBM[0], memory=0.0)
    row = _row(_judged(results), "XBN beats XBM on every dataset")
    ma, mb = statistics.mean(XBN), statistics.mean(XBM)
    va, vb = statistics.stdev(XBN) ** 2 / 3, statistics.stdev(XBM) ** 2 / 3
    t = (ma - mb) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)
    assert row["diff"] == pytest.approx(ma - mb)
    assert row["spread"] == pytest.approx(math.sqrt(va + vb))
    assert row["p_one_sided"] == pytest.approx(sps.t.sf(t, df))
    assert row["verdict"] == ("holds" if sps.t.sf(t, df) < 0.05 else "does not hold")
    assert row["reported_diff"] == pytest.approx(80.62 - 76.80)  # paper table 1
    assert row["scale"] == "paper"
    # one no_xbm run: not enough runs
    assert _row(_judged(results), "XBM beats no-XBM")["verdict"] == "not enough runs"


def test_matches_and_falls_below(results):
    for seed, r1 in enumerate([80.0, 80.4]):
        make_run(results, dataset="cifar100", variant="xbn", seed=seed, best_r1=r1)
    for seed, r1 in enumerate([80.9, 81.1]):  # diff +0.8 <= 1 point
        make_run(results, dataset="cifar100", variant="centre_xbn", seed=seed, best_r1=r1)
    for seed, r1 in enumerate([40.0, 41.0]):
        make_run(results, dataset="cifar100", variant="pc_xbn", seed=seed, best_r1=r1)
    for seed, r1 in enumerate([79.0, 80.0]):
        make_run(results, dataset="cifar100", variant="pc_xbn", seed=seed, best_r1=r1,
                 pos_margin=0.1, neg_margin=2.0)  # fmt: skip
    judged = _judged(results)
    centre = _row(judged, "Centre XBN matches XBN", "cifar100")
    assert centre["diff"] == pytest.approx(0.8) and centre["verdict"] == "holds"
    assert (
        _row(judged, "PC-XBN falls below XBN (default margins)", "cifar100")["verdict"] == "holds"
    )
    recover = _row(judged, "PC-XBN recovers with adjusted margins (pos 0.1, neg 2.0)", "cifar100")
    assert recover["diff"] == pytest.approx(79.5 - 40.5) and recover["verdict"] == "holds"


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


def test_no_xbm_512_and_reference_cell(results):
    for seed in range(3):
        make_run(results, dataset="sop", variant="xbn", seed=seed, best_r1=81.0 + 0.1 * seed)
    for seed in range(2):
        make_run(results, dataset="sop", variant="no_xbm", seed=seed, batch=512, memory=0.0,
                 best_r1=79.6 + 0.1 * seed)  # fmt: skip
    runs = select_epoch(load_store(results).done)
    assert reference_cell(runs) == (64, 0.5)
    row = _row(_judged(results), "No-XBM at batch 512 stays below XBN")
    assert row["n_b"] == 2 and row["diff"] == pytest.approx(81.1 - 79.65)
    assert row["verdict"] == "holds"


def test_demo_scale_label(results):
    for seed in range(2):
        make_run(results, dataset="fashion-mnist", variant="xbm", seed=seed, profile="cpu",
                 batch=32, best_r1=85.0 + seed)  # fmt: skip
        make_run(results, dataset="fashion-mnist", variant="no_xbm", seed=seed, profile="cpu",
                 batch=32, memory=0.0, best_r1=84.0 + seed)  # fmt: skip
    row = _row(_judged(results), "XBM beats no-XBM", "fashion-mnist")
    assert row["scale"] == "demo-scale (cpu profile)" and row["batch_size"] == 32
    assert row["diff"] == pytest.approx(1.0)
    assert math.isnan(row["reported_diff"])
