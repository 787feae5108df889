"""The ``xbmbench`` command line: a thin click layer over the packages.

Options map one to one onto config fields; nothing below this file sees a click context.
"""

from __future__ import annotations

import sys

import click

__version__ = "0.1.0"

CONTEXT = dict(help_option_names=["-h", "--help"])


def _not_implemented(what: str) -> None:
    click.echo(f"xbmbench {what}: not implemented yet", err=True)
    sys.exit(3)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="xbmbench")
def main() -> None:
    """Reproducibility benchmark suite for Cross-Batch Memory and its variants."""


@main.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="xbmbench")
def data() -> None:
    """Prepare datasets from their official files and inspect them."""


@data.command("prepare", context_settings=CONTEXT)
@click.version_option(__version__, prog_name="xbmbench")
def data_prepare() -> None:
    """Turn a dataset's official files into a manifest."""
    _not_implemented("data prepare")


@main.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="xbmbench")
def grid() -> None:
    """Inspect the studies' grids."""


@grid.command("list", context_settings=CONTEXT)
@click.version_option(__version__, prog_name="xbmbench")
def grid_list() -> None:
    """Print the cells of a study."""
    _not_implemented("grid list")


@main.command(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="xbmbench")
def run() -> None:
    """Train and evaluate one cell."""
    _not_implemented("run")


@main.command(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="xbmbench")
def reproduce() -> None:
    """Run every missing cell of a study, then write the report."""
    _not_implemented("reproduce")


@main.command(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="xbmbench")
def report() -> None:
    """Turn the run records into tables, claims and figures."""
    _not_implemented("report")


@main.command(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="xbmbench")
def compare() -> None:
    """Print the comparison with the reported numbers."""
    _not_implemented("compare")


@main.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="xbmbench")
def bench() -> None:
    """Benchmarks: cost of each variant, of evaluation and of training."""


if __name__ == "__main__":
    main()
