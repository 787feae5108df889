"""``xbmbench run`` and ``xbmbench bench train``: thin click layers over the trainer."""

from __future__ import annotations

import click

from bench.choices import LAUNCHERS
from bench.config import make_config
from bench.profiles import PROFILES
from commands.options import (
    config_options,
    data_option,
    parse_overrides,
    parse_variant_options,
    tensorboard_option,
)
from commands.report import select_by_option
from commands.slurm import after_submit, launcher_kwargs, slurm_options
from common import UserError


@click.command("run", short_help="Train and evaluate one cell.")
@click.option(
    "--dataset", help="a prepared dataset (xbmbench data prepare) [required without --config]"
)
@click.option("--variant", help="a memory variant (variants.VARIANTS) [required without --config]")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="rerun a saved config.json exactly (the same run id, so a done run is not trained "
    "again); no other config option may be given with it",
)
@click.option(
    "--print-config",
    is_flag=True,
    help="print the resolved config (config.json's form, with its run id) and exit; runs nothing",
)
@click.option("--seed", type=int, default=0, show_default=True, help="the run's seed")
@click.option(
    "--profile",
    type=click.Choice(list(PROFILES)),
    default="cpu",
    show_default=True,
    help="paper: the XBN paper's protocol (GPU); cpu: the same pipeline scaled to two cores",
)
@click.option(
    "--opt",
    "opts",
    multiple=True,
    metavar="NAME=VALUE",
    help="a variant option, e.g. --opt lambda_mu=0.6 (repeatable)",
)
@data_option
@click.option(
    "--results",
    type=click.Path(file_okay=False),
    default="results",
    show_default=True,
    help="results folder: one record per run under RESULTS/runs/",
)
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... [cuda if available]")
@tensorboard_option
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="torch CPU threads [torch's default]",
)
@config_options
def run_command(
    dataset,
    variant,
    config_file,
    print_config,
    seed,
    profile,
    opts,
    data_dir,
    results,
    device,
    threads,
    **fields,
):
    """Train and evaluate one cell; skipped if its record says done, resumed if interrupted."""
    import json

    if config_file:
        cfg = _saved_config(config_file, ["dataset", "variant", "seed", "profile", "opts", *fields])
    elif not dataset or not variant:
        raise UserError("run needs --dataset and --variant (or --config FILE)")
    else:
        cfg = make_config(
            dataset, variant, seed, profile, parse_variant_options(opts), **parse_overrides(fields)
        )
    if print_config:
        click.echo(json.dumps({"run_id": cfg.run_id, **cfg.to_dict()}, indent=2, sort_keys=True))
        return
    import torch

    from bench.engine.metric import run
    from bench.launch import record_failure
    from bench.store import CellBusy, RunDir
    from data_prep import default_data_dir, ensure_prepared

    for note in cfg.deviations:  # a profile default adapted to this cell: said, not only recorded
        click.echo(f"note: {note}", err=True)
    check_device(device)
    if threads:
        torch.set_num_threads(threads)
    data_dir = data_dir or str(default_data_dir())
    ensure_prepared([cfg.dataset], data_dir)  # the demo's datasets need no --root (as reproduce)
    rd = RunDir(results, cfg)
    was_done = rd.status() == "done"
    try:
        result = run(cfg, data_dir, results, device=device, progress=True)
    except CellBusy as busy:  # another launcher trains this cell: leave it to that one
        click.echo(f"{cfg.variant} on {cfg.dataset} seed {cfg.seed}: skipped: {busy}")
        return
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as e:  # a crash inside training: recorded as failed, never left "running"
        result = record_failure(results, cfg, e)
    cell = f"{cfg.variant} on {cfg.dataset} seed {cfg.seed}"
    if result["status"] == "done":
        click.echo(f"{cell}: {_done_how(rd, result, was_done)}; {_summary(result)} -> {rd.path}")
    else:
        click.echo(
            f"{cell}: {result['status']}: {result.get('error')} -> {rd.path}"
            + (f" (traceback in {rd.result})" if result.get("traceback") else ""),
            err=True,
        )
        raise SystemExit(1)


def _summary(result: dict) -> str:
    b, last = result["best"], result["last"]
    return (
        f"best epoch {b['epoch']}: R@1 {b['recall@1']:.2f} R@10 {b['recall@10']:.2f}; "
        f"last epoch {last['epoch']}: R@1 {last['recall@1']:.2f} R@10 {last['recall@10']:.2f}"
    )


def _done_how(rd, result: dict, was_done: bool) -> str:
    """ "done in 12s" for a run trained now; for a record found done, that it was already done,
    when, and in which CPU mode and thread count it was made (env.json)."""
    if not was_done:
        return f"done in {result['wall_s']:.0f}s"
    import json

    try:
        env = json.loads(rd.env.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        env = {}
    mode = (env.get("cpu_pinning") or {}).get("mode", "unknown")
    return (
        f"already done (not trained again): made {env.get('started_at', 'at an unknown time')} "
        f"on {env.get('device', 'an unknown device')} in CPU mode {mode} with "
        f"{env.get('torch_threads', '?')} torch threads, in {result['wall_s']:.0f}s"
    )


def check_device(device: str | None) -> None:
    """A UserError unless ``device`` names a torch device this machine has (None: pick one)."""
    import torch

    if device is None:
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise UserError(f"device must be cpu, cuda or cuda:N, got {device!r}") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (dev.index or 0) >= count:
            raise UserError(
                f"device {device!r} is not available: this machine has {count} CUDA GPUs"
            )
    elif dev.type != "cpu":
        raise UserError(f"device must be cpu, cuda or cuda:N, got {device!r}")


def _filters(f):
    f = click.option(
        "--seeds",
        default=None,
        metavar="0-9|0,2,5-7",
        help="these seeds in every cell, in place of the study's (ranges and lists; seeds "
        "beyond the study's own are added, done ones skipped)",
    )(f)
    f = click.option("--variant", "variants", multiple=True, help="only this variant (repeatable)")(
        f
    )
    f = click.option("--dataset", "datasets", multiple=True, help="only this dataset (repeatable)")(
        f
    )
    return f


@click.group("grid")
def grid() -> None:
    """Inspect the studies' grids."""


@grid.command("list")
@click.option("--study", required=True, help="a study name (see `xbmbench grid studies`)")
@_filters
@click.option(
    "--results",
    type=click.Path(file_okay=False),
    default=None,
    help="also show each cell's status in this results folder",
)
@click.option("--json", "as_json", is_flag=True, help="print the cells' configs as JSON")
def grid_list(study, datasets, variants, seeds, results, as_json):
    """Print the cells of a study (after the filters); an optional block's cells (run only when
    --variant names them) are marked with the block's label."""
    import json

    from bench.launch.slurm import job_column
    from bench.store import RunDir
    from bench.studies import cell_info, cells, seed_spec

    info = cell_info(study, datasets, variants, seed_spec(seeds), optional=True)
    cfgs = cells(study, datasets, variants, seed_spec(seeds), optional=True)
    if as_json:  # each cell's config, and its block's label, reported targets, optional flag
        click.echo(
            json.dumps(
                [{"run_id": c.run_id, **c.to_dict(), **info[c.run_id]} for c in cfgs], indent=1
            )
        )
        return
    click.echo(
        f"{'run_id':16}  {'dataset':13} {'variant':12} seed profile batch memory head   "
        f"options" + ("  status" if results else "")
    )
    jobs = job_column(cfgs, results) if results else {}
    for c in cfgs:
        opts = ",".join(f"{k}={v}" for k, v in c.variant_options)
        margins = (
            ""
            if (c.pos_margin, c.neg_margin) == (0.2, 0.8)
            else f" margins={c.pos_margin}/{c.neg_margin}"
        )
        status = f"  {RunDir(results, c).status() or 'missing'}" if results else ""
        status += f"  {jobs[c.run_id]}" if c.run_id in jobs else ""
        block = info[c.run_id]
        optional = f"  (optional, --variant {c.variant}: {block['block']})" * block["optional"]
        click.echo(
            f"{c.run_id}  {c.dataset:13} {c.variant:12} {c.seed:4} {c.profile:7} "
            f"{c.batch_size:5} {c.memory_ratio:6g} {c.head:6} {opts}{margins}{status}{optional}"
        )
    click.echo(f"{len(cfgs)} cells")


@grid.command("studies")
def grid_studies():
    """Name every study, what it reproduces and its number of cells."""
    from bench.studies import STUDIES, cells

    for name, s in STUDIES.items():
        n, listed = len(cells(name)), len(cells(name, optional=True))
        more = f" (+{listed - n} optional)" if listed > n else ""
        click.echo(f"{name:16} {n:4} cells  {s.reproduces}{more}")


def _saved_config(path: str, config_params: list[str]):
    """The RunConfig a saved config.json holds, checked as the store reads it (its run id must
    be its fields' hash); a config option also given on the command line is an error."""
    import json

    from bench.config import RunConfig

    ctx = click.get_current_context()
    given = [
        f"--{name.replace('_', '-')}"
        for name in config_params
        if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
    ]
    if given:
        raise UserError(f"--config reruns {path} exactly; drop {', '.join(given)}")
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except OSError as e:
        raise UserError(f"cannot read --config {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise UserError(f"--config {path} is not JSON: {e}") from None
    if not isinstance(record, dict):
        raise UserError(f"--config {path} does not hold a JSON object")
    try:
        return RunConfig.from_dict(record)
    except (ValueError, TypeError) as e:
        raise UserError(f"--config {path}: {e}") from None


@click.command(
    "reproduce", short_help="Run a study's missing cells, then the report [the CPU demo]."
)
@click.option(
    "--study",
    "studies",
    multiple=True,
    help="a study (repeatable) [demo: the CPU demo on Omniglot]",
)
@_filters
@click.option(
    "--launcher",
    type=click.Choice(LAUNCHERS),
    default="local",
    show_default=True,
    help="local: worker processes on this machine; submitit-local: submitit's local executor; "
    "slurm: one Slurm job per cell",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="local: cells run side by side, each in its own worker process [on CPUs: one per "
    "core, each on one torch thread in portable mode (the pinned count; native mode: cores // "
    "jobs threads); with CUDA: 1]",
)
@click.option(
    "--results",
    type=click.Path(file_okay=False),
    default="results",
    show_default=True,
    help="results folder: one record per run under RESULTS/runs/",
)
@data_option
@click.option("--retry-failed", is_flag=True, help="run failed cells again from scratch")
@click.option("--no-report", is_flag=True, help="skip `xbmbench report` at the end")
@select_by_option
@tensorboard_option
@slurm_options
def reproduce_command(
    studies,
    datasets,
    variants,
    seeds,
    launcher,
    jobs,
    results,
    data_dir,
    retry_failed,
    no_report,
    select_by,
    **opts,
):
    """Run every missing cell of a study (done cells are skipped, interrupted ones resumed),
    then write the report. With no arguments: the CPU demo (every variant and the re-embedding
    bound on Omniglot, test alphabets unseen in training; the shipped zips, no download)."""
    from bench.studies import seed_spec
    from commands.reproduce import DEFAULT_STUDIES, reproduce
    from data_prep import default_data_dir

    kwargs = launcher_kwargs(launcher, opts)
    if jobs is None:  # one cell per core on CPUs, at the pinned thread count (bench/pinning.py)
        import torch

        from bench import pinning

        jobs = pinning.default_jobs(torch.cuda.is_available())
    summary = reproduce(
        studies or DEFAULT_STUDIES,
        results,
        data_dir or str(default_data_dir()),
        datasets,
        variants,
        seed_spec(seeds),
        launcher,
        jobs,
        retry_failed,
        not no_report,
        select_by=select_by,
        **kwargs,
    )
    if "dry_run" in summary or "submitted" in summary:
        click.echo(after_submit(summary, results, studies or DEFAULT_STUDIES))
        return
    click.echo(
        f"{summary['study']}: {summary['cells']} cells, {summary['ran']} run now, "
        f"{summary['done']} done, {summary['failed']} failed, "
        f"{summary['seconds'] / 60:.1f} min"
    )
    if "report" in summary:
        from commands.verify import compare_with_reference

        compare_with_reference(studies or DEFAULT_STUDIES, results, summary["report"])
        click.echo(f"report: {summary['report']}")
    if summary["failed"]:
        raise SystemExit(1)
