"""``xbmbench reproduce``: every missing cell of a study, one progress bar, then the report."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from typing import Any, Iterable, Sequence

from tqdm import tqdm

from bench.launch import launch_local, launch_submitit
from bench.store import RunDir
from bench.studies import cells
from data_prep import ensure_fashion_mnist

# `xbmbench reproduce` with no arguments: every variant on Fashion-MNIST (demo) and MoCo with
# and without XBN (demo-moco, the CPU version of paper figure 2); about 11 minutes on 2 cores
DEFAULT_STUDIES = ("demo", "demo-moco")


def plan(
    study: str | Sequence[str],
    results: str,
    datasets: Iterable[str] | None = None,
    variants: Iterable[str] | None = None,
    seeds: Iterable[int] | None = None,
    retry_failed: bool = False,
) -> tuple[list, Counter]:
    """The cells to run (missing, interrupted, and failed ones with ``retry_failed``) and the
    count of every status in the grid."""
    todo, counts = [], Counter()
    studies = [study] if isinstance(study, str) else list(study)
    grid = {c.run_id: c for s in studies for c in cells(s, datasets, variants, seeds)}
    for cfg in grid.values():
        rd = RunDir(results, cfg)
        status = rd.status() or "missing"
        counts[status] += 1
        if status == "done" or (status == "failed" and not retry_failed):
            continue
        if status == "failed":  # start over: a failed run is never resumed
            shutil.rmtree(rd.path)
        todo.append(cfg)
    return todo, counts


def reproduce(
    study: str | Sequence[str] = DEFAULT_STUDIES,
    results: str = "results",
    data_dir: str = "data",
    datasets: Iterable[str] | None = None,
    variants: Iterable[str] | None = None,
    seeds: Iterable[int] | None = None,
    launcher: str = "local",
    jobs: int = 1,
    retry_failed: bool = False,
    report: bool = True,
    progress: bool = True,
    **slurm: Any,
) -> dict[str, Any]:
    todo, counts = plan(study, results, datasets, variants, seeds, retry_failed)
    name = study if isinstance(study, str) else "+".join(study)
    if any(c.dataset == "fashion-mnist" for c in todo):
        ensure_fashion_mnist(data_dir)
    total = sum(counts.values())
    state = Counter(done=counts["done"], failed=counts["failed"] * (not retry_failed))
    bar = tqdm(
        total=total,
        initial=state["done"] + state["failed"],
        disable=not progress,
        desc=name,
        unit="cell",
        dynamic_ncols=True,
    )
    width = jobs if launcher == "local" else len(todo)  # cells handed out at once

    def postfix():
        left = total - state["done"] - state["failed"] - state["interrupted"]
        bar.set_postfix(
            done=state["done"], running=min(width, left), failed=state["failed"], left=left
        )

    postfix()
    t0 = time.perf_counter()

    def on_done(cfg, result):
        status = result.get("status")
        state[
            "done"
            if status == "done"
            else "failed"
            if status in ("failed", "error")
            else "interrupted"
        ] += 1
        if status in ("failed", "error"):
            tqdm.write(
                f"{cfg.variant}/{cfg.dataset}/seed {cfg.seed}: {status}: {result.get('error')}"
            )
        bar.update(1)
        postfix()

    if launcher == "local":
        launch_local(todo, data_dir, results, on_done, jobs=jobs)
    else:
        launch_submitit(todo, data_dir, results, on_done, kind=launcher, **slurm)
    bar.close()
    summary = {
        "study": name,
        "cells": total,
        "ran": len(todo),
        "done": state["done"],
        "failed": state["failed"],
        "seconds": time.perf_counter() - t0,
    }
    if report:
        from reports.build import build_report

        summary["report"] = str(build_report(results))
    return summary
