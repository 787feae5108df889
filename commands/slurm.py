"""The options of ``xbmbench reproduce`` that say where and with what its jobs run (Slurm, and
the weights every pretrained cell needs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

SLURM_FIELDS = ("partition", "cpus_per_job", "gpus_per_job", "mem", "account", "qos")
SLURM_FIELDS += ("constraint", "timeout_min", "array_parallelism")
_COUNT = click.IntRange(min=1)
_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("--partition",), dict(help="slurm: the partition [the cluster's default]")),
    (
        ("--cpus-per-job",),
        dict(
            type=_COUNT,
            help="slurm: CPUs of each cell's job, also its torch thread count [the profile's: "
            "1 for cpu; 1 + the loader workers for paper]",
        ),
    ),
    (
        ("--gpus-per-job",),
        dict(
            type=click.IntRange(min=0),
            help="slurm: GPUs of each job [the profile's: 0 for cpu, 1 for paper]",
        ),
    ),
    (("--mem",), dict(metavar="SIZE", help="slurm: memory of each job, e.g. 32G")),
    (("--account",), dict(help="slurm: the account to charge")),
    (("--qos",), dict(help="slurm: quality of service")),
    (("--constraint",), dict(help="slurm: node features, e.g. a100")),
    (
        ("--timeout-min",),
        dict(
            type=_COUNT,
            default=24 * 60,
            show_default=True,
            help="time limit of each job; a Slurm job that reaches it is requeued and resumes "
            "from its last epoch",
        ),
    ),
    (
        ("--array-parallelism",),
        dict(type=_COUNT, default=32, show_default=True, help="slurm: jobs running at once"),
    ),
    (
        ("--slurm-opt", "slurm_opts"),
        dict(
            multiple=True,
            metavar="KEY=VALUE",
            help="slurm: any other sbatch option, e.g. --slurm-opt exclude=node3 (repeatable)",
        ),
    ),
    (
        ("--no-wait",),
        dict(
            is_flag=True,
            help="slurm: submit, say how to follow the jobs, exit; the same reproduce run again "
            "collects what finished and writes the report",
        ),
    ),
    (
        ("--dry-run",),
        dict(is_flag=True, help="slurm: print the cells, the sbatch script and each job's call"),
    ),
    (
        ("--pretrained-file",),
        dict(
            type=click.Path(exists=True, dir_okay=False),
            metavar="FILE",
            help="ImageNet weights for the pretrained cells (paper profile), checked on this "
            "host before anything runs or is queued [timm's cache]",
        ),
    ),
)


def slurm_options(f: Callable) -> Callable:
    """Add the options above (default None: the profile's, or the cluster's)."""
    for names, spec in reversed(_OPTIONS):
        f = click.option(*names, **{"default": None, **spec})(f)
    return f


def launcher_kwargs(launcher: str, opts: dict[str, Any]) -> dict[str, Any]:
    """``reproduce``'s keyword arguments for ``launcher`` from the options' values; a Slurm
    option given to another launcher is a UsageError naming it."""
    from bench.launch.request import parse_slurm_opts

    slurm_only = [*SLURM_FIELDS[:-2], "slurm_opts", "no_wait", "dry_run"]  # no defaults
    if launcher != "slurm":
        given = [n for n in slurm_only if opts.get(n) not in (None, False, ())]
        if given:
            flags = ", ".join("--" + n.replace("_", "-").replace("opts", "opt") for n in given)
            raise click.UsageError(f"{flags}: only with --launcher slurm (got {launcher})")
    out: dict[str, Any] = {"pretrained_file": opts.get("pretrained_file")}
    if launcher == "local":
        return out
    out["timeout_min"] = opts["timeout_min"]
    if launcher == "slurm":
        out.update({k: opts[k] for k in SLURM_FIELDS if k != "timeout_min"})
        out["extra"] = parse_slurm_opts(opts["slurm_opts"])
        out["wait"], out["dry_run"] = not opts["no_wait"], opts["dry_run"]
    return out


def after_submit(summary: dict[str, Any], results: str, studies) -> str:
    """What ``reproduce`` prints after a ``--dry-run`` or a ``--no-wait`` submission."""
    if "dry_run" in summary:
        return "\n".join([*summary["dry_run"], "dry run: nothing was submitted"])
    jobs = summary["submitted"] + summary["live"]
    if not jobs:
        return f"{summary['study']}: nothing to submit ({summary['done']} done)"
    arrays = sorted({j.split("_")[0] for j in jobs})
    return (
        f"{summary['study']}: submitted {len(summary['submitted'])} job(s), "
        f"{len(summary['live'])} already queued or running (array {', '.join(arrays)}); "
        f"nothing waits for them.\n"
        f"  follow:  squeue -j {','.join(arrays)}   or   xbmbench grid list --study "
        f"{studies[0]} --results {results}\n"
        f"  collect: run the same `xbmbench reproduce` again: it waits for the jobs still queued "
        f"or running, resubmits the ones that ended without finishing, and writes the report"
    )
