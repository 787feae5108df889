"""``xbmbench verify``: the shipped reference results against this machine (bench/verify.py),
and the comparison that ``xbmbench reproduce`` adds to the demo's REPORT.md."""

from __future__ import annotations

import click

from commands.options import data_option
from common import UserError


def compare_with_reference(studies, results: str, report: str) -> None:
    """After a study with a shipped reference (``bench/reference/<study>.json``: the demo, the
    Fashion-MNIST demo), REPORT.md says whether its cells equal it."""
    from bench import verify as V

    for study in studies:
        path = V.reference_path(study)
        if not path.is_file():
            continue
        ref = V.load_reference(path)
        if ref.get("study") != study:
            continue
        checks = V.check_results(ref, results)
        V.annotate_report(report, checks, f"`bench/reference/{path.name}`")
        same = sum(c["identical"] for c in checks)
        click.echo(f"reference: {same} of {len(checks)} {study} cells identical to {path}")


@click.command("verify", short_help="Check this machine against the shipped reference.")
@click.option(
    "--cells",
    "n_cells",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="cells to train again, spread over the variants and seeds (about 20 s each on two "
    "cores; more than the reference holds: all of them)",
)
@click.option(
    "--reference",
    type=click.Path(dir_okay=False),
    default=None,
    help="the reference file [the shipped bench/reference/demo.json]",
)
@data_option
@click.option(
    "--keep",
    type=click.Path(file_okay=False),
    default=None,
    help="train into this results folder and keep it [a temporary folder, removed]",
)
@click.option(
    "--export",
    "export_from",
    type=click.Path(file_okay=False),
    default=None,
    help="instead: write a reference file (--out) from the done runs of this results folder",
)
@click.option("--study", default=None, help="with --export: this study's cells, each one done")
@click.option(
    "--out", type=click.Path(dir_okay=False), default=None, help="with --export [--reference]"
)
@click.option(
    "--readme",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="instead: rewrite README's demo table (between its demo-table markers) from the reference",
)
def verify_command(n_cells, reference, data_dir, keep, export_from, study, out, readme):
    """Train a few cells of the shipped reference again and compare their numbers, epoch by
    epoch, to the last digit; name the env fields that differ. Exit 1 when a number or a field
    that decides the numbers differs."""
    from pathlib import Path

    from bench import verify as V

    ref_path = Path(reference) if reference else V.DEMO_REFERENCE
    if export_from and readme:
        raise UserError("--export and --readme are two separate tasks: give one")
    if export_from:
        ids = None
        if study:
            from bench.studies import cells

            ids = [c.run_id for c in cells(study) if c.task == "metric"]
        path = V.write_reference(V.export(export_from, ids, study), out or ref_path)
        click.echo(f"reference of {len(V.load_reference(path)['cells'])} cells -> {path}")
        return
    ref = V.load_reference(ref_path)
    if readme:
        from bench.demo_table import render, rewrite
        from common import atomic_write_text

        text = Path(readme).read_text(encoding="utf-8")
        atomic_write_text(readme, rewrite(text, render(ref)))
        click.echo(f"{readme}: demo table rewritten from {ref_path}")
        return
    _verify(V, ref, ref_path, n_cells, data_dir, keep)


def _verify(V, ref, ref_path, n_cells, data_dir, keep) -> None:
    import shutil
    import tempfile

    from bench import pinning
    from data_prep import default_data_dir

    chosen = V.select(ref, n_cells)
    mode = pinning.state()
    click.echo(
        f"verify: {len(chosen)} of the {len(ref['cells'])} cells of {ref_path}, cpu mode "
        f"{mode['mode']}{'' if mode['applied'] else ' (not applied: ' + mode['reason'] + ')'}"
    )
    results = keep or tempfile.mkdtemp(prefix="xbmbench-verify-")
    try:
        checks = V.rerun(
            ref, chosen, data_dir or str(default_data_dir()), results, click.echo, ref_path
        )
    finally:
        if not keep:
            shutil.rmtree(results, ignore_errors=True)
    bad = V.failed(checks)
    same = sum(c["identical"] for c in checks)
    click.echo(
        f"verify: {same} of {len(checks)} cells identical to the reference"
        + (f"; {len(bad)} fail (numbers, or a setting that decides them, differ)" if bad else "")
    )
    if bad:
        raise SystemExit(1)
