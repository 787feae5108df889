"""Click options generated from RunConfig's fields, so the CLI maps one to one onto the config."""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, Callable

import click

from bench.config import RunConfig

# fields set by dedicated arguments, or not meant for the command line
SKIP = {"dataset", "variant", "seed", "profile", "variant_options", "deviations"}


def _click_type(tp: Any):
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    base = args[0] if args else tp
    if typing.get_origin(base) is tuple:
        return str, "comma-separated"
    return {int: int, float: float, bool: bool, str: str}.get(base, str), None


def config_options(f: Callable) -> Callable:
    """Add ``--<field>`` for every RunConfig field (default None: the profile's value)."""
    hints = typing.get_type_hints(RunConfig)
    for field in reversed(dataclasses.fields(RunConfig)):
        if field.name in SKIP:
            continue
        tp, note = _click_type(hints[field.name])
        name = "--" + field.name.replace("_", "-")
        help_ = f"RunConfig.{field.name} (default: the profile's)" + (f", {note}" if note else "")
        f = click.option(name, field.name, type=tp, default=None, help=help_)(f)
    return f


def parse_overrides(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if value is None:
            continue
        if key == "eval_ks":
            value = tuple(int(v) for v in str(value).split(","))
        out[key] = value
    return out


def parse_variant_options(items: tuple[str, ...]) -> dict[str, Any]:
    """``--opt lambda_mu=0.6 --opt normalize_absent=false`` -> typed dict."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--opt")
        try:
            out[key] = json.loads(raw.lower() if raw.lower() in ("true", "false") else raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out
