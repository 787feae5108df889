"""Scaled XBN: XBN, then every adapted entry rescaled to unit L2 norm (thesis 4.3.5).

Under PML's default, normalising distances (LpDistance(normalize_embeddings=True),
CosineSimilarity) the rescale cannot change the pairs mined or the loss of the step in which it
happens; it changes only what is stored, and through it the statistics of later steps. The
miner sees the norms only with ``miner_distance="euclidean_raw"``.
"""

from .registry import register
from .stats import EPS
from .xbn import XBN


@register("scaled_xbn")
class ScaledXBN(XBN):
    TITLE = "Scaled XBN"
    COLOUR = "#d55e00"
    MARKER = "D"

    def adapt(
        self, memory, memory_labels, batch, batch_labels, memory_superclasses, batch_superclasses
    ):
        adapted = super().adapt(
            memory, memory_labels, batch, batch_labels, memory_superclasses, batch_superclasses
        )
        return adapted.div_(adapted.norm(dim=1, keepdim=True).clamp_min(EPS))  # thesis 4.3.5
