"""No-XBM: the loss of the minibatch against itself; the memory is never used."""

from .base import MemoryBase, _pair_counts, compute_dtype, minibatch_loss
from .registry import register


@register("no_xbm")
class NoXBM(MemoryBase):
    """Reference set = the batch. Keeps the memory attributes (empty) for a uniform interface."""

    TITLE = "no-XBM"
    FAMILY = "no memory"
    USES_MEMORY = False
    COLOUR = "#000000"
    MARKER = "s"

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
        """``indices``/``keys`` are accepted and unused: nothing is stored."""
        if enqueue_mask is not None:
            raise ValueError("no_xbm has no memory to enqueue into; enqueue_mask must be None")
        self._check(embeddings, labels, None, superclasses)
        self._check_sources(labels, indices, keys)
        labels = labels.to(embeddings.device)
        if indices_tuple is not None:
            self.last_mined = _pair_counts(indices_tuple)
            return self.loss(embeddings.to(compute_dtype(embeddings)), labels, indices_tuple)
        loss, pairs = minibatch_loss(
            self.loss, self.miner, embeddings.to(compute_dtype(embeddings)), labels
        )
        self.last_mined = _pair_counts(pairs)
        return loss
