"""TensorBoard logging (bench/engine/tensorboard.py): `run --tensorboard DIR` writes one
TensorBoard run per cell, and the event files read back (with TensorBoard's own reader) hold
the record's numbers: every numeric column of metrics.csv per epoch, and the memory error and
adaptation gain of each epoch's last probe point from memory_error.csv. Off, nothing is written.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.engine import tensorboard
from cli import main
from tests.conftest import TINY

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)


def _args(tiny_data, results, variant="xbn"):
    args = ["run", "--dataset", "fashion-mnist", "--variant", variant, "--seed", "0"]
    args += ["--data", tiny_data, "--results", str(results), "--device", "cpu"]
    for key, value in TINY.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow  # trains a tiny cell (a few seconds)
def test_the_event_files_hold_the_records_numbers(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv(tensorboard.ENV, "")  # restored to what it was (unset) afterwards
    tb = tmp_path / "tb"
    result = CliRunner().invoke(main, [*_args(tiny_data, tmp_path / "r"), "--tensorboard", str(tb)])
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "r" / "runs").iterdir()
    runs = [p.parent for p in tb.rglob("events.out.tfevents.*")]
    assert len(set(runs)) == 1
    rel = runs[0].relative_to(tb).as_posix()
    assert rel == f"fashion-mnist/xbn/seed0-{run.name}"
    acc = EventAccumulator(str(runs[0]))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    metrics = _rows(run / "metrics.csv")
    checked = 0
    for row in metrics:
        epoch = int(row["epoch"])
        prefix, step = ("init/", 0) if epoch < 0 else ("", epoch)
        for key in ("loss", "recall@1", "recall@10", "drift_mean", "lr"):
            if row[key] in ("", "nan") or math.isnan(float(row[key])):
                assert f"{prefix}{key}" not in tags or all(
                    e.step != step for e in acc.Scalars(f"{prefix}{key}")
                )
                continue
            (event,) = [e for e in acc.Scalars(f"{prefix}{key}") if e.step == step]
            assert event.value == pytest.approx(float(row[key]), rel=1e-6)  # stored as float32
            checked += 1
    assert checked >= 10
    last = {int(r["epoch"]): r for r in _rows(run / "memory_error.csv")}
    assert set(last) == {1, 2}
    for epoch, row in last.items():
        for key in ("err_l2_mean", "raw_l2_mean", "gain"):
            (event,) = [e for e in acc.Scalars(f"memory/{key}") if e.step == epoch]
            assert event.value == pytest.approx(float(row[key]), rel=1e-6)
    assert "seconds" not in tags and "init/seconds" not in tags


@pytest.mark.slow
def test_off_by_default(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv(tensorboard.ENV, "")  # restored to what it was (unset) afterwards
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, _args(tiny_data, tmp_path / "r", variant="xbm"))
    assert result.exit_code == 0, result.output
    assert list(tmp_path.rglob("events.out.tfevents.*")) == []


def test_run_names_say_dataset_variant_options_and_seed():
    class Cfg:
        dataset, variant, seed, run_id = "sop", "delayed_xbn", 2, "abc123"
        variant_options = {"delay_epochs": 5}

    assert tensorboard.run_name(Cfg) == "sop/delayed_xbn[delay_epochs=5]/seed2-abc123"
