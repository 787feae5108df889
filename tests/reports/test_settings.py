"""A user's own experiment gets claims and figures: nine runs (no_xbm, xbm and xbn, seeds 0-2)
with the same settings apart from the variant, off every study cell (one epoch, 60 training
images per class), beside the demo-fashion study's runs. Their claims are judged on them alone,
labelled with how their setting differs from the study's, and leave the study's claims as they
were."""

from __future__ import annotations

import shutil
import statistics

import pytest

from bench.studies import study_cells
from reports.build import compute, write
from reports.inference import TOO_FEW

from .conftest import make_demo, make_run

SETTING = "epochs=1, train_per_class=60"
SLUG = "epochs-1-train-per-class-60"  # its file-name form, by hand
OWN = {  # Recall@1 per variant and seed: xbm above no_xbm and xbn above xbm in every seed
    "no_xbm": [60.0, 61.5, 59.0],
    "xbm": [62.0, 64.0, 60.5],
    "xbn": [63.0, 64.5, 62.5],
}
CELLS = study_cells(("demo-fashion",))


def _own_runs(root, train_per_class: int = 60) -> None:
    for variant, values in OWN.items():
        for seed, r1 in enumerate(values):
            make_run(
                root,
                dataset="fashion-mnist",
                variant=variant,
                seed=seed,
                profile="cpu",
                best_r1=r1,
                last_r1=r1,
                best_epoch=1,
                epochs=1,
                train_per_class=train_per_class,
            )


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """(report over the study's runs alone, report over them and the nine own runs)."""
    alone = tmp_path_factory.mktemp("alone") / "results"
    mixed = tmp_path_factory.mktemp("mixed") / "results"
    for root in (alone, mixed):
        root.mkdir()
        make_demo(root)
    _own_runs(mixed)
    return compute(alone, cells=CELLS), compute(mixed, cells=CELLS)


def _row(claims, claim: str):
    rows = claims[(claims["setting"] == SETTING) & (claims["claim"] == claim)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


@pytest.mark.parametrize(
    ("claim", "a", "b"),
    [("XBM beats no-XBM", "xbm", "no_xbm"), ("XBN beats XBM on every dataset", "xbn", "xbm")],
)
def test_own_setting_gets_its_claims_paired_by_seed(both, claim, a, b):
    _, report = both
    row = _row(report.claims, claim)
    diffs = [x - y for x, y in zip(OWN[a], OWN[b])]  # paired: the same seeds
    assert row["n"] == 3 and row["method"] == "paired"
    assert row["diff"] == pytest.approx(statistics.mean(diffs))
    assert row["mean_a"] == pytest.approx(statistics.mean(OWN[a]))
    assert row["mean_b"] == pytest.approx(statistics.mean(OWN[b]))
    assert row["verdict"] != TOO_FEW
    assert set(row["run_ids"].split()) <= set(report.store.runs["run_id"])


def test_own_setting_shows_only_claims_with_both_sides(both):
    _, report = both
    own = report.claims[report.claims["setting"] == SETTING]
    variants = set(OWN)
    for row in own.to_dict("records"):
        assert row["n_a"] > 0 and row["n_b"] > 0, row
        assert row["a"].split("[")[0] in variants | {"xbm_star"} or row["a"] in variants


def test_the_study_claims_do_not_change(both):
    alone, mixed = both
    study = mixed.claims[mixed.claims["setting"] == ""].reset_index(drop=True)
    before = alone.claims.reset_index(drop=True)
    cols = ["claim", "dataset", "diff", "ci_low", "ci_high", "p_holm", "verdict", "run_ids"]
    assert study[cols].equals(before[cols])


def test_report_has_a_section_and_figures_for_the_setting(both):
    _, report = both
    assert list(report.settings) == [SETTING]
    assert f"forest--{SLUG}" in report.settings[SETTING]
    assert f"recall_curves--{SLUG}" in report.settings[SETTING]
    text = write(report).read_text()
    section = text[text.index("## Your own settings") :]
    assert f"### {SETTING}" in section and f"figures/forest--{SLUG}.png" in section
    figures = report.results / "report" / "figures"
    assert (figures / f"forest--{SLUG}.png").stat().st_size > 0
    assert (figures / f"forest--{SLUG}.pdf").stat().st_size > 0
    # the study's primary table holds no row of the own setting
    primary = text[text.index("### Primary claims") : text.index("## Headline figure")]
    assert SETTING not in primary


def test_without_study_runs_the_own_setting_is_still_judged(tmp_path):
    """Only the nine runs: the report's claims come from the own setting alone."""
    root = tmp_path / "results"
    root.mkdir()
    _own_runs(root)
    report = compute(root, cells=CELLS)
    assert set(report.claims["setting"]) == {SETTING}
    text = write(report).read_text()
    assert "No claim could be tested on a study's runs" in text
    assert f"### {SETTING}" in text


def test_a_setting_whose_runs_are_gone_leaves_no_figure_behind(tmp_path):
    """Report, delete the setting's runs, run another setting, report again: the first setting's
    figure files (both sizes, PNG and PDF) are gone, the second's are there, and files the
    report did not write (a user's notes, an unknown figure name) are left alone."""
    root = tmp_path / "results"
    root.mkdir()
    _own_runs(root)
    write(compute(root, cells=CELLS))
    figures = root / "report" / "figures"
    first = sorted(p.relative_to(figures) for p in figures.rglob(f"*--{SLUG}.*"))
    assert len(first) >= 4  # forest at least: two sizes, two formats
    mine = [figures / f"forest--{SLUG}.txt", figures / "mine--epochs-2.png", figures / "a.png"]
    for path in mine:
        path.write_text("the user's")
    for run in (root / "runs").iterdir():
        shutil.rmtree(run)
    _own_runs(root, train_per_class=30)
    report = compute(root, cells=CELLS)
    assert list(report.settings) == ["epochs=1, train_per_class=30"]
    write(report)
    assert [p for p in first if (figures / p).exists()] == []
    assert (figures / "forest--epochs-1-train-per-class-30.png").exists()
    assert (figures / "column" / "forest--epochs-1-train-per-class-30.pdf").exists()
    assert all(path.read_text() == "the user's" for path in mine)
