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

Every module is imported here explicitly, which registers it.
"""

from . import (  # noqa: F401  (imported for registration)
    axbn,
    centre_xbn,
    delayed_xbn,
    no_xbm,
    oracle_xbm,
    pc_xbn,
    sc_xbn,
    scaled_xbn,
    xbm,
    xbm_star,
    xbn,
)
from .base import MemoryBase
from .registry import build, get_variant, registered, variant_options

# the order of the papers' tables (baseline, XBM, then each normalisation); a variant registered
# outside this list is appended after it
_ORDER = (
    "no_xbm",
    "xbm",
    "xbm_star",
    "xbn",
    "axbn",
    "pc_xbn",
    "sc_xbn",
    "delayed_xbn",
    "centre_xbn",
    "scaled_xbn",
    "oracle_xbm",  # beyond the sources, last: the sources' cells keep their order and ids
)
VARIANTS: tuple[str, ...] = tuple(n for n in _ORDER if n in registered()) + tuple(
    n for n in registered() if n not in _ORDER
)

DROP_IN_VARIANTS: tuple[str, ...] = tuple(v for v in VARIANTS if not get_variant(v).TRAINER_ONLY)
SOURCED_VARIANTS: tuple[str, ...] = tuple(v for v in VARIANTS if not get_variant(v).BEYOND_SOURCES)

__all__ = [
    "DROP_IN_VARIANTS",
    "SOURCED_VARIANTS",
    "VARIANTS",
    "MemoryBase",
    "build",
    "get_variant",
    "variant_options",
]
