"""A timm backbone with a linear embedding head, L2-normalised (heads of paper table 3)."""

from __future__ import annotations

import os
from typing import Any

import timm
import torch
import torch.nn.functional as F
from torch import nn

from bench.choices import HEADS
from common import UserError


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


# weights for a pretrained cell whose config names no file (``reproduce --pretrained-file``, set
# in each job's environment by bench/launch/cell.py): where they live is not part of the run id
PRETRAINED_ENV = "XBMBENCH_PRETRAINED_FILE"


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
    pretrained_file = pretrained_file or os.environ.get(PRETRAINED_ENV) or None
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
    state = _read_weights(path)
    try:
        net = timm.create_model(
            model,
            pretrained=True,
            num_classes=0,
            in_chans=in_chans,
            pretrained_cfg_overlay=dict(file=path),
        )
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise UserError(f"pretrained weights {path} do not fit model {model!r}: {e}") from None
    # timm loads a headless model with strict=False: a weight missing from the file would stay
    # randomly initialised without a word, which a benchmark must never let pass
    wanted = [k for k in net.state_dict() if not k.endswith("num_batches_tracked")]
    missing = [k for k in wanted if k not in state]
    if missing:
        raise UserError(
            f"pretrained weights {path} hold {len(wanted) - len(missing)} of the {len(wanted)} "
            f"weights of model {model!r} (missing e.g. {', '.join(missing[:3])}): not a "
            f"checkpoint of this model"
        )
    return net


def _read_weights(path: str) -> dict[str, Any]:
    """The state dict in ``path`` as timm reads it (safetensors or torch.load with
    weights_only, unwrapped from 'state_dict'/'model'); a UserError naming the file and why."""
    from timm.models import load_state_dict

    try:
        state = load_state_dict(path)
    except Exception as e:  # torch.load, pickle and safetensors each raise their own types
        why = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        raise UserError(
            f"pretrained weights {path} cannot be read as a checkpoint ({why})"
        ) from None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise UserError(f"pretrained weights {path} do not hold a state dict of tensors")
    return state


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
