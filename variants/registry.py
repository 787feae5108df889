"""Name -> class registry of the memory variants (timm's ``register_model`` pattern).

A variant is registered when its module is imported: ``variants.catalogue`` imports every one,
and the package's names (``variants.get_variant``, ``variants.build``, ...) import the catalogue
first, so use those; the functions here see only what was imported so far.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .options import Option

_REGISTRY: dict[str, type] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator: register a variant under ``name``; a duplicate name is an error."""

    def deco(cls: type) -> type:
        if name in _REGISTRY:
            raise ValueError(f"variant {name!r} is registered twice ({_REGISTRY[name]} and {cls})")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def registered() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get_variant(name: str) -> type:
    """The class registered as ``name``; an unknown name raises a ValueError listing the valid
    ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown variant {name!r}; valid variants: {', '.join(sorted(_REGISTRY))}"
        ) from None


def build(
    name: str,
    loss: Any,
    embedding_size: int,
    memory_size: int,
    miner: Any = None,
    **options: Any,
):
    """Build variant ``name``: a drop-in replacement for PML's ``CrossBatchMemory``.

    ``options`` are the variant's own (see ``variant_options(name)``); an unknown one raises a
    ValueError listing the valid ones. ``None`` values mean "the variant's default" and are dropped.
    """
    cls = get_variant(name)
    options = {k: v for k, v in options.items() if v is not None}
    return cls(
        loss=loss, embedding_size=embedding_size, memory_size=memory_size, miner=miner, **options
    )


def variant_options(name: str) -> dict[str, Any]:
    """The options ``name`` understands, with their defaults."""
    return get_variant(name).option_defaults()


def option_specs(name: str) -> dict[str, Option]:
    """The options ``name`` understands, each with its default, type and range."""
    return get_variant(name).option_specs()
