"""The ``miner_distance`` option: one PairMarginMiner, three distances, margins converted.

- ``euclidean``: PML's default ``LpDistance(normalize_embeddings=True)``, what the XBN paper used.
  It L2-normalises both sides, so the miner never sees a non-unit memory entry.
- ``euclidean_raw``: ``LpDistance(normalize_embeddings=False)``; the only pipeline in which the
  miner sees the norm of adapted (non-unit) memory entries, as the thesis' explanation of
  scaled XBN assumes.
- ``cosine``: ``CosineSimilarity`` (the thesis' proposed fix). PML inverts the margins' meaning
  for a similarity, so Euclidean margins d are converted to similarities s = 1 - d^2 / 2
  (unit vectors): 0.2/0.8 become 0.98/0.68. On unit vectors this mines exactly the pairs that
  ``euclidean`` mines.
"""

from __future__ import annotations

import math

from pytorch_metric_learning.distances import CosineSimilarity, LpDistance
from pytorch_metric_learning.miners import PairMarginMiner

from .options import MINER_DISTANCES


def _euclidean_margins(miner: PairMarginMiner) -> tuple[float, float]:
    dist = miner.distance
    if isinstance(dist, CosineSimilarity):
        # s = 1 - d^2/2  <=>  d = sqrt(2 - 2s)
        return (
            math.sqrt(max(0.0, 2 - 2 * miner.pos_margin)),
            math.sqrt(max(0.0, 2 - 2 * miner.neg_margin)),
        )
    if isinstance(dist, LpDistance) and dist.p == 2 and dist.power == 1:
        return miner.pos_margin, miner.neg_margin
    raise ValueError(
        f"miner_distance needs a PairMarginMiner with LpDistance(p=2) or CosineSimilarity, "
        f"got {type(dist).__name__}"
    )


def convert_miner(miner, distance: str) -> PairMarginMiner:
    """A PairMarginMiner equivalent to ``miner`` under ``distance`` (margins converted)."""
    if not isinstance(miner, PairMarginMiner):
        raise ValueError(
            f"miner_distance={distance!r} applies to a PairMarginMiner, got {type(miner).__name__}"
        )
    pos, neg = _euclidean_margins(miner)
    if distance == "cosine":
        return PairMarginMiner(
            pos_margin=1 - pos**2 / 2, neg_margin=1 - neg**2 / 2, distance=CosineSimilarity()
        )
    if distance == "euclidean":
        return PairMarginMiner(pos_margin=pos, neg_margin=neg, distance=LpDistance())
    if distance == "euclidean_raw":
        return PairMarginMiner(
            pos_margin=pos, neg_margin=neg, distance=LpDistance(normalize_embeddings=False)
        )
    raise ValueError(
        f"miner_distance must be one of {', '.join(MINER_DISTANCES)}, got {distance!r}"
    )
