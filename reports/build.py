"""[build]
Compute everything a report shows (``compute``) and write it to ``<results>/report/``
(``write``).

The study cells (``cells``: plain config dicts ``{"run_id": ..., **RunConfig.to_dict()}``, built
by the caller: reports import nothing of bench but its store) say which configs the studies
meant; reports.load has the grouping rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from common import UserError, atomic_write, atomic_write_text
from reports.claims import (
    CLAIMS,
    MOCO_CLAIM,
    forest_rows,
    judge_all,
    moco_claim_rows,
    primary_design,
    untested_claims,
)
from reports.figures import (
    ADAPTATION_GAIN,
    HEADLINE,
    MEMORY_AGE,
    MEMORY_TABLE,
    MOCO_FIGURE,
    REGIMES,
    fig_adaptation_gain,
    fig_batch_memory,
    fig_curves,
    fig_distances,
    fig_drift,
    fig_memory_age,
    fig_moco,
    fig_pc_sweep,
    fig_regimes,
    fig_superclass,
    forest_figure,
)
from reports.load import (
    comparable_runs,
    drop_duplicate_seeds,
    label_runs,
    load_store,
    select_epoch,
    study_runs,
)
from reports.markdown import Report, report_text
from reports.mechanism import (
    EPOCH_STEM,
    PHASE_STEM,
    RECOVERY_STEM,
    claim_rows,
    closer_phase_rows,
    display_memory_table,
    display_phase_table,
    display_recovery,
    epoch_table,
    memory_table,
    phase_table,
    recovery_table,
    regime_points,
    unprobed,
)
from reports.tables import (
    SWEEP_KEY,
    SWEEP_STEM,
    all_tables,
    display_claims,
    display_moco_table,
    display_sweep,
    display_table,
    has_runs,
    load_reported,
    moco_table,
    selection_gain,
    sweep_points,
    table_file_stem,
    tables_without_runs,
    to_latex,
    to_markdown,
    with_verdicts,
)

Cells = Sequence[Mapping[str, Any]]


def check_results_dir(results: str | Path) -> Path:
    path = Path(results)
    if not path.is_dir():
        raise UserError(f"results directory {str(path)!r} does not exist (or is not a directory)")
    return path


def make_figures(
    runs: pd.DataFrame, epochs: pd.DataFrame, reported: pd.DataFrame
) -> dict[str, Figure | None]:
    makers: dict[str, Callable[[], Figure | None]] = {
        HEADLINE: lambda: forest_figure(forest_rows(runs, reported)),
        "recall_vs_batch_memory": lambda: fig_batch_memory(runs),
        "drift": lambda: fig_drift(epochs, runs),
        "distances": lambda: fig_distances(epochs, runs),
        "recall_curves": lambda: fig_curves(epochs, runs),
        "pc_lambda_sweep": lambda: fig_pc_sweep(runs, reported),
        "superclass_topk": lambda: fig_superclass(runs),
        REGIMES: lambda: fig_regimes(
            regime_points(runs)
        ),  # per (memory ratio, lr) cell, not the reference
    }
    if runs.empty:
        return {name: None for name in makers}
    return {name: make() for name, make in makers.items()}


def mechanism_figures(runs: pd.DataFrame, memory: pd.DataFrame) -> dict[str, Figure | None]:
    """The memory-error figures of reports.markdown (names: ``MECHANISM_FIGURES``)."""
    makers = {MEMORY_AGE: fig_memory_age, ADAPTATION_GAIN: fig_adaptation_gain}
    if runs.empty or memory.empty:
        return dict.fromkeys(makers)
    return {name: make(runs, memory) for name, make in makers.items()}


def compute(
    results: str | Path, epoch: str = "best", with_figures: bool = True, cells: Cells | None = None
) -> Report:
    """Read the store and compute tables, claims, the selection gain and (optionally) figures.

    ``cells``: the study cells; without them no run is compared with a reported number (see
    reports.load). Each (config, seed) counts once; the runs left out are ``duplicates``.
    """
    path = check_results_dir(results)
    store = load_store(path)
    done, duplicates = drop_duplicate_seeds(store.done)
    done = label_runs(done.reset_index(drop=True), cells)
    metric = done[done["task"] == "metric"].reset_index(drop=True)  # MoCo runs: reports.tables
    runs = select_epoch(metric, epoch)
    usable = comparable_runs(runs, cells)  # claims and figures
    study = study_runs(runs, cells)  # reported numbers
    reported = load_reported()
    epochs = store.epochs[store.epochs["run_id"].isin(set(usable["run_id"]))]
    moco = done[done["task"] == "moco"]
    moco_usable = comparable_runs(moco, cells)
    # two families (reports.claims), each with Holm per (profile, dataset)
    extra = [
        *moco_claim_rows(moco_usable, store.epochs),
        *claim_rows(usable, store.memory, reported),
        *closer_phase_rows(usable, store.memory),
    ]
    claims = judge_all(usable, reported, extra=extra)
    figures = make_figures(usable, epochs, reported) if with_figures else {}
    if with_figures:
        figures[MOCO_FIGURE[0]] = fig_moco(store.epochs, moco_usable)
        figures.update(mechanism_figures(usable, store.memory))
    return Report(
        results=path,
        epoch=epoch,
        store=store,
        tables={k: with_verdicts(t) for k, t in all_tables(runs, study, reported).items()},
        missing_tables=tables_without_runs(study, reported),
        claims=claims,
        untested=untested_claims(claims, (*CLAIMS, MOCO_CLAIM)),
        gain=selection_gain(metric),
        figures=figures,
        moco=moco_table(moco, store.epochs),
        duplicates=duplicates,
        with_cells=cells is not None,
        sweep=sweep_points(study, reported),
        memory=memory_table(runs, store.memory),
        unprobed=unprobed(runs, store.memory),
        recovery=recovery_table(usable, claims),
        memory_phases=phase_table(runs, store.memory),
        memory_epochs=epoch_table(runs, store.memory),
        design=primary_design(claims),
    )


def _write_table(
    out: Path, stem: str, numbers: pd.DataFrame, shown: pd.DataFrame, caption: str
) -> None:
    atomic_write_text(out / f"{stem}.csv", numbers.to_csv(index=False))
    atomic_write_text(out / f"{stem}.md", f"### {caption}\n\n" + to_markdown(shown))
    atomic_write_text(out / f"{stem}.tex", to_latex(shown, caption))


def _save_figure(fig: Figure, stem: Path) -> None:
    for fmt in ("png", "pdf"):
        atomic_write(
            stem.with_suffix(f".{fmt}"), lambda tmp, f=fmt: fig.savefig(tmp, format=f, dpi=150)
        )


def _write_mechanism_tables(tables: Path, report: Report) -> None:
    """The memory-error tables: per variant, per LR phase and (csv only) per epoch."""
    if not report.memory.empty:
        _write_table(
            tables,
            MEMORY_TABLE,
            report.memory,
            display_memory_table(report.memory),
            "Memory error, adaptation gain and pair agreement per variant",
        )
    if not report.memory_phases.empty:
        _write_table(
            tables,
            PHASE_STEM,
            report.memory_phases,
            display_phase_table(report.memory_phases),
            "Memory error and adaptation gain per LR phase",
        )
        atomic_write_text(tables / f"{EPOCH_STEM}.csv", report.memory_epochs.to_csv(index=False))


def write(report: Report) -> Path:
    """Write tables/, figures/ and REPORT.md under <results>/report/; returns REPORT.md's path."""
    out = report.results / "report"
    for name, table in report.tables.items():
        _write_table(out / "tables", table_file_stem(name), table, display_table(table), name)
    if not report.moco.empty:
        _write_table(
            out / "tables",
            "moco",
            report.moco,
            display_moco_table(report.moco),
            "MoCo with and without XBN: k-NN accuracy (paper fig. 2)",
        )
    if has_runs(report.sweep):
        _write_table(
            out / "tables",
            SWEEP_STEM,
            report.sweep,
            display_sweep(report.sweep),
            f"{SWEEP_KEY} under both readings of its margins",
        )
    _write_mechanism_tables(out / "tables", report)
    if not report.claims.empty:
        _write_table(
            out / "tables",
            "claims",
            report.claims,
            display_claims(report.claims),
            "Claims of the paper and the thesis, judged on our runs",
        )
    if not report.design.empty:
        atomic_write_text(out / "tables" / "primary_design.csv", report.design.to_csv(index=False))
    if not report.recovery.empty:
        _write_table(
            out / "tables",
            RECOVERY_STEM,
            report.recovery,
            display_recovery(report.recovery),
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
