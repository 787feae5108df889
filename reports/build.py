"""Compute everything a report shows (``compute``) and write it to ``<results>/report/``
(``write``).

The study cells (``cells``: plain config dicts ``{"run_id": ..., **RunConfig.to_dict()}``, built
by the caller: reports import nothing of bench but its store) say which configs the studies
meant; reports.configs has the grouping rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from common import UserError, atomic_write, atomic_write_text
from reports import design as DES
from reports import figures as F
from reports import mechanism as MECH
from reports import moco as M
from reports import phases as PH
from reports import recovery as REC
from reports.claims import CLAIMS, untested_claims
from reports.configs import comparable_runs, drop_duplicate_seeds, label_runs, study_runs
from reports.contents import (
    ADAPTATION_GAIN,
    HEADLINE,
    MEMORY_AGE,
    MEMORY_TABLE,
    REGIMES,
    Report,
    table_file_stem,
)  # fmt: skip
from reports.families import judge_all
from reports.forest import forest_figure
from reports.headline import forest_rows
from reports.load import load_store, select_epoch
from reports.markdown import report_text
from reports.regimes import fig_regimes
from reports.render import display_claims, display_table, to_latex, to_markdown, with_verdicts
from reports.reported import load_reported
from reports.sweep import SWEEP_KEY, SWEEP_STEM, display_sweep, has_runs, sweep_points
from reports.tables import all_tables, selection_gain, tables_without_runs

Cells = Sequence[Mapping[str, Any]]


def check_results_dir(results: str | Path) -> Path:
    path = Path(results)
    if not path.is_dir():
        raise UserError(f"results directory {str(path)!r} does not exist (or is not a directory)")
    return path


def make_figures(runs: pd.DataFrame, epochs: pd.DataFrame,
                 reported: pd.DataFrame) -> dict[str, Figure | None]:  # fmt: skip
    makers: dict[str, Callable[[], Figure | None]] = {
        HEADLINE: lambda: forest_figure(forest_rows(runs, reported)),
        "recall_vs_batch_memory": lambda: F.fig_batch_memory(runs),
        "drift": lambda: F.fig_drift(epochs, runs),
        "distances": lambda: F.fig_distances(epochs, runs),
        "recall_curves": lambda: F.fig_curves(epochs, runs),
        "pc_lambda_sweep": lambda: F.fig_pc_sweep(runs, reported),
        "superclass_topk": lambda: F.fig_superclass(runs),
        REGIMES: lambda: fig_regimes(runs),  # per (memory ratio, lr) cell, not the reference
    }
    if runs.empty:
        return {name: None for name in makers}
    return {name: make() for name, make in makers.items()}


def mechanism_figures(runs: pd.DataFrame, memory: pd.DataFrame) -> dict[str, Figure | None]:
    """The memory-error figures of reports.mechanism_page (names: ``MECHANISM_FIGURES``)."""
    makers = {MEMORY_AGE: F.fig_memory_age, ADAPTATION_GAIN: F.fig_adaptation_gain}
    if runs.empty or memory.empty:
        return dict.fromkeys(makers)
    return {name: make(runs, memory) for name, make in makers.items()}


def compute(results: str | Path, epoch: str = "best", with_figures: bool = True,
            cells: Cells | None = None) -> Report:  # fmt: skip
    """Read the store and compute tables, claims, the selection gain and (optionally) figures.

    ``cells``: the study cells; without them no run is compared with a reported number (see
    reports.configs). Each (config, seed) counts once; the runs left out are ``duplicates``.
    """
    path = check_results_dir(results)
    store = load_store(path)
    done, duplicates = drop_duplicate_seeds(store.done)
    done = label_runs(done.reset_index(drop=True), cells)
    metric = done[done["task"] == "metric"].reset_index(drop=True)  # MoCo runs: reports.moco
    runs = select_epoch(metric, epoch)
    usable = comparable_runs(runs, cells)  # claims and figures
    study = study_runs(runs, cells)  # reported numbers
    reported = load_reported()
    epochs = store.epochs[store.epochs["run_id"].isin(set(usable["run_id"]))]
    moco = done[done["task"] == "moco"]
    moco_usable = comparable_runs(moco, cells)
    # two families (reports.families), each with Holm per (profile, dataset)
    extra = [*M.moco_claim_rows(moco_usable, store.epochs),
             *MECH.claim_rows(usable, store.memory, reported),
             *PH.closer_phase_rows(usable, store.memory)]  # fmt: skip
    claims = judge_all(usable, reported, extra=extra)
    figures = make_figures(usable, epochs, reported) if with_figures else {}
    if with_figures:
        figures[M.FIGURE[0]] = M.fig_moco(store.epochs, moco_usable)
        figures.update(mechanism_figures(usable, store.memory))
    return Report(
        results=path, epoch=epoch, store=store,
        tables={k: with_verdicts(t) for k, t in all_tables(runs, study, reported).items()},
        missing_tables=tables_without_runs(study, reported),
        claims=claims, untested=untested_claims(claims, (*CLAIMS, M.MOCO_CLAIM)),
        gain=selection_gain(metric), figures=figures, moco=M.moco_table(moco, store.epochs),
        duplicates=duplicates, with_cells=cells is not None, sweep=sweep_points(study, reported),
        memory=MECH.memory_table(runs, store.memory), unprobed=MECH.unprobed(runs, store.memory),
        recovery=REC.recovery_table(usable, claims),
        memory_phases=PH.phase_table(runs, store.memory),
        memory_epochs=PH.epoch_table(runs, store.memory), design=DES.primary_design(claims),
    )  # fmt: skip


def _write_table(out: Path, stem: str, numbers: pd.DataFrame, shown: pd.DataFrame,
                 caption: str) -> None:  # fmt: skip
    atomic_write_text(out / f"{stem}.csv", numbers.to_csv(index=False))
    atomic_write_text(out / f"{stem}.md", f"### {caption}\n\n" + to_markdown(shown))
    atomic_write_text(out / f"{stem}.tex", to_latex(shown, caption))


def _save_figure(fig: Figure, stem: Path) -> None:
    for fmt in ("png", "pdf"):
        atomic_write(stem.with_suffix(f".{fmt}"),
                     lambda tmp, f=fmt: fig.savefig(tmp, format=f, dpi=150))  # fmt: skip


def _write_mechanism_tables(tables: Path, report: Report) -> None:
    """The memory-error tables: per variant, per LR phase and (csv only) per epoch."""
    if not report.memory.empty:
        _write_table(tables, MEMORY_TABLE, report.memory,
                     MECH.display_memory_table(report.memory),
                     "Memory error, adaptation gain and pair agreement per variant")  # fmt: skip
    if not report.memory_phases.empty:
        _write_table(tables, PH.PHASE_STEM, report.memory_phases,
                     PH.display_phase_table(report.memory_phases),
                     "Memory error and adaptation gain per LR phase")  # fmt: skip
        atomic_write_text(tables / f"{PH.EPOCH_STEM}.csv",
                          report.memory_epochs.to_csv(index=False))  # fmt: skip


def write(report: Report) -> Path:
    """Write tables/, figures/ and REPORT.md under <results>/report/; returns REPORT.md's path."""
    out = report.results / "report"
    for name, table in report.tables.items():
        _write_table(out / "tables", table_file_stem(name), table, display_table(table), name)
    if not report.moco.empty:
        _write_table(out / "tables", "moco", report.moco, M.display_moco_table(report.moco),
                     "MoCo with and without XBN: k-NN accuracy (paper fig. 2)")  # fmt: skip
    if has_runs(report.sweep):
        _write_table(out / "tables", SWEEP_STEM, report.sweep, display_sweep(report.sweep),
                     f"{SWEEP_KEY} under both readings of its margins")  # fmt: skip
    _write_mechanism_tables(out / "tables", report)
    if not report.claims.empty:
        _write_table(out / "tables", "claims", report.claims, display_claims(report.claims),
                     "Claims of the paper and the thesis, judged on our runs")  # fmt: skip
    if not report.design.empty:
        atomic_write_text(out / "tables" / "primary_design.csv", report.design.to_csv(index=False))
    if not report.recovery.empty:
        _write_table(
            out / "tables",
            REC.STEM,
            report.recovery,
            REC.display_recovery(report.recovery),
            "Share of the staleness cost recovered: (V − XBM) / (oracle − XBM)",
        )
    for name, fig in report.figures.items():
        stem = out / "figures" / name
        if fig is None:
            for fmt in ("png", "pdf"):  # a figure no longer backed by runs must not linger
                stem.with_suffix(f".{fmt}").unlink(missing_ok=True)
        else:
            _save_figure(fig, stem)
    return atomic_write_text(out / "REPORT.md", report_text(report))


def build_report(results: str | Path, epoch: str = "best", cells: Cells | None = None) -> Path:
    """Compute and write the report of ``results``; returns REPORT.md's path. ``cells``: the
    study cells (``bench.studies.study_cells``); without them every run is reported under
    its own config and no run is compared with a reported number."""
    return write(compute(results, epoch, cells=cells))
