"""``xbmbench reproduce``: every missing cell of a study, one progress bar, then the report."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from tqdm import tqdm

from bench.engine.guards import thread_mismatch
from bench.launch import launch_local, launch_submitit
from bench.launch.cell import check_weights
from bench.launch.request import default_request
from bench.pinning import cell_threads
from bench.store import CellBusy, RunDir
from bench.studies import cells
from common import UserError
from data_prep import ensure_prepared

# `xbmbench reproduce` with no arguments: every variant on Omniglot (demo); the Fashion-MNIST
# demo (demo-fashion) and MoCo (demo-moco) are named studies; README says how long it takes
DEFAULT_STUDIES = ("demo",)


def plan(
    study: str | Sequence[str],
    results: str,
    datasets: Iterable[str] | None = None,
    variants: Iterable[str] | None = None,
    seeds: Iterable[int] | None = None,
    retry_failed: bool = False,
    unreadable: list[dict[str, Any]] | None = None,
    threads: int | None = None,
) -> tuple[list, Counter]:
    """The cells to run (missing, interrupted, damaged, and failed ones with ``retry_failed``)
    and the count of every status in the grid. A cell whose record cannot be read, or (given
    ``threads``, the torch threads each cell will train at) a done CPU record made at another
    thread count, is counted ``unreadable``, its error appended to ``unreadable``, and the grid
    goes on without it.

    A filter that matches no cell is a UserError (naming the study and what it holds), not an
    empty grid. A failed cell to retry is reset under its claim; one claimed by a live process
    counts as ``busy`` and is left to it.
    """
    todo, counts = [], Counter()
    studies = [study] if isinstance(study, str) else list(study)
    datasets, variants, seeds = _listed(datasets), _listed(variants), _listed(seeds)
    grid = {c.run_id: c for s in studies for c in cells(s, datasets, variants, seeds)}
    if not grid:
        raise UserError(_no_match(studies, datasets, variants, seeds))
    for cfg in grid.values():
        rd = RunDir(results, cfg)
        try:
            status = rd.status() or "missing"  # DAMAGED (a done record cut short): trained again
            if status == "done" and threads and thread_mismatch(rd, threads):
                raise UserError(thread_mismatch(rd, threads))  # never passes as this cell
        except UserError as e:  # one unreadable record: said, and the rest of the grid goes on
            counts["unreadable"] += 1
            if unreadable is not None:
                cell = f"{cfg.variant}/{cfg.dataset}/seed {cfg.seed}"
                unreadable.append(
                    {"run_id": cfg.run_id, "cell": cell, "status": "error", "error": e.message}
                )
            continue
        if status == "failed" and retry_failed:  # start over: a failed run is never resumed
            try:
                with rd.claim():
                    rd.reset()
            except CellBusy:
                status = "busy"
        counts[status] += 1
        if status in ("done", "busy") or (status == "failed" and not retry_failed):
            continue
        todo.append(cfg)
    return todo, counts


def longest_first(todo: list) -> list:
    """The cells in the order a pool of workers should take them: those that train longest
    first, so that no long cell is left running alone while the other workers idle at the end;
    the study's order otherwise (a stable sort). Cost: epochs (warm-up included), doubled for a
    variant that re-embeds its memory (``oracle_xbm``: about twice a metric cell in the demo;
    a MoCo epoch costs about a metric epoch there: CHANGELOG.md, "Where a Fashion-MNIST demo
    cell's time went")."""
    from variants import DROP_IN_VARIANTS, VARIANTS

    def cost(cfg) -> int:
        reembeds = cfg.variant in VARIANTS and cfg.variant not in DROP_IN_VARIANTS
        return (cfg.epochs + cfg.warmup_epochs) * (2 if reembeds else 1)

    return sorted(todo, key=cost, reverse=True)


def _listed(values: Iterable | None) -> list | None:
    return None if values is None else list(values)  # a generator would be spent by one study


def _no_match(studies: list[str], datasets, variants, seeds) -> str:
    """Which filters (named as the CLI's options) matched nothing, and what the study has."""
    asked = {"dataset": ("--dataset", datasets), "variant": ("--variant", variants)}
    asked["seed"] = ("--seeds", seeds)
    # as studies.cells reads them: an empty list of names is no filter, an empty seed list is
    used = {k: fv for k, fv in asked.items() if (fv[1] is not None if k == "seed" else fv[1])}
    has: dict[str, set] = {k: set() for k in used}
    for s in studies:
        for c in cells(s):
            for k in has:
                has[k].add(getattr(c, k))
    filters = " ".join(f"{flag} {','.join(map(str, v)) or '(none)'}" for flag, v in used.values())
    holds = "; ".join(f"{k}s {', '.join(map(str, sorted(v)))}" for k, v in has.items())
    return f"no cell of study {'+'.join(studies)} matches {filters} (it has {holds})"


class GridBar:
    """One progress bar over the grid, the count of each outcome, and this call's failures.

    ``on_done`` takes each cell's result; ``on_state`` the scheduler's queued/running counts
    (``--launcher slurm``, which then shows queued, running, done and failed); otherwise the
    cells running are the ``width`` handed out at once."""

    def __init__(
        self,
        name: str,
        counts: Counter,
        retry_failed: bool,
        width: int,
        show: bool,
        unreadable: list[dict[str, Any]] = (),
    ) -> None:
        self.total, self.width, self.slurm = sum(counts.values()), width, False
        self.state = Counter(
            done=counts["done"],
            failed=counts["failed"] * (not retry_failed) + len(unreadable),
            busy=counts["busy"],
        )
        # this call's failed cells (unreadable records: as failed ones, said above the bar)
        self.failures: list[dict[str, Any]] = _said(list(unreadable))
        self.bar = tqdm(
            total=self.total,
            initial=self.state["done"] + self.state["failed"] + self.state["busy"],
            disable=not show,
            desc=name,
            unit="cell",
            dynamic_ncols=True,
        )
        self.postfix()

    def postfix(self) -> None:
        s = self.state
        if self.slurm:  # the scheduler's counts, not a guess
            self.bar.set_postfix(
                queued=s["queued"], running=s["running"], done=s["done"], failed=s["failed"]
            )
            return
        left = self.total - sum(s[k] for k in ("done", "failed", "interrupted", "busy"))
        self.bar.set_postfix(
            done=s["done"], running=min(self.width, left), failed=s["failed"], left=left
        )

    def on_state(self, queued: int, running: int) -> None:
        self.slurm, self.state["queued"], self.state["running"] = True, queued, running
        self.postfix()

    def on_done(self, cfg, result: dict[str, Any]) -> None:
        status, state = result.get("status"), self.state
        cell = f"{cfg.variant}/{cfg.dataset}/seed {cfg.seed}"
        if status == "done":
            state["done"] += 1
        elif status in ("failed", "error"):
            state["failed"] += 1
            self.failures.append({"run_id": cfg.run_id, "cell": cell, **result})
            tqdm.write(f"{cell}: {status}: {result.get('error')}")
        elif status == "busy":  # another process holds the cell: skipped, not failed
            state["busy"] += 1
            tqdm.write(f"{cell}: skipped: {result.get('error')}")
        else:
            state["interrupted"] += 1
        self.bar.update(1)
        self.postfix()

    def summary(self, name: str, ran: int) -> dict[str, Any]:
        self.bar.close()
        s = self.state
        return {
            "study": name,
            "cells": self.total,
            "ran": ran,
            "done": s["done"],
            "failed": s["failed"],
            "busy": s["busy"],
            "failures": self.failures,
        }


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
    wait: bool = True,
    dry_run: bool = False,
    pretrained_file: str | None = None,
    select_by: str = "recall@1",
    **slurm: Any,
) -> dict[str, Any]:
    """Run the missing cells of ``study``, then the report. ``slurm``: submitit-local's
    ``timeout_min``; for ``launcher="slurm"``, the options of ``request.default_request``.
    ``wait=False`` (slurm): submit and return, no report; ``dry_run`` (slurm): only the lines
    that say what would be submitted. ``pretrained_file``: weights for the pretrained cells,
    checked here before anything runs or is queued. ``select_by``: the metric that picks each
    run's best epoch in the report (reports.load.select_epoch)."""
    unreadable: list[dict[str, Any]] = []
    # the count each cell trains at (bench.launch), against which done CPU records are checked
    # (a Slurm cell's count follows its CPUs: run_cell checks it there)
    threads = {
        "local": cell_threads(jobs) if jobs > 1 else torch.get_num_threads(),
        "submitit-local": cell_threads(),
    }.get(launcher)
    todo, counts = plan(
        study, results, datasets, variants, seeds, retry_failed, unreadable, threads
    )
    name = study if isinstance(study, str) else "+".join(study)
    check_weights(todo, pretrained_file)
    req = default_request(todo, **slurm) if launcher == "slurm" else None
    if dry_run:
        from bench.launch.slurm import dry_run as describe

        if req is None:
            raise UserError("--dry-run shows what Slurm would be given: use --launcher slurm")
        return {"study": name, "dry_run": describe(todo, data_dir, results, req, pretrained_file)}
    ensure_prepared((c.dataset for c in todo), data_dir)
    width = jobs if launcher == "local" else len(todo)  # cells handed out at once
    grid = GridBar(name, counts, retry_failed, width, progress, unreadable)
    t0 = time.perf_counter()
    if launcher == "local":
        ordered = longest_first(todo) if jobs > 1 else todo
        launch_local(ordered, data_dir, results, grid.on_done, jobs=jobs)
    elif req is None:
        launch_submitit(todo, data_dir, results, grid.on_done, **slurm)
    else:
        from bench.launch.slurm import launch_slurm

        jobs_now = launch_slurm(
            todo, data_dir, results, grid.on_done, req, wait, pretrained_file, grid.on_state
        )
        if not wait:
            return {**grid.summary(name, 0), **jobs_now}
    summary = {**grid.summary(name, len(todo)), "seconds": time.perf_counter() - t0}
    s, failures = grid.state, grid.failures
    line = failure_line(failures, s["failed"] - len(failures), s["busy"])
    if line:  # before the report, so that it is seen even if the report cannot be built
        tqdm.write(line)
    if report:
        summary["report"] = build(results, select_by)
    return summary


def build(results: str, select_by: str = "recall@1") -> str:
    """The report over every study's cells: it compares with a reported number only the runs
    equal to the study cell that targets it, and labels the others by what differs.
    ``select_by``: the metric that picks each run's best epoch (reports.load.select_epoch)."""
    from bench.studies import STUDIES
    from commands.report import selection
    from reports.build import build_report

    every = {c.run_id: c for s in STUDIES for c in cells(s)}
    expected = [{"run_id": i, **c.to_dict()} for i, c in every.items()]
    return str(build_report(results, cells=expected, **selection(select_by)))


def _said(failures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each failure written above the progress bar, as a cell failing now is; returns them."""
    for f in failures:
        tqdm.write(f"{f['cell']}: {f['status']}: {f['error']}")
    return list(failures)


def failure_line(failures: list[dict[str, Any]], earlier: int, busy: int) -> str:
    """One line for the end of a grid: what failed now (cell and error type), what failed
    before and was not retried, what was skipped as busy; empty when all went well."""
    parts = []
    if failures:
        shown = ", ".join(
            f"{f['cell']} ({f.get('error_type') or f['status']})" for f in failures[:5]
        )
        more = f" and {len(failures) - 5} more" if len(failures) > 5 else ""
        parts.append(f"{len(failures)} cell(s) failed: {shown}{more} (errors printed above)")
    if earlier:
        parts.append(f"{earlier} failed before and not retried (--retry-failed)")
    if busy:
        parts.append(f"{busy} skipped: being trained by another process")
    return "; ".join(parts)
