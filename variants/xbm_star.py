"""XBM*: memory loss plus minibatch loss, as the official XBM code trains (paper table 2)."""

from .base import MemoryBase, compute_dtype, minibatch_loss
from .options import Option
from .registry import register


@register("xbm_star")
class XBMStar(MemoryBase):
    """loss = minibatch loss + memory_weight x memory loss (the official XBM code's
    XBM.WEIGHT, msight-tech/research-xbm).

    Over the engine's ``loss="xbm_contrastive"`` (bench/engine/registry.py: cosine contrastive,
    positives 1 - s below 1 - 1e-5, negatives s above 0.5, sum / batch size) this is the original
    XBM as its authors trained it; over SupCon it is the XBN paper's XBM* (table 2)."""

    TITLE = "XBM*"
    COLOUR = "#56b4e9"
    MARKER = "P"

    OPTIONS = {
        "memory_weight": Option(
            float, 1.0, ge=0.0, why="< 0 ascends the memory loss; 0 leaves the minibatch loss"
        )
    }

    def forward(
        self,
        embeddings,
        labels,
        indices_tuple=None,
        enqueue_mask=None,
        superclasses=None,
        indices=None,
        keys=None,
    ):
        if enqueue_mask is not None:
            raise ValueError("xbm_star needs the whole batch as anchors; enqueue_mask must be None")
        memory_loss = super().forward(
            embeddings, labels, indices_tuple, None, superclasses, indices=indices, keys=keys
        )
        mined = self.last_mined
        batch_loss, _ = minibatch_loss(
            self.loss,
            self.miner,
            embeddings.to(compute_dtype(embeddings)),
            labels.to(embeddings.device),
        )
        self.last_mined = mined
        return batch_loss + self.memory_weight * memory_loss
