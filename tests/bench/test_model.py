"""ExactMaxPool2d (bench/engine/model.py) against torch's own max-pool, value for value."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.engine.model import ExactMaxPool2d, build_model, exact_max_pools


def _cases():
    g = torch.Generator().manual_seed(0)
    relu = torch.relu(torch.randn(70, 5, 14, 14, generator=g))  # many tied zeros, 3 chunks
    ties = torch.randint(0, 3, (9, 4, 13, 11), generator=g).float()  # ties everywhere, odd sizes
    special = torch.randn(3, 2, 9, 9, generator=g)
    special[0, 0, 2, 3] = float("nan")
    special[1, 1, :4, :4] = float("-inf")
    special[2, 0, 5, 5] = float("inf")
    return [relu, ties, special]


@pytest.mark.parametrize("x", _cases())
@pytest.mark.parametrize(
    "kernel,stride,padding", [(3, 2, 1), (2, 2, 0), (3, 1, 1), ((3, 2), (2, 1), (1, 0))]
)
def test_equals_torch_max_pool_bit_for_bit(x, kernel, stride, padding):
    want = F.max_pool2d(x, kernel, stride, padding)
    with torch.no_grad():
        got = ExactMaxPool2d(kernel, stride, padding)(x)
    assert got.shape == want.shape
    assert torch.equal(got.isnan(), want.isnan())
    assert torch.equal(torch.nan_to_num(got), torch.nan_to_num(want))


def test_with_autograd_it_is_torch_max_pool_gradients_included():
    x = torch.randint(0, 3, (4, 2, 8, 8)).float().requires_grad_()
    y = x.detach().clone().requires_grad_()
    ExactMaxPool2d(3, 2, 1)(x).sum().backward()
    F.max_pool2d(y, 3, 2, 1).sum().backward()
    assert torch.equal(x.grad, y.grad)


def test_the_model_gives_the_same_embeddings_and_gradients():
    """build_model's backbone with its pools replaced against the same weights with timm's own
    pools: eval-mode embeddings equal, and one training step's gradients equal."""
    torch.manual_seed(0)
    ours = build_model("test_resnet", 16, "l2", 1)
    assert any(isinstance(m, ExactMaxPool2d) for m in ours.modules())
    plain = copy.deepcopy(ours)
    for name, m in list(plain.backbone.named_modules()):
        if isinstance(m, ExactMaxPool2d):
            parent = (
                plain.backbone.get_submodule(name.rpartition(".")[0])
                if "." in name
                else plain.backbone
            )
            setattr(
                parent, name.rpartition(".")[2], nn.MaxPool2d(m.kernel_size, m.stride, m.padding)
            )
    assert not any(isinstance(m, ExactMaxPool2d) for m in plain.modules())
    x = torch.randn(50, 1, 28, 28)
    ours.eval(), plain.eval()
    with torch.no_grad():
        assert torch.equal(ours(x), plain(x))
    ours.train(), plain.train()
    ours(x[:20]).pow(2).sum().backward()
    plain(x[:20]).pow(2).sum().backward()
    for a, b in zip(ours.parameters(), plain.parameters()):
        assert torch.equal(a.grad, b.grad)


def test_only_plain_pools_are_replaced():
    net = nn.Sequential(
        nn.MaxPool2d(3, 2, 1),
        nn.Sequential(nn.MaxPool2d(2, ceil_mode=True), nn.MaxPool2d(2, return_indices=True)),
        nn.MaxPool2d(3, dilation=2),
    )
    exact_max_pools(net)
    assert isinstance(net[0], ExactMaxPool2d)
    assert [type(m) for m in (net[1][0], net[1][1], net[2])] == [nn.MaxPool2d] * 3
