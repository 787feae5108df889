"""``make gpu-check`` (bench/perf/gpu_check.py) on a machine without CUDA: the one-line refusal,
the step runner's bookkeeping, the SOP tree it generates and the summary it writes from the
benchmarks' own JSON (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from bench.perf import gpu_check as gc
from bench.perf.gpu_summary import summary_markdown

REPO = Path(__file__).resolve().parents[2]
ENV = {"device_name": "Fake GPU", "torch": "x", "cuda": "y", "cudnn": 1, "cpus": 2}


def _report() -> dict:
    return {"started_at": "now", "env": {**ENV, "git_commit": "abc"}, "options": {}, "steps": {}}


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present: gpu-check would run")
def test_without_cuda_it_exits_non_zero_with_one_line(tmp_path):
    out = tmp_path / "out"
    p = subprocess.run(
        [sys.executable, "-m", "bench.perf.gpu_check", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 2
    assert p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(
        "gpu-check needs CUDA: torch.cuda.is_available() is False on this machine ("
    )
    assert not out.exists()  # nothing run, nothing written


def test_a_failed_step_is_recorded_and_the_next_one_runs(tmp_path):
    ran = []

    def fails():
        ran.append("fails")
        raise gc.StepFailed("exit 1: boom", {"measured": 3})

    def buggy():
        ran.append("buggy")
        raise KeyError("oops")

    steps = {"a": lambda: ran.append("a") or {"x": 1}, "b": fails, "c": buggy, "d": lambda: {}}
    report = _report()
    assert gc.run_steps(steps, tmp_path, report) is False
    assert ran == ["a", "fails", "buggy"] and list(report["steps"]) == ["a", "b", "c", "d"]
    saved = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [saved["steps"][k]["status"] for k in "abcd"] == ["passed", "failed", "failed", "passed"]
    assert saved["steps"]["b"] == {
        "status": "failed",
        "error": "exit 1: boom",
        "details": {"measured": 3},
        "seconds": saved["steps"]["b"]["seconds"],
    }
    assert saved["steps"]["c"]["error"] == "KeyError: 'oops'"
    md = (tmp_path / "gpu_check.md").read_text()
    assert md.startswith("# gpu-check: Fake GPU") and "| b | failed |" in md
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu_check.json", "gpu_check.md"]
    assert gc.run_steps({"a": lambda: {}}, tmp_path, _report()) is True


def test_a_failing_command_raises_step_failed_and_keeps_its_log(tmp_path):
    with pytest.raises(gc.StepFailed, match=r"exit 3: bad \(logs/x.log\)"):
        gc._call(
            [sys.executable, "-c", "import sys; print('bad', file=sys.stderr); sys.exit(3)"],
            tmp_path,
            "x",
            60,
        )
    assert (tmp_path / "logs" / "x.log").read_text().startswith("$ ")


def test_the_summary_reads_the_benchmarks_own_json(tmp_path):
    """Real (tiny, CPU) outputs of bench train, bench memory and bench data, so that the summary
    cannot drift from the writers' schemas."""
    from bench.perf import input_pipeline as bd
    from bench.perf.memory import MemoryBenchConfig
    from bench.perf.memory import run as memory_run
    from commands.perf import bench_train

    torch.set_num_threads(2)
    args = ["--variant", "no_xbm", "--variant", "xbn", "--steps", "1", "--warmup", "1", "--json"]
    train = json.loads(CliRunner().invoke(bench_train, args).output)
    train["over_target"] = ["xbn"]
    mem_cfg = dict(batch=16, dim=16, classes=50, reps=1, warmup=1)
    memory = {str(m): memory_run(MemoryBenchConfig(memory_size=m, **mem_cfg)) for m in (64, 128)}
    data = bd.run(4, [0], 2, 0, None)
    report = _report()
    report["steps"] = {
        "train": {"status": "passed", "seconds": 1, "details": train},
        "memory": {"status": "passed", "seconds": 1, "details": {"by_memory_size": memory}},
        "data": {"status": "passed", "seconds": 1, "details": data},
        "epoch": {"status": "failed", "error": "exit 1: x", "seconds": 1, "details": {}},
    }
    md = summary_markdown(report)
    assert "| no_xbm | 0 |" in md and "| xbn |" in md and "over it: xbn" in md
    assert "ms @64 | x PML @64 | ms @128 | x PML @128" in md and "| pml_xbm |" in md
    assert "| 0 |" in md and "needs" in md  # the data table and the worker estimate
    assert "One epoch" not in md  # the failed step measured nothing


def test_the_sop_tree_is_prepared_and_batched_by_the_trainers_loader(tmp_path):
    from bench.config import make_config
    from data_prep import prepare

    gc.write_sop_tree(tmp_path / "raw", n_train=40, n_test=10, processes=2)
    train = (tmp_path / "raw" / "Ebay_train.txt").read_text().splitlines()
    assert train[0] == "image_id class_id super_class_id path" and len(train) == 41
    frame = prepare(
        "sop", tmp_path / "raw", tmp_path / "data", check_images=True, log=lambda *a, **k: None
    )
    assert frame.groupby("split").size().to_dict() == {"train": 40, "test": 10}
    by_split = frame.groupby("split")
    assert by_split["label"].nunique().to_dict() == {"train": 8, "test": 2}  # 5 images a class
    assert not set(frame[frame.split == "train"].label) & set(frame[frame.split == "test"].label)
    assert frame["superclass"].nunique() == 10  # classes 1..10 over 12 kinds: 10 kinds used
    cfg = make_config(
        "sop", "xbn", 0, "paper", pretrained=False, batch_size=8, m_per_class=4, num_workers=0
    )
    rate = gc.pipeline_rate(cfg, str(tmp_path / "data"))
    assert rate["images"] == 40 and rate["workers"] == 0 and rate["images_per_s"] > 0
