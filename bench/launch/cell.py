"""One cell, as every launcher runs it: ``run_cell`` never raises an Exception and returns the
outcome as a result dict (see bench/launch/__init__.py)."""

from __future__ import annotations

import os
import traceback
from typing import Any

import torch

from bench.config import RunConfig
from bench.engine.model import PRETRAINED_ENV
from bench.store import CellBusy, RunDir
from common import UserError


def run_cell(
    cfg_dict: dict[str, Any],
    data_dir: str,
    results: str,
    threads: int | None = None,
    device: str | None = None,
    pretrained_file: str | None = None,
) -> dict[str, Any]:
    """Train one cell (top level, so that it pickles for worker processes and submitit).

    ``pretrained_file``: the ImageNet weights for a cell whose config names none (``reproduce
    --pretrained-file``; not part of the config, so the cell's run id stays the study's).

    Never raises an Exception (KeyboardInterrupt still stops the grid): a UserError is
    returned as ``error`` (the user fixes the input, the next run resumes), any other exception
    is recorded as ``failed`` with its traceback (``record_failure``).
    """
    from bench.engine.metric import run

    if threads:
        torch.set_num_threads(threads)
    if pretrained_file:
        os.environ[PRETRAINED_ENV] = pretrained_file
    cfg = None
    try:
        cfg = RunConfig.from_dict(cfg_dict)
        return run(cfg, data_dir, results, device=device, progress=False)
    except CellBusy as e:
        return {"run_id": cfg.run_id, "status": "busy", "error": str(e)}
    except UserError as e:
        return {"run_id": cfg and cfg.run_id, "status": "error", "error": e.message}
    except Exception as e:
        if cfg is None:  # not even a config: nothing on disk to record it in
            return {"run_id": None, "status": "error", "error": _describe(e)}
        return record_failure(results, cfg, e)


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def record_failure(results: str, cfg: RunConfig, e: Exception) -> dict[str, Any]:
    """Write result.json ``failed`` with the error and its traceback, if the run folder has a
    config (a run that failed before writing one has nothing for a report to show; it runs
    again next time). The claim is taken again for this write, so that a process that claimed
    the cell since cannot have its record overwritten; a done record is never overwritten."""
    failure = {
        "status": "failed",
        "error": _describe(e),
        "error_type": type(e).__name__,
        "traceback": "".join(traceback.format_exception(type(e), e, e.__traceback__)),
    }
    rd = RunDir(results, cfg)
    if rd.config.exists():
        try:
            with rd.claim():
                if not rd.result.exists() or rd.read_result()["status"] != "done":  # damaged too
                    rd.write_result(failure)
        except Exception as w:  # busy, a full disk, an unreadable record: say so, go on
            failure["error"] += f" (not recorded in {rd.result}: {w})"
    return {"run_id": cfg.run_id, **failure}


def check_weights(cells: list[RunConfig], pretrained_file: str | None) -> list[str]:
    """Load the ImageNet weights every pretrained cell will need, as a job would, on this host and
    before anything is queued (a UserError names the file and what is wrong with it); returns
    the models checked."""
    from bench.engine.model import build_backbone

    needs = sorted({(c.model, c.pretrained_file or pretrained_file) for c in cells if c.pretrained})
    for model, path in needs:
        build_backbone(model, 3, True, path)
    return [model for model, _ in needs]
