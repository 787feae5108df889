"""[build]
Compute everything a report shows (``compute``) and write it to ``<results>/report/``
(``write``).

The study cells (``cells``: plain config dicts ``{"run_id": ..., **RunConfig.to_dict()}``, built
by the caller: reports import nothing of bench but its store) say which configs the studies
meant; reports.load has the grouping rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib import rc_context
from matplotlib.figure import Figure

from common import UserError, atomic_write, atomic_write_text
from reports.claims import (
    CLAIMS,
    MOCO_CLAIM,
    judge_families,
    moco_claim_rows,
    primary_design,
    untested_claims,
)
from reports.claims import (
    claim_rows as metric_claim_rows,
)
from reports.figures import (
    ADAPTATION_GAIN,
    DPI,
    HEADLINE,
    MEMORY_AGE,
    MEMORY_TABLE,
    MOCO_FIGURE,
    REGIMES,
    SAVE_RC,
    SIZES,
    at_width,
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
    headline_rows,
)
from reports.load import (
    Store,
    comparable_runs,
    drop_duplicate_seeds,
    label_runs,
    load_store,
    own_settings,
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
    display_main_table,
    display_moco_table,
    display_sweep,
    display_table,
    has_runs,
    load_reported,
    main_table,
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
        HEADLINE: lambda: forest_figure(headline_rows(runs, reported)),
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


SLUG = re.compile(r"[A-Za-z0-9.-]+")  # what ``setting_slug`` leaves: letters, digits, '.', '-'


def setting_slug(setting: str) -> str:
    """A file-name form of a setting's text: 'epochs=1, lr=0.5' -> 'epochs-1_lr-0.5'."""
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", setting.replace(", ", "_").replace("=", "-"))
    return slug.strip("-")[:80] or "setting"


def setting_figures(
    setting: str, runs: pd.DataFrame, store: Store, reported: pd.DataFrame
) -> dict[str, Figure | None]:
    """The figures of one user setting (``make_figures`` and the mechanism's on its runs), named
    ``<figure>--<setting slug>``."""
    epochs = store.epochs[store.epochs["run_id"].isin(set(runs["run_id"]))]
    figs = {**make_figures(runs, epochs, reported), **mechanism_figures(runs, store.memory)}
    return {f"{name}--{setting_slug(setting)}": fig for name, fig in figs.items()}


def compute(
    results: str | Path,
    epoch: str = "best",
    with_figures: bool = True,
    cells: Cells | None = None,
    select_by: str = "recall@1",
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
    runs = select_epoch(metric, epoch, select_by, store.epochs)
    usable = comparable_runs(runs, cells)  # claims and figures
    study = study_runs(runs, cells)  # reported numbers
    reported = load_reported()
    epochs = store.epochs[store.epochs["run_id"].isin(set(usable["run_id"]))]
    moco = done[done["task"] == "moco"]
    moco_usable = comparable_runs(moco, cells)
    # two families (reports.claims), each with Holm per (profile, dataset, setting)
    rows = [
        *metric_claim_rows(usable, reported),
        *moco_claim_rows(moco_usable, store.epochs),
        *claim_rows(usable, store.memory, reported),
        *closer_phase_rows(usable, store.memory),
    ]
    own = own_settings(runs, cells)
    for setting, grp in own.groupby("setting", sort=True):
        rows += [
            {**r, "setting": setting}
            for r in (
                *metric_claim_rows(grp, reported, both_sides=True),
                *claim_rows(grp, store.memory, reported),
                *closer_phase_rows(grp, store.memory),
            )
        ]
    claims = judge_families(rows)
    figures = make_figures(usable, epochs, reported) if with_figures else {}
    settings = {}
    for setting, grp in own.groupby("setting", sort=True):
        names = setting_figures(setting, grp, store, reported) if with_figures else {}
        drawn = [k for k, f in names.items() if f is not None]
        settings[setting] = sorted(drawn, key=lambda k: (not k.startswith(HEADLINE), k))
        figures.update(names)
    if with_figures:
        figures[MOCO_FIGURE[0]] = fig_moco(store.epochs, moco_usable)
        figures.update(mechanism_figures(usable, store.memory))
    return Report(
        results=path,
        epoch=epoch,
        select_by=select_by,
        store=store,
        tables={k: with_verdicts(t) for k, t in all_tables(runs, study, reported).items()},
        missing_tables=tables_without_runs(study, reported),
        claims=claims,
        untested=untested_claims(claims[claims["setting"] == ""], (*CLAIMS, MOCO_CLAIM)),
        settings=settings,
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
        main=main_table(metric),
    )


def _write_table(
    out: Path, stem: str, numbers: pd.DataFrame, shown: pd.DataFrame, caption: str
) -> None:
    atomic_write_text(out / f"{stem}.csv", numbers.to_csv(index=False))
    atomic_write_text(out / f"{stem}.md", f"### {caption}\n\n" + to_markdown(shown))
    atomic_write_text(out / f"{stem}.tex", to_latex(shown, caption, label=stem))


FIGURE_FORMATS = ("png", "pdf")  # a vector PDF beside every PNG


def figure_paths(stem: Path) -> list[Path]:
    """Every file of the figure ``stem`` (``figures/<name>``), in every size: reports.figures'
    ``SIZES`` (``figures/<name>.png``/``.pdf`` double-column, ``figures/column/<name>.*``
    single-column) and ``FIGURE_FORMATS``."""
    return [
        stem.parent / folder / f"{stem.name}.{fmt}" for folder, _ in SIZES for fmt in FIGURE_FORMATS
    ]


def _save_figure(fig: Figure, stem: Path) -> None:
    """``fig`` at every width of reports.figures' ``SIZES`` (redrawn there, reports.figures.
    at_width), each as PNG at ``DPI`` and PDF, written atomically at its own size: no tight
    bounding box, so its text prints at the points it was set in."""
    for folder, width in SIZES:
        sized = at_width(fig, width)
        for fmt in FIGURE_FORMATS:
            path = stem.parent / folder / f"{stem.name}.{fmt}"
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda tmp, f=fmt, g=sized: _savefig(g, tmp, f))


def _savefig(fig: Figure, path: Path, fmt: str) -> None:
    with rc_context(SAVE_RC):
        fig.savefig(path, format=fmt, dpi=DPI)


MAIN_CAPTION = "Every cell: Recall@K at the best and the last epoch, mean ± std over seeds"


def _write_main_table(tables: Path, report: Report) -> None:
    if not report.main.empty:
        _write_table(tables, "main", report.main, display_main_table(report.main), MAIN_CAPTION)


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
    _write_main_table(out / "tables", report)
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
    _write_figures(out / "figures", report.figures)
    return atomic_write_text(out / "REPORT.md", report_text(report))


def _write_figures(figures: Path, drawn: Mapping[str, Figure | None]) -> None:
    """Save each figure; remove the files of one no longer backed by runs (None) and of an
    own setting whose runs are gone, so that neither lingers."""
    for name, fig in drawn.items():
        if fig is None:
            for path in figure_paths(figures / name):
                path.unlink(missing_ok=True)
        else:
            _save_figure(fig, figures / name)
    for path in stale_setting_figures(figures, drawn):
        path.unlink(missing_ok=True)


def stale_setting_figures(figures: Path, current: Mapping[str, Any]) -> list[Path]:
    """The files of own-setting figures (``<figure>--<setting slug>``, ``setting_figures``) that
    this report did not draw: their runs are gone. Only names the report itself writes (a known
    figure, ``--``, a slug; ``figure_paths``) are matched, so a user's own files stay."""
    bases = {name for name in current if "--" not in name}
    found = {p.stem for folder, _ in SIZES for p in (figures / folder).glob("*--*")}
    stale = sorted(
        stem
        for stem in found - set(current)
        if stem.partition("--")[0] in bases and SLUG.fullmatch(stem.partition("--")[2])
    )
    return [path for stem in stale for path in figure_paths(figures / stem) if path.exists()]


def build_report(
    results: str | Path,
    epoch: str = "best",
    cells: Cells | None = None,
    select_by: str = "recall@1",
) -> Path:
    """Compute and write the report of ``results``; returns REPORT.md's path. ``cells``: the
    study cells (``bench.studies.study_cells``); without them every run is reported under
    its own config and no run is compared with a reported number. ``select_by``: the metric
    that picks each run's best epoch (reports.load.select_epoch)."""
    return write(compute(results, epoch, cells=cells, select_by=select_by))
