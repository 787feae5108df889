"""``xbmbench bench``: the click layer of the performance benchmarks in bench/perf/.

Each command imports its benchmark (and with it torch, PML, timm, faiss) only when it runs, so
that building the command line (``xbmbench --help``) imports none of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from bench.perf.memory_config import PER_CLASS, MemoryBenchConfig, check_config
from bench.profiles import PROFILES

CONTEXT = dict(help_option_names=["-h", "--help"])
DEFAULTS = MemoryBenchConfig()


@click.group(
    "bench",
    context_settings=CONTEXT,
    short_help="Speed benchmarks: memory, evaluation, training, input.",
)
def bench_group() -> None:
    """Benchmarks: cost of each variant, of evaluation and of training."""


@bench_group.command("eval", context_settings=CONTEXT)
@click.option(
    "--n",
    "n",
    type=click.IntRange(min=12),
    default=20000,
    show_default=True,
    help="number of embeddings",
)
@click.option(
    "--dim", type=click.IntRange(min=1), default=512, show_default=True, help="embedding dimension"
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="seed of the random embeddings and labels",
)
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="timed runs of each method after one warm-up; the median is reported",
)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def bench_eval(n: int, dim: int, seed: int, repeats: int, as_json: bool) -> None:
    """Time exact Recall@1/10 (ours, chunked torch) against faiss IndexFlatIP."""
    from bench.perf.eval import compare, format_table

    summary, ours, theirs = compare(n, dim, seed, repeats)
    click.echo(json.dumps(summary) if as_json else format_table(summary, ours, theirs))


@bench_group.command("train")
@click.option(
    "--profile",
    type=click.Choice(list(PROFILES)),
    default="cpu",
    show_default=True,
    help="the run profile whose model, image size and batch the loop uses",
)
@click.option(
    "--steps",
    type=int,
    default=20,
    show_default=True,
    help="timed training steps (after the warm-up steps)",
)
@click.option(
    "--warmup",
    type=int,
    default=3,
    show_default=True,
    help="untimed steps first (allocations, kernel selection)",
)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1 ...")
@click.option(
    "--memory-size", type=int, default=None, help="[the profile's ratio of the train set]"
)
@click.option("--variant", "names", multiple=True, help="only these variants [all]")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def bench_train(profile, steps, warmup, device, memory_size, names, as_json):
    """Images per second of the training loop, without memory (no_xbm) and with each variant's."""
    from bench.perf.train_step import format_table, run

    result = run(names, profile, steps, warmup, device, memory_size)
    click.echo(json.dumps(result) if as_json else format_table(result))


@bench_group.command("memory", context_settings=CONTEXT)
@click.option(
    "--memory-size",
    type=click.IntRange(min=1),
    default=DEFAULTS.memory_size,
    show_default=True,
    help="entries in the memory",
)
@click.option(
    "--batch",
    type=click.IntRange(min=PER_CLASS),
    default=DEFAULTS.batch,
    show_default=True,
    help=f"batch size, a multiple of {PER_CLASS} ({PER_CLASS} samples per class)",
)
@click.option(
    "--dim",
    type=click.IntRange(min=1),
    default=DEFAULTS.dim,
    show_default=True,
    help="embedding dimension",
)
@click.option(
    "--classes",
    type=click.IntRange(min=1),
    default=DEFAULTS.classes,
    show_default=True,
    help="number of classes the labels are drawn from",
)
@click.option(
    "--reps",
    type=click.IntRange(min=1),
    default=DEFAULTS.reps,
    show_default=True,
    help="timed rounds; the median is reported",
)
@click.option(
    "--warmup",
    type=click.IntRange(min=1),
    default=DEFAULTS.warmup,
    show_default=True,
    help="untimed repetitions first",
)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default=DEFAULTS.device,
    show_default=True,
    help="where the memories run",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=DEFAULTS.threads,
    show_default=True,
    help="torch CPU threads",
)
@click.option(
    "--seed",
    type=int,
    default=DEFAULTS.seed,
    show_default=True,
    help="seed of the random embeddings and labels",
)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def bench_memory(as_json: bool, **fields) -> None:
    """Time one training step of every memory variant against PML's CrossBatchMemory."""
    import torch

    from bench.perf.memory import format_table, run

    if fields["device"] == "cuda" and not torch.cuda.is_available():
        raise click.BadParameter("CUDA is not available", param_hint="--device")
    cfg = MemoryBenchConfig(**fields)
    try:
        check_config(cfg)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    result = run(cfg)
    click.echo(json.dumps(result) if as_json else format_table(result))


def _worker_list(ctx, param, value: str) -> list[int]:
    try:
        out = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not out or min(out) < 0:
        raise click.BadParameter(f"expected integers >= 0, got {value!r}")
    return out


@bench_group.command("data", context_settings=CONTEXT)
@click.option(
    "--images",
    type=click.IntRange(min=1),
    default=512,
    show_default=True,
    help="generated JPEGs to decode and augment",
)
@click.option(
    "--workers",
    default="0,1,2",
    show_default=True,
    callback=_worker_list,
    help="DataLoader worker counts to time, comma-separated",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="images per collated batch",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="seed of the generated images and of the augmentation draws",
)
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="write the JPEGs here and keep them [a temporary folder, removed]",
)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def bench_data(images, workers, batch_size, seed, root, as_json) -> None:
    """Images per second of the paper profile's decode + augmentation, per DataLoader worker."""
    need = batch_size * (max(max(workers), 1) + 1)
    if images < need:
        raise click.UsageError(
            f"--images must be >= {need} for --workers up to {max(workers)} at --batch-size "
            f"{batch_size}, got {images}"
        )
    from bench.perf.input_pipeline import format_table, run

    result = run(images, workers, batch_size, seed, root)
    click.echo(json.dumps(result) if as_json else format_table(result))
