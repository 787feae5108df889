"""A timm backbone with a linear embedding head, L2-normalised (heads of paper table 3)."""

from __future__ import annotations

import os

import timm
import torch
import torch.nn.functional as F
from torch import nn

from common import UserError

HEADS = ("l2", "l2_bn", "l2_ln")


class EmbeddingNet(nn.Module):
    """backbone -> linear -> L2 normalise [-> BatchNorm | LayerNorm] (paper table 3)."""

    def __init__(self, backbone: nn.Module, embedding_size: int, head: str = "l2") -> None:
        super().__init__()
        if head not in HEADS:
            raise UserError(f"unknown head {head!r}; valid heads: {', '.join(HEADS)}")
        self.backbone = backbone
        self.head = nn.Linear(backbone.num_features, embedding_size)
        self.head_kind = head
        self.post = {
            "l2": nn.Identity(),
            "l2_bn": nn.BatchNorm1d(embedding_size),
            "l2_ln": nn.LayerNorm(embedding_size),
        }[head]

    def head_parameters(self):
        return list(self.head.parameters()) + list(self.post.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(F.normalize(self.head(self.backbone(x)), dim=1))


def cached_weights(model: str) -> str | None:
    """The path of ``model``'s pretrained weights in timm's local caches (Hugging Face hub cache
    or torch hub checkpoints), or None. Never touches the network."""
    cfg = timm.models.get_pretrained_cfg(model)
    if cfg is None:
        return None
    hub_id = getattr(cfg, "hf_hub_id", None)
    if hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo, _, revision = hub_id.partition("@")
        for name in ("model.safetensors", "pytorch_model.bin"):
            path = try_to_load_from_cache(repo, name, revision=revision or None)
            if isinstance(path, str) and os.path.isfile(path):
                return path
    url = getattr(cfg, "url", None)
    if url:
        path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))
        if os.path.isfile(path):
            return path
    return None


def build_backbone(
    model: str, in_chans: int, pretrained: bool, pretrained_file: str | None
) -> nn.Module:
    """A timm model without classifier. Pretrained weights come from ``pretrained_file`` or
    timm's local cache; nothing is downloaded, and missing weights are a clear error rather
    than a silent random initialisation."""
    if model not in timm.list_models() and model not in timm.list_models(pretrained=True):
        raise UserError(f"unknown timm model {model!r}")
    if not pretrained:
        return timm.create_model(model, pretrained=False, num_classes=0, in_chans=in_chans)
    if pretrained_file is not None:
        if not os.path.isfile(pretrained_file):
            raise UserError(f"pretrained weights file not found: {pretrained_file}")
        path = pretrained_file
    else:
        path = cached_weights(model)
        if path is None:
            raise UserError(
                f"pretrained weights for {model!r} are not in timm's cache and no "
                f"--pretrained-file was given (nothing is downloaded at run time)"
            )
    return timm.create_model(
        model,
        pretrained=True,
        num_classes=0,
        in_chans=in_chans,
        pretrained_cfg_overlay=dict(file=path),
    )


def build_model(
    model: str,
    embedding_size: int,
    head: str,
    in_chans: int = 3,
    pretrained: bool = False,
    pretrained_file: str | None = None,
) -> EmbeddingNet:
    backbone = build_backbone(model, in_chans, pretrained, pretrained_file)
    return EmbeddingNet(backbone, embedding_size, head)
