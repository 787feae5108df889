"""Click options generated from RunConfig's fields, so the CLI maps one to one onto the config.

Values travel as text: ``make_config`` parses and checks each by the field's declared contract
(bench/config.py) or the variant's declared option (``variants.options.Option``), so the command
line and the Python API share one check and one message.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bench.config import FIELDS
from bench.engine.tensorboard import ENV as TENSORBOARD_ENV
from common import UserError
from variants.options import Option, OptionError

# fields set by dedicated arguments, or not meant for the command line
SKIP = {"dataset", "variant", "seed", "profile", "variant_options", "deviations"}


def _register_folders(ctx: click.Context, param: click.Parameter, value: str | None):
    """The folder datasets prepared in the data folder join the registry before any dataset
    name is checked (data_prep.folder); a data folder that cannot be read is left to the
    command to report."""
    from common import UserError
    from data_prep.manifest import default_data_dir
    from data_prep.registry import register_prepared

    with contextlib.suppress(UserError, OSError):
        register_prepared(value if value is not None else default_data_dir())
    return value


# ``--data``: the prepared datasets of every command that trains (run, reproduce, verify)
data_option = click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False),
    default=None,
    callback=_register_folders,
    help="prepared datasets (where `data prepare` wrote manifests) [$XBMBENCH_DATA, else ./data]",
)


def _tensorboard(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """Set in the environment, so that worker processes and Slurm jobs log too."""
    if value:
        os.environ[TENSORBOARD_ENV] = str(Path(value).resolve())


tensorboard_option = click.option(
    "--tensorboard",
    type=click.Path(file_okay=False),
    default=None,
    expose_value=False,
    callback=_tensorboard,
    metavar="DIR",
    help="also log each cell's per-epoch numbers (loss, Recall@K, drift, memory error, "
    "adaptation gain, learning rate) to TensorBoard, one run per cell under "
    "DIR/<dataset>/<variant>/seed<seed>-<run id> [off]",
)

SEEDS = Option(tuple, item=int, ge=0, why=FIELDS["seed"].why)


def _metavar(name: str, spec: Option) -> str:
    if name == "pretrained_file":
        return "FILE"
    if spec.choices is not None:
        return "[" + "|".join(spec.choices) + "]"
    if spec.kind is tuple:
        return ",".join(map(str, spec.contains)) or "A,B"
    return {int: "INTEGER", float: "FLOAT", bool: "true|false", str: "TEXT"}[spec.kind]


def _click_type(name: str) -> Any:
    if name == "pretrained_file":  # named in the error when missing; its content: engine/model.py
        return click.Path(exists=True, dir_okay=False)
    return str


def config_options(f: Callable) -> Callable:
    """Add ``--<field>`` for every RunConfig field (default None: the profile's value)."""
    for name, spec in reversed(FIELDS.items()):
        if name in SKIP:
            continue
        help_ = f"{spec.help}: {spec.describe()} (default: the profile's)"
        f = click.option(
            "--" + name.replace("_", "-"),
            name,
            type=_click_type(name),
            metavar=_metavar(name, spec),
            default=None,
            help=help_,
        )(f)
    return f


def parse_overrides(values: dict[str, Any]) -> dict[str, Any]:
    """The options that were given (None: the profile's value); make_config parses the text."""
    return {key: value for key, value in values.items() if value is not None}


def parse_variant_options(items: tuple[str, ...]) -> dict[str, str]:
    """``--opt lambda_mu=0.6 --opt normalize_absent=false`` -> {name: text}; make_config parses
    each text by the option's declared type."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--opt")
        if key in out:
            raise click.BadParameter(
                f"{key} given twice ({out[key]!r} and {raw!r})", param_hint="--opt"
            )
        out[key] = raw
    return out


def parse_seeds(text: str | None) -> list[int] | None:
    """``--seeds 0,1,2`` -> [0, 1, 2]; None: every seed."""
    if text is None:
        return None
    try:
        return list(SEEDS.coerce("seeds", text))
    except OptionError as e:
        raise UserError(str(e)) from None
