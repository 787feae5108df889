"""The memory probe against numbers computed independently: the adaptation formulas
by hand, an affine drift whose exact correction is XBN's, and whole runs with and without it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from pytorch_metric_learning.losses import SupConLoss
from pytorch_metric_learning.miners import PairMarginMiner

import variants
from bench.config import RunConfig, make_config
from bench.engine import memory_probe as mp
from bench.engine.metric import run
from bench.store import MEMORY_ERROR_COLUMNS, MEMORY_ERROR_FILE, TIMING_COLUMNS, RunDir
from tests.conftest import TINY
from tests.variants.test_grouped import reference as per_group_reference

pytestmark = pytest.mark.usefixtures("two_threads")  # tests/bench/conftest.py

D = 6  # embedding size of the unit cases


# ----- small pure pieces -------------------------------------------------------------------
@pytest.mark.parametrize("steps,points", [(100, 4), (3, 4), (6, 2), (1, 4), (10, 0)])
def test_probe_steps_are_evenly_spaced_and_end_the_epoch(steps, points):
    expected = sorted({round(i * steps / (points + 1)) for i in range(1, points + 1)} - {0, steps})
    assert mp.probe_steps(steps, points) == (*expected, steps)


def test_probe_steps_of_the_demo_epoch():
    assert mp.probe_steps(100, 4) == (20, 40, 60, 80, 100)


def test_batch_order_undoes_the_fifo_wrap():
    assert mp.batch_order(torch.tensor([3, 4, 5]), 10).tolist() == [3, 4, 5]
    assert mp.batch_order(torch.tensor([0, 1, 8, 9]), 10).tolist() == [8, 9, 0, 1]


def test_age_buckets_are_quarters_of_the_span():
    ages = torch.arange(1, 13)
    by_hand = [min(3, (a - 1) * 4 // 12) for a in range(1, 13)]  # 1-3 -> 0, ..., 10-12 -> 3
    assert mp.age_buckets(ages, 12).tolist() == by_hand == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]


def test_jaccard_by_hand():
    assert mp.jaccard({1, 2, 3}, {2, 3, 4}) == 2 / 4
    assert math.isnan(mp.jaccard(set(), set()))


# ----- fakes: an "image" is its row of a fixed table; the model is a per-dimension affine map ----
class TableData:
    """Data.images for the unit cases: image i is row i of ``table`` (keys are ignored: no
    augmentation)."""

    def __init__(self, table: torch.Tensor) -> None:
        self.table = table

    def images(self, idx, keys):
        return self.table[idx]


class Affine(torch.nn.Module):
    """f(x) = a * x + b per dimension, a BatchNorm-free stand-in for the embedding model."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.a = torch.nn.Parameter(torch.ones(dim))
        self.b = torch.nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        return x * self.a + self.b


def _memory(name: str, size: int, **options):
    mem = variants.build(name, SupConLoss(), D, size, PairMarginMiner(0.2, 0.8), **options)
    mem.track_raw()
    return mem


def _pop_std(x):
    return ((x - x.mean(0)) ** 2).mean(0).sqrt()


def _xbn(R, B):  # XBN paper eq. 6, population moments per dimension
    return (R - R.mean(0)) / _pop_std(R) * _pop_std(B) + B.mean(0)


PREDICTED = {  # each adapting variant's first adaptation of a memory R by a batch B, by hand
    "xbn": lambda R, gR, B, gB, opts: _xbn(R, B),
    "delayed_xbn": lambda R, gR, B, gB, opts: _xbn(R, B),  # delay 0 below
    "axbn": lambda R, gR, B, gB, opts: _xbn(R, B),  # r = 0: the gain is 1 (paper eq. 20)
    "centre_xbn": lambda R, gR, B, gB, opts: R - R.mean(0) + B.mean(0),  # eq. 4-5
    "scaled_xbn": lambda R, gR, B, gB, opts: torch.nn.functional.normalize(_xbn(R, B), dim=1),
    "pc_xbn": lambda R, gR, B, gB, o: per_group_reference(
        R, gR, B, gB, o["lambda_mu"], o["lambda_sigma"], o["normalize_absent"]
    ),
    "sc_xbn": lambda R, gR, B, gB, o: per_group_reference(
        R, gR, B, gB, o["lambda_mu"], o["lambda_sigma"], o["normalize_absent"]
    ),
}
OPTIONS = {"delayed_xbn": {"delay_epochs": 0}, "axbn": {"r": 0.0, "gain_interval": 1}}


def _case(seed=0, n=12):
    g = torch.Generator().manual_seed(seed)
    R = torch.randn(n, D, generator=g)
    B = torch.randn(n, D, generator=g) * 0.5 + 0.3
    labels = torch.arange(n) % 3  # every class 4 times in each
    return R, B, labels


@pytest.mark.parametrize("name", sorted(PREDICTED))
def test_with_an_unchanged_model_the_error_is_the_adaptation_itself(name):
    """lr 0: the fresh embedding of a stored entry is the entry as enqueued, so the probe's error
    is || adapt(R) - R || with adapt the variant's formula, computed here by hand."""
    R, B, labels = _case()
    mem = _memory(name, 24, **OPTIONS.get(name, {}))
    n = len(R)
    sc = labels  # superclass = class: SC-XBN groups like PC-XBN
    mem.enqueue(R, labels, sc, indices=torch.arange(n), keys=torch.zeros(n, dtype=torch.long))
    mem(B, labels, superclasses=sc, indices=torch.arange(n, 2 * n), keys=torch.zeros(n).long())
    (pos,) = mp.stored_batches(mem)
    assert pos.tolist() == list(range(n))
    fresh = R[pos]  # what the unchanged model makes of the stored images
    row = mp.measure(mem, fresh, pos, B, labels, span=2)
    opts = mem.option_defaults() | OPTIONS.get(name, {})
    expected = (PREDICTED[name](R, labels, B, labels, opts) - R).norm(dim=1)
    assert row["err_l2_mean"] == pytest.approx(expected.mean().item(), rel=1e-5, abs=1e-6)
    assert row["err_l2_median"] == pytest.approx(expected.median().item(), rel=1e-5, abs=1e-6)
    assert row["raw_l2_mean"] == pytest.approx(0.0, abs=1e-6)  # plain XBM would hold R exactly
    assert row["adapting"] == 1 and row["n_entries"] == n
    assert row["gain"] == pytest.approx(0.0, abs=1e-5)  # adapting an exact memory only hurts


def test_xbm_with_an_unchanged_model_has_no_error():
    R, B, labels = _case()
    mem = _memory("xbm", 24)
    n = len(R)
    mem.enqueue(R, labels, indices=torch.arange(n), keys=torch.zeros(n, dtype=torch.long))
    mem(B, labels, indices=torch.arange(n, 2 * n), keys=torch.zeros(n, dtype=torch.long))
    (pos,) = mp.stored_batches(mem)
    row = mp.measure(mem, R[pos], pos, B, labels, span=2)
    assert row["err_l2_mean"] == 0 and row["raw_l2_mean"] == 0 and row["adapting"] == 0
    assert row["pair_jaccard"] == 1.0 and row["pairs_stored"] == row["pairs_fresh"]


def _affine_drift(name: str, steps: int = 8):
    """A model whose output at step t is a_t * g + b_t (per-dimension scale and shift), every
    batch the same 12 items of g in a new order: batch and memory moments agree, so XBN's
    correction (eq. 6) is exact, while the stored entries of plain XBM keep the old map."""
    g = torch.Generator().manual_seed(1)
    items = torch.randn(12, D, generator=g)
    labels_of = torch.arange(12) % 3
    data = TableData(items)
    model = Affine(D)
    mem = _memory(name, 36)
    rows = []
    for t in range(steps):
        with torch.no_grad():
            model.a.copy_(1.0 + 0.3 * t + 0.1 * torch.arange(D))
            model.b.copy_(0.5 * t - 0.2 * torch.arange(D))
        idx = torch.randperm(12, generator=g)
        emb = model(data.images(idx, None))
        mem(emb, labels_of[idx], indices=idx, keys=torch.full((12,), t, dtype=torch.long))
        groups = mp.select_batches(mp.stored_batches(mem), 1000, 12)
        if groups:
            fresh = mp.reembed(model, data, mem, groups, torch.device("cpu"), amp=False)
            rows.append(mp.measure(mem, fresh, torch.cat(groups), emb, labels_of[idx], span=3))
    return rows


def test_an_affine_drift_is_undone_by_xbn_and_not_by_xbm():
    xbn, xbm = _affine_drift("xbn"), _affine_drift("xbm")
    assert all(r["err_l2_mean"] < 1e-4 for r in xbn), [r["err_l2_mean"] for r in xbn]
    assert all(r["raw_l2_mean"] > 0.2 for r in xbn)  # what xbm would have held: stale
    assert all(r["err_l2_mean"] > 0.2 for r in xbm)
    # the un-adapted entries of the xbn memory are exactly the xbm memory's entries
    assert [r["raw_l2_mean"] for r in xbn] == pytest.approx([r["err_l2_mean"] for r in xbm])
    assert all(r["gain"] > 1e3 for r in xbn)
    # older entries are further off under the drift (age buckets: youngest first)
    last = xbm[-1]
    assert last["err_l2_age1"] < last["err_l2_age2"]  # ages 1 and 2 of a 3-step span


def test_reembed_leaves_the_model_and_the_rngs_as_they_were():
    model = torch.nn.Sequential(torch.nn.Linear(D, D), torch.nn.BatchNorm1d(D), torch.nn.Dropout())
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = TableData(torch.randn(24, D))
    mem = _memory("xbm", 24)
    with torch.no_grad():
        mem.enqueue(model(data.table[:12]), torch.arange(12) % 3, indices=torch.arange(12),
                    keys=torch.zeros(12, dtype=torch.long))  # fmt: skip
    rng = torch.get_rng_state()
    mp.reembed(model, data, mem, [torch.arange(12)], torch.device("cpu"), amp=False)
    assert torch.equal(torch.get_rng_state(), rng)
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k  # BatchNorm's running statistics untouched


# ----- whole runs --------------------------------------------------------------------------
SMALL = {**TINY, "batch_size": 20, "memory_probe_points": 2, "epochs": 2}


def _cfg(variant, **kw):
    return make_config("fashion-mnist", variant, 0, "cpu", **{**SMALL, **kw})


def _rows(tmp_path, cfg):
    return pd.read_csv(RunDir(tmp_path, cfg).path / MEMORY_ERROR_FILE)


def test_a_run_records_one_row_per_probe_point(tiny_data, tmp_path):
    cfg = _cfg("xbn")
    assert run(cfg, tiny_data, tmp_path, progress=False)["status"] == "done"
    rows = _rows(tmp_path, cfg)
    assert tuple(rows.columns) == MEMORY_ERROR_COLUMNS
    steps = 120 // 20  # 12 images x 10 classes, batch 20
    at = mp.probe_steps(steps, 2)
    assert rows["epoch"].tolist() == [e for e in (1, 2) for _ in at]
    assert rows["step"].tolist() == [e * steps + s for e in (0, 1) for s in at]
    assert rows["point"].tolist() == list(range(1, len(at) + 1)) * 2
    assert (rows["n_entries"] > 0).all() and rows["err_l2_mean"].notna().all()


def test_an_unchanged_model_gives_xbm_zero_error_with_augmentation(tiny_data, tmp_path):
    """lr 0 in the main phase (the warm-up trains the head first): every stored entry is what the
    model makes of its image again, the flip draw included."""
    cfg = RunConfig(**{**_cfg("xbm").__dict__, "lr": 0.0, "weight_decay": 0.0})
    assert cfg.augment == "flip"
    assert run(cfg, tiny_data, tmp_path, progress=False)["status"] == "done"
    rows = _rows(tmp_path, cfg)
    assert len(rows) > 0
    assert rows["err_l2_mean"].abs().max() < 1e-5
    assert rows["raw_l2_mean"].abs().max() < 1e-5
    assert (rows["pair_jaccard"].dropna() == 1.0).all()


def test_the_probe_changes_nothing_of_the_run(tiny_data, tmp_path):
    on, off = _cfg("xbn"), _cfg("xbn", memory_probe=False)
    for cfg in (on, off):
        assert run(cfg, tiny_data, tmp_path, progress=False)["status"] == "done"
    a, b = (pd.read_csv(RunDir(tmp_path, c).metrics) for c in (on, off))
    keep = [c for c in a.columns if c not in TIMING_COLUMNS]
    pd.testing.assert_frame_equal(a[keep], b[keep], check_exact=True)
    assert not (RunDir(tmp_path, off).path / MEMORY_ERROR_FILE).exists()


def test_the_oracle_holds_the_current_embeddings_at_every_probe(tiny_data, tmp_path):
    cfg = _cfg("oracle_xbm")
    assert run(cfg, tiny_data, tmp_path, progress=False)["status"] == "done"
    rows = _rows(tmp_path, cfg)
    assert len(rows) > 0
    assert rows["err_l2_mean"].abs().max() < 1e-5
    # its "un-adapted" copy is refreshed too (variants/oracle_xbm.py): no gain to show
    assert rows["raw_l2_mean"].abs().max() < 1e-5
    xbm = _cfg("xbm")  # the same run without the refresh: its entries do go stale
    run(xbm, tiny_data, tmp_path, progress=False)
    assert (_rows(tmp_path, xbm)["err_l2_mean"] > 1e-3).all()


def test_a_resumed_run_writes_the_same_rows(tiny_data, tmp_path):
    cfg = _cfg("xbn")
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    run(cfg, tiny_data, whole, progress=False)
    assert run(cfg, tiny_data, parts, progress=False, stop_after=1)["status"] == "running"
    assert len(_rows(parts, cfg)) == len(mp.probe_steps(6, 2))  # epoch 1 on disk
    assert run(cfg, tiny_data, parts, progress=False)["status"] == "done"
    pd.testing.assert_frame_equal(_rows(whole, cfg), _rows(parts, cfg), check_exact=True)


def test_the_rows_agree_with_a_plain_recomputation(tiny_data, tmp_path):
    """Each row's mean is the mean of its age buckets weighted by their counts: a check of the
    bucket columns against the summary ones (both from the same entries)."""
    cfg = _cfg("xbn")
    run(cfg, tiny_data, tmp_path, progress=False)
    rows = _rows(tmp_path, cfg)
    ages = [f"err_l2_age{q}" for q in range(1, 5)]
    for _, r in rows.iterrows():
        present = [r[c] for c in ages if not np.isnan(r[c])]
        assert min(present) - 1e-9 <= r["err_l2_mean"] <= max(present) + 1e-9


@pytest.mark.parametrize("head", ["l2", "l2_bn"])  # l2_bn: a BatchNorm1d, one group at a time
def test_the_grouped_reembedding_equals_one_forward_per_stored_batch(head):
    """Each stored batch normalised with its own statistics, whether forwarded alone (a plain
    loop here) or interleaved with others (bench.engine.memory_probe.reembed)."""
    from bench.engine.model import build_model

    torch.manual_seed(0)
    model = build_model("test_resnet", 16, head, 1, False, None)
    model.eval()
    images = torch.randn(60, 1, 28, 28)
    data = TableData(images)
    mem = variants.build("xbm", SupConLoss(), 16, 60)
    for s in range(0, 60, 12):
        idx = torch.arange(s, s + 12)
        with torch.no_grad():
            mem.enqueue(model(images[idx]), idx % 3, indices=idx, keys=torch.zeros(12).long())
    groups = mp.stored_batches(mem, include_current=True)
    assert [len(g) for g in groups] == [12] * 5
    got = mp.reembed(model, data, mem, groups, torch.device("cpu"), amp=False)
    by_hand = []
    for g in groups:
        m = __import__("copy").deepcopy(model).train()
        with torch.no_grad():
            by_hand.append(m(images[mem.index_memory[g]]))
    torch.testing.assert_close(got, torch.cat(by_hand), rtol=1e-5, atol=1e-5)
    assert not model.training and isinstance(next(iter(model.modules())), torch.nn.Module)
    assert all(type(m) is not mp.SplitBatchNorm2d for m in model.modules())


def test_the_oracle_refuses_draws_it_cannot_remake(tiny_data, tmp_path):
    from common import UserError

    cfg = _cfg("oracle_xbm", augment_draws="global")
    with pytest.raises(UserError, match="augment_draws='global' cannot re-create"):
        run(cfg, tiny_data, tmp_path / "res", progress=False)
    assert not (tmp_path / "res").exists()  # refused before anything was written


def test_global_draws_with_random_augmentation_are_not_probed(tiny_data, tmp_path):
    cfg = _cfg("xbm", augment_draws="global", epochs=1)
    assert run(cfg, tiny_data, tmp_path, progress=False)["status"] == "done"
    assert not (RunDir(tmp_path, cfg).path / MEMORY_ERROR_FILE).exists()
