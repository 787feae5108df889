"""The losses and optimisers a RunConfig can name (``cfg.loss``, ``cfg.optimizer``), by name.

Both tasks build from here, so a name in config.json is the thing that ran. The warm-up's SGD is
not listed: it is the protocol's own (head only, ``warmup_lr``), whatever ``cfg.optimizer`` says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from pytorch_metric_learning.distances import CosineSimilarity
from pytorch_metric_learning.losses import ContrastiveLoss, SupConLoss
from pytorch_metric_learning.miners import PairMarginMiner
from pytorch_metric_learning.reducers import SumReducer

import variants
from bench import choices
from bench.config import RunConfig
from common import UserError


class BatchSumReducer(SumReducer):
    """The sum of the per-pair losses divided by the number of anchors (the batch size), as
    msight-tech/research-xbm's ContrastiveLoss reduces: ``sum(loss) / n``. PML calls a reducer
    per sub-loss (positives, negatives) and adds the two, so each is divided here."""

    def element_reduction(self, losses, loss_indices, embeddings, labels):
        return torch.sum(losses) / len(embeddings)


# The official XBM objective (msight-tech/research-xbm, losses/contrastive_loss.py), on cosine
# similarity s of L2-normalised embeddings: a positive pair (same label) with s < 1 - 1e-5
# contributes 1 - s, a negative pair with s > 0.5 contributes s (no hinge: the whole
# similarity), summed over pairs and divided by the batch size. PML's ContrastiveLoss with a
# similarity computes relu(pos_margin - s) and relu(s - neg_margin): pos_margin 1 and
# neg_margin 0 give 1 - s and s on the mined pairs (s > 0.5 > 0). The selection is the miner's.
XBM_POS_BELOW = 1 - 1e-5  # the official epsilon: a positive as similar as itself is not one
XBM_NEG_ABOVE = 0.5  # the official ``self.margin``


def xbm_contrastive_loss() -> ContrastiveLoss:
    return ContrastiveLoss(
        pos_margin=1.0, neg_margin=0.0, distance=CosineSimilarity(), reducer=BatchSumReducer()
    )


def xbm_contrastive_miner() -> PairMarginMiner:
    """PairMarginMiner with a similarity keeps positives below pos_margin and negatives above
    neg_margin: exactly the official selection."""
    return PairMarginMiner(
        pos_margin=XBM_POS_BELOW, neg_margin=XBM_NEG_ABOVE, distance=CosineSimilarity()
    )


LOSSES: dict[str, Callable[[RunConfig], Any]] = {
    "supcon": lambda cfg: SupConLoss(temperature=cfg.temperature),  # cosine similarity
    # the official XBM objective; train it with xbm_star (batch + memory loss, as its authors)
    "xbm_contrastive": lambda cfg: xbm_contrastive_loss(),
}

# a loss that comes with its own pair selection; every other loss uses the config's margins
LOSS_MINERS: dict[str, Callable[[], PairMarginMiner]] = {
    "xbm_contrastive": xbm_contrastive_miner,
}

OPTIMIZERS: dict[str, Callable[[Iterable, RunConfig], torch.optim.Optimizer]] = {
    "adamw": lambda params, cfg: torch.optim.AdamW(
        params, lr=cfg.lr, weight_decay=cfg.weight_decay
    ),
    "sgd": lambda params, cfg: torch.optim.SGD(  # MoCo's (PML's example): momentum 0.9
        params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay
    ),
}


# the builders of the names bench/choices.py declares: a declared name without one fails here, at
# import, not in the middle of a grid
for _kind, _declared, _table in (
    ("loss", choices.LOSSES, LOSSES),
    ("optimizer", choices.OPTIMIZERS, OPTIMIZERS),
):
    if tuple(_table) != _declared:
        raise ImportError(f"{_kind} builders {tuple(_table)} differ from bench.choices {_declared}")


def _lookup(kind: str, table: dict[str, Any], name: str) -> Any:
    if name not in table:
        raise UserError(f"unknown {kind} {name!r}; valid: {', '.join(sorted(table))}")
    return table[name]


def build_loss(cfg: RunConfig):
    return _lookup("loss", LOSSES, cfg.loss)(cfg)


def build_optimizer(cfg: RunConfig, params: Iterable) -> torch.optim.Optimizer:
    return _lookup("optimizer", OPTIMIZERS, cfg.optimizer)(params, cfg)


def build_miner(cfg: RunConfig) -> PairMarginMiner:
    """Euclidean margins on unit vectors; a variant converts them for its ``miner_distance``.

    ``xbm_contrastive`` brings the official selection instead (cosine: positives below
    1 - 1e-5, negatives above 0.5) and ignores ``pos_margin``/``neg_margin``. A variant's
    ``miner_distance`` converts it too (``euclidean``: d > sqrt(2e-5), d < 1), which on the
    unit vectors every distance here compares is the same selection.
    """
    if cfg.loss in LOSS_MINERS:
        return LOSS_MINERS[cfg.loss]()
    return PairMarginMiner(pos_margin=cfg.pos_margin, neg_margin=cfg.neg_margin)


def build_variant(cfg: RunConfig, loss, miner, n_train: int, **defaults: Any):
    """``cfg.variant`` over ``loss``, memory_ratio x the training set (at least a batch).

    ``defaults`` are options the engine derives from config fields; ``cfg.options`` (``--opt``)
    override them, so one value of each reaches the variant, never two.
    """
    size = max(cfg.batch_size, int(round(cfg.memory_ratio * n_train)))
    try:
        return variants.build(
            cfg.variant, loss, cfg.embedding_size, size, miner, **{**defaults, **cfg.options}
        )
    except ValueError as e:  # an unknown option or a bad value: the user's input
        raise UserError(f"variant {cfg.variant!r}: {e}") from None
