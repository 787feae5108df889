"""Building the command line imports none of torch, timm and PML: the commands import them.

Each check runs in a fresh interpreter (this one has torch loaded already) and reads its
``sys.modules``; nothing here is timed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "timm", "pytorch_metric_learning")

# Prints the help of the group and of every command below it, then the heavy modules loaded.
HELP_EVERYTHING = """
import contextlib, io, json, sys
import click
from {module} import {group} as group

def paths(cmd, prefix=()):
    yield prefix
    for name, sub in getattr(cmd, "commands", {{}}).items():
        yield from paths(sub, prefix + (name,))

out = io.StringIO()
with contextlib.redirect_stdout(out):
    for path in paths(group):
        group.main([*path, "--help"], prog_name="xbmbench", standalone_mode=False)
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))
print(json.dumps({{"help": out.getvalue(), "heavy": heavy}}))
"""


def _help_in_fresh_interpreter(module: str, group: str) -> dict:
    code = HELP_EVERYTHING.format(module=module, group=group, heavy=HEAVY)
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_xbmbench_help_imports_no_torch_timm_or_pml():
    got = _help_in_fresh_interpreter("cli", "main")
    # the help of every command really ran: the top level and the three benchmarks' own pages
    for text in ("Usage: xbmbench [OPTIONS] COMMAND", "Usage: xbmbench bench memory", "--study"):
        assert text in got["help"]
    assert got["heavy"] == [], f"`xbmbench --help` imported {got['heavy']}"


def test_bench_and_run_commands_import_no_torch_timm_or_pml():
    """The commands of commands/ alone (the part cli.py takes from bench)."""
    for module, group, usage in (
        ("commands.perf", "bench_group", "Usage: xbmbench memory [OPTIONS]"),
        ("commands.run", "grid", "Usage: xbmbench list [OPTIONS]"),
        ("commands.run", "run_command", "--variant TEXT"),
        ("commands.run", "reproduce_command", "--launcher"),
    ):
        got = _help_in_fresh_interpreter(module, group)
        assert usage in got["help"]
        assert got["heavy"] == [], f"{module}.{group} --help imported {got['heavy']}"
