"""The ``xbmbench`` command line: a thin click layer over the packages.

Options map one to one onto config fields; nothing below this file sees a click context. The
commands import torch, timm and PML when they run, not when the command line is built, so
``xbmbench --help`` stays fast (tests/test_cli_imports.py).
"""

from __future__ import annotations

import click

from bench import pinning
from commands.data import data
from commands.perf import bench_group
from commands.report import compare, export, report
from commands.run import grid, reproduce_command, run_command
from commands.verify import verify_command
from common import UserError

__version__ = "0.1.0"

CONTEXT = dict(help_option_names=["-h", "--help"])
EXIT_CODES = """Exit codes: 0 done (a cell another process is training is skipped, and that is
0 too); 1 a run failed, a number was not reproduced (compare, verify) or a reference differs; 2
bad input (a value, a file, a missing dataset), named in the message."""


class Commands(click.Group):
    """The commands in the order a user needs them (reproduce first), not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(cls=Commands, context_settings=CONTEXT, epilog=EXIT_CODES)
@click.option(
    "--cpu-mode",
    type=click.Choice(pinning.MODES),
    envvar=pinning.MODE_VAR,
    default=pinning.DEFAULT_MODE,
    show_default=True,
    help="portable: pin the CPU kernels to the AVX2 level, so that a CPU run gives the same "
    "numbers on any x86-64 machine with AVX2; native: this CPU's fastest kernels "
    f"[${pinning.MODE_VAR}]",
)
def main(cpu_mode: str) -> None:
    """Reproducibility benchmark suite for Cross-Batch Memory and its variants."""
    # first of all, before any command imports torch: the kernels are chosen when it loads
    try:
        pinning.check_thread_var()
    except ValueError as e:
        raise UserError(str(e)) from None
    pinning.apply(cpu_mode)


for command in (
    reproduce_command,
    run_command,
    grid,
    report,
    compare,
    export,
    verify_command,
    data,
    bench_group,
):
    main.add_command(command)


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
