"""The trained network is stock timm: build_model's backbone is timm.create_model's, module for
module and value for value, with only the embedding head (paper table 3) added on top."""

from __future__ import annotations

import timm
import torch
import torch.nn.functional as F

from bench.engine.model import build_model


def test_the_backbone_is_timms_own_model():
    torch.manual_seed(0)
    ours = build_model("test_resnet", 16, "l2", 1)
    torch.manual_seed(0)
    stock = timm.create_model("test_resnet", pretrained=False, num_classes=0, in_chans=1)
    # no module of the backbone comes from this project: every class is timm's or torch's
    kinds = {type(m).__module__.split(".")[0] for m in ours.backbone.modules()}
    assert kinds <= {"timm", "torch"}, kinds
    assert [type(m) for m in ours.backbone.modules()] == [type(m) for m in stock.modules()]
    a, b = ours.backbone.state_dict(), stock.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_embedding_is_the_normalised_head_of_timms_features():
    torch.manual_seed(0)
    ours = build_model("test_resnet", 16, "l2", 1).eval()
    x = torch.randn(6, 1, 28, 28)
    with torch.no_grad():
        features = ours.backbone.forward_head(ours.backbone.forward_features(x))
        expected = F.normalize(features @ ours.head.weight.T + ours.head.bias, dim=1)
        assert torch.allclose(ours(x), expected, atol=1e-6)
    assert torch.allclose(ours(x).norm(dim=1), torch.ones(6), atol=1e-6)
