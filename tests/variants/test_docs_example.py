"""The example variant of docs/adding-a-variant.md works as the page says: registered under its
name, built like PML's CrossBatchMemory, its option checked, and its adaptation equal to a plain
per-dimension computation (mean and population std by loops)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from pytorch_metric_learning.losses import ContrastiveLoss

from variants import registry

PAGE = Path(__file__).resolve().parents[2] / "docs" / "adding-a-variant.md"


@pytest.fixture
def example():
    code = re.search(r"```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    code = code.replace("from .", "from variants.")  # the page's module lives in variants/
    scope: dict = {"__name__": "variants.shrunk_xbn"}
    exec(compile(code, str(PAGE), "exec"), scope)  # noqa: S102  (the documented module)
    yield scope["ShrunkXBN"]
    registry._REGISTRY.pop("shrunk_xbn", None)


def _plain(memory, batch, alpha):
    n, d = memory.shape
    out = [[0.0] * d for _ in range(n)]
    for j in range(d):
        col_m = [float(memory[i, j]) for i in range(n)]
        col_b = [float(batch[i, j]) for i in range(batch.shape[0])]
        mu_r, mu_b = sum(col_m) / n, sum(col_b) / len(col_b)
        sd_r = math.sqrt(sum((v - mu_r) ** 2 for v in col_m) / n)
        sd_b = math.sqrt(sum((v - mu_b) ** 2 for v in col_b) / len(col_b))
        for i in range(n):
            xbn = (col_m[i] - mu_r) / sd_r * sd_b + mu_b
            out[i][j] = col_m[i] + alpha * (xbn - col_m[i])
    return torch.tensor(out)


def test_the_documented_variant_registers_builds_and_adapts(example):
    assert registry.get_variant("shrunk_xbn") is example
    mem = registry.build("shrunk_xbn", loss=ContrastiveLoss(), embedding_size=4, memory_size=8,
                         alpha=0.25)  # fmt: skip
    assert mem.alpha == 0.25
    g = torch.Generator().manual_seed(0)
    memory, batch = torch.randn(6, 4, generator=g), torch.randn(5, 4, generator=g) * 2 + 1
    want = _plain(memory, batch, 0.25)
    got = mem.adapt(memory.clone(), None, batch, None, None, None)
    assert torch.allclose(got, want, atol=1e-5)
    loss = mem(torch.nn.functional.normalize(batch, dim=1), torch.tensor([0, 0, 1, 1, 2]))
    assert torch.isfinite(loss)


def test_its_option_is_checked_by_the_run_configuration(example):
    from bench.config import make_config
    from common import UserError

    cfg = make_config("omniglot-small", "shrunk_xbn", 0, "cpu", {"alpha": "0.75"})
    assert dict(cfg.variant_options) == {"alpha": 0.75}
    assert make_config("omniglot-small", "shrunk_xbn", 0, "cpu").variant_options == ()
    with pytest.raises(UserError, match="alpha"):
        make_config("omniglot-small", "shrunk_xbn", 0, "cpu", {"alpha": "2"})
