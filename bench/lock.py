"""A cell's lock: an atomic lock file stamped with its owner (the claim on the cell), and the rules
for a stale one.

Why a lock file and not ``fcntl``/``flock``: the results folder is shared between a laptop, local
worker processes and Slurm jobs on other nodes, often over NFS, where kernel locks are unreliable;
a file created atomically works everywhere and says who holds the cell.

- Taking it: the owner's JSON ``{host, pid, started, ...}`` is written to a temporary file, which
  is then hard-linked to ``lock``. ``link`` fails if ``lock`` exists, exactly like
  ``open(O_CREAT | O_EXCL)``, but the lock appears with its content complete, so a reader never
  sees an empty lock (a file system without hard links falls back to ``O_CREAT | O_EXCL``).
- Busy: a lock whose owner is alive. On this host: the pid exists (``os.kill(pid, 0)``) and, where
  ``/proc`` tells, it is still the same process (its start time matches, so a reused pid does not
  hold a cell forever). On another host the pid cannot be checked: the lock is alive while its
  owner's heartbeat (a thread touching the lock's mtime every ``heartbeat`` seconds) is younger
  than ``stale_after`` (default 30 minutes, 30 heartbeats: room for clock skew between hosts and
  NFS attribute caching; ``$XBMBENCH_LOCK_STALE_S`` or the ``stale_after`` argument change it).
- A lock taken inside a Slurm job names the job (``slurm_job``): on another host it is stale as
  soon as ``squeue`` says the job left the queue (cancelled, killed, timed out), without waiting
  for the heartbeat to age.
- Stale: replaced atomically (``os.replace`` of a complete new lock, so the cell is never
  unlocked in between) with a warning. Contenders for one stale lock serialise on a short-lived
  ``lock.takeover`` file and re-check the lock under it, so exactly one of them takes over.
- Released on exit (also on an exception), only if the lock is still this owner's.

A second launcher does not wait for a busy cell: it raises ``CellBusy`` at once and the launcher
reports the cell as skipped (exit 0). Waiting would hold a worker idle for the hours a cell
trains; skipping lets the grid go on, and a later ``reproduce`` picks the cell up if its owner
did not finish it.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from common import UserError, atomic_write_json, disk_error

STALE_AFTER_S = 30 * 60.0  # a foreign host's lock without a heartbeat for this long is stale
HEARTBEAT_S = 60.0
STALE_ENV = "XBMBENCH_LOCK_STALE_S"
TAKEOVER_STALE_S = 60.0  # the takeover file lives for a few lines of code; a minute is dead


class CellBusy(Exception):
    """The cell is claimed by another live process (owner in the message): skip it, do not wait."""

    def __init__(self, lock: Path, owner: dict[str, Any] | None, why: str = "") -> None:
        self.lock, self.owner = lock, owner or {}
        who = (
            f"pid {self.owner.get('pid')} on {self.owner.get('host')} "
            f"since {self.owner.get('started')}"
            if owner
            else "an unknown owner (unreadable lock)"
        )
        super().__init__(
            f"{lock.parent} is being trained by {who}{why}; skipped (delete {lock} if that "
            f"process is gone)"
        )


def _proc_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/<pid>/stat), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except (OverflowError, ValueError):
        return False
    return True


def _slurm_job() -> str | None:
    """This process's Slurm job (``<array>_<task>`` for an array task), None outside Slurm."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID")


def slurm_job_gone(job: str) -> bool:
    """True when squeue answers that ``job`` is no longer queued or running; False while it is,
    or where squeue cannot tell (not installed, no answer): the heartbeat rule decides then."""
    try:
        out = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return False
    if out.returncode == 0:
        return not out.stdout.strip()
    return "invalid job id" in out.stderr.lower()


def owner_stamp() -> dict[str, Any]:
    """Who takes a lock: host, pid, UTC start, the Slurm job if any, and a token that makes
    this claim unique."""
    stamp = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "proc_start": _proc_start(os.getpid()),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "token": uuid.uuid4().hex,
    }
    job = _slurm_job()
    return {**stamp, "slurm_job": job} if job else stamp


def stale_reason(owner: dict[str, Any] | None, age_s: float, stale_after: float) -> str | None:
    """Why a lock with this ``owner`` and heartbeat age is stale, or None while it is alive."""
    if not owner or not isinstance(owner.get("pid"), int):
        return f"unreadable lock untouched for {age_s:.0f} s" if age_s > stale_after else None
    pid, host = owner["pid"], owner.get("host")
    if host == socket.gethostname():
        if not _pid_alive(pid):
            return f"pid {pid} is not running on {host}"
        now = _proc_start(pid)
        if owner.get("proc_start") and now and now != owner["proc_start"]:
            return f"pid {pid} on {host} is now another process"
        return None
    job = owner.get("slurm_job")
    if job and slurm_job_gone(str(job)):  # a job killed on another node: no need to wait
        return f"Slurm job {job} of {host} is no longer in the queue"
    if age_s > stale_after:
        return f"no heartbeat from {host} for {age_s / 60:.0f} min (> {stale_after / 60:g} min)"
    return None


def _read(lock: Path) -> tuple[dict[str, Any] | None, os.stat_result]:
    """The lock's owner (None if unreadable) and its stat; FileNotFoundError once released."""
    st = os.stat(lock)
    try:
        owner = json.loads(lock.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError):
        owner = None
    return (owner if isinstance(owner, dict) else None), st


def _create(lock: Path, owner: dict[str, Any]) -> bool:
    """Create ``lock`` holding ``owner`` if it does not exist; False if it does."""
    fd, tmp = tempfile.mkstemp(prefix=f".{lock.name}.", suffix=".tmp", dir=lock.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600: others sharing the folder must read the owner
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(owner, f)
        try:
            os.link(tmp, lock)
            return True
        except FileExistsError:
            return False
        except OSError as e:  # no hard links here (some FUSE/SMB mounts): the O_EXCL way
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
        try:
            fd2 = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd2, "w", encoding="utf-8") as f:
            json.dump(owner, f)
        return True
    finally:
        os.unlink(tmp)


def _take_over(lock: Path, seen: os.stat_result, owner: dict[str, Any], reason: str) -> bool:
    """Replace the stale lock last seen as ``seen``; False if someone else is at it or was
    faster (the caller looks again)."""
    mutex = lock.with_name(lock.name + ".takeover")
    if not _create(mutex, owner):
        try:
            holder, st = _read(mutex)
        except FileNotFoundError:
            return False
        if stale_reason(holder, time.time() - st.st_mtime, TAKEOVER_STALE_S):
            mutex.unlink(missing_ok=True)  # a taker-over that died in these few lines
        return False
    try:
        try:
            _, now = _read(lock)
        except FileNotFoundError:
            return False
        if (now.st_ino, now.st_mtime_ns) != (seen.st_ino, seen.st_mtime_ns):
            return False  # replaced or touched since we looked: look again
        atomic_write_json(lock, owner)
    finally:
        mutex.unlink(missing_ok=True)
    warnings.warn(f"replaced the stale lock {lock}: {reason}", stacklevel=2)
    return True


def acquire(lock: Path, stale_after: float) -> dict[str, Any]:
    """Take ``lock`` (replacing a stale one) and return the owner stamp written; CellBusy if a
    live owner holds it."""
    me, owner = owner_stamp(), None
    # each retry follows a change by another process: a release, or a takeover in progress,
    # which lasts a few file operations; 2 s of retries cover a slow file system
    for _ in range(200):
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            if _create(lock, me):
                return me
        except OSError as e:  # a full disk, a read-only results folder: named, exit 2
            user = disk_error(e, lock, "taking the cell's claim")
            if user is None:
                raise
            raise user from e
        try:
            owner, st = _read(lock)
        except FileNotFoundError:
            continue  # released in between
        reason = stale_reason(owner, time.time() - st.st_mtime, stale_after)
        if reason is None:
            raise CellBusy(lock, owner)
        if _take_over(lock, st, me, reason):
            return me
        time.sleep(0.01)
    raise CellBusy(lock, owner, " (the lock kept changing while this process tried to take it)")


def _heartbeat(lock: Path, stop: threading.Event, every: float) -> None:
    while not stop.wait(every):
        try:
            os.utime(lock)
        except OSError:
            return  # gone (released or taken over): nothing left to keep alive


@contextmanager
def claim_lock(
    lock: Path, stale_after: float | None = None, heartbeat: float = HEARTBEAT_S
) -> Iterator[dict[str, Any]]:
    """Hold ``lock`` for the ``with`` block (see the module docstring); yields the owner stamp."""
    name = "stale_after"  # the argument, or the variable it came from (named in the error)
    if stale_after is None and STALE_ENV in os.environ:
        name = STALE_ENV
        try:
            stale_after = float(os.environ[STALE_ENV])
        except ValueError:
            stale_after = float("nan")
    stale_after = STALE_AFTER_S if stale_after is None else stale_after
    if not 0 < stale_after < float("inf"):
        got = os.environ[STALE_ENV] if name == STALE_ENV else stale_after
        raise UserError(f"{name} must be a positive number of seconds, got {got!r}")
    me = acquire(Path(lock), stale_after)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(lock, stop, heartbeat), daemon=True)
    beat.start()
    try:
        yield me
    finally:
        stop.set()
        beat.join()
        try:
            owner, _ = _read(lock)
        except FileNotFoundError:
            owner = None
        if owner == me:
            lock.unlink(missing_ok=True)
        else:
            warnings.warn(
                f"{lock} was taken over by {owner} while held; left in place", stacklevel=2
            )
