"""What a resumed or reused run must share with the one that made its record: the thread count
of a CPU run and the content of the dataset; and what becomes of a done record that is not whole
(bench/engine/lifecycle.py calls these first)."""

from __future__ import annotations

import json
import os
import warnings
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


def record_threads(rd: RunDir) -> int | None:
    """The torch thread count a CPU run's record was made with (env.json), None for a run on
    another device or a record that does not say."""
    try:
        env = json.loads(rd.env.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(env, dict) or not str(env.get("device", "cpu")).startswith("cpu"):
        return None
    threads = env.get("torch_threads")
    return threads if isinstance(threads, int) else None


def thread_mismatch(rd: RunDir, threads: int) -> str | None:
    """Why a finished record cannot stand for its cell trained at ``threads`` torch threads, or
    None. The thread count decides a CPU run's numbers (the order of its reductions) but is not
    in the run id: it is checked on reuse, as the data's fingerprint is. (Choice: the
    ids stay as they are, so every record and the shipped reference keep their names.)"""
    then = record_threads(rd)
    if then is None or then == threads:
        return None
    return (
        f"{rd.path} was made with {then} torch threads, and this cell asks for {threads}: the "
        f"numbers of a CPU run depend on the thread count. Run it with {then} threads (--threads "
        f"{then}, or OMP_NUM_THREADS={then}) to use this record, or move {rd.path} aside (or "
        f"pass --results another folder) to train the cell at {threads}"
    )


def check_same_threads(rd: RunDir) -> None:
    """A done or failed record made at another thread count than this process's is refused."""
    why = thread_mismatch(rd, torch.get_num_threads())
    if why:
        raise UserError(why)


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


def set_aside_damaged(rd: RunDir) -> None:
    """A done record cut short (bench.store.record_damage): its files are kept aside as evidence
    and the cell trains again, with a warning naming them."""
    why = rd.damage()
    aside = rd.set_aside_damaged()
    warnings.warn(
        f"damaged run record: {why}; moved aside ({', '.join(p.name for p in aside)}), the "
        f"cell trains again",
        stacklevel=3,
    )
