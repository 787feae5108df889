"""The losses and optimisers a RunConfig can name (``cfg.loss``, ``cfg.optimizer``), by name.

Both tasks build from here, so a name in config.json is the thing that ran. The warm-up's SGD is
not listed: it is the protocol's own (head only, ``warmup_lr``), whatever ``cfg.optimizer`` says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from pytorch_metric_learning.losses import SupConLoss
from pytorch_metric_learning.miners import PairMarginMiner

import variants
from bench.config import RunConfig
from common import UserError

LOSSES: dict[str, Callable[[RunConfig], Any]] = {
    "supcon": lambda cfg: SupConLoss(temperature=cfg.temperature),  # cosine similarity
}

OPTIMIZERS: dict[str, Callable[[Iterable, RunConfig], torch.optim.Optimizer]] = {
    "adamw": lambda params, cfg: torch.optim.AdamW(
        params, lr=cfg.lr, weight_decay=cfg.weight_decay
    ),
    "sgd": lambda params, cfg: torch.optim.SGD(  # MoCo's (PML's example): momentum 0.9
        params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay
    ),
}


def _lookup(kind: str, table: dict[str, Any], name: str) -> Any:
    if name not in table:
        raise UserError(f"unknown {kind} {name!r}; valid: {', '.join(sorted(table))}")
    return table[name]


def build_loss(cfg: RunConfig):
    return _lookup("loss", LOSSES, cfg.loss)(cfg)


def build_optimizer(cfg: RunConfig, params: Iterable) -> torch.optim.Optimizer:
    return _lookup("optimizer", OPTIMIZERS, cfg.optimizer)(params, cfg)


def build_miner(cfg: RunConfig) -> PairMarginMiner:
    """Euclidean margins on unit vectors; a variant converts them for its ``miner_distance``."""
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
