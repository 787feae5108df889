"""The primary claims' design check against statsmodels called directly
(reports.claims.primary_design)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.power import TTestPower

from reports.claims import primary_design


def _row(claim, family, dataset, diffs):
    d = np.asarray(diffs, dtype=float)
    return {"claim": claim, "family": family, "profile": "cpu", "dataset": dataset,
            "method": "paired", "n": len(d), "n_a": len(d), "n_b": len(d), "diff": d.mean(),
            "sd": d.std(ddof=1), "p": 0.01}  # fmt: skip


def test_power_and_seeds_at_alpha_over_k_by_statsmodels():
    a = [0.7, 1.5, 2.2, 1.7, 0.2, 0.9, 1.5, -0.8]
    b = [1.6, 1.8, 0.3, 0.9, 1.2, -1.1, 1.6, 2.4, 0.5, 1.0]
    judged = pd.DataFrame([
        _row("A", "primary", "omniglot-small", a),
        _row("B", "primary", "omniglot-small", b),
        _row("C", "secondary", "omniglot-small", b),  # not primary: no row, not counted in k
        _row("D", "primary", "fashion-mnist", a),  # its own dataset: k = 1
    ])  # fmt: skip
    got = primary_design(judged, effect=1.5).set_index("claim")
    assert list(got.index) == ["A", "B", "D"]
    for name, diffs, k in (("A", a, 2), ("B", b, 2), ("D", a, 1)):
        sd, n = np.std(diffs, ddof=1), len(diffs)
        solver = TTestPower()
        power = solver.power(1.5 / sd, n, 0.05 / k, alternative="two-sided")
        assert got.loc[name, "k"] == k
        assert got.loc[name, "power_at_effect"] == pytest.approx(power, abs=1e-6)
        mdd = solver.solve_power(None, n, 0.05 / k, 0.8, alternative="two-sided") * sd
        assert got.loc[name, "mdd_at_alpha_k"] == pytest.approx(mdd, rel=1e-6)
        powers = {
            m: solver.power(1.5 / sd, m, 0.05 / k, alternative="two-sided") for m in range(2, 51)
        }
        need = min(m for m, p in powers.items() if p >= 0.8)
        assert got.loc[name, "seeds_for_effect"] == need


def test_rows_without_a_spread_are_left_out():
    judged = pd.DataFrame([_row("A", "primary", "x", [1.0, 1.0, 1.0])])
    assert primary_design(judged).empty
    assert primary_design(pd.DataFrame()).empty
