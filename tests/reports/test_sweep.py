"""Thesis table 5.14 under both readings (reports.tables.sweep_points): the runs of each reading
are the study cells bench.studies labels so, and the verdict agrees with numbers computed by
hand, whichever reading the fixture puts closer to the reported numbers."""

from __future__ import annotations

import math
import statistics

import pytest
from scipy import stats as sps

from bench import studies as S
from bench.studies import study_cells
from reports.build import compute, write
from reports.tables import READINGS, SWEEP_KEY, SWEEP_STEM, load_reported, sweep_verdict

from .conftest import make_run

STUDY = "thesis-pc-sweep"
# thesis table 5.14, Recall@1 on CIFAR-100 (reported_numbers.csv), at three lambda_mu points
REPORTED = {0.0: 72.5, 0.2: 74.9, 0.4: 84.8}
NEAR = {0.0: [72.0, 72.2], 0.2: [74.0, 74.2], 0.4: [82.0, 82.4]}  # per seed; off by .4, .8, 2.6
FAR = {0.0: [60.0, 60.4], 0.2: [61.0, 61.0], 0.4: [70.0, 70.2]}  # off by 12.3, 13.9, 14.7
BLOCKS = {"A": S.READING_DEFAULT, "B": S.READING_ADJUSTED}  # the study's label of each reading


def _cells(reading: str, seeds: tuple[int, ...]) -> dict[float, list]:
    """lambda_mu -> the configs of that point in the study block of ``reading``, per seed."""
    info = S.cell_info(STUDY, seeds=seeds)
    out: dict[float, list] = {}
    for cfg in S.cells(STUDY, seeds=seeds):
        options = dict(cfg.variant_options)
        if info[cfg.run_id]["block"] == BLOCKS[reading] and set(options) == {"lambda_mu"}:
            out.setdefault(float(options["lambda_mu"]), []).append(cfg)
    return out


def _write(results, values: dict[str, dict[float, list[float]]]) -> dict[str, set[str]]:
    """Runs of each reading's cells with these per-seed Recall@1; returns their run ids."""
    ids: dict[str, set[str]] = {}
    for reading, points in values.items():
        seeds = tuple(range(max(len(v) for v in points.values())))
        cells = _cells(reading, seeds)
        for lam, r1s in points.items():
            for cfg, r1 in zip(sorted(cells[lam], key=lambda c: c.seed), r1s):
                ids.setdefault(reading, set()).add(make_run(results, cfg, best_r1=r1))
    return ids


def _report(results):
    return compute(results, with_figures=False, cells=study_cells((STUDY,)))


def _by_hand(a: dict[float, list[float]], b: dict[float, list[float]]) -> dict:
    """MAD per reading, D = MAD_A - MAD_B with its 95% t interval over the points, and the
    points reproduced (|diff| <= max(1, 2 s / sqrt(n)))."""
    err = {r: [abs(statistics.mean(v[lam]) - REPORTED[lam]) for lam in REPORTED]
           for r, v in (("A", a), ("B", b))}  # fmt: skip
    d = [x - y for x, y in zip(err["A"], err["B"])]
    n = len(d)
    half = sps.t.ppf(0.975, n - 1) * statistics.stdev(d) / math.sqrt(n)
    kept = {r: sum(abs(statistics.mean(v[lam]) - REPORTED[lam])
                   <= max(1.0, 2 * statistics.stdev(v[lam]) / math.sqrt(len(v[lam])))
                   for lam in REPORTED)
            for r, v in (("A", a), ("B", b))}  # fmt: skip
    mad = {r: statistics.mean(e) for r, e in err.items()}
    return {"mad": mad, "diff": mad["A"] - mad["B"], "ci": (statistics.mean(d) - half,
            statistics.mean(d) + half), "kept": kept}  # fmt: skip


def test_the_fixture_reads_the_reported_numbers():
    rep = load_reported()
    rows = rep[rep["key"] == SWEEP_KEY].set_index("variant")["mean"]
    assert {lam: rows[f"pc_xbn[lambda_mu={lam}]"] for lam in REPORTED} == REPORTED
    for reading, (name, margins) in READINGS.items():  # the report names the study's readings
        assert f"reading {reading}" in BLOCKS[reading]
        both = f"{margins[0]:.1f}/{margins[1]:.1f}"
        assert f"({both})" in BLOCKS[reading] and both in name


@pytest.mark.parametrize("closer", ["B", "A"])
def test_the_verdict_picks_the_reading_closer_to_the_reported_numbers(results, closer):
    a, b = (FAR, NEAR) if closer == "B" else (NEAR, FAR)
    ids = _write(results, {"A": a, "B": b})
    report = _report(results)
    points = report.sweep.set_index(["lambda", "value"])
    for lam, rep in REPORTED.items():
        p = points.loc[("lambda_mu", lam)]
        assert p["reported"] == rep
        for reading, vals in (("A", a), ("B", b)):
            assert p[f"n_{reading}"] == 2
            assert p[f"mean_{reading}"] == pytest.approx(statistics.mean(vals[lam]))
            assert p[f"diff_{reading}"] == pytest.approx(statistics.mean(vals[lam]) - rep)
            assert set(p[f"run_ids_{reading}"].split()) <= ids[reading]
    assert {r for ids_ in points["run_ids_A"] for r in ids_.split()} == ids["A"]
    assert {r for ids_ in points["run_ids_B"] for r in ids_.split()} == ids["B"]
    hand = _by_hand(a, b)
    v = sweep_verdict(report.sweep)
    assert v.points == 3 and v.mad == pytest.approx(hand["mad"])
    assert v.diff == pytest.approx(hand["diff"]) and v.ci == pytest.approx(hand["ci"])
    assert hand["ci"][0] > 0 if closer == "B" else hand["ci"][1] < 0
    assert v.reproduced == hand["kept"] and hand["kept"][closer] == 2  # 2 of 3: it fits
    assert v.closer == closer
    assert v.text == f"fits reading {closer} better by {abs(hand['diff']):.2f} points"
    text = write(report).read_text()
    assert f"## {SWEEP_KEY} under both readings" in text and f"**Verdict: {v.text}.**" in text
    assert (report.results / "report" / "tables" / f"{SWEEP_STEM}.csv").exists()


def test_neither_fits_when_the_closer_reading_misses_most_points(results):
    off = {lam: [x + 4.0 for x in r1s] for lam, r1s in NEAR.items()}  # off by 3.6, 3.2, 1.4
    _write(results, {"A": FAR, "B": off})
    hand = _by_hand(FAR, off)
    assert hand["kept"] == {"A": 0, "B": 0} and hand["ci"][0] > 0
    v = sweep_verdict(_report(results).sweep)
    assert v.text == f"neither fits; reading B is closer by {hand['diff']:.2f} points"


def test_not_enough_runs_with_one_point_under_both_readings(results):
    _write(results, {"A": FAR, "B": {0.0: NEAR[0.0]}})
    report = _report(results)
    v = sweep_verdict(report.sweep)
    assert v.points == 1 and v.text == "not enough runs" and v.closer is None
    assert v.mad["B"] == pytest.approx(abs(statistics.mean(NEAR[0.0]) - REPORTED[0.0]))
    assert "**Verdict: not enough runs**: 1 point(s)" in write(report).read_text()


def test_no_sweep_section_without_sweep_runs(results):
    make_run(results, dataset="sop", variant="xbn", seed=0, best_r1=80.0)
    report = _report(results)
    assert (report.sweep[["n_A", "n_B"]] == 0).all(axis=None)
    assert "under both readings" not in write(report).read_text()
