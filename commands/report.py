"""Click commands ``report`` and ``compare``; cli.py registers them with ``main.add_command``.

``compare --study S`` keeps the tables of a study (``paper-table1``, ``paper-table2``,
``paper-table3``, ``thesis``, ``thesis-pc-sweep``: the study's source tables; for the CPU
studies ``demo``, ``demo-regimes``, ``demo-fashion``: the ``cpu`` profile's tables of their
datasets; for ``standard``, which no source reports: the ``paper`` profile's rows of its
datasets), or else the rows of one dataset (``sop``) or the tables of
one profile (``paper``, ``cpu``). An S matching none of these is an error listing the choices.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pandas as pd

from bench.store import DAMAGED, EPOCH_CHOICES
from common import UserError

CONTEXT = {"help_option_names": ["-h", "--help"]}
STUDIES = (
    "paper-table1",
    "paper-table2",
    "paper-table3",
    "paper-fig1",
    "thesis",
    "thesis-pc-sweep",
    "demo",
    "demo-regimes",
    "demo-fashion",
    "standard",
)
# the studies without a source table of their own: their tables are their profile's rows of
# their datasets
CPU_STUDIES = ("demo", "demo-regimes", "demo-fashion")
DEMO_PROFILE = "cpu"
PROFILE_STUDIES = {**dict.fromkeys(CPU_STUDIES, DEMO_PROFILE), "standard": "paper"}

results_option = click.option(
    "--results",
    "results",
    type=click.Path(path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Results folder (holds runs/).",
)
epoch_option = click.option(
    "--epoch",
    type=click.Choice(EPOCH_CHOICES),
    default="best",
    show_default=True,
    help="best: epoch selected on the test set, as the papers did; last: the final epoch.",
)
# reports.load.SELECT_BY, written here so that building the command line loads no torch
# (tests/reports/test_select_by.py keeps the two equal)
SELECT_BY = ("recall@1", "map@r")
select_by_option = click.option(
    "--select-by",
    type=click.Choice(SELECT_BY),
    default=SELECT_BY[0],
    show_default=True,
    help="The metric whose highest value over a run's evaluated epochs makes its best epoch: "
    "recall@1, as the papers did (result.json's best), or map@r (metrics.csv; a record "
    "without MAP@R keeps its Recall@1 best). --epoch last ignores it.",
)


def selection(select_by: str) -> dict[str, str]:
    """reports.build's keyword for ``--select-by``: none for the default (compute's own)."""
    return {} if select_by == SELECT_BY[0] else {"select_by": select_by}


def _profile_of(name: str) -> str:
    """Profile of a table: source tables are 'paper'; '<profile> runs on <dataset>' otherwise."""
    return name.split(" runs on ")[0] if " runs on " in name else "paper"


def study_cells(studies: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """``bench.studies.study_cells``, imported when called: ``--help`` must not load torch."""
    from bench.studies import study_cells as cells

    return cells(studies)


def filter_tables(tables: dict[str, pd.DataFrame], study: str | None) -> dict[str, pd.DataFrame]:
    """Tables of a study, a dataset or a profile (see the module docstring)."""
    from reports.markdown import study_for_table

    if not study:
        return tables
    if study in STUDIES:
        if study in PROFILE_STUDIES:
            datasets = {c["dataset"] for c in study_cells((study,))}
            kept = {
                k: t[t["dataset"].isin(datasets)].reset_index(drop=True)
                for k, t in tables.items()
                if _profile_of(k) == PROFILE_STUDIES[study]
            }
            return {k: t for k, t in kept.items() if len(t)}
        if study == "paper-fig1":  # no source table: the paper runs off the tables' grid
            return {k: t for k, t in tables.items() if k.startswith("paper runs on ")}
        return {
            k: t for k, t in tables.items() if " runs on " not in k and study_for_table(k) == study
        }
    profiles = {_profile_of(k) for k in tables}
    if study in profiles:
        return {k: t for k, t in tables.items() if _profile_of(k) == study}
    datasets = {d for t in tables.values() for d in t["dataset"]}
    if study in datasets:
        kept = {k: t[t["dataset"] == study].reset_index(drop=True) for k, t in tables.items()}
        return {k: t for k, t in kept.items() if len(t)}
    choices = ", ".join([*STUDIES, *sorted(profiles), *sorted(datasets)])
    raise UserError(f"unknown --study {study!r}; choose a study, profile or dataset: {choices}")


@click.command(
    "report",
    context_settings=CONTEXT,
    short_help="Tables, claims and figures from the run records.",
)
@results_option
@epoch_option
@select_by_option
def report(results: Path, epoch: str, select_by: str) -> None:
    """Turn the run records into tables, claims and figures (RESULTS/report/REPORT.md).

    With no runs it still writes a REPORT.md that says how to get some (exit 0). A damaged
    record is named on the terminal and in REPORT.md, and left out; the rest is reported (exit
    0, as with a failed run).
    """
    from reports.build import compute, write  # imported here: ``--help`` must not load torch

    rep = compute(results, epoch, cells=study_cells(), **selection(select_by))
    path = write(rep)
    _warn_damaged(rep.store.runs)
    click.echo(f"report written: {path}")


def _warn_damaged(runs: pd.DataFrame) -> None:
    """Each damaged record (reports.load) on stderr: left out of every table, named by file."""
    for _, run in runs[runs["status"] == DAMAGED].iterrows():
        click.echo(f"warning: run {run['run_id']} left out: {run['error']}", err=True)


@click.command("compare", context_settings=CONTEXT)
@results_option
@click.option(
    "--study",
    default=None,
    help="Keep one study's tables (paper-table1 .. demo), a profile or a dataset.",
)
@epoch_option
@select_by_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "csv", "json"]),
    default="text",
    show_default=True,
    help="text: a Markdown table per source table; csv and json: one row per number, with "
    "the table's name in a 'table' column, for other tools.",
)
def compare(results: Path, study: str | None, epoch: str, select_by: str, fmt: str) -> None:
    """Print our numbers beside the reported ones, table by table.

    Exit codes: 0 when every reported number our runs target is reproduced (or none is
    targeted yet), 1 when at least one is not (|ours - reported| beyond the tolerance
    REPORT.md states), 2 on bad input."""
    from reports.build import compute
    from reports.tables import NOT_REPRODUCED, display_table, to_markdown, with_verdicts

    rep = compute(results, epoch, with_figures=False, cells=study_cells(), **selection(select_by))
    _warn_damaged(rep.store.runs)
    tables = filter_tables(rep.tables, study)
    if not tables:
        click.echo(
            f"no done runs{f' for {study}' if study else ''} under {results}/runs/; "
            "`xbmbench reproduce` runs the CPU demo.",
            err=fmt != "text",
        )
        return
    judged = {name: with_verdicts(table) for name, table in tables.items()}
    if fmt == "text":
        by = f", by {select_by}" if epoch == "best" and select_by != SELECT_BY[0] else ""
        click.echo(f"(numbers from the {epoch} epoch of each run{by})\n")
        for name, table in tables.items():
            click.echo(f"## {name}\n")
            click.echo(to_markdown(display_table(table)))
    else:
        flat = pd.concat(
            [
                t.assign(table=name, epoch_used=epoch, select_by=select_by)
                for name, t in judged.items()
            ],
            ignore_index=True,
        )
        cols = ["table", *[c for c in flat.columns if c != "table"]]
        flat = flat[cols]
        click.echo(flat.to_csv(index=False) if fmt == "csv" else flat.to_json(orient="records"))
    missed = sum(int((t["verdict"] == NOT_REPRODUCED).sum()) for t in judged.values())
    if missed:
        click.echo(f"{missed} reported number(s) not reproduced", err=True)
        raise SystemExit(1)


@click.command(
    "export", context_settings=CONTEXT, short_help="One table of every run (csv or parquet)."
)
@results_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet"]),
    default="csv",
    show_default=True,
    help="csv: any tool; parquet: typed columns (needs pyarrow, in requirements.lock).",
)
@click.option(
    "--level",
    type=click.Choice(["runs", "epochs"]),
    default="runs",
    show_default=True,
    help="runs: one row per run; epochs: one row per run and epoch (its metrics.csv rows).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The file to write [RESULTS/export/<level>.<format>].",
)
@select_by_option
def export(results: Path, fmt: str, level: str, out: Path | None, select_by: str) -> None:
    """One tidy table of every run: run id, study cells, variant and options, every config
    field, best and last metrics, memory error, wall time, status and provenance (commit,
    library versions). Exit codes: 0, or 2 on bad input."""
    from bench.studies import STUDIES, cells
    from common import atomic_write
    from reports.export import study_membership, table

    if not (results / "runs").is_dir():
        raise UserError(f"no run records under {results}/runs/ (is --results right?)")
    membership = study_membership((s, c.run_id) for s in STUDIES for c in cells(s, optional=True))
    frame = table(results, level, membership, select_by)
    out = out or results / "export" / f"{level}.{fmt}"
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UserError("--format parquet needs pyarrow (pip install pyarrow)") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        atomic_write(out, lambda tmp: frame.to_csv(tmp, index=False))
    else:  # mixed-type columns (an option that is a number here, text there) as text
        mixed = [c for c in frame.columns if frame[c].map(type).nunique() > 1]
        typed = frame.astype({c: "string" for c in mixed})
        atomic_write(out, lambda tmp: typed.to_parquet(tmp, index=False))
    click.echo(f"{out}: {len(frame)} rows, {len(frame.columns)} columns")
