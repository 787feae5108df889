"""``make gpu-check``: is the paper profile's GPU path sound and fast? One command, on CUDA.

``python -m bench.perf.gpu_check --out DIR`` runs, each step in its own process where it can:
1. ``tests``: ``pytest -m cuda`` (tests/bench/test_cuda.py);
2. ``memory``: ``xbmbench bench memory --device cuda`` at the paper's sizes (batch 64, d 512,
   memory 30,000 and SOP's full 59,551), every variant against PML's CrossBatchMemory;
3. ``train``: ``xbmbench bench train --profile paper --device cuda`` (ResNet-50, 224 px
   synthetic images, AMP), every variant and no_xbm: images/s and overhead over no_xbm, judged
   against ``OVERHEAD_TARGET``;
4. ``data``: ``bench data`` (decode + the paper transforms) per DataLoader worker;
5. ``epoch``: a generated SOP-layout tree of JPEGs, prepared with ``xbmbench data prepare sop``,
   one main epoch of ``xbmbench run --profile paper`` through the real DataLoader with the
   profile's workers; images/s of the input pipeline alone (the same loader, no model) and of the
   trainer's whole step, so that an input-bound run shows.
A failed step is recorded and the next one runs. DIR/gpu_check.json and DIR/gpu_check.md are
rewritten (atomically) after every step. Exit status: 0 all steps passed, 1 a step failed,
2 no CUDA here (one line on stderr, nothing run).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.perf.gpu_summary import OVERHEAD_TARGET, input_bound, summary_markdown
from common import atomic_write_json, atomic_write_text

REPO = Path(__file__).resolve().parents[2]
MEMORY_SIZES = (30000, 59551)  # half of SOP's training set (the paper's memory) and all of it
DATA_WORKERS = "0,1,4,8,16"
SOP_PER_CLASS, SOP_SUPERCLASSES = 5, 12  # SOP: ~5 images per product, 12 kinds of product
STEPS = ("tests", "memory", "train", "data", "epoch")


class StepFailed(Exception):
    """A step's failure, with what it measured before failing."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


def cuda_reason() -> str | None:
    """None where CUDA can be used, else the one line that says why not."""
    import torch

    if torch.cuda.is_available():
        return None
    build = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
    return (
        f"gpu-check needs CUDA: torch.cuda.is_available() is False on this machine "
        f"(torch {torch.__version__}, {build}, {torch.cuda.device_count()} devices visible)"
    )


def _call(args: list[str], out: Path, log: str, timeout: int) -> str:
    """Run ``args`` in the repository; its output goes to DIR/logs/LOG.log; stdout returned."""
    try:
        p = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise StepFailed(f"{' '.join(args[-6:])}: timed out after {timeout} s") from e
    atomic_write_text(out / "logs" / f"{log}.log", f"$ {' '.join(args)}\n{p.stdout}\n{p.stderr}")
    if p.returncode != 0:
        tail = (p.stderr.strip() or p.stdout.strip()).splitlines()[-1:] or [""]
        raise StepFailed(f"exit {p.returncode}: {tail[0]} (logs/{log}.log)")
    return p.stdout


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "import cli; cli.main()", *args]


def step_tests(out: Path, opts: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        args = [sys.executable, "-m", "pytest", "-m", "cuda", "-rs", "-p", "no:cacheprovider"]
        try:
            _call(args + [f"--junitxml={xml}", "tests"], out, "tests", 3600)
        except StepFailed as e:
            e.details = _junit(xml)
            raise
        return _junit(xml)


def _junit(xml: Path) -> dict[str, Any]:
    if not xml.exists():
        return {}
    suite = ET.parse(xml).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    return {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}


def step_memory(out: Path, opts: argparse.Namespace) -> dict[str, Any]:
    runs = {}
    for size in MEMORY_SIZES:
        args = ["--memory-size", str(size), "--batch", "64", "--dim", "512"]
        text = _call(
            _cli("bench", "memory", "--device", "cuda", "--json", *args),
            out,
            f"memory_{size}",
            1800,
        )
        runs[str(size)] = json.loads(text)
    missed = [  # findings, not failures of the step
        f"{r['name']} @{size}: {r['target']}"
        for size, run in runs.items()
        for r in run["rows"]
        if r["meets_target"] is False
    ]
    return {"by_memory_size": runs, "missed_targets": missed}


def step_train(out: Path, opts: argparse.Namespace) -> dict[str, Any]:
    args = ["--steps", str(opts.train_steps), "--warmup", "5", "--json"]
    text = _call(
        _cli("bench", "train", "--profile", "paper", "--device", "cuda", *args), out, "train", 3600
    )
    result = json.loads(text)
    slow = [
        r["name"]
        for r in result["rows"]
        if r["overhead_vs_no_xbm"] is not None and r["overhead_vs_no_xbm"] > OVERHEAD_TARGET
    ]
    result["over_target"] = slow  # a finding, not a failure of the step
    if not all(r.get("amp_used") for r in result["rows"]):
        raise StepFailed("bench train did not use AMP on CUDA", result)
    return result


def step_data(out: Path, opts: argparse.Namespace) -> dict[str, Any]:
    args = ["--images", str(opts.data_images), "--workers", DATA_WORKERS, "--json"]
    cmd = _cli("bench", "data", *args)
    return json.loads(_call(cmd, out, "data", 3600))


def write_sop_tree(root: Path, n_train: int, n_test: int, processes: int) -> None:
    """SOP's layout (Ebay_train.txt, Ebay_test.txt, <kind>_final/<class>_<k>.JPG) with
    ``SOP_PER_CLASS`` generated JPEGs per class; train and test classes are disjoint."""
    from bench.perf.input_pipeline import write_jpegs

    paths, image_id, first_class = [], 0, 1
    for split, n in (("train", n_train), ("test", n_test)):
        lines = ["image_id class_id super_class_id path"]
        for i in range(n):
            cls = first_class + i // SOP_PER_CLASS
            sup = 1 + cls % SOP_SUPERCLASSES
            rel = f"kind{sup:02d}_final/{cls}_{i % SOP_PER_CLASS}.JPG"
            image_id += 1
            lines.append(f"{image_id} {cls} {sup} {rel}")
            paths.append(root / rel)
        first_class += -(-n // SOP_PER_CLASS)
        atomic_write_text(root / f"Ebay_{split}.txt", "\n".join(lines) + "\n")
    write_jpegs(paths, seed=0, processes=processes)


def pipeline_rate(cfg, data_dir: str) -> dict[str, float]:
    """One epoch of the trainer's own batches (Data.batches: DataLoader, MPerClassSampler, the
    profile's workers), no model: images/s with and without worker start-up."""
    from bench.engine.data import Data
    from bench.engine.lifecycle import seed_everything

    seed_everything(cfg.seed, 0)
    data = Data(cfg, data_dir)
    start = time.perf_counter()
    n = n0 = 0
    t0 = start
    for i, batch in enumerate(data.batches(0)):  # main epoch 0's keys
        n += len(batch.x)
        if i + 1 == max(cfg.num_workers, 1):  # every worker has delivered its first batch
            t0, n0 = time.perf_counter(), n
    end = time.perf_counter()
    return {
        "images": n,
        "workers": cfg.num_workers,
        "images_per_s": (n - n0) / (end - t0) if n > n0 else float("nan"),
        "images_per_s_with_startup": n / (end - start),
    }


def _weights(opts: argparse.Namespace) -> tuple[list[str], dict[str, Any], str]:
    """CLI arguments, config overrides and a note for the epoch's weights: the paper profile
    wants ImageNet weights, and without ``--pretrained-file`` there are none offline."""
    if opts.pretrained_file:
        f = opts.pretrained_file
        return ["--pretrained-file", f], {"pretrained_file": f}, f"ImageNet weights from {f}"
    note = (
        "none: pretrained=False, random init (no --pretrained-file; nothing is downloaded). "
        "Throughput is the paper model's; the epoch's recall means nothing"
    )
    return ["--pretrained", "false"], {"pretrained": False}, note


def step_epoch(out: Path, opts: argparse.Namespace) -> dict[str, Any]:
    import os

    import pandas as pd

    from bench.config import make_config
    from bench.store import RunDir

    raw, data_dir, results = out / "sop_raw", out / "data", out / "results"
    n_test = max(SOP_PER_CLASS, opts.images // 4)
    start = time.perf_counter()
    write_sop_tree(raw, opts.images, n_test, os.cpu_count() or 1)
    details: dict[str, Any] = {
        "variant": opts.variant,
        "train_images": opts.images,
        "test_images": n_test,
        "jpeg_generation_s": time.perf_counter() - start,
    }
    prepare = ["data", "prepare", "sop", "--root", str(raw), "--data", str(data_dir)]
    _call(_cli(*prepare), out, "prepare", 1800)
    flags, over, details["weights"] = _weights(opts)
    cfg = make_config("sop", opts.variant, 0, "paper", epochs=1, warmup_epochs=0, **over)
    details.update(num_workers=cfg.num_workers, run_id=cfg.run_id)
    details["pipeline"] = pipeline_rate(cfg, str(data_dir))
    args = ["run", "--dataset", "sop", "--variant", opts.variant, "--profile", "paper"]
    args += ["--device", "cuda", "--epochs", "1", "--warmup-epochs", "0"]
    args += ["--data", str(data_dir), "--results", str(results), *flags]
    try:
        _call(_cli(*args), out, "epoch", 3600)
    except StepFailed as e:
        e.details = details
        raise
    main = pd.read_csv(RunDir(results, cfg).metrics).query("phase == 'main'").iloc[0]
    details["step_images_per_s"] = float(main["images_per_s"])
    details["epoch_seconds_with_eval"] = float(main["seconds"])
    details["step_over_pipeline"] = (
        details["step_images_per_s"] / details["pipeline"]["images_per_s"]
    )
    return details


def environment() -> dict[str, Any]:
    import os

    import torch

    from bench.engine.env import git_commit

    return {
        "device_name": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "cpus": os.cpu_count(),
        "git_commit": git_commit(),
    }


def run_steps(
    steps: dict[str, Callable[[], dict[str, Any]]], out: Path, report: dict[str, Any]
) -> bool:
    """Run every step, recording each outcome; rewrite the JSON and Markdown after each one.
    Returns whether all passed."""
    for name, step in steps.items():
        start = time.perf_counter()
        try:
            entry = {"status": "passed", "details": step()}
        except StepFailed as e:
            entry = {"status": "failed", "error": str(e), "details": e.details}
        except Exception as e:  # a bug in a step must not stop the others
            entry = {"status": "failed", "error": f"{type(e).__name__}: {e}", "details": {}}
        entry["seconds"] = time.perf_counter() - start
        report["steps"][name] = entry
        verdict = input_bound(report)
        if verdict:
            report["input_bound"] = verdict
        atomic_write_json(out / "gpu_check.json", report)
        atomic_write_text(out / "gpu_check.md", summary_markdown(report))
    return all(r["status"] != "failed" for r in report["steps"].values())


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench.perf.gpu_check", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--out", type=Path, required=True, help="folder for the results")
    ap.add_argument("--pretrained-file", default=None, help="ResNet-50 weights for the epoch step")
    ap.add_argument("--variant", default="xbn", help="the epoch step's variant [xbn]")
    ap.add_argument("--images", type=int, default=4000, help="train JPEGs of the epoch step")
    ap.add_argument("--data-images", type=int, default=2048, help="JPEGs of the data step")
    ap.add_argument("--train-steps", type=int, default=30, help="timed steps of the train step")
    ap.add_argument("--skip", action="append", choices=STEPS, default=[], help="skip a step")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    reason = cuda_reason()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    out = opts.out.resolve()
    report = {
        "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "env": environment(),
        "options": {k: str(v) for k, v in vars(opts).items()},
        "steps": {},
    }
    funcs = {"tests": step_tests, "memory": step_memory, "train": step_train}
    funcs.update({"data": step_data, "epoch": step_epoch})
    steps = {n: (lambda f=f: f(out, opts)) for n, f in funcs.items() if n not in opts.skip}
    ok = run_steps(steps, out, report)
    print(f"gpu-check {'passed' if ok else 'FAILED'}: {out / 'gpu_check.md'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
