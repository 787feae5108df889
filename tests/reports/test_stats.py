"""Summaries against plain-Python arithmetic (tests and verdicts: test_inference.py)."""

from __future__ import annotations

import statistics

import pytest

from reports.inference import summarize


def test_summarize_is_mean_and_sample_std():
    xs = [80.1, 80.5, 79.9]
    s = summarize(xs)
    assert s.mean == pytest.approx(statistics.mean(xs))
    assert s.std == pytest.approx(statistics.stdev(xs))  # ddof = 1
    assert s.n == 3


def test_summarize_one_and_none():
    assert summarize([70.0]).std != summarize([70.0]).std  # NaN
    assert summarize([]).n == 0
