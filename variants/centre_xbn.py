"""Centre XBN: shift the memory's mean onto the batch's, no rescaling (thesis eq. 4.5)."""

from .base import MemoryBase
from .registry import register


@register("centre_xbn")
class CentreXBN(MemoryBase):
    TITLE = "Centre XBN"
    FAMILY = "normalised memory"
    COLOUR = "#cc79a7"
    MARKER = ">"
    NORMALISING = True

    def adapt(
        self, memory, memory_labels, batch, batch_labels, memory_superclasses, batch_superclasses
    ):
        return memory.add_(batch.mean(dim=0) - memory.mean(dim=0))  # thesis eq. 4.5, in place
