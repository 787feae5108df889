"""PC-XBN and SC-XBN against a plain per-class loop written from thesis eq. 4.3 / 4.4."""

import pytest
import torch
from pytorch_metric_learning.losses import SupConLoss

import variants


def _mean_std(rows):
    m = sum(rows) / len(rows)
    v = sum((r - m) ** 2 for r in rows) / len(rows)
    return m, v.sqrt()


def reference(R, gR, B, gB, lm, ls, normalize_absent):
    """One row at a time, one class at a time: the rule of thesis 4.3.1 read literally."""
    out = R.clone()
    mu_b, sd_b = _mean_std(list(B))
    mu_r, sd_r = _mean_std(list(R))
    for i in range(len(R)):
        c = int(gR[i])
        Ri = [R[j] for j in range(len(R)) if int(gR[j]) == c]
        Bi = [B[j] for j in range(len(B)) if int(gB[j]) == c]
        if len(Ri) > 1 and len(Bi) > 1:
            m_ri, s_ri = _mean_std(Ri)
            m_bi, s_bi = _mean_std(Bi)
            out[i] = (R[i] - m_ri) / s_ri.clamp_min(1e-8) * (ls * sd_b + (1 - ls) * s_bi) + (
                lm * mu_b + (1 - lm) * m_bi
            )
        elif normalize_absent:
            out[i] = (R[i] - mu_r) / sd_r.clamp_min(1e-8) * sd_b + mu_b
    return out


def _case(seed=0):
    g = torch.Generator().manual_seed(seed)
    # memory: class 0 x4, class 1 x3, class 2 x1 (singleton), class 3 x2, class 4 x2, class 7 x3
    gR = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 3, 3, 4, 4, 7, 7, 7])
    # batch: class 0 x3, class 1 x1 (single in batch), class 2 x2, class 4 x2, class 5 x2 (new)
    gB = torch.tensor([0, 0, 0, 1, 2, 2, 4, 4, 5, 5])
    R = torch.randn(len(gR), 6, generator=g)
    B = torch.randn(len(gB), 6, generator=g) * 0.5 + 0.3
    return R, gR, B, gB


@pytest.mark.parametrize("normalize_absent", [True, False])
@pytest.mark.parametrize("lm,ls", [(0.5, 1.0), (0.0, 0.0), (0.6, 0.3), (1.0, 1.0)])
def test_pc_xbn_matches_loop(lm, ls, normalize_absent):
    R, gR, B, gB = _case()
    mem = variants.build(
        "pc_xbn",
        SupConLoss(),
        6,
        32,
        lambda_mu=lm,
        lambda_sigma=ls,
        normalize_absent=normalize_absent,
    )
    got = mem.adapt(R.clone(), gR, B, gB, None, None)
    want = reference(R, gR, B, gB, lm, ls, normalize_absent)
    assert torch.allclose(got, want, atol=1e-5)
    # the rules are exercised: classes 0 and 4 are per-class, the rest fall back
    per_class = torch.isin(gR, torch.tensor([0, 4]))
    if not normalize_absent:
        assert torch.equal(got[~per_class], R[~per_class])


def test_sc_xbn_groups_by_superclass_through_the_module():
    R, gR, B, gB = _case(1)
    sR, sB = gR // 2, gB // 2  # superclasses
    mem = variants.build("sc_xbn", SupConLoss(), 6, 15)
    mem.enqueue(R, gR, sR)
    assert torch.equal(mem.superclass_memory, sR)
    mem(B, gB, superclasses=sB)
    want = reference(R, sR, B, sB, 0.5, 1.0, True)
    n_new = len(B)  # the batch overwrote the oldest n_new rows
    assert torch.allclose(mem.embedding_memory[n_new:], want[n_new:], atol=1e-5)
    assert torch.equal(mem.superclass_memory[:n_new], sB)


def test_pc_xbn_through_the_module_equals_loop():
    R, gR, B, gB = _case(2)
    mem = variants.build("pc_xbn", SupConLoss(), 6, 40)
    mem.enqueue(R, gR)
    mem(B, gB)
    want = reference(R, gR, B, gB, 0.5, 1.0, True)
    assert torch.allclose(mem.embedding_memory[: len(R)], want, atol=1e-5)
