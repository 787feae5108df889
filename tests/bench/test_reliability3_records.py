"""Issue 30, records that are not whole: a done run whose metrics.csv was cut short is
``damaged`` (never ``done``), named by file in the report and trained again by ``reproduce``;
one unreadable record stops neither the report nor ``reproduce``."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from bench import studies
from bench.store import DAMAGED, RunDir, record_damage
from bench.studies import Block, Study, cells
from cli import main
from commands.reproduce import plan, reproduce
from reports.load import load_store
from tests.conftest import TINY


@pytest.fixture
def two(monkeypatch):
    """Two tiny xbm cells (seeds 0 and 1) on the tiny Fashion-MNIST."""
    block = Block(("fashion-mnist",), ("xbm",), ({**TINY},), profile="cpu", seeds=(0, 1))
    monkeypatch.setitem(studies.STUDIES, "two", Study("two", "a test", (block,)))
    return "two"


def _cut(path, keep: float = 2 / 3) -> None:
    """Keep the first ``keep`` of the file's bytes: the last line kept ends mid-line."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_record_damage_reads_the_text_not_pandas(tmp_path):
    """Independent facts on hand-written files: a whole file passes; a row cut mid-line, a file
    without its last line break, and a missing main epoch are each named."""
    path = tmp_path / "metrics.csv"
    whole = "epoch,phase,recall@1\n-1,init,10.0\n0,warmup,20.0\n1,main,30.0\n2,main,40.0\n"
    path.write_text(whole)
    assert record_damage({"epochs_done": 2}, path) is None
    path.write_text(whole[:-6])  # "2,main" and no line break
    assert "row 4 is incomplete" in record_damage({"epochs_done": 2}, path)
    path.write_text(whole[:-1])  # every field there, the line break missing
    assert "its last line is incomplete" in record_damage({"epochs_done": 2}, path)
    path.write_text(whole.rsplit("2,main", 1)[0])  # epoch 2's row gone, cleanly
    assert "1 main-phase rows, result.json records 2 epochs" in record_damage(
        {"epochs_done": 2}, path
    )


@pytest.mark.slow  # three tiny trainings and a report: about 20 s on two cores
def test_a_cut_metrics_csv_is_damaged_reported_by_file_and_trained_again(two, tiny_data, tmp_path):
    results = tmp_path / "results"
    summary = reproduce(two, str(results), tiny_data, report=False, progress=False)
    assert summary["done"] == 2
    cut, whole = (RunDir(results, c) for c in cells(two))
    before = pd.read_csv(cut.metrics)
    _cut(cut.metrics)
    assert cut.status() == DAMAGED and whole.status() == "done"
    assert str(cut.metrics) in cut.damage()

    # the report: exit 0, the damaged run named with its file, none of its rows used
    out = CliRunner().invoke(main, ["report", "--results", str(results)])
    assert out.exit_code == 0, out.output
    assert f"warning: run {cut.cfg.run_id} left out: damaged run record: {cut.metrics}" in (
        out.output
    )
    store = load_store(results)
    assert store.done["run_id"].tolist() == [whole.cfg.run_id]
    assert set(store.epochs["run_id"]) == {whole.cfg.run_id}
    report = (results / "report" / "REPORT.md").read_text()
    assert "1 done, 1 damaged" in report or "1 damaged, 1 done" in report

    # reproduce trains it again; the damaged files are kept aside as evidence
    todo, counts = plan(two, str(results))
    assert [c.run_id for c in todo] == [cut.cfg.run_id] and counts[DAMAGED] == 1
    with pytest.warns(UserWarning, match="damaged run record"):
        again = reproduce(two, str(results), tiny_data, report=False, progress=False)
    assert again["ran"] == 1 and again["done"] == 2 and again["failed"] == 0
    assert cut.status() == "done" and cut.damage() is None
    aside = sorted(p.name.split(".corrupt-")[0] for p in cut.path.glob("*.corrupt-*"))
    assert aside == ["metrics.csv", "result.json"]
    after = pd.read_csv(cut.metrics)  # the same cell trained again: the same numbers
    pd.testing.assert_series_equal(after["recall@1"], before["recall@1"])


@pytest.mark.slow  # a tiny training, a report and the command line: about 15 s
def test_one_unreadable_record_does_not_stop_reproduce(two, tiny_data, tmp_path):
    results = tmp_path / "results"
    bad, good = (RunDir(results, c) for c in cells(two))
    bad.path.mkdir(parents=True)
    bad.result.write_text("{")
    summary = reproduce(two, str(results), tiny_data, report=True, progress=False)
    assert summary["ran"] == 1 and summary["done"] == 1 and summary["failed"] == 1
    (failure,) = summary["failures"]
    assert failure["run_id"] == bad.cfg.run_id and str(bad.result) in failure["error"]
    assert "not valid JSON" in failure["error"]
    assert good.status() == "done" and bad.result.read_text() == "{"  # left as it was
    assert (results / "report" / "REPORT.md").is_file()
    out = CliRunner().invoke(
        main, ["reproduce", "--study", two, "--results", str(results), "--data", tiny_data]
    )
    assert out.exit_code == 1 and str(bad.result) in out.output
    assert "Traceback" not in out.output
