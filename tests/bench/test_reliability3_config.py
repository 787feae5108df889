"""Issue 30, cells that cannot train as asked: refused before anything is written (exit 2, the
value and the reason named), the user's own batch and m never rewritten, and a crash inside
training recorded as ``failed`` with its error rather than left ``running``."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import bench.engine.metric as metric
from bench.config import make_config
from cli import main
from common import UserError
from reports.load import load_store
from tests.conftest import TINY


def _run(tiny_data, results, *args: str):
    opts = [a for k, v in TINY.items() for a in (f"--{k.replace('_', '-')}", str(v))]
    return CliRunner().invoke(
        main,
        ["run", "--dataset", "fashion-mnist", "--variant", "xbm", "--data", tiny_data,
         "--results", str(results), *opts, *args],
    )  # fmt: skip


def test_a_batch_larger_than_the_training_set_is_refused(tiny_data, tmp_path):
    """TINY trains on 12 images x 10 classes = 120: a batch of 1000 (m raised to 100, a profile
    default, said on the terminal) cannot be drawn; refused before config.json is written."""
    results = tmp_path / "results"
    out = _run(tiny_data, results, "--batch-size", "1000")
    assert out.exit_code == 2, out.output
    assert "note: m_per_class raised from 4 to 100" in out.output
    assert "batch_size 1000 cannot be sampled from the training set of fashion-mnist here: " in (
        out.output
    )
    assert "120 images of 10 classes" in out.output and "Traceback" not in out.output
    assert not results.exists()


def test_a_k_beyond_the_reference_set_is_refused(tiny_data, tmp_path):
    """The tiny test set holds 8 images x 10 classes: 79 candidates for each query."""
    results = tmp_path / "results"
    out = _run(tiny_data, results, "--eval-ks", "1,10,100000")
    assert out.exit_code == 2, out.output
    assert "eval_ks 100000 is larger than the reference set of fashion-mnist: 79 images" in (
        out.output
    )
    assert not results.exists()


def test_the_users_batch_and_m_are_never_rewritten(tiny_data, tmp_path):
    with pytest.raises(UserError) as err:
        make_config("fashion-mnist", "xbm", 0, "cpu", batch_size=41, m_per_class=4)
    assert "m_per_class 4 with batch_size 41 cannot be sampled" in err.value.message
    assert "--m-per-class 41" in err.value.message
    out = _run(tiny_data, tmp_path / "r", "--batch-size", "41", "--m-per-class", "4")
    assert out.exit_code == 2 and "m_per_class 4 with batch_size 41" in out.output
    assert not (tmp_path / "r").exists()
    # the profile's m (not given) is adapted, recorded, and said on the terminal
    cfg = make_config("fashion-mnist", "xbm", 0, "cpu", batch_size=41)
    assert cfg.m_per_class == 41 and "raised from 4 to 41" in cfg.deviations[0]
    out = _run(tiny_data, tmp_path / "r", "--batch-size", "41", "--eval-ks", "1,10,100000")
    assert out.exit_code == 2  # refused by K: the note was printed first, nothing trained
    assert "note: m_per_class raised from 4 to 41: 10 classes cannot fill a batch of 41" in (
        out.output
    )


def test_an_embedding_of_size_one_is_refused(tiny_data, tmp_path):
    out = _run(tiny_data, tmp_path / "r", "--embedding-size", "1")
    assert out.exit_code == 2 and "embedding_size" in out.output and ">= 2" in out.output
    assert "+1 or -1" in out.output and not (tmp_path / "r").exists()
    assert make_config("fashion-mnist", "xbm", 0, "cpu", embedding_size=2).embedding_size == 2


def test_a_crash_inside_training_is_recorded_as_failed(tiny_data, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("boom inside the epoch")

    monkeypatch.setattr(metric, "train_epoch", boom)
    results = tmp_path / "results"
    out = _run(tiny_data, results)
    assert out.exit_code == 1, out.output
    assert "failed: RuntimeError: boom inside the epoch" in out.output
    (folder,) = (results / "runs").iterdir()
    record = json.loads((folder / "result.json").read_text())
    assert record["status"] == "failed" and record["error_type"] == "RuntimeError"
    assert "boom inside the epoch" in record["traceback"]
    assert load_store(results).runs["status"].tolist() == ["failed"]  # not "running"
