"""Every memory variant, imported (which registers it) and listed in the papers' order.

``VARIANTS``: every registered variant; ``DROP_IN_VARIANTS``: those that work as a PML loss
alone (``oracle_xbm`` needs the trainer's ``memory.reembed``: ``TRAINER_ONLY``);
``SOURCED_VARIANTS``: those the paper or the thesis describe (not ``BEYOND_SOURCES``). The package
(``variants/__init__.py``) imports this module on first use of any of its names.
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
from .options import Option
from .registry import build, get_variant, option_specs, registered, variant_options

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
    "Option",
    "build",
    "get_variant",
    "option_specs",
    "registered",
    "variant_options",
]
