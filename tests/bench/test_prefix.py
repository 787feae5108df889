"""Shared starts (bench/engine/prefix.py): a cell that loads the start another cell computed
gives the same record, to the last bit, as the cell computing its own; cells whose warm-up
differs never share one."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

import variants
from bench.config import RunConfig, make_config
from bench.engine import prefix
from bench.engine.metric import run
from bench.store import MEMORY_ERROR_FILE, TIMING_COLUMNS, RunDir
from tests.conftest import TINY

pytestmark = pytest.mark.usefixtures("two_threads")  # tests/bench/conftest.py

SMALL = {**TINY, "batch_size": 20, "memory_probe_points": 2}
SHARED_NOTE = "start shared"


@pytest.fixture
def sharing(monkeypatch):
    """Sharing on (tests/conftest.py turns it off for every other test), an empty store."""
    monkeypatch.setenv(prefix.SHARE_VAR, "1")
    prefix.clear()
    yield
    prefix.clear()


def _cfg(variant: str, **kw) -> RunConfig:
    return make_config("fashion-mnist", variant, 0, "cpu", **{**SMALL, **kw})


def _record(results, cfg: RunConfig) -> tuple[pd.DataFrame, pd.DataFrame | None, list[str]]:
    """metrics.csv without its timing columns, memory_error.csv if any, the record's notes."""
    rd = RunDir(results, cfg)
    metrics = pd.read_csv(rd.metrics)
    metrics = metrics[[c for c in metrics.columns if c not in TIMING_COLUMNS]]
    errors = rd.path / MEMORY_ERROR_FILE
    memory = pd.read_csv(errors) if errors.exists() else None
    notes = json.loads(rd.result.read_text())["deviations"]
    return metrics, memory, notes


def _shared_and_alone(tiny_data, tmp_path, monkeypatch, first: RunConfig, cfg: RunConfig):
    """``cfg`` run after ``first`` in one process (sharing its start) and alone."""
    for c in (first, cfg):
        assert run(c, tiny_data, tmp_path / "shared", progress=False)["status"] == "done"
    monkeypatch.setenv(prefix.SHARE_VAR, "0")
    assert run(cfg, tiny_data, tmp_path / "alone", progress=False)["status"] == "done"
    monkeypatch.setenv(prefix.SHARE_VAR, "1")
    return _record(tmp_path / "shared", cfg), _record(tmp_path / "alone", cfg)


def _assert_same(a, b) -> None:
    pd.testing.assert_frame_equal(a[0], b[0], check_exact=True)
    assert (a[1] is None) == (b[1] is None)
    if a[1] is not None:
        pd.testing.assert_frame_equal(a[1], b[1], check_exact=True)


@pytest.mark.parametrize("variant", variants.VARIANTS)
def test_a_shared_start_gives_the_record_the_cell_computes_alone(
    variant, tiny_data, tmp_path, monkeypatch, sharing
):
    first = "xbn" if variant == "xbm" else "xbm"  # another variant of the same seed
    shared, alone = _shared_and_alone(tiny_data, tmp_path, monkeypatch, _cfg(first), _cfg(variant))
    assert any(SHARED_NOTE in n for n in shared[2])  # it did share
    assert not any(SHARED_NOTE in n for n in alone[2])
    _assert_same(shared, alone)


def test_the_main_phase_settings_are_not_part_of_the_start(
    tiny_data, tmp_path, monkeypatch, sharing
):
    """Every field of ``AFTER_WARMUP`` that the metric task reads changed at once: the start is
    shared, and the record is still the one the cell computes alone."""
    cfg = _cfg(
        "xbm",
        lr=5e-4,
        weight_decay=0.0,
        memory_ratio=0.3,
        epochs=1,
        lr_step_epochs=2,
        lr_gamma=0.5,
        grad_clip=5.0,
        memory_probe_points=1,
        memory_probe_size=30,
        memory_init="prefill",
    )
    shared, alone = _shared_and_alone(tiny_data, tmp_path, monkeypatch, _cfg("xbn"), cfg)
    assert any(SHARED_NOTE in n for n in shared[2])
    _assert_same(shared, alone)


@pytest.mark.parametrize(
    "change", [{"warmup_lr": 1e-2}, {"seed": 1}, {"embedding_size": 8}, {"augment": "none"}]
)
def test_cells_whose_warmup_differs_do_not_share(change, tiny_data, tmp_path, sharing):
    base = _cfg("xbm")
    other = RunConfig(**{**base.__dict__, **change})
    for c in (base, other):
        assert run(c, tiny_data, tmp_path, progress=False)["status"] == "done"
    (a, _, _), (b, _, notes) = _record(tmp_path, base), _record(tmp_path, other)
    assert not any(SHARED_NOTE in n for n in notes)
    row0 = lambda m: m[m["epoch"] == 0].iloc[0]  # noqa: E731
    assert row0(a)["loss"] != row0(b)["loss"]  # the warm-ups did differ


def test_another_thread_count_does_not_share(tiny_data, tmp_path, sharing):
    cfg = _cfg("xbm")
    run(cfg, tiny_data, tmp_path / "two", progress=False)
    torch.set_num_threads(1)  # the fixture puts 2 back
    run(_cfg("xbn"), tiny_data, tmp_path / "one", progress=False)
    assert not any(SHARED_NOTE in n for n in _record(tmp_path / "one", _cfg("xbn"))[2])


def test_the_store_keeps_the_most_recently_used(sharing):
    model = torch.nn.Linear(2, 2)
    for k in range(prefix.MAX_KEPT):
        prefix.keep(("k", k), model, {}, {})
    assert prefix.lookup(("k", 0)) is not None  # used: now the most recent
    prefix.keep(("k", "new"), model, {}, {})  # one too many: the least recent (k=1) goes
    assert prefix.lookup(("k", 1)) is None
    assert all(prefix.lookup(("k", k)) is not None for k in (0, 2, "new"))


def test_a_kept_start_is_a_copy(sharing):
    """Training the model further does not change what was kept."""
    model = torch.nn.Linear(2, 2)
    prefix.keep(("k",), model, {"recall@1": 1.0}, {})
    before = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    other = torch.nn.Linear(2, 2)
    init, _ = prefix.restore(prefix.lookup(("k",)), other)
    assert torch.equal(other.weight, before) and init == {"recall@1": 1.0}
