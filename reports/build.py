"""Compute everything a report shows (``compute``) and write it to ``<results>/report/``
(``write``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from common import UserError, atomic_write, atomic_write_text
from reports import figures as F
from reports import moco as M
from reports.claims import CLAIMS, Claim, judge_all, untested_claims
from reports.load import Store, load_store, select_epoch
from reports.render import display_claims, display_table, to_latex, to_markdown, with_verdicts
from reports.reported import load_reported, table_slug
from reports.tables import all_tables, selection_gain, tables_without_runs

# figure name -> (title, study whose runs would draw it)
FIGURES: dict[str, tuple[str, str]] = {
    "recall_vs_batch_memory": (
        "Recall@1 vs batch size and memory size (paper fig. 1)",
        "paper-fig1",
    ),
    "drift": ("Mean and max feature drift per epoch (paper fig. 3)", "paper-table1"),
    "distances": ("Inter-embedding distance and distance to class mean per epoch", "thesis"),
    "recall_curves": ("Recall@1 per epoch, mean ± std over seeds", "paper-table1"),
    "pc_lambda_sweep": ("PC-XBN lambda sweep (thesis table 5.14)", "thesis-pc-sweep"),
    "superclass_topk": ("Superclass top-k, k = 1..5 (thesis table 5.16)", "thesis"),
}


@dataclass
class Report:
    results: Path
    epoch: str
    store: Store
    tables: dict[str, pd.DataFrame]
    missing_tables: list[str]
    claims: pd.DataFrame
    untested: list[Claim]
    gain: pd.DataFrame
    figures: dict[str, Figure | None] = field(default_factory=dict)
    moco: pd.DataFrame = field(default_factory=pd.DataFrame)  # reports.moco.moco_table


def check_results_dir(results: str | Path) -> Path:
    path = Path(results)
    if not path.is_dir():
        raise UserError(f"results directory {str(path)!r} does not exist (or is not a directory)")
    return path


def make_figures(runs: pd.DataFrame, epochs: pd.DataFrame,
                 reported: pd.DataFrame) -> dict[str, Figure | None]:  # fmt: skip
    makers: dict[str, Callable[[], Figure | None]] = {
        "recall_vs_batch_memory": lambda: F.fig_batch_memory(runs),
        "drift": lambda: F.fig_drift(epochs, runs),
        "distances": lambda: F.fig_distances(epochs, runs),
        "recall_curves": lambda: F.fig_curves(epochs, runs),
        "pc_lambda_sweep": lambda: F.fig_pc_sweep(runs, reported),
        "superclass_topk": lambda: F.fig_superclass(runs),
    }
    if runs.empty:
        return {name: None for name in makers}
    return {name: make() for name, make in makers.items()}


def compute(results: str | Path, epoch: str = "best", with_figures: bool = True) -> Report:
    """Read the store and compute tables, claims, the selection gain and (optionally) figures."""
    path = check_results_dir(results)
    store = load_store(path)
    done = store.done
    done = done[done["task"] == "metric"].reset_index(drop=True)  # MoCo runs: reports.moco
    runs = select_epoch(done, epoch)
    reported = load_reported()
    run_ids = set(done["run_id"])
    epochs = store.epochs[store.epochs["run_id"].isin(run_ids)]
    moco_claims = M.moco_claims(store.runs, store.epochs)
    claims = judge_all(runs, reported)
    claims = pd.concat([c for c in (claims, moco_claims) if not c.empty] or [claims],
                       ignore_index=True)  # fmt: skip
    figures = make_figures(runs, epochs, reported) if with_figures else {}
    if with_figures:
        figures[M.FIGURE[0]] = M.fig_moco(store.epochs, store.runs)
    return Report(
        results=path, epoch=epoch, store=store,
        tables={k: with_verdicts(t) for k, t in all_tables(runs, reported).items()},
        missing_tables=tables_without_runs(runs, reported),
        claims=claims, untested=untested_claims(claims, (*CLAIMS, M.MOCO_CLAIM)),
        gain=selection_gain(done), figures=figures, moco=M.moco_table(store.runs, store.epochs),
    )  # fmt: skip


def table_file_stem(name: str) -> str:
    """'paper table 1' -> 'paper_table1';
    'cpu runs on fashion-mnist' -> 'cpu_runs_fashion-mnist'."""
    source, sep, number = name.partition(" table ")
    if sep:
        return table_slug(source, number)
    return name.replace(" runs on ", "_runs_").replace(" ", "_")


def _write_table(out: Path, stem: str, numbers: pd.DataFrame, shown: pd.DataFrame,
                 caption: str) -> None:  # fmt: skip
    atomic_write_text(out / f"{stem}.csv", numbers.to_csv(index=False))
    atomic_write_text(out / f"{stem}.md", f"### {caption}\n\n" + to_markdown(shown))
    atomic_write_text(out / f"{stem}.tex", to_latex(shown, caption))


def _save_figure(fig: Figure, stem: Path) -> None:
    for fmt in ("png", "pdf"):
        atomic_write(stem.with_suffix(f".{fmt}"),
                     lambda tmp, f=fmt: fig.savefig(tmp, format=f, dpi=150))  # fmt: skip


def write(report: Report) -> Path:
    """Write tables/, figures/ and REPORT.md under <results>/report/; returns REPORT.md's path."""
    from reports.markdown import report_text

    out = report.results / "report"
    for name, table in report.tables.items():
        _write_table(out / "tables", table_file_stem(name), table, display_table(table), name)
    if not report.moco.empty:
        _write_table(out / "tables", "moco", report.moco, M.display_moco_table(report.moco),
                     "MoCo with and without XBN: k-NN accuracy (paper fig. 2)")  # fmt: skip
    if not report.claims.empty:
        _write_table(out / "tables", "claims", report.claims, display_claims(report.claims),
                     "Claims of the paper and the thesis, judged on our runs")  # fmt: skip
    for name, fig in report.figures.items():
        stem = out / "figures" / name
        if fig is None:
            for fmt in ("png", "pdf"):  # a figure no longer backed by runs must not linger
                stem.with_suffix(f".{fmt}").unlink(missing_ok=True)
        else:
            _save_figure(fig, stem)
    return atomic_write_text(out / "REPORT.md", report_text(report))


def build_report(results: str | Path, epoch: str = "best") -> Path:
    return write(compute(results, epoch))
