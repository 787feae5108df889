"""The mechanism in the report: probe records written through bench.store's writer,
the memory-error table, the closer-memory and oracle claims, the two figures and REPORT.md's
section, every number recomputed here from the arrays the records were made of."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from scipy import stats as sps

from bench.config import RunConfig, make_config
from bench.store import MEMORY_ERROR_COLUMNS, MOCO_COLUMNS, RunDir
from common import TMP_NAME
from reports.build import _save_figure, compute, write
from reports.claims import (
    ADAPTING,
    BOUND_CLAIM,
    CLOSER_CLAIMS,
    ORACLE,
    STALENESS_CLAIM,
    bound_claim,
    judge_all,
    staleness_claim,
)
from reports.figures import ADAPTATION_GAIN, AGE_EPOCHS, MEMORY_AGE, colour
from reports.inference import HOLDS, NOT_RESOLVED, REFUTED
from reports.load import load_store, select_epoch
from reports.markdown import mechanism_intro
from reports.mechanism import (
    LOG_GAIN,
    claim_rows,
    display_memory_table,
    mechanism_claims,
    memory_table,
    refresh_intervals,
    run_stats,
    untested,
)
from reports.tables import load_reported
from variants import VARIANTS

from .conftest import ENV, make_run
from .overlap import text_overlaps

DATASET, PROFILE, EPOCHS, POINTS = "fashion-mnist", "cpu", 5, 2  # cpu profile: 5 main epochs
N = EPOCHS * POINTS  # probe points per run
AGE_FACTOR = np.array([1.0, 1.2, 1.5, 1.9])  # error grows with the entry's age


def config(variant: str, seed: int, options: dict | None = None, **overrides) -> RunConfig:
    """The cpu-profile config (``options``: variant options, ``overrides``: config fields);
    ``oracle_xbm`` as xbm's config under its own name until the variant is registered (its one
    option, refresh_interval, at its default is dropped)."""
    if variant == ORACLE and ORACLE not in VARIANTS:
        base = make_config(DATASET, "xbm", seed, PROFILE, **overrides)
        return dataclasses.replace(base, variant=variant, variant_options=tuple(
            sorted((options or {}).items())))  # fmt: skip
    return make_config(DATASET, variant, seed, PROFILE, options, **overrides)


def probe_rows(err: np.ndarray, raw: np.ndarray, adapting: np.ndarray,
               jaccard: np.ndarray) -> list[dict]:  # fmt: skip
    """One memory_error.csv row per probe point i (epoch i // POINTS + 1, point i % POINTS + 1);
    age bucket q's errors are the point's mean error times AGE_FACTOR[q]."""
    rows = []
    for i in range(len(err)):
        gain = raw[i] / err[i] if err[i] else math.nan
        rows.append({
            "epoch": i // POINTS + 1, "point": i % POINTS + 1, "step": 10 * (i + 1),
            "adapting": int(adapting[i]), "n_entries": 200, "n_batches": 5,
            "err_l2_mean": err[i], "err_l2_median": err[i], "err_cos_mean": 1 - err[i] ** 2 / 2,
            "raw_l2_mean": raw[i], "raw_l2_median": raw[i], "raw_cos_mean": 1 - raw[i] ** 2 / 2,
            "gain": gain, "pair_jaccard": jaccard[i], "pairs_stored": 50, "pairs_fresh": 48,
            **{f"err_l2_age{q + 1}": err[i] * f for q, f in enumerate(AGE_FACTOR)},
            **{f"raw_l2_age{q + 1}": raw[i] * f for q, f in enumerate(AGE_FACTOR)},
        })  # fmt: skip
    return rows


def probed_run(root: Path, variant: str, seed: int, r1: float, log_gain: float | None,
               adapting: bool = True, options: dict | None = None) -> dict:  # fmt: skip
    """A done run with a memory_error.csv whose points have err = 0.1 + 0.01 * (i + seed) and
    raw = err * exp(log_gain + small per-point wiggle that sums to 0) where adapting (the run's
    mean log gain over its adapting points is exactly ``log_gain``), raw = err elsewhere.
    ``options``: the variant's options. Returns the arrays written."""
    cfg = config(variant, seed, options)
    make_run(root, cfg, best_r1=r1, best_epoch=EPOCHS)
    i = np.arange(N)
    err = 0.1 + 0.01 * (i + seed)
    wiggle = 0.02 * np.where(i % 2 == 0, 1.0, -1.0)  # zero mean over N (even) points
    lg = np.zeros(N) if log_gain is None else log_gain + wiggle
    raw = err * np.exp(lg)
    mask = np.full(N, adapting)
    jaccard = 0.9 - 0.01 * i - 0.02 * seed
    RunDir(root, cfg).write_memory_error(probe_rows(err, raw, mask, jaccard))
    return {"run_id": cfg.run_id, "err": err, "raw": raw, "jaccard": jaccard, "lg": lg}


def _mechanism_claims(root: Path) -> pd.DataFrame:
    store = load_store(root)
    runs = select_epoch(store.done)
    reported = load_reported()
    return judge_all(runs, reported, extra=claim_rows(runs, store.memory, reported))


def _row(judged: pd.DataFrame, text: str) -> pd.Series:
    rows = judged[judged["claim"] == text]
    assert len(rows) == 1, judged["claim"].tolist()
    return rows.iloc[0]


def _closer(variant: str) -> str:
    return next(c.text for c in CLOSER_CLAIMS if c.a == variant)


# ----- the record: writer and reader ---------------------------------------------------------


def test_memory_error_writer_round_trips_in_column_order_and_checks_columns(results):
    cfg = config("xbn", 0)
    rd = RunDir(results, cfg)
    assert rd.read_memory_error() == []  # an older record: no file, no rows
    rows = probe_rows(np.array([0.2, 0.0]), np.array([0.3, 0.1]), np.array([1, 0]),
                      np.array([0.5, math.nan]))  # fmt: skip
    rd.write_memory_error(rows)
    assert tuple(pd.read_csv(rd.memory_error).columns) == MEMORY_ERROR_COLUMNS
    back = rd.read_memory_error()
    assert back[0]["gain"] == pytest.approx(1.5) and back[0]["err_l2_age3"] == pytest.approx(0.3)
    assert math.isnan(back[1]["gain"]) and math.isnan(back[1]["pair_jaccard"])  # NaN survives
    with pytest.raises(ValueError, match=r"row 1: missing column\(s\) \['gain'\]"):
        rd.write_memory_error([rows[0], {k: v for k, v in rows[1].items() if k != "gain"}])
    with pytest.raises(ValueError, match=r"unknown column\(s\) \['extra'\]"):
        rd.write_memory_error([{**rows[0], "extra": 1}])
    assert len(rd.read_memory_error()) == 2  # a refused write leaves the file as it was
    assert not [p for p in rd.path.iterdir() if TMP_NAME.match(p.name)]


def test_store_reads_memory_rows_and_names_a_malformed_file(results):
    a = probed_run(results, "xbn", 0, 80.0, 0.3)
    make_run(results, dataset=DATASET, variant="xbm", seed=0, profile=PROFILE, best_r1=80.0)
    store = load_store(results)
    assert store.memory["run_id"].tolist() == [a["run_id"]] * N
    assert store.memory["err_l2_mean"].to_numpy() == pytest.approx(a["err"])
    path = RunDir(results, config("xbn", 0)).memory_error
    pd.read_csv(path).drop(columns=["pair_jaccard"]).to_csv(path, index=False)
    store = load_store(results)  # that run is listed as damaged, naming the file; not read
    (error,) = store.runs.loc[store.runs["run_id"] == a["run_id"], "error"]
    assert re.search(r"memory_error\.csv: missing column\(s\) pair_jaccard", error)
    assert a["run_id"] not in set(store.memory["run_id"]) | set(store.done["run_id"])


# ----- the table ------------------------------------------------------------------------------


@pytest.fixture
def table_store(results):
    made = {
        "xbm": [probed_run(results, "xbm", s, 80.0, None, adapting=False) for s in range(3)],
        "xbn": [probed_run(results, "xbn", s, 80.0, lg) for s, lg in enumerate((0.3, 0.4, 0.6))],
    }
    return results, made


def test_memory_table_is_the_mean_and_std_over_seeds_of_each_runs_mean(table_store):
    root, made = table_store
    store = load_store(root)
    table = memory_table(select_epoch(store.done), store.memory).set_index("variant")
    for variant, arrays in made.items():
        row = table.loc[variant]
        expected = {
            "err_l2": [a["err"].mean() for a in arrays],
            "raw_l2": [a["raw"].mean() for a in arrays],
            "gain": [math.exp(np.log(a["raw"] / a["err"]).mean()) for a in arrays],
            "pair_jaccard": [a["jaccard"].mean() for a in arrays],
        }
        assert row["n"] == 3 and row["points"] == 3 * N
        for col, per_seed in expected.items():
            assert row[f"{col}_mean"] == pytest.approx(np.mean(per_seed)), col
            assert row[f"{col}_std"] == pytest.approx(np.std(per_seed, ddof=1)), col
    # xbm adapts nothing: its stored copy is the un-adapted one, gain exactly 1
    assert table.loc["xbm", "gain_mean"] == 1.0 and table.loc["xbm", "gain_std"] == 0.0
    assert table.loc["xbn", "gain_mean"] == pytest.approx(np.mean(np.exp([0.3, 0.4, 0.6])))
    shown = display_memory_table(table.reset_index())
    assert shown["adaptation gain"].tolist()[0] == "1.000 ± 0.000"


def test_gain_is_taken_over_the_adapting_points_only(results):
    """delayed_xbn adapts from its delay on: points before it (gain 1) do not dilute its gain."""
    cfg = config("delayed_xbn", 0)
    make_run(results, cfg, best_r1=80.0, best_epoch=EPOCHS)
    err = np.full(N, 0.2)
    adapting = np.arange(N) >= 6  # the last two epochs
    raw = np.where(adapting, 0.2 * np.array([1.5, 2.0] * (N // 2)), 0.2)
    RunDir(results, cfg).write_memory_error(probe_rows(err, raw, adapting, np.full(N, 0.8)))
    stats = run_stats(load_store(results).memory).iloc[0]
    assert stats["adapting_points"] == 4
    assert stats[LOG_GAIN] == pytest.approx(np.mean(np.log([1.5, 2.0, 1.5, 2.0])))


# ----- the claims -----------------------------------------------------------------------------


def test_closer_memory_claims_hold_when_gains_are_clearly_above_1_and_straddle_otherwise(results):
    xbn, axbn = (0.30, 0.42, 0.36), (0.05, -0.04, 0.02)
    for s in range(3):
        probed_run(results, "xbn", s, 80.0, xbn[s])
        probed_run(results, "axbn", s, 80.0, axbn[s])
    judged = _mechanism_claims(results)
    for variant, gains, verdict in (("xbn", xbn, HOLDS), ("axbn", axbn, NOT_RESOLVED)):
        row = _row(judged, _closer(variant))
        ref = sps.ttest_1samp(gains, 0.0)  # the per-seed log gains against 0
        assert row["method"] == "paired" and row["n"] == 3
        assert row["diff"] == pytest.approx(np.mean(gains))
        assert row["p"] == pytest.approx(ref.pvalue)  # a directional claim's decision p
        half = sps.t.ppf(0.5 + row["level"] / 2, 2) * np.std(gains, ddof=1) / math.sqrt(3)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(
            (np.mean(gains) - half, np.mean(gains) + half)
        )
        assert row["verdict"] == verdict
        assert row["mean_b"] == 0.0  # the un-adapted copy against itself: log gain 0
    # Holm over the two tested claims: the smaller p at alpha / 2
    levels = judged.set_index("claim")["level"]
    assert levels[_closer("xbn")] == pytest.approx(1 - 0.05 / 2)


def test_oracle_bounds_each_variant_on_recall_and_staleness_gap(results):
    oracle, xbm = [81.0, 81.7, 80.8], [80.0, 80.5, 79.9]
    scaled = [84.0, 84.5, 84.1]  # a variant far above the oracle: the bound is refuted
    for s in range(3):
        make_run(results, config(ORACLE, s), best_r1=oracle[s])
        make_run(results, config("xbm", s), best_r1=xbm[s])
        make_run(results, config("scaled_xbn", s), best_r1=scaled[s])
    judged = _mechanism_claims(results)
    for variant, values, verdict in (("xbm", xbm, HOLDS), ("scaled_xbn", scaled, REFUTED)):
        row = _row(judged, bound_claim(variant).text)
        d = np.subtract(oracle, values)
        assert row["method"] == "paired" and row["diff"] == pytest.approx(d.mean())
        half = sps.t.ppf(0.5 + row["level"] / 2, 2) * d.std(ddof=1) / math.sqrt(3)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half))
        assert row["verdict"] == verdict, row[["ci_low", "ci_high", "level"]]
    gap = _row(judged, staleness_claim().text)  # no option recorded: the default, 1
    ref = sps.ttest_rel(oracle, xbm)
    assert gap["diff"] == pytest.approx(np.mean(oracle) - np.mean(xbm))
    assert gap["p"] == pytest.approx(ref.pvalue)  # A > B: two-sided p of the directional test
    assert not any(c.text.startswith(BOUND_CLAIM.text) for c in untested(judged))


REFRESH5 = {"refresh_interval": 5}  # the demo study's oracle (bench.studies.DEMO_REFRESH)
DEMO_R1 = {  # Recall@1 per seed; the oracle re-embeds every 5 steps, the others at defaults
    ORACLE: [79.9, 79.2, 79.6], "xbm": [79.1, 78.9, 79.3], "xbn": [79.4, 79.0, 79.8],
    "delayed_xbn": [80.5, 80.9, 80.1], "no_xbm": [70.2, 71.0, 70.5],
}  # fmt: skip


def demo_runs(root: Path, r1: dict[str, list[float]] = DEMO_R1) -> dict[str, list[str]]:
    """The runs of ``r1``, seed s with Recall@1 r1[variant][s]: the oracle with
    refresh_interval=5, every other variant with its default options (delayed_xbn's delay is
    the profile's, a protocol option). Returns the run ids per variant."""
    return {
        v: [make_run(root, config(v, s, REFRESH5 if v == ORACLE else None), best_r1=x)
            for s, x in enumerate(values)]
        for v, values in r1.items()
    }  # fmt: skip


def paired_by_hand(a: list[float], b: list[float], level: float) -> dict[str, float]:
    """The paired t of a - b over seeds, in a plain loop: mean difference, its CI at ``level``,
    the two-sided p."""
    d = [x - y for x, y in zip(a, b)]
    n = len(d)
    mean = sum(d) / n
    se = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1) / n)
    half = sps.t.ppf(0.5 + level / 2, n - 1) * se
    return {"diff": mean, "low": mean - half, "high": mean + half,
            "p": 2 * sps.t.sf(abs(mean) / se, n - 1)}  # fmt: skip


def verdict_by_hand(low: float, high: float, null: float) -> str:
    """A directional claim's verdict read from its CI (reports.inference.read_ci): holds above
    the null, refuted below it, else not resolved."""
    return HOLDS if low > null else REFUTED if high < null else NOT_RESOLVED


def test_oracle_every_5_steps_is_judged_against_the_variants_at_defaults(results):
    """The demo study's cells: the oracle's own option does not keep it from its comparison;
    every number below is recomputed from the Recall@1 values given."""
    ids = demo_runs(results)
    judged = _mechanism_claims(results)
    others = [v for v in DEMO_R1 if v != ORACLE]
    oracle_rows = mechanism_claims(judged)
    assert len(oracle_rows) == len(others) + 1  # one bound per variant, one staleness gap
    for variant in others:
        row = _row(judged, bound_claim(variant, 5).text)
        ref = paired_by_hand(DEMO_R1[ORACLE], DEMO_R1[variant], row["level"])
        assert row["method"] == "paired" and row["n"] == 3, variant
        assert row["diff"] == pytest.approx(ref["diff"])
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((ref["low"], ref["high"]))
        margin = 1.0  # the claims' non-inferiority margin in Recall@1 points (DEFAULT_MARGIN)
        assert row["verdict"] == verdict_by_hand(ref["low"], ref["high"], -margin), variant
        assert set(row["run_ids"].split()) == {*ids[ORACLE], *ids[variant]}
    gap = _row(judged, staleness_claim(5).text)
    ref = paired_by_hand(DEMO_R1[ORACLE], DEMO_R1["xbm"], gap["level"])
    assert gap["method"] == "paired" and gap["n"] == 3
    assert gap["diff"] == pytest.approx(ref["diff"]) and gap["p"] == pytest.approx(ref["p"])
    assert (gap["ci_low"], gap["ci_high"]) == pytest.approx((ref["low"], ref["high"]))
    assert gap["verdict"] == verdict_by_hand(ref["low"], ref["high"], 0.0)
    assert _row(judged, bound_claim("no_xbm", 5).text)["verdict"] == HOLDS  # ~9 points
    # the rows name the interval the runs used
    assert gap["a"] == "oracle_xbm[refresh_interval=5]"
    assert "every 5 steps (refresh_interval=5)" in gap["source"]
    assert "every 5 steps" in gap["claim"] and "every step" not in gap["source"]
    assert not {BOUND_CLAIM.id, STALENESS_CLAIM.id} & {c.id for c in untested(judged)}


@pytest.mark.parametrize("setting", [{"epochs": 3}, {"memory_ratio": 1.0}, {"lr": 0.01}])
def test_an_oracle_trained_otherwise_is_not_matched(results, setting):
    """An oracle config that differs from the other variants' in anything but its own options
    is no bound on them: alone, the oracle claims are untested; beside the matching oracle,
    only the matching one's runs enter the rows."""
    r1 = {v: DEMO_R1[v] for v in ("xbm", "xbn", "no_xbm")}
    demo_runs(results, r1)
    other = [make_run(results, config(ORACLE, s, REFRESH5, **setting), best_r1=90.0)
             for s in range(3)]  # fmt: skip
    judged = _mechanism_claims(results)
    assert mechanism_claims(judged).empty
    assert {BOUND_CLAIM.id, STALENESS_CLAIM.id} <= {c.id for c in untested(judged)}
    matching = demo_runs(results, {ORACLE: DEMO_R1[ORACLE]})[ORACLE]
    judged = _mechanism_claims(results)
    rows = mechanism_claims(judged)
    assert len(rows) == len(r1) + 1
    for run_ids in rows["run_ids"]:
        assert set(matching) <= set(run_ids.split()) and not set(other) & set(run_ids.split())
    gap = _row(judged, staleness_claim(5).text)
    assert gap["mean_a"] == pytest.approx(np.mean(DEMO_R1[ORACLE]))


def test_oracle_configs_with_different_intervals_are_kept_apart(results):
    """Oracle runs re-embedding every step and every 5 steps: one row set each, its own
    numbers, and the intro names both intervals."""
    every_step = [80.6, 80.1, 80.4]
    demo_runs(results, {v: DEMO_R1[v] for v in (ORACLE, "xbm")})
    for s, x in enumerate(every_step):
        make_run(results, config(ORACLE, s), best_r1=x)
    judged = _mechanism_claims(results)
    for interval, values in ((1, every_step), (5, DEMO_R1[ORACLE])):
        gap = _row(judged, staleness_claim(interval).text)
        assert gap["diff"] == pytest.approx(np.mean(values) - np.mean(DEMO_R1["xbm"]))
        assert gap["n_a"] == 3 and f"refresh_interval={interval})" in gap["source"]
    assert len(mechanism_claims(judged)) == 4  # bound vs xbm and the gap, per interval
    runs = load_store(results).done
    assert refresh_intervals(runs) == [1, 5]
    text = mechanism_intro(refresh_intervals(runs))
    assert "re-embeds its memory every step (refresh_interval=1) in some runs and every 5 steps " \
        "(refresh_interval=5):" in text  # fmt: skip


def test_the_section_names_the_interval_the_oracle_runs_used(tmp_path):
    """REPORT.md on demo-like probed runs (the oracle every 5 steps): the intro says so, the
    oracle's claims are judged and the staleness line shows the hand-computed gap."""
    root = tmp_path / "results"
    root.mkdir()
    for v in (ORACLE, "xbm", "xbn"):
        for s, x in enumerate(DEMO_R1[v]):
            opts = REFRESH5 if v == ORACLE else None
            probed_run(root, v, s, x, 0.2 if v == "xbn" else None, v == "xbn", options=opts)
    text = write(compute(root)).read_text()
    section = text[text.index("## The mechanism") :]
    section = section[: section.index("\n## ", 1)]
    assert "`oracle_xbm` (beyond the sources) re-embeds its memory every 5 steps " \
        "(refresh_interval=5):" in section  # fmt: skip
    assert "re-embeds its memory every step" not in section
    gap = np.mean(DEMO_R1[ORACLE]) - np.mean(DEMO_R1["xbm"])
    primary = text[text.index("### Primary claims") : text.index("## Headline figure")]
    staleness = [  # its row of the primary table (the design table below it names it too)
        ln for ln in primary.splitlines() if ln.startswith(f"| {staleness_claim(5).text} | ")
    ]
    assert f"| {gap:+.2f} [" in staleness[0]  # the hand-computed gap
    secondary = text[text.index("## Secondary claims") :]
    assert f"| {bound_claim('xbn', 5).text}" in secondary
    for claim in (staleness_claim(5).text, bound_claim("xbn", 5).text):  # each row printed once
        rows = [ln for ln in text.splitlines() if ln.startswith(f"| {claim} | fashion-mnist, demo")]
        assert len(rows) == 1 and f"| {claim} |" not in section, claim
    not_tested = [ln for ln in section.splitlines() if ln.startswith("Not tested")]
    assert not_tested  # the closer-memory claims of the variants without runs
    for claim in (BOUND_CLAIM, STALENESS_CLAIM):
        assert all(claim.text not in ln for ln in not_tested), claim.id


def test_no_oracle_or_probe_means_the_mechanism_claims_are_untested(results):
    for s in range(2):
        make_run(results, config("xbn", s), best_r1=80.0 + s)
    judged = _mechanism_claims(results)
    assert mechanism_claims(judged).empty
    assert {c.id for c in untested(judged)} == {
        *(c.id for c in CLOSER_CLAIMS),
        BOUND_CLAIM.id,
        STALENESS_CLAIM.id,
    }


def test_claim_variants_are_registered_names():
    assert set(ADAPTING) <= set(VARIANTS)


# ----- figures and the report -----------------------------------------------------------------


def moco_run(root: Path, seed: int) -> str:
    """A done MoCo record (task "moco"): it has no memory_error.csv."""
    cfg = make_config(DATASET, "xbn", seed, PROFILE, task="moco")
    rd = RunDir(root, cfg)
    rd.start(ENV)
    rows = [dict.fromkeys(MOCO_COLUMNS, 1.0) | {"epoch": e, "phase": "main", "knn_acc": 50.0 + e}
            for e in range(1, cfg.epochs + 1)]  # fmt: skip
    rd.write_metrics(rows)
    rd.write_result({"status": "done", "error": None, "failed_step": None, "deviations": [],
                     "epochs_done": cfg.epochs, "wall_s": 1.0,
                     "best": {"epoch": cfg.epochs, "knn_acc": 60.0},
                     "last": {"epoch": cfg.epochs, "knn_acc": 60.0}})  # fmt: skip
    return cfg.run_id


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """xbm, xbn, oracle x 3 seeds probed; one more xbn seed and a MoCo run without the file."""
    root = tmp_path_factory.mktemp("mech") / "results"
    root.mkdir()
    made = {"xbm": [], "xbn": [], ORACLE: []}
    for s in range(3):
        made["xbm"].append(probed_run(root, "xbm", s, 80.0 + 0.1 * s, None, adapting=False))
        made["xbn"].append(probed_run(root, "xbn", s, 80.2 + 0.1 * s, 0.3 + 0.05 * s))
        made[ORACLE].append(probed_run(root, ORACLE, s, 81.0 + 0.2 * s, None, False))
    old = make_run(root, config("no_xbm", 0), best_r1=79.0)  # no memory_error.csv
    moco_run(root, 0)
    rep = compute(root)
    return rep, write(rep).read_text(), made, old


def test_age_figure_draws_the_hand_computed_means(report):
    rep, _, made, _ = report
    fig = rep.figures[MEMORY_AGE]
    late = np.arange(N) >= (EPOCHS - AGE_EPOCHS) * POINTS  # the last AGE_EPOCHS epochs' points
    for variant, arrays in made.items():
        (ax,) = [a for a in fig.axes if a.get_title() == variant]
        solid = [ln for ln in ax.lines if ln.get_linestyle() == "-"]
        dashed = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
        err = np.mean([a["err"][late].mean() for a in arrays]) * AGE_FACTOR
        raw = np.mean([a["raw"][late].mean() for a in arrays]) * AGE_FACTOR
        assert solid[0].get_ydata() == pytest.approx(err)
        assert dashed[0].get_ydata() == pytest.approx(raw)
        assert list(solid[0].get_xdata()) == [1, 2, 3, 4]
        assert {to_hex(ln.get_color()) for ln in ax.lines} == {colour(variant)}
    assert text_overlaps(fig) == []


def test_gain_figure_draws_each_epochs_mean_gain_over_grey_xbm(report):
    rep, _, made, _ = report
    fig = rep.figures[ADAPTATION_GAIN]
    (ax,) = [a for a in fig.axes if a.get_title() == "xbn"]
    line = next(ln for ln in ax.lines if to_hex(ln.get_color()) == colour("xbn"))
    per_epoch = [np.exp(a["lg"]).reshape(EPOCHS, POINTS).mean(axis=1) for a in made["xbn"]]
    assert line.get_ydata() == pytest.approx(np.mean(per_epoch, axis=0))
    grey = next(ln for ln in ax.lines if to_hex(ln.get_color()) == to_hex("0.55"))
    assert grey.get_ydata() == pytest.approx(np.ones(EPOCHS))  # xbm: gain 1
    assert text_overlaps(fig) == []


def test_report_section_table_claims_and_the_runs_left_out(report):
    rep, text, made, old = report
    section = text[text.index("## The mechanism") :]
    section = section[: section.index("\n## ", 1)]
    assert "### fashion-mnist (cpu profile)" in section
    xbn_gain = np.mean([math.exp(a["lg"].mean()) for a in made["xbn"]])
    assert f"{xbn_gain:.3f} ± " in section  # the table's adaptation gain of xbn
    for name in (MEMORY_AGE, ADAPTATION_GAIN):
        assert f"(figures/{name}.png)" in section
    assert "Left out: 1 done run(s) without memory_error.csv" in section and "no_xbm ×1" in section
    assert "MoCo runs are not probed" in section
    assert "re-embeds its memory every step (refresh_interval=1):" in section  # no option: 1
    assert set(rep.unprobed["run_id"]) == {old}  # the MoCo run is no metric run
    closer = rep.claims[rep.claims["claim"] == _closer("xbn")]
    assert closer["verdict"].tolist() == [HOLDS]
    # the mechanism's claims are judged in the claims tables, each row once, not repeated here
    assert "claim row(s) are judged with the others" in section
    for claim in (_closer("xbn"), bound_claim("xbn").text):
        rows = [ln for ln in text.splitlines() if ln.startswith(f"| {claim} | fashion-mnist, demo")]
        assert len(rows) == 1 and f"| {claim} |" not in section, claim


def test_figures_and_table_files_are_written_atomically(report, monkeypatch):
    rep, _, _, _ = report
    out = rep.results / "report"
    for name in (MEMORY_AGE, ADAPTATION_GAIN):
        for fmt in ("png", "pdf"):
            assert (out / "figures" / f"{name}.{fmt}").stat().st_size > 0
    assert (out / "tables" / "memory_error.csv").stat().st_size > 0
    stem = out / "figures" / MEMORY_AGE
    before = stem.with_suffix(".png").read_bytes()

    def broken(self, fname, **kw):  # a save that dies half-way
        Path(fname).write_bytes(b"half a png")
        raise RuntimeError("killed")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(RuntimeError, match="killed"):
        _save_figure(rep.figures[MEMORY_AGE], stem)  # the save every report figure goes through
    assert stem.with_suffix(".png").read_bytes() == before
    assert not [p for p in (out / "figures").iterdir() if TMP_NAME.match(p.name)]


def test_a_store_without_any_probe_record_still_reports(tmp_path):
    root = tmp_path / "results"
    root.mkdir()
    for variant in ("no_xbm", "xbm", "xbn"):  # records from before the probe: no memory_error.csv
        for s in range(2):
            make_run(root, config(variant, s), best_r1=80.0 + s)
    rep = compute(root)
    text = write(rep).read_text()
    assert rep.memory.empty and len(rep.unprobed) == len(rep.store.runs)
    assert rep.figures[MEMORY_AGE] is None and rep.figures[ADAPTATION_GAIN] is None
    assert "No done run has memory_error.csv yet" in text
    assert "Not tested (no probed runs of the variant, or no `oracle_xbm` runs)" in text
    assert BOUND_CLAIM.text in text and STALENESS_CLAIM.text in text
    assert "re-embeds its memory every `refresh_interval` steps (default 1" in text  # no oracle
    assert "fashion-mnist (cpu): no_xbm ×2, xbm ×2, xbn ×2." in text
    assert not (rep.results / "report" / "figures" / f"{MEMORY_AGE}.png").exists()
