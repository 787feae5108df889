"""Summaries behind the tables: numbers in, numbers out, no I/O. Tests, confidence intervals,
power and the claims' verdicts are in reports.inference.

Spread over seeds is the sample standard deviation (ddof = 1), as the papers' "mean +- std over
three runs" most likely is; one run has no std (NaN).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

from bench.store import PRE_MAIN_PHASES

MATCH_TOL = 1.0  # Recall@1 points: a number is reproduced within max(MATCH_TOL, 2 x spread)
# a table row's count of runs whose selected epoch is that pre-main phase (bench.store): the
# network as loaded (epoch -1, "init") or after the warm-up (epoch 0, "warmup")
PRE_MAIN_COUNTS = {phase: f"n_{phase}" for phase in PRE_MAIN_PHASES}


class Summary(NamedTuple):
    mean: float
    std: float  # sample std, ddof = 1; NaN for n < 2
    n: int


def summarize(values: Iterable[float]) -> Summary:
    """mean = sum(x) / n; std = sqrt(sum((x - mean)^2) / (n - 1))."""
    xs = [float(x) for x in values if not math.isnan(float(x))]
    n = len(xs)
    if n == 0:
        return Summary(math.nan, math.nan, 0)
    mean = sum(xs) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else math.nan
    return Summary(mean, std, n)
