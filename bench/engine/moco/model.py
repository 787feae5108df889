"""MoCo's two encoders, split BatchNorm, the momentum update and the queue (bench/engine/moco)."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from pytorch_metric_learning.losses import NTXentLoss
from torch import nn

from bench.config import RunConfig
from bench.engine.model import build_model
from bench.engine.registry import build_variant


# ----- the two encoders ------------------------------------------------------------------------
class SplitBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose training statistics come from ``splits`` interleaved sub-batches (as if
    the batch were spread over that many devices); running statistics are their average."""

    splits = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.splits == 1:
            return super().forward(x)
        n, c, h, w = x.shape
        s = self.splits
        mean, var = self.running_mean.repeat(s), self.running_var.repeat(s)
        out = F.batch_norm(
            x.reshape(-1, c * s, h, w),
            mean,
            var,
            self.weight.repeat(s),
            self.bias.repeat(s),
            True,
            self.momentum,
            self.eps,
        )
        self.running_mean.copy_(mean.view(s, c).mean(0))
        self.running_var.copy_(var.view(s, c).mean(0))
        return out.view(n, c, h, w)


def split_batchnorm(model: nn.Module, splits: int) -> nn.Module:
    """Turn every BatchNorm2d of ``model`` into a SplitBatchNorm2d (weights kept), in place."""
    for module in model.modules():
        if type(module) is nn.BatchNorm2d:
            module.__class__ = SplitBatchNorm2d
            module.splits = splits
    return model


def cifar_stem(backbone: nn.Module, image_size: int) -> str:
    """Small images: a timm ResNet's 7x7/2 conv and max-pool become 3x3/1 and identity."""
    conv = getattr(backbone, "conv1", None)
    if image_size > 64 or not isinstance(conv, nn.Conv2d) or conv.kernel_size != (7, 7):
        return "timm default"
    backbone.conv1 = nn.Conv2d(conv.in_channels, conv.out_channels, 3, 1, 1, bias=False)
    backbone.maxpool = nn.Identity()
    return "cifar (conv1 3x3 stride 1, no max-pool)"


def build_encoders(cfg: RunConfig, in_chans: int) -> tuple[nn.Module, nn.Module, str]:
    query = build_model(
        cfg.model, cfg.embedding_size, cfg.head, in_chans, cfg.pretrained, cfg.pretrained_file
    )
    stem = cifar_stem(query.backbone, cfg.image_size)
    split_batchnorm(query, cfg.moco_bn_splits)
    key = copy.deepcopy(query)  # starts equal to the query encoder
    for p in key.parameters():
        p.requires_grad_(False)
    return query, key, stem


@torch.no_grad()
def momentum_update(key: nn.Module, query: nn.Module, m: float) -> None:
    """key = m * key + (1 - m) * query, parameter by parameter (MoCo eq. 2); buffers untouched."""
    for pk, pq in zip(key.parameters(), query.parameters()):
        pk.mul_(m).add_(pq.detach(), alpha=1 - m)


def build_queue(cfg: RunConfig, n_train: int):
    """The variant over PML's NTXentLoss; the queue is memory_ratio x the training set."""
    return build_variant(cfg, NTXentLoss(temperature=cfg.temperature), None, n_train)
