"""The start of a metric cell, shared by the cells that would compute it alike.

Every metric cell starts the same way before its memory exists for it (bench/engine/metric.py,
``MetricTask.start``): the network as loaded is evaluated (epoch -1), the head is warmed up
without a memory (row 0) and evaluated again. Nothing of that reads the memory variant, its
options, the main phase's optimiser and schedule, or the memory's size and probe, so the cells
of a study that differ only in those (the demo's eleven variants of one seed) would compute the
same three things to the last bit. Each process keeps the last ``MAX_KEPT`` such starts: the
model's state after the warm-up (parameters and BatchNorm buffers), the two rows' numbers and
every RNG's state at that point. A cell whose start key matches loads them instead of computing
them again, which gives the same model, rows and draws as computing them
(tests/bench/test_prefix.py checks it for every variant, metrics.csv and memory_error.csv to the
last bit). The record says so in its notes; the ``seconds`` of the two rows are the time the
cell spent, not that of the cell that computed them.

The key is every config field except ``AFTER_WARMUP``, with the data folder, the device and the
thread count: a field added to RunConfig is in the key until it is listed here, so a new field
can only cost sharing, never share a start it changes.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Any

import torch

from bench.config import RunConfig
from bench.engine.lifecycle import rng_state, set_rng_state

# RunConfig fields read only after the warm-up's evaluation (by the memory, the main phase's
# optimiser and schedule, or MoCo, which shares nothing here)
AFTER_WARMUP = frozenset(
    {
        "variant",
        "variant_options",
        "memory_ratio",
        "memory_init",
        "miner_distance",  # the variant's conversion of the miner; the warm-up's miner is plain
        "optimizer",
        "lr",
        "weight_decay",
        "lr_step_epochs",
        "lr_gamma",
        "epochs",
        "grad_clip",
        "memory_probe",
        "memory_probe_points",
        "memory_probe_size",
        "moco_momentum",
        "moco_bn_splits",
        "deviations",  # words about the other fields' values; those fields are in the key
    }
)
MAX_KEPT = 4  # starts kept per process (the demo needs one per seed: 3)
SHARE_VAR = "XBMBENCH_SHARE_WARMUP"  # "0": every cell computes its own start


@dataclass(frozen=True)
class Start:
    """What a cell's start leaves behind: the model's state, row -1's and row 0's numbers, and
    every RNG's state right after row 0's evaluation."""

    model: dict[str, torch.Tensor]
    init: dict[str, float]
    warmup: dict[str, float]
    rng: tuple


_kept: OrderedDict[tuple, Start] = OrderedDict()


def enabled() -> bool:
    return os.environ.get(SHARE_VAR, "1") != "0"


def key(cfg: RunConfig, data_dir: str, device: torch.device) -> tuple:
    """What decides a cell's start: the config without ``AFTER_WARMUP``, the data folder, the
    device and torch's thread count (CPU numbers depend on it)."""
    shared = tuple(
        (f.name, getattr(cfg, f.name)) for f in fields(cfg) if f.name not in AFTER_WARMUP
    )
    return shared, os.path.realpath(data_dir), str(device), torch.get_num_threads()


def lookup(k: tuple) -> Start | None:
    if not enabled() or k not in _kept:
        return None
    _kept.move_to_end(k)
    return _kept[k]


def keep(k: tuple, model: torch.nn.Module, init: dict, warmup: dict) -> None:
    """Remember the start just computed (call it right after row 0's evaluation)."""
    if not enabled():
        return
    state = {n: t.detach().to("cpu", copy=True) for n, t in model.state_dict().items()}
    _kept[k] = Start(state, dict(init), dict(warmup), rng_state())
    _kept.move_to_end(k)
    while len(_kept) > MAX_KEPT:
        _kept.popitem(last=False)


def restore(start: Start, model: torch.nn.Module) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load a kept start into a freshly built model and the RNGs; returns copies of its rows."""
    model.load_state_dict(start.model)
    model.eval()  # as row 0's evaluation left it
    set_rng_state(start.rng)
    return dict(start.init), dict(start.warmup)


def clear() -> None:
    _kept.clear()
