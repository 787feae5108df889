"""Common random numbers, checked on real tiny runs: with the same seed, every variant starts
from the same weights, warms up identically and sees the same batches (sampler order and flip
draws) in every epoch as XBM, so runs of two variants with one seed are a pair
(reports.inference.compare). With keyed draws (the default, bench/engine/draws.py) a flip depends on
(seed, epoch, position) only and the sampler's numpy generator is re-seeded every epoch, so a
variant that drew from a global generator during a step can no longer shift the batches; the
warm-up row still shows that the initial weights and the warm-up are shared."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from bench.config import make_config
from bench.engine import metric
from bench.engine.data import Data
from bench.store import RunDir
from tests.conftest import TINY
from variants import VARIANTS


def _batches_seen(variant, tiny_data, results, monkeypatch, seed=0):
    """Every training batch the run sees, as (labels, checksum of the augmented images),
    and its warm-up row (evaluation of the warmed-up model: the same init and warm-up)."""
    seen = []
    original = Data.batches

    def recording(self, epoch):
        for batch in original(self, epoch):
            seen.append((tuple(batch.y.tolist()), round(float(batch.x.double().sum()), 6)))
            yield batch

    monkeypatch.setattr(Data, "batches", recording)
    cfg = make_config("fashion-mnist", variant, seed, "cpu", **TINY)
    metric.run(cfg, tiny_data, str(results), progress=False)
    metrics = pd.read_csv(RunDir(results, cfg).metrics)
    warm = metrics[metrics["phase"] == "warmup"].iloc[0]
    return seen, (warm["loss"], warm["recall@1"], warm["inter_dist"])


@pytest.fixture(scope="module")
def reference(tiny_data, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    try:
        return _batches_seen("xbm", tiny_data, tmp_path_factory.mktemp("xbm"), mp)
    finally:
        mp.undo()


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "xbm"])
def test_same_seed_same_draws_as_xbm(variant, reference, tiny_data, tmp_path, monkeypatch):
    torch.manual_seed(12345)  # whatever ran before: the run re-seeds itself
    seen, warm = _batches_seen(variant, tiny_data, tmp_path, monkeypatch)
    ref_seen, ref_warm = reference
    assert len(seen) == len(ref_seen) > 0
    assert seen == ref_seen  # warm-up and main epochs: same order, same flips
    assert warm == ref_warm  # same initial weights, same warm-up: the same warmed-up model


def test_another_seed_draws_otherwise(reference, tiny_data, tmp_path, monkeypatch):
    seen, _ = _batches_seen("xbm", tiny_data, tmp_path, monkeypatch, seed=1)
    assert seen != reference[0]
