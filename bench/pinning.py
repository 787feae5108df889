"""Portable CPU numbers: pin the kernels that decide a CPU run's numbers, before torch loads.

On a CPU, the same code, seed and thread count give different numbers on machines whose
instruction sets differ, because the libraries under torch pick their kernels by the CPU they
find: oneDNN's convolutions and Intel MKL's matrix products take AVX-512 code where it exists
(docs/reproducibility.md has the experiments). ``apply`` sets the
environment variables that make every x86-64 machine with AVX2 take the same kernels
(``PORTABLE``), before torch is imported: they are read once, when a library first runs.

- mode ``portable`` (the default) pins; ``native`` (``XBMBENCH_CPU_MODE=native`` or
  ``xbmbench --cpu-mode native``) lets every library take the fastest kernels of this CPU.
- A value the user set is never overwritten: it stays, and the state records it as the user's.
- The variables live in ``os.environ``, so worker processes, submitit jobs and Slurm jobs
  (which inherit the submitting environment) run pinned too; ``PINNED_VAR`` tells them which
  variables xbmbench set.
- If torch is already imported (a program that imports torch before xbmbench), nothing is set
  and the state says the pinning could not be applied: the kernels were chosen already.

This module imports nothing but the standard library (it runs before torch).
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

MODE_VAR = "XBMBENCH_CPU_MODE"
MODES = ("portable", "native")
DEFAULT_MODE = "portable"
# "<mode>:<VAR>,<VAR>": what the process that pinned set; inherited by its children
PINNED_VAR = "XBMBENCH_CPU_PINNED"

# What portable mode sets (variable -> value). Each knob also lists the other names the same
# library reads: a user value under any of them is the user's choice and is kept.
PORTABLE: dict[str, str] = {
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN (convolutions): at most AVX2 kernels
    "MKL_CBWR": "COMPATIBLE",  # MKL (matrix products): the one code branch that is the same on
    # Intel and AMD CPUs (its AVX2 branch holds only on Intel CPUs: oneMKL developer guide,
    # "Getting Started with Conditional Numerical Reproducibility")
    "ATEN_CPU_CAPABILITY": "avx2",  # ATen's own vectorised kernels: AVX2
    # torch's thread count (reductions split by thread): one per cell, on any machine, so that
    # the numbers do not depend on the core count; `xbmbench reproduce` runs one cell per core
    # side by side instead (two single-thread cells do 1.3x the work of one two-thread cell on
    # the reference machine's two cores: CHANGELOG.md, "Where a Fashion-MNIST demo cell's time
    # went")
    "OMP_NUM_THREADS": "1",
}
ALIASES: dict[str, tuple[str, ...]] = {
    "ONEDNN_MAX_CPU_ISA": ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"),
    "MKL_CBWR": ("MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS"),
    "ATEN_CPU_CAPABILITY": ("ATEN_CPU_CAPABILITY",),
    "OMP_NUM_THREADS": ("OMP_NUM_THREADS",),
}
# the capability torch must report when the pinning is in effect on a CPU with AVX2
PINNED_CAPABILITY = "AVX2"
# vector instruction sets worth naming in a record (/proc/cpuinfo flags)
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")

_state: dict[str, Any] | None = None  # this process's last apply(), if any


def requested_mode(mode: str | None = None) -> str:
    """``mode``, else ``$XBMBENCH_CPU_MODE``, else portable; a ValueError names a bad value."""
    mode = (mode or os.environ.get(MODE_VAR) or DEFAULT_MODE).strip().lower()
    if mode not in MODES:
        raise ValueError(f"{MODE_VAR} must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def _user_values(ours: set[str]) -> dict[str, str]:
    """Every knob variable in the environment that xbmbench did not set."""
    names = {n for names in ALIASES.values() for n in names}
    return {n: os.environ[n] for n in sorted(names) if n in os.environ and n not in ours}


def _inherited() -> tuple[str, list[str]] | None:
    """(mode, variables set) from a parent process that pinned, or None."""
    marker = os.environ.get(PINNED_VAR)
    if not marker or ":" not in marker:
        return None
    mode, _, names = marker.partition(":")
    return mode, [n for n in names.split(",") if n]


def _unset_ours() -> None:
    """Remove what an earlier apply() of this process (or its parent) set; user values stay."""
    inherited = _inherited()
    for name in inherited[1] if inherited else []:
        os.environ.pop(name, None)
    os.environ.pop(PINNED_VAR, None)


def apply(mode: str | None = None) -> dict[str, Any]:
    """Pin (portable) or release (native) the CPU kernels for this process and its children;
    returns ``state()``. Call it before anything imports torch; afterwards it changes nothing
    and the state says why."""
    global _state
    mode = requested_mode(mode)
    if "torch" in sys.modules:
        now = state()
        if now["applied"] and now["mode"] == mode:
            return now  # pinned before torch loaded, as asked: nothing to change
        _state = {**now, "requested": mode, "applied": now["applied"] and now["mode"] == mode}
        _state["reason"] = (
            f"{mode} mode was asked for after torch was imported: the kernels were chosen "
            f"already ({now['mode']} settings stay in force)"
        )
        return dict(_state)
    _unset_ours()
    ours: list[str] = []
    if mode == "portable" and platform.machine().lower() in ("x86_64", "amd64"):
        for name, value in PORTABLE.items():
            if not any(alias in os.environ for alias in ALIASES[name]):
                os.environ[name] = value
                ours.append(name)
    os.environ[MODE_VAR] = mode
    os.environ[PINNED_VAR] = f"{mode}:{','.join(ours)}"
    _state = None
    return state()


def check_thread_var() -> None:
    """A ValueError naming ``OMP_NUM_THREADS`` when it is set to anything but a whole number of
    threads >= 1: libgomp only warns and torch then takes another count (all cores), which
    changes a CPU run's numbers while its run id stays the same. (Choice: a libgomp list such as
    "4,2", for nested parallelism, is refused too; torch uses one level.)"""
    value = os.environ.get("OMP_NUM_THREADS")
    if value is None or _thread_pin() is not None:
        return
    raise ValueError(
        f"OMP_NUM_THREADS must be a whole number of threads >= 1, got {value!r}: a CPU run's "
        f"numbers depend on its thread count; set it to a count (e.g. OMP_NUM_THREADS=1, what "
        f"portable mode pins) or unset it"
    )


def _thread_pin() -> int | None:
    """``OMP_NUM_THREADS`` as a count (pinned or the user's), or None where unset or not one."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) >= 1 else None


def cell_threads(jobs: int = 1) -> int:
    """Torch threads for each of ``jobs`` cells run side by side: the pinned (or the user's)
    ``OMP_NUM_THREADS`` where set, else the cores shared out."""
    return _thread_pin() or max(1, cores() // max(1, jobs))


def default_jobs(cuda: bool) -> int:
    """Cells run side by side by default: one on a GPU; on CPUs, as many as the cores hold at
    ``cell_threads()`` threads each (native mode, no thread pin: one cell on every core)."""
    if cuda:
        return 1
    return max(1, cores() // (_thread_pin() or cores()))


def cores() -> int:
    """The cores this process may run on (its CPU affinity, where the system says)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no sched_getaffinity (macOS)
        return os.cpu_count() or 1


def state() -> dict[str, Any]:
    """What this process runs under: ``mode``, ``applied`` (the variables were in place before
    torch loaded), ``pinned`` (set by xbmbench), ``user`` (the user's own values, kept),
    ``reason`` (why not applied, or why nothing was pinned)."""
    if _state is not None:
        return dict(_state)
    inherited = _inherited()
    if inherited is None:  # no xbmbench launcher before torch: library use
        mode = requested_mode()
        return {
            "mode": mode,
            "requested": mode,
            "applied": False,
            "pinned": {},
            "user": _user_values(set()),
            "reason": "torch was imported before xbmbench could pin the CPU kernels (call "
            "bench.pinning.apply() before importing torch, or run through the xbmbench command)",
        }
    mode, names = inherited
    pinned = {n: os.environ[n] for n in names if n in os.environ}
    reason = None
    if mode == "portable" and not pinned and not _user_values(set()):
        reason = f"nothing to pin on {platform.machine()} (portable mode pins x86-64 kernels)"
    return {
        "mode": mode,
        "requested": mode,
        "applied": True,
        "pinned": pinned,
        "user": _user_values(set(names)),
        "reason": reason,
    }


def cpu_info(cpuinfo: str | Path = "/proc/cpuinfo") -> dict[str, Any]:
    """The CPU's model name, vendor and vector instruction sets (``ISA_FLAGS`` it has), from
    /proc/cpuinfo; where that is missing, what ``platform`` says (and no flags)."""
    fields: dict[str, str] = {}
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep:
            if fields:  # the first processor's block is enough
                break
            continue
        fields.setdefault(key, value.strip())
    flags = set(fields.get("flags", "").split())
    return {
        "model": fields.get("model name") or platform.processor() or platform.machine(),
        "vendor": fields.get("vendor_id"),
        "isa": [f for f in ISA_FLAGS if f in flags] if flags else None,
    }
