"""A run's variant options, checked against the variant's own ``Option``s before anything runs."""

from __future__ import annotations

from typing import Any

from common import UserError


def checked_options(variant: str, given: dict[str, Any]) -> tuple[dict[str, Any], dict]:
    """The variant's options that were given (None: the variant's default), each checked and
    parsed by its declared kind (an ``OptionError`` names a bad value), and every option's
    contract; an unknown variant or option is a UserError listing the valid ones."""
    from variants import get_variant  # imports torch: only when a config is made

    try:
        specs = get_variant(variant).option_specs()
    except ValueError as e:
        raise UserError(str(e)) from None
    opts = {k: v for k, v in given.items() if v is not None}
    bad = sorted(set(opts) - set(specs))
    if bad:
        raise UserError(
            f"unknown option(s) {', '.join(bad)} for variant {variant!r}; "
            f"valid options: {', '.join(sorted(specs))}"
        )
    return {k: specs[k].coerce(k, v) for k, v in opts.items()}, specs


def field_aliases(opts: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with the option that aliases a config field moved into it from ``opts`` (in
    place): a run's miner is the field ``miner_distance``, ``--opt miner_distance`` its alias."""
    if "miner_distance" in opts:
        alias = opts.pop("miner_distance")
        if fields.setdefault("miner_distance", alias) != alias:
            raise UserError(
                f"miner_distance given twice: {fields['miner_distance']!r} as a field and "
                f"{alias!r} as a variant option"
            )
    return fields
