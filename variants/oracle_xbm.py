"""Oracle XBM: beyond the sources: the upper bound of drift correction; needs the trainer.

Every ``refresh_interval`` steps, before the step's adaptation and enqueue, the stored entries
are replaced by fresh embeddings of their images under the current model: with
``refresh_interval=1`` the memory is never stale, so its gap to ``xbm`` is what staleness costs
and no adaptation of the memory (XBN and its kin) can do better than it. The re-embedding needs
the images, which only the trainer has: it sets ``memory.reembed`` to a function of the memory
that returns the fresh embeddings of ``index_memory[:num_stored]`` (with ``key_memory``'s
augmentation draws) in storage order. Neither the paper nor the thesis has this variant.

The refresh runs when ``enqueue_count % refresh_interval == 0`` and entries are stored: with
interval 3, before the 4th, 7th, 10th ... enqueue. It replaces the raw copy too (``track_raw``),
so the oracle's adaptation gain is 1 by construction; ``adapted_this_step`` says a refresh ran.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .base import MemoryBase
from .options import Option
from .registry import register


@register("oracle_xbm")
class OracleXBM(MemoryBase):
    """XBM whose stored entries are re-embedded with the current model (``memory.reembed``)."""

    TITLE = "oracle XBM"
    COLOUR = "#663333"
    MARKER = "p"
    TRAINER_ONLY = True
    BEYOND_SOURCES = True
    OPTIONS = {
        "refresh_interval": Option(
            int, 1, ge=1, why="enqueue steps between re-embeddings; 1: never stale"
        )
    }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.refresh_interval < 1:
            raise ValueError(f"refresh_interval must be >= 1, got {self.refresh_interval}")
        # set by the trainer: memory -> (num_stored, embedding_size) fresh embeddings
        self.reembed: Callable[[MemoryBase], torch.Tensor] | None = None

    def refresh(self) -> bool:
        if self.reembed is None:
            raise RuntimeError(
                "oracle_xbm re-embeds the stored entries from their images, so it needs the "
                "trainer (xbmbench bench/reproduce) to set memory.reembed; it is no drop-in "
                "PML loss"
            )
        n = self.num_stored
        if n == 0 or self.enqueue_count % self.refresh_interval:
            return False
        unknown = int((self.index_memory[:n] < 0).sum())
        if unknown:
            raise ValueError(
                f"oracle_xbm re-embeds stored entries by their image index; {unknown} of the "
                f"{n} stored entries have none (enqueued without indices=)"
            )
        with torch.no_grad():
            fresh = self.reembed(self)
        if tuple(fresh.shape) != (n, self.embedding_size):
            raise ValueError(
                f"memory.reembed must return shape ({n}, {self.embedding_size}), "
                f"got {tuple(fresh.shape)}"
            )
        view = self.embedding_memory[:n]
        view.copy_(fresh.detach().to(view.device, view.dtype))
        if self.tracks_raw:
            self.raw_memory[:n] = view
        return True
