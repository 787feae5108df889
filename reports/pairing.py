"""Which runs of two arms are pairs (common random numbers), and the difference of two arms.

The engine re-seeds python, numpy and torch from (seed, epoch) before model construction, before
each warm-up epoch and before each main epoch (bench.engine.metric.seed_everything); the
training subset and the drift probe come from their own fixed generators. No variant, loss or
miner draws from a generator during a step, so two runs with the same seed and the same config
apart from the variant start from the same weights, warm up identically, and see the same
sampler order and the same augmentation draws, batch for batch. Their results are therefore a
pair: the per-seed difference cancels the seed's shared effect (``paired_difference``).

Pairing rule (``pairable``): the two configs are equal on every field of ``config_key`` except
``PAIR_FREE`` (the variant and its options) and the fields ``make_config`` sets from the
variant (``VARIANT_SET``: no_xbm's memory_ratio of 0), and the seed is the same. Anything else
that differs (batch size, margins, profile, epochs, ...) makes the arms unpaired: Welch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from reports.inference import Difference, paired_difference, welch_difference

PAIR_FREE = ("variant", "variant_options")
# fields make_config derives from the variant alone (bench.config.make_config), so they differ
# between two arms whenever the variant does, and change no random draw
VARIANT_SET: dict[str, tuple[str, ...]] = {"no_xbm": ("memory_ratio",)}


def pairable(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Do two configs (config dicts or ``config_key`` JSON) draw the same random numbers for
    the same seed? Equal apart from ``PAIR_FREE`` and the variant-set fields of either side."""
    a = json.loads(a) if isinstance(a, str) else dict(a)
    b = json.loads(b) if isinstance(b, str) else dict(b)
    free = set(PAIR_FREE)
    for cfg in (a, b):
        free |= set(VARIANT_SET.get(str(cfg.get("variant")), ()))
    keys = (set(a) | set(b)) - free
    return all(a.get(k) == b.get(k) for k in keys)


def by_seed(runs: pd.DataFrame, metric: str) -> dict[int, float]:
    """{seed: value} of one arm; a seed counted twice is an error (it would fake a pair)."""
    twice = runs["seed"][runs["seed"].duplicated()]
    if len(twice):
        raise ValueError(f"seed(s) {sorted(set(twice))} twice in one arm: "
                         f"{' '.join(sorted(runs['run_id']))}")  # fmt: skip
    return {int(s): float(v) for s, v in zip(runs["seed"], runs[metric])}


def one_config(runs: pd.DataFrame) -> str | None:
    """The config_key of an arm; None for an empty arm; more than one config is an error
    (reports never pool runs trained differently)."""
    keys = list(dict.fromkeys(runs["config_key"]))
    if len(keys) > 1:
        raise ValueError(f"an arm holds {len(keys)} configs: {' '.join(sorted(runs['run_id']))}")
    return keys[0] if keys else None


def arms_paired(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Both arms non-empty, their configs pairable and at least two seeds shared."""
    ka, kb = one_config(a), one_config(b)
    if ka is None or kb is None or not pairable(ka, kb):
        return False
    return len(set(a["seed"]) & set(b["seed"])) >= 2


def compare(a: pd.DataFrame, b: pd.DataFrame, metric: str) -> Difference:
    """mean(A) - mean(B) of ``metric``: paired over the shared seeds where the arms pair
    (``arms_paired``), Welch over every run of each arm otherwise. ``a``/``b``: runs frames
    with ``config_key``, ``seed``, ``run_id`` and ``metric``."""
    if arms_paired(a, b):
        return paired_difference(by_seed(a, metric), by_seed(b, metric))
    by_seed(a, metric), by_seed(b, metric)  # the seed check, paired or not
    return welch_difference(a[metric], b[metric])
