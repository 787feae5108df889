"""The ``xbmbench`` command line: a thin click layer over the packages.

Options map one to one onto config fields; nothing below this file sees a click context.
"""

from __future__ import annotations

import click

from bench.cli.commands import grid, reproduce_command, run_command
from bench.perf.eval import bench_eval
from bench.perf.memory import bench_memory
from bench.perf.train import bench_train
from data_prep.commands import data
from reports.commands import compare, report

__version__ = "0.1.0"

CONTEXT = dict(help_option_names=["-h", "--help"])


@click.group(context_settings=CONTEXT)
def main() -> None:
    """Reproducibility benchmark suite for Cross-Batch Memory and its variants."""


@main.group(context_settings=CONTEXT)
def bench() -> None:
    """Benchmarks: cost of each variant, of evaluation and of training."""


bench.add_command(bench_eval)
bench.add_command(bench_train)
bench.add_command(bench_memory)
main.add_command(data)
main.add_command(run_command)
main.add_command(grid)
main.add_command(reproduce_command)
main.add_command(report)
main.add_command(compare)


def _with_version(cmd: click.Command) -> None:
    """Give every command and group ``--version`` (and ``-h``), recursively."""
    if not any("--version" in p.opts for p in cmd.params):
        click.version_option(__version__, prog_name="xbmbench")(cmd)
    cmd.context_settings.setdefault("help_option_names", ["-h", "--help"])
    for sub in getattr(cmd, "commands", {}).values():
        _with_version(sub)


_with_version(main)

if __name__ == "__main__":
    main()
