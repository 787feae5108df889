"""``xbmbench run`` and ``xbmbench bench train``: thin click layers over the trainer."""

from __future__ import annotations

import os

import click
import torch

from data_prep import default_data_dir

from .config import PROFILES, make_config
from .options import config_options, parse_overrides, parse_variant_options


@click.command("run")
@click.option("--dataset", required=True, help="a prepared dataset (xbmbench data prepare)")
@click.option("--variant", required=True, help="a memory variant (variants.VARIANTS)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--profile", type=click.Choice(list(PROFILES)), default="cpu", show_default=True)
@click.option("--opt", "opts", multiple=True, metavar="NAME=VALUE",
              help="a variant option, e.g. --opt lambda_mu=0.6 (repeatable)")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
              help="where `data prepare` wrote manifests [$XBMBENCH_DATA, else ./data]")
@click.option("--results", type=click.Path(file_okay=False), default="results", show_default=True)
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... [cuda if available]")
@click.option("--threads", type=int, default=None, help="torch CPU threads [torch's default]")
@config_options
def run_command(dataset, variant, seed, profile, opts, data_dir, results, device, threads,
                **fields):
    """Train and evaluate one cell; skipped if its record says done, resumed if interrupted."""
    from .trainer import run

    if threads:
        torch.set_num_threads(threads)
    cfg = make_config(dataset, variant, seed, profile, parse_variant_options(opts),
                      **parse_overrides(fields))
    data_dir = data_dir or str(default_data_dir())
    result = run(cfg, data_dir, results, device=device, progress=True)
    path = os.path.join(results, "runs", cfg.run_id)
    if result["status"] == "done":
        b, last = result["best"], result["last"]
        click.echo(f"{cfg.variant} on {cfg.dataset} seed {cfg.seed}: done in {result['wall_s']:.0f}s; "
                   f"best epoch {b['epoch']}: R@1 {b['recall@1']:.2f} R@10 {b['recall@10']:.2f}; "
                   f"last epoch {last['epoch']}: R@1 {last['recall@1']:.2f} R@10 {last['recall@10']:.2f}"
                   f" -> {path}")
    else:
        click.echo(f"{cfg.variant} on {cfg.dataset} seed {cfg.seed}: {result['status']}: "
                   f"{result.get('error')} -> {path}", err=True)
        raise SystemExit(1)
