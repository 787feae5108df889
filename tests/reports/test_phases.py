"""The mechanism per LR phase: probe records whose gain is above 1 before the first
LR decay and below 1 after it (as on the Fashion-MNIST demo), split and averaged here by hand
in plain loops, against the phase table, the epoch table and the per-phase closer claims."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from bench.store import RunDir
from reports.build import compute, write
from reports.claims import SECONDARY_FAMILY, judge_all
from reports.inference import HOLDS, REFUTED
from reports.load import load_store, select_epoch
from reports.mechanism import (
    AFTER,
    BEFORE,
    EPOCH_STEM,
    LR_PHASE,
    PHASE_STEM,
    PHASE_TEXT,
    claim_rows,
    closer_phase_rows,
    epoch_table,
    epochs_of,
    mechanism_claims,
    phase_of,
    phase_table,
)
from reports.tables import load_reported

from .conftest import make_run
from .test_mechanism import EPOCHS, POINTS, N, config, probe_rows

STEP = 2  # the cpu profile's lr_step_epochs: epochs 1-2 at the full LR, 3-5 after the decay
BEFORE_GAIN, AFTER_GAIN = (1.2, 1.25, 1.18), (0.9, 0.92, 0.87)  # per seed


def _probed(root, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """An xbn run: per point i, err = 0.1 + 0.01 i, raw = err * gain of i's phase * wiggle."""
    cfg = config("xbn", seed)
    assert cfg.lr_step_epochs == STEP and cfg.epochs == EPOCHS
    make_run(root, cfg, best_r1=80.0 + seed, best_epoch=EPOCHS)
    epoch = np.arange(N) // POINTS + 1
    err = 0.1 + 0.01 * np.arange(N)
    gain = np.where(epoch <= STEP, BEFORE_GAIN[seed], AFTER_GAIN[seed])
    raw = err * gain * np.where(np.arange(N) % 2 == 0, 1.01, 1 / 1.01)
    RunDir(root, cfg).write_memory_error(probe_rows(err, raw, np.ones(N), np.full(N, 0.8)))
    return err, raw


@pytest.fixture
def phase_store(results):
    return results, [_probed(results, s) for s in range(3)]


def _by_hand(arrays, epochs) -> dict[str, list[float]]:
    """Per seed, over the points of ``epochs``: mean err, mean raw, geometric-mean gain."""
    out = {"err": [], "raw": [], "gain": [], "log_gain": []}
    for err, raw in arrays:
        idx = [i for i in range(N) if i // POINTS + 1 in epochs]
        logs = [math.log(raw[i] / err[i]) for i in idx]
        out["err"].append(sum(err[i] for i in idx) / len(idx))
        out["raw"].append(sum(raw[i] for i in idx) / len(idx))
        out["log_gain"].append(sum(logs) / len(logs))
        out["gain"].append(math.exp(out["log_gain"][-1]))
    return out


def test_phase_of_follows_steplr():
    assert [phase_of(e, 2) for e in (1, 2, 3, 5)] == [BEFORE] * 2 + [AFTER] * 2
    assert epochs_of(BEFORE, 2, 5) == "epochs 1–2"
    assert epochs_of(AFTER, 2, 5) == "epochs 3–5" and epochs_of(AFTER, 4, 5) == "epoch 5"
    assert epochs_of(AFTER, 5, 5) == ""


def test_phase_and_epoch_tables_against_a_hand_split(phase_store):
    root, arrays = phase_store
    store = load_store(root)
    runs = select_epoch(store.done)
    table = phase_table(runs, store.memory).set_index(LR_PHASE)
    for phase, epochs in ((BEFORE, {1, 2}), (AFTER, {3, 4, 5})):
        hand = _by_hand(arrays, epochs)
        row = table.loc[phase]
        assert row["n"] == 3 and row["variant"] == "xbn"
        for col in ("err", "raw", "gain"):
            stem = "err_l2" if col == "err" else "raw_l2" if col == "raw" else "gain"
            assert row[f"{stem}_mean"] == pytest.approx(np.mean(hand[col]))
            assert row[f"{stem}_std"] == pytest.approx(np.std(hand[col], ddof=1))
    assert table.loc[BEFORE, "gain_mean"] > 1 > table.loc[AFTER, "gain_mean"]
    per_epoch = epoch_table(runs, store.memory).set_index("epoch")
    assert list(per_epoch.index) == list(range(1, EPOCHS + 1))
    for e in range(1, EPOCHS + 1):
        assert per_epoch.loc[e, "gain_mean"] == pytest.approx(
            np.mean(_by_hand(arrays, {e})["gain"])
        )
        assert per_epoch.loc[e, LR_PHASE] == (BEFORE if e <= STEP else AFTER)


def test_closer_claims_per_phase_hold_before_and_are_refuted_after(phase_store):
    root, arrays = phase_store
    store = load_store(root)
    runs = select_epoch(store.done)
    extra = [*claim_rows(runs, store.memory, load_reported()),
             *closer_phase_rows(runs, store.memory)]  # fmt: skip
    judged = judge_all(runs, load_reported(), extra=extra).set_index("claim_id")
    for phase, epochs, verdict in ((BEFORE, {1, 2}, HOLDS), (AFTER, {3, 4, 5}, REFUTED)):
        row = judged.loc[f"xbn:closer@{phase}"]
        logs = _by_hand(arrays, epochs)["log_gain"]
        assert row["family"] == SECONDARY_FAMILY and row["n"] == 3
        assert row["diff"] == pytest.approx(np.mean(logs))
        assert row["p"] == pytest.approx(sps.ttest_1samp(logs, 0.0).pvalue)
        assert row["verdict"] == verdict
        assert PHASE_TEXT[phase] in row["claim"]
    # the per-phase rows are mechanism rows; the whole-run row is still there
    assert {"xbn:closer", "xbn:closer@before", "xbn:closer@after"} <= set(
        mechanism_claims(judged.reset_index())["claim_id"]
    )
    text = write(compute(root)).read_text()
    assert "### Per LR phase" in text and "before the first LR decay (epochs 1–2)" in text
    tables = root / "report" / "tables"
    assert (tables / f"{PHASE_STEM}.csv").exists() and (tables / f"{EPOCH_STEM}.csv").exists()
