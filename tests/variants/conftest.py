"""Shared builders for the variant tests: class-structured embeddings and PML's pipeline."""

from __future__ import annotations

import pytest
import torch
from pytorch_metric_learning.losses import SupConLoss
from pytorch_metric_learning.miners import PairMarginMiner

import variants


def make_loss_miner():
    # the paper's pipeline: SupConLoss (cosine), PairMarginMiner(0.2, 0.8) with PML's LpDistance
    return SupConLoss(), PairMarginMiner(pos_margin=0.2, neg_margin=0.8)


def still_model(mem) -> torch.Tensor:
    """A trainer's ``reembed`` for a model that does not change: each stored image's fresh
    embedding is the one it was enqueued with."""
    return mem.raw_view().clone()


def build_any(name, *args, **kwargs):
    """``variants.build``, and a TRAINER_ONLY variant gets the trainer's re-embedding of a model
    that does not change (``still_model``), so registry-wide tests can run its forward. Its
    forwards need ``indices=`` (the oracle refuses entries without an image)."""
    mem = variants.build(name, *args, **kwargs)
    if mem.TRAINER_ONLY:
        mem.reembed = still_model
    return mem


def batch_indices(step: int, batch: int) -> torch.Tensor:
    """Image positions for the ``step``-th batch of ``batch`` images: every image new."""
    return torch.arange(step * batch, (step + 1) * batch)


class StepStream:
    """Deterministic batches: unit embeddings around drifting class centres, so that the miner
    finds positive and negative pairs and the memory has something to adapt to."""

    def __init__(self, dim=16, n_classes=6, batch=12, per_class=3, seed=0, spread=0.12):
        self.g = torch.Generator().manual_seed(seed)
        self.dim, self.batch, self.per_class, self.spread = dim, batch, per_class, spread
        self.n_classes = n_classes
        # class centres near one another, as trained embeddings sit on a cap of the sphere:
        # some negatives fall inside the 0.8 margin, some positives outside 0.2
        common = torch.randn(dim, generator=self.g)
        common = common / common.norm()
        self.centres = torch.nn.functional.normalize(
            common + 0.3 * torch.randn(n_classes, dim, generator=self.g), dim=1
        )
        self.step = 0

    def __call__(self):
        k = self.batch // self.per_class
        classes = torch.randperm(self.n_classes, generator=self.g)[:k]
        labels = classes.repeat_interleave(self.per_class)
        drift = (
            0.05 * self.step * torch.ones(self.dim) / self.dim**0.5
        )  # a slow shift of all embeddings
        x = (
            self.centres[labels]
            + self.spread * torch.randn(len(labels), self.dim, generator=self.g)
            + drift
        )
        self.step += 1
        return (
            torch.nn.functional.normalize(x, dim=1),
            labels,
            labels % 3,
        )  # superclass = label mod 3


@pytest.fixture
def stream():
    return StepStream()
