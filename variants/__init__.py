"""The memory variants: drop-in replacements for PML's ``CrossBatchMemory``.

    from variants import build, VARIANTS
    mem = build("xbn", loss=SupConLoss(), embedding_size=512, memory_size=29775,
                miner=PairMarginMiner(0.2, 0.8))
    loss = mem(embeddings, labels)                    # same call as CrossBatchMemory
    loss = mem(embeddings, labels, superclasses=sc)   # SC-XBN needs superclass ids
    loss = mem(embeddings, labels, indices=idx, keys=keys)  # each entry's image, recorded

``oracle_xbm`` (beyond the sources: the re-embedding bound) is the trainer's only: it needs
``memory.reembed`` (``TRAINER_ONLY``). ``DROP_IN_VARIANTS``: those that work as a PML loss alone;
``SOURCED_VARIANTS``: those the paper or the thesis describe (not ``BEYOND_SOURCES``).

Importing the package imports no torch: the variants (``variants.catalogue``, which imports and
registers every one) load on first use of any name below. The option contract
(``variants.options``) is shared with the run config of the experiment engine, which must read
it without torch (a config, ``xbmbench --help`` and grid enumeration stay light).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DROP_IN_VARIANTS",
    "SOURCED_VARIANTS",
    "VARIANTS",
    "MemoryBase",
    "Option",
    "build",
    "get_variant",
    "option_specs",
    "registered",
    "variant_options",
]


def __getattr__(name: str) -> Any:
    """``variants.NAME``: the catalogue's name, or a submodule (imported with the catalogue)."""
    if name == "catalogue" or name.startswith("__"):  # asked while importing it, or a dunder
        raise AttributeError(f"module 'variants' has no attribute {name!r}")
    from . import catalogue  # imports torch and PML, and registers every variant

    if name in catalogue.__all__:
        return getattr(catalogue, name)
    if name in globals():  # a submodule the catalogue imported (variants.registry, ...)
        return globals()[name]
    raise AttributeError(f"module 'variants' has no attribute {name!r}")
