"""What a resumed or reused run must share with the one that made its record: the thread count
of a CPU run and the content of the dataset (bench/engine/lifecycle.py calls these first)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

import data_prep
from bench.store import RunDir
from common import UserError

ALLOW_THREAD_CHANGE = "XBMBENCH_ALLOW_THREAD_CHANGE"


def thread_notes(rd: RunDir, ckpt: dict[str, Any] | None, device: torch.device) -> list[str]:
    """A CPU run's numbers depend on torch's thread count (the order of its reductions): a resume
    with another count is refused, unless forced, and then the record says so."""
    if ckpt is None or device.type != "cpu":
        return []
    saved, now = ckpt.get("torch_threads"), torch.get_num_threads()
    if saved is None or saved == now:  # None: a checkpoint from before the count was kept
        return []
    if os.environ.get(ALLOW_THREAD_CHANGE) != "1":
        raise UserError(
            f"{rd.checkpoint} was written with {saved} torch threads and this process has "
            f"{now}: the numbers of a CPU run depend on the thread count. Resume with "
            f"{saved} threads (--threads {saved}), or set {ALLOW_THREAD_CHANGE}=1 to resume "
            f"with {now} (the record will note the change)"
        )
    return [
        f"torch threads changed on resume: {saved} up to epoch {ckpt['epoch']}, {now} from "
        f"epoch {ckpt['epoch'] + 1} ({ALLOW_THREAD_CHANGE}=1)"
    ]


def data_fingerprint(data_dir: str, dataset: str) -> str | None:
    """The prepared dataset's content hash, or None where the dataset has no manifest yet (the
    task's build then says so with its own message)."""
    if not (Path(data_dir) / dataset / "manifest.json").is_file():
        return None
    return data_prep.fingerprint(data_dir, dataset)


def check_same_data(
    rd: RunDir, saved: dict[str, Any], data_dir: str, now: str | None = None
) -> None:
    """A record (or checkpoint) made from other data than ``data_dir`` holds now is never reused:
    the run id names the config, not the data's content. Records from before fingerprints were
    kept carry none and are not checked."""
    then = saved.get("data_fingerprint")
    now = now or data_fingerprint(data_dir, rd.cfg.dataset)
    if then is None or now is None or then == now:
        return
    raise UserError(
        f"{rd.path} was trained on {rd.cfg.dataset} with fingerprint {then[:12]}..., but the "
        f"data in {Path(data_dir) / rd.cfg.dataset} now has fingerprint {now[:12]}... (it was "
        f"prepared again from other files): move {rd.path} aside to train this cell on the new "
        f"data, or pass --results to another folder"
    )
