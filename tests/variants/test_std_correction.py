"""``std_correction=1``: PC-XBN, SC-XBN and XBN with unbiased standard deviations, against a plain
per-class loop that calls ``torch.std(correction=1)`` on each class on its own."""

import pytest
import torch
from pytorch_metric_learning.losses import SupConLoss

import variants


def _unbiased(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return rows.mean(0), rows.std(0, correction=1)


def loop_reference(R, gR, B, gB, lm, ls, normalize_absent):
    """Thesis eq. 4.3 one row at a time, every std unbiased; a class with a single sample on either
    side (no unbiased std) takes the global XBN path, as with too few samples."""
    out = R.clone()
    mu_b, sd_b = _unbiased(B)
    mu_r, sd_r = _unbiased(R)
    for i in range(len(R)):
        c = int(gR[i])
        Ri, Bi = R[gR == c], B[gB == c]
        if len(Ri) > 1 and len(Bi) > 1:
            m_ri, s_ri = _unbiased(Ri)
            m_bi, s_bi = _unbiased(Bi)
            out[i] = (R[i] - m_ri) / s_ri.clamp_min(1e-8) * (ls * sd_b + (1 - ls) * s_bi) + (
                lm * mu_b + (1 - lm) * m_bi
            )
        elif normalize_absent:
            out[i] = (R[i] - mu_r) / sd_r.clamp_min(1e-8) * sd_b + mu_b
    return out


def _case(seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    # memory: class 0 x4, 1 x3, 2 x1 (singleton), 3 x2, 4 x2 (two-sample, in the batch too), 7 x3
    gR = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 3, 3, 4, 4, 7, 7, 7])
    # batch: class 0 x3, 1 x1 (singleton in the batch), 2 x2, 4 x2 (two-sample), 5 x2 (new)
    gB = torch.tensor([0, 0, 0, 1, 2, 2, 4, 4, 5, 5])
    R = torch.randn(len(gR), 6, generator=g, dtype=dtype)
    B = torch.randn(len(gB), 6, generator=g, dtype=dtype) * 0.5 + 0.3
    return R, gR, B, gB


@pytest.mark.parametrize("normalize_absent", [True, False])
@pytest.mark.parametrize("lm,ls", [(0.5, 1.0), (0.0, 0.0), (0.6, 0.3)])
def test_pc_xbn_unbiased_equals_per_class_loop(lm, ls, normalize_absent):
    R, gR, B, gB = _case()
    mem = variants.build(
        "pc_xbn",
        SupConLoss(),
        6,
        32,
        lambda_mu=lm,
        lambda_sigma=ls,
        normalize_absent=normalize_absent,
        std_correction=1,
    )
    got = mem.adapt(R.clone(), gR, B, gB, None, None)
    want = loop_reference(R, gR, B, gB, lm, ls, normalize_absent)
    assert torch.isfinite(got).all()
    assert torch.allclose(got, want, rtol=1e-10, atol=1e-10)
    # not vacuous: the conventions differ on class 0 (4 rows in R, 3 in B). On class 4 (2 and 2)
    # they differ only through the global std: with lambda_sigma = 0 the sqrt(2) cancels
    pop = variants.build(
        "pc_xbn", SupConLoss(), 6, 32, lambda_mu=lm, lambda_sigma=ls,
        normalize_absent=normalize_absent,
    ).adapt(R.clone(), gR, B, gB, None, None)  # fmt: skip
    assert not torch.allclose(got[gR == 0], pop[gR == 0], atol=1e-3)
    if ls > 0:
        assert not torch.allclose(got[gR == 4], pop[gR == 4], atol=1e-3)


def test_singletons_take_the_global_path_without_nan():
    """A class with one sample in the memory (2) or in the batch (1) has no unbiased std: it is
    adapted by global XBN (``normalize_absent``) or left alone, never divided by a NaN."""
    R, gR, B, gB = _case(3)
    for normalize_absent in (True, False):
        mem = variants.build(
            "pc_xbn", SupConLoss(), 6, 32, normalize_absent=normalize_absent, std_correction=1
        )
        got = mem.adapt(R.clone(), gR, B, gB, None, None)
        assert torch.isfinite(got).all()
        single = torch.isin(gR, torch.tensor([1, 2]))
        if normalize_absent:
            mu_r, sd_r = _unbiased(R)
            mu_b, sd_b = _unbiased(B)
            assert torch.allclose(got[single], (R[single] - mu_r) / sd_r * sd_b + mu_b)
        else:
            assert torch.equal(got[single], R[single])
    # a batch of one row: its unbiased std would be NaN in torch; here it is 0, no NaN anywhere
    mem = variants.build("xbn", SupConLoss(), 6, 32, std_correction=1)
    assert torch.isfinite(mem.adapt(R.clone(), gR, B[:1], gB[:1], None, None)).all()


def test_sc_xbn_unbiased_through_the_module_equals_loop():
    R, gR, B, gB = _case(1, torch.float32)
    sR, sB = gR // 2, gB // 2  # superclasses: {0,1}->0 (7 rows), {2,3}->1 (3), {4}->2, {7}->3
    mem = variants.build("sc_xbn", SupConLoss(), 6, 15, std_correction=1)
    mem.enqueue(R, gR, sR)
    mem(B, gB, superclasses=sB)
    want = loop_reference(R, sR, B, sB, 0.5, 1.0, True)
    n_new = len(B)  # the batch overwrote the oldest n_new rows
    assert torch.allclose(mem.embedding_memory[n_new:], want[n_new:], atol=1e-5)


def test_xbn_unbiased_equals_torch_std():
    R, gR, B, gB = _case(2)
    mem = variants.build("xbn", SupConLoss(), 6, 32, std_correction=1)
    got = mem.adapt(R.clone(), gR, B, gB, None, None)
    mu_r, sd_r = _unbiased(R)
    mu_b, sd_b = _unbiased(B)
    assert torch.allclose(got, (R - mu_r) / sd_r * sd_b + mu_b, rtol=1e-12, atol=1e-12)


def test_std_correction_is_validated():
    from variants.options import OptionError

    field = variants.option_specs("pc_xbn")["std_correction"]
    assert field.coerce("std_correction", "1") == 1
    with pytest.raises(OptionError, match="one of 0, 1"):
        field.coerce("std_correction", 2)
    R, gR, B, gB = _case()
    mem = variants.build("pc_xbn", SupConLoss(), 6, 32, std_correction=2)  # a direct caller
    with pytest.raises(ValueError, match="correction must be 0 or 1"):
        mem.adapt(R.clone(), gR, B, gB, None, None)
