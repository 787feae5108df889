"""XBM: the plain cross-batch memory, no adaptation; equal to PML's CrossBatchMemory."""

from .base import MemoryBase
from .registry import register


@register("xbm")
class XBM(MemoryBase):
    """The XBN paper's "XBM": PML's memory-only loss (not the official code's batch + memory)."""

    TITLE = "XBM"
    COLOUR = "#8c8c8c"
    MARKER = "o"
