"""When a stored record may be reused: never for other data, never while another
process trains the cell."""

from __future__ import annotations

import gzip
import json

import pytest
from click.testing import CliRunner

import data_prep
from bench.config import make_config
from bench.engine.metric import run
from bench.store import RunDir
from cli import main
from common import UserError
from tests.conftest import TINY, write_tiny_fashion

TINIER = {**TINY, "epochs": 1, "train_per_class": 8}


def _prepare(base, flip_label: bool):
    raw = write_tiny_fashion(base / "raw")
    if flip_label:  # one training label changed: 0 -> 1
        path = raw / "train-labels-idx1-ubyte.gz"
        data = bytearray(gzip.decompress(path.read_bytes()))
        assert data[8] == 0  # IDX header is 8 bytes; the first label is class 0
        data[8] = 1
        path.write_bytes(gzip.compress(bytes(data)))
    data_prep.prepare("fashion-mnist", raw, base / "data", log=lambda text, warning=False: None)
    return str(base / "data")


def test_a_done_record_is_not_reused_for_re_prepared_data(tmp_path):
    data_dir = _prepare(tmp_path / "a", flip_label=False)
    cfg = make_config("fashion-mnist", "xbm", 0, "cpu", **TINIER)
    results = str(tmp_path / "results")
    first = run(cfg, data_dir, results, progress=False)
    assert first["status"] == "done"
    assert first["data_fingerprint"] == data_prep.fingerprint(data_dir, "fashion-mnist")
    assert run(cfg, data_dir, results, progress=False) == first  # same data: reused
    # the same folder prepared again with one label changed
    changed = _prepare(tmp_path / "a", flip_label=True)
    assert data_prep.fingerprint(changed, "fashion-mnist") != first["data_fingerprint"]
    with pytest.raises(UserError, match="fingerprint") as err:
        run(cfg, changed, results, progress=False)
    assert str(RunDir(results, cfg).path) in err.value.message
    # through the CLI: exit 2, no traceback, and the old record untouched
    res = CliRunner().invoke(
        main,
        ["run", "--dataset", "fashion-mnist", "--variant", "xbm", "--data", changed,
         "--results", results, *_tiny_args()],
    )  # fmt: skip
    assert res.exit_code == 2 and "fingerprint" in res.output and "Traceback" not in res.output
    assert json.loads(RunDir(results, cfg).result.read_text()) == first


def _tiny_args():
    return [
        "--train-per-class", str(TINIER["train_per_class"]), "--epochs", "1",
        "--warmup-epochs", "1", "--embedding-size", "16", "--drift-probe", "8",
        "--lr-step-epochs", "1",
    ]  # fmt: skip


def test_a_cell_another_process_trains_is_skipped(tiny_data, tmp_path):
    cfg = make_config("fashion-mnist", "xbm", 0, "cpu", **TINIER)
    results = str(tmp_path / "results")
    rd = RunDir(results, cfg)
    with rd.claim():  # stands for another launcher holding the cell
        res = CliRunner().invoke(
            main,
            ["run", "--dataset", "fashion-mnist", "--variant", "xbm", "--data", tiny_data,
             "--results", results, *_tiny_args()],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        assert "skipped" in res.output and "pid" in res.output
        assert not rd.result.exists() and not rd.checkpoint.exists()  # nothing trained here
    res = CliRunner().invoke(
        main,
        ["run", "--dataset", "fashion-mnist", "--variant", "xbm", "--data", tiny_data,
         "--results", results, *_tiny_args()],
    )  # fmt: skip
    assert res.exit_code == 0 and "done" in res.output
