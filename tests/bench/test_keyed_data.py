"""Keyed augmentation draws (bench/engine/draws.py, bench/engine/data.py): every batch
re-created exactly from (idx, keys) on both data paths and for MoCo's views, the same batches for
any number of loader workers, fair and seed-dependent flips, and the draws of before
(``augment_draws="global"``) and the sampler order kept bit for bit."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning.samplers import MPerClassSampler

from bench.config import make_config
from bench.engine.data import Data
from bench.engine.draws import (
    NO_KEY,
    PREFILL_EPOCH,
    _splitmix64,
    draw_seed,
    draw_seeds,
    flips,
    keyed_rng,
    pack,
    unpack,
    warmup_epoch,
)
from bench.engine.moco.data import MocoData
from common import UserError

GOLDEN = 0x9E3779B97F4A7C15
FAST = dict(train_per_class=12)  # 120 images: 3 batches of 40, flips
LOADER = dict(train_per_class=8, augment="randaugment", batch_size=16, m_per_class=4)


def _data(tiny_data, seed=3, **over) -> Data:
    return Data(make_config("fashion-mnist", "xbm", seed, "cpu", **over), tiny_data)


def _epoch(data: Data, epoch: int, np_seed: int = 5, torch_seed: int = 0) -> list:
    np.random.seed(np_seed)  # what the lifecycle's seed_everything does before each epoch
    torch.manual_seed(torch_seed)
    return list(data.batches(epoch))


def _sampler_order(data: Data, np_seed: int = 5) -> list[int]:
    """PML's sampler, built here from the labels, after the same numpy seed."""
    np.random.seed(np_seed)
    cfg = data.cfg
    labels = np.array(data.train.labels)
    return list(MPerClassSampler(labels, cfg.m_per_class, cfg.batch_size, len(labels)))


def _same(a, b) -> bool:
    return len(a) == len(b) and all(
        torch.equal(u, v) for x, y in zip(a, b, strict=True) for u, v in zip(x, y, strict=True)
    )


def test_augment_draws_is_a_checked_field():
    assert make_config("fashion-mnist", "xbm", 0, "cpu").augment_draws == "keyed"
    with pytest.raises(UserError, match="augment_draws.*'sometimes'"):
        make_config("fashion-mnist", "xbm", 0, "cpu", augment_draws="sometimes")


# ----- the keys and the draws --------------------------------------------------------------------
def test_pack_and_unpack_are_inverse_and_no_two_phases_share_a_key():
    for epoch in (-(2**31), -2, -1, 0, 1, 2**31 - 1):
        positions = torch.tensor([0, 1, 2**32 - 2])
        keys = pack(epoch, positions)
        assert keys.tolist() == [epoch * 2**32 + p for p in positions.tolist()]
        e, p = unpack(keys)
        assert e.tolist() == [epoch] * 3 and p.tolist() == positions.tolist()
    assert NO_KEY not in pack(-1, torch.arange(1000)).tolist()
    phases = [warmup_epoch(w) for w in range(3)] + [PREFILL_EPOCH] + list(range(5))
    keys = torch.cat([pack(e, torch.arange(100)) for e in phases])
    assert len(set(keys.tolist())) == len(phases) * 100


@pytest.mark.parametrize(
    "epoch, positions, match",
    [
        (2**31, [0], "epoch must lie"),
        (0, [-1], "positions must lie"),
        (-1, [2**32 - 1], "2\\*\\*32"),
    ],
)
def test_pack_refuses_what_it_cannot_pack(epoch, positions, match):
    with pytest.raises(ValueError, match=match):
        pack(epoch, torch.tensor(positions))


def test_splitmix64_is_the_published_generator():
    """SplitMix64 seeded with 0 (Steele, Lea & Flood; Vigna's splitmix64.c): its first outputs."""
    published = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F, 0xF88BB8A8724C81EC]
    states = np.array([k * GOLDEN % 2**64 for k in range(4)], dtype=np.uint64)
    assert [int(v) for v in _splitmix64(states)] == published
    keys = torch.cat([pack(e, torch.arange(50)) for e in (-(2**31), -1, 0, 7)])
    for seed in (0, 1, 2**40):  # the vector and the per-item (Python int) paths agree
        assert [int(v) for v in draw_seeds(seed, keys)] == [
            draw_seed(seed, k) for k in keys.tolist()
        ]


def test_flips_are_fair_independent_and_differ_between_seeds():
    keys = torch.cat([pack(e, torch.arange(50_000)) for e in (warmup_epoch(0), 0, 1, 2)])
    n = len(keys)
    bound = 5 * (0.25 / n) ** 0.5  # five binomial standard deviations around 1/2
    a, b = flips(0, keys), flips(1, keys)
    assert abs(a.float().mean().item() - 0.5) < bound
    assert abs((a == b).float().mean().item() - 0.5) < bound  # another seed, other flips
    assert abs((a[1:] == a[:-1]).float().mean().item() - 0.5) < bound  # neighbours unrelated
    top = [draw_seed(0, k) >> 63 == 1 for k in keys[:200].tolist()]
    assert a[:200].tolist() == top


def test_keyed_rng_draws_by_key_and_restores_the_callers_generators():
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    before = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state()

    def draw(key):
        with keyed_rng(7, key):
            return random.random(), float(np.random.rand()), torch.rand(1).item()

    assert draw(5) == draw(5) != draw(6)
    assert random.getstate() == before[0]
    assert np.array_equal(np.random.get_state()[1], before[1])
    assert torch.equal(torch.get_rng_state(), before[2])


# ----- the array (fast) path ---------------------------------------------------------------------
@pytest.mark.parametrize("epoch", [0, 3, warmup_epoch(0), PREFILL_EPOCH])
def test_fast_path_batches_are_their_keys_flips_and_images_recreates_them(tiny_data, epoch):
    data = _data(tiny_data, **FAST)
    assert data.fast
    batches = _epoch(data, epoch)
    pixels = np.array(data.train.array, dtype=np.float32)  # (N, 28, 28), in numpy
    keys = torch.cat([b.keys for b in batches])
    assert keys.tolist() == pack(epoch, torch.arange(len(keys))).tolist()
    for b in batches:
        expected = (pixels[b.idx.numpy()] / np.float32(255) - np.float32(0.5)) / np.float32(0.5)
        for row, key in enumerate(b.keys.tolist()):
            if draw_seed(3, key) >> 63:
                expected[row] = expected[row, :, ::-1]
        assert torch.equal(b.x[:, 0], torch.from_numpy(np.ascontiguousarray(expected)))
        assert torch.equal(data.images(b.idx, b.keys), b.x)
        perm = torch.randperm(len(b.idx))[:7]  # any subset, any order
        assert torch.equal(data.images(b.idx[perm], b.keys[perm]), b.x[perm])


def test_keyed_batches_neither_read_nor_move_the_global_torch_generator(tiny_data):
    data = _data(tiny_data, **FAST)
    a = _epoch(data, 0, torch_seed=0)
    state = torch.get_rng_state()
    assert _same(a, _epoch(data, 0, torch_seed=1))
    torch.manual_seed(0)
    list(data.batches(0))
    assert torch.equal(torch.get_rng_state(), state)
    assert not _same(a, _epoch(_data(tiny_data, seed=4, **FAST), 0))  # the run seed draws


def test_global_draws_are_the_draws_before_keys(tiny_data):
    """The fast path of before: sampler order, then torch.rand(batch) < 0.5 per batch."""
    data = _data(tiny_data, augment_draws="global", **FAST)
    batches = _epoch(data, 0, np_seed=5, torch_seed=11)
    order = _sampler_order(data, np_seed=5)
    torch.manual_seed(11)
    pixels = torch.from_numpy(np.array(data.train.array)).unsqueeze(1)
    for s, b in zip(range(0, len(order), 40), batches, strict=True):
        idx = torch.tensor(order[s : s + 40])
        x = (pixels[idx].float() / 255.0 - 0.5) / 0.5
        flip = torch.rand(40) < 0.5
        x[flip] = x[flip].flip(-1)
        assert torch.equal(b.idx, idx) and torch.equal(b.x, x)
        assert (b.keys == NO_KEY).all()
    with pytest.raises(ValueError, match="augment_draws='global'.*cannot be re-created"):
        data.images(batches[0].idx, batches[0].keys)


@pytest.mark.parametrize("draws", ["keyed", "global"])
@pytest.mark.parametrize("path", ["fast", "loader"])
def test_the_sampler_order_is_unchanged(tiny_data, draws, path):
    data = _data(tiny_data, augment_draws=draws, **(FAST if path == "fast" else LOADER))
    assert data.fast == (path == "fast")
    batches = _epoch(data, 1)
    order = torch.tensor(_sampler_order(data))
    assert torch.equal(torch.cat([b.idx for b in batches]), order)
    labels = torch.from_numpy(data.labels)
    assert all(torch.equal(b.y, labels[b.idx]) for b in batches)


def test_images_states_its_contract(tiny_data):
    data = _data(tiny_data, **FAST)
    b = _epoch(data, 0)[0]
    with pytest.raises(ValueError, match="no key"):
        data.images(b.idx, torch.full_like(b.keys, NO_KEY))
    with pytest.raises(ValueError, match="1-D of one length"):
        data.images(b.idx, b.keys[:-1])
    plain = _data(tiny_data, augment="none", augment_draws="global", **FAST)
    b = _epoch(plain, 0)[0]  # no augmentation: nothing to re-draw, global or not
    assert torch.equal(plain.images(b.idx, b.keys), b.x)


# ----- the loader path (timm transforms, RandAugment) ---------------------------------------------
def test_loader_path_images_recreates_every_batch_and_moves_no_generator(tiny_data):
    data = _data(tiny_data, **LOADER)
    assert not data.fast and data.cfg.num_workers == 0
    np.random.seed(5)
    random.seed(2), torch.manual_seed(2)
    before = random.getstate(), torch.get_rng_state()
    batches = list(data.batches(0))
    assert random.getstate() == before[0] and torch.equal(torch.get_rng_state(), before[1])
    after = np.random.get_state()[1].copy()
    _sampler_order(data)  # numpy moved by the sampler's draws alone
    assert np.array_equal(np.random.get_state()[1], after)
    assert len(batches) == 5 and batches[0].x.shape == (16, 3, 28, 28)
    for b in batches:
        assert torch.equal(data.images(b.idx, b.keys), b.x)
    b = batches[0]
    assert torch.equal(data.images(b.idx[[3, 0]], b.keys[[3, 0]]), b.x[[3, 0]])
    assert not torch.equal(data.images(b.idx, b.keys + 1), b.x)  # the key draws the image


@pytest.mark.slow
def test_loader_path_gives_the_same_batches_with_0_and_2_workers(tiny_data):
    zero = _epoch(_data(tiny_data, num_workers=0, **LOADER), 2)
    two = _epoch(_data(tiny_data, num_workers=2, **LOADER), 2)
    assert len(zero) == 5 and _same(zero, two)


# ----- MoCo's two views --------------------------------------------------------------------------
def _moco(tiny_data, **over) -> MocoData:
    cfg = make_config(
        "fashion-mnist",
        "xbm",
        3,
        "cpu",
        task="moco",
        train_per_class=4,
        batch_size=16,
        moco_bn_splits=4,
        **over,
    )
    return MocoData(cfg, tiny_data)


@pytest.mark.parametrize("augment", ["moco_tensor", "moco"])
def test_moco_views_recreate_every_batch(tiny_data, augment):
    data = _moco(tiny_data, augment=augment)
    torch.manual_seed(0)
    batches = list(data.batches(1))
    assert len(batches) == 2
    assert torch.cat([b.keys for b in batches]).tolist() == pack(1, torch.arange(32)).tolist()
    for b in batches:
        xq, xk = data.views(b.idx, b.keys)
        assert torch.equal(xq, b.xq) and torch.equal(xk, b.xk)
        assert not torch.equal(b.xq, b.xk)  # two draws, not one view twice
    b = batches[0]
    xq, _ = data.views(b.idx[[5, 2]], b.keys[[5, 2]])
    assert torch.equal(xq, b.xq[[5, 2]])  # a sample's views do not depend on its batch
    with pytest.raises(ValueError, match="cannot be re-created"):
        _moco(tiny_data, augment=augment, augment_draws="global").views(b.idx, b.keys)


def _tensor_views_before_keys(x: torch.Tensor) -> torch.Tensor:
    """bench/engine/moco/data.py ``tensor_views`` at commit 93fca59, verbatim (the reference)."""
    n = len(x)
    area = torch.empty(n).uniform_(0.2, 1.0)
    ratio = torch.empty(n).uniform_(np.log(3 / 4), np.log(4 / 3)).exp()
    w, h = (area * ratio).sqrt().clamp(max=1.0), (area / ratio).sqrt().clamp(max=1.0)
    tx, ty = (torch.rand(n) * 2 - 1) * (1 - w), (torch.rand(n) * 2 - 1) * (1 - h)
    flip = torch.where(torch.rand(n) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w * flip, tx, h, ty
    img = x.float() / 255.0
    grid = F.affine_grid(theta, list(img.shape), align_corners=False)
    img = F.grid_sample(img, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    jitter = (torch.rand(n, 1, 1, 1) < 0.8).float()
    bright = 1 + jitter * torch.empty(n, 1, 1, 1).uniform_(-0.4, 0.4)
    contrast = 1 + jitter * torch.empty(n, 1, 1, 1).uniform_(-0.4, 0.4)
    mean = img.mean(dim=(1, 2, 3), keepdim=True)
    img = ((img - mean) * contrast + mean) * bright + 0.03 * torch.randn_like(img)
    return (img.clamp(0, 1) - 0.5) / 0.5


def test_moco_global_draws_are_the_draws_before_keys(tiny_data):
    data = _moco(tiny_data, augment="moco_tensor", augment_draws="global")
    torch.manual_seed(4)
    batches = list(data.batches(0))
    after = torch.get_rng_state()
    torch.manual_seed(4)
    order = torch.randperm(data.n)
    for s, b in zip(range(0, 32, 16), batches, strict=True):
        x = data.pixels[order[s : s + 16]]
        xq, xk = _tensor_views_before_keys(x), _tensor_views_before_keys(x)
        assert torch.equal(b.xq, xq) and torch.equal(b.xk, xk)
        assert torch.equal(b.idx, order[s : s + 16]) and (b.keys == NO_KEY).all()
    assert torch.equal(torch.get_rng_state(), after)  # the same draws, no more


def test_moco_global_loader_path_names_its_samples(tiny_data):
    """The shuffled DataLoader of before, each item with its position (``_Indexed``)."""
    data = _moco(tiny_data, augment="moco", augment_draws="global")
    torch.manual_seed(0)
    batches = list(data.batches(0))
    idx = torch.cat([b.idx for b in batches])
    assert len(batches) == 2 and len(set(idx.tolist())) == 32 and 0 <= idx.min() <= idx.max() < 40
    assert all((b.keys == NO_KEY).all() and b.xq.shape == (16, 3, 28, 28) for b in batches)
