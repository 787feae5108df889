"""What a run ran on (env.json): library versions, the code commit, the machine, and what
decides a CPU run's numbers (the CPU, the kernels torch dispatches to, the oneDNN and BLAS
settings in force, the pinning mode of bench/pinning.py, the thread count)."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import socket
import subprocess
from pathlib import Path
from typing import Any

import torch

from bench import pinning


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:
        return None


def git_commit() -> str | None:
    here = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def build_config(text: str) -> dict[str, str | None]:
    """From ``torch.__config__.show()``: the BLAS and LAPACK torch was built with, and the
    versions of MKL and oneDNN (None where the build has none)."""
    settings = dict(re.findall(r"\b(BLAS_INFO|LAPACK_INFO)=([^,\s]+)", text))
    mkl = re.search(r"Math Kernel Library Version (\S+)", text)
    onednn = re.search(r"(?:MKL-DNN|oneDNN) v(\S+)", text)
    return {
        "blas": settings.get("BLAS_INFO"),
        "lapack": settings.get("LAPACK_INFO"),
        "mkl_version": mkl.group(1) if mkl else None,
        "onednn_version": onednn.group(1) if onednn else None,
    }


def cpu_settings() -> dict[str, Any]:
    """What decides a CPU run's numbers besides the code: the CPU, the kernels torch
    dispatches to, the oneDNN and MKL settings in force (the variables and torch's view), the
    pinning (bench/pinning.py) and whether it is in effect."""
    cpu = pinning.cpu_info()
    names = sorted({n for names in pinning.ALIASES.values() for n in names})
    state = pinning.state()
    capability = torch.backends.cpu.get_cpu_capability()
    pinned_isa = state["mode"] == "portable" and state["applied"]
    return {
        "cpu_model": cpu["model"],
        "cpu_vendor": cpu["vendor"],
        "cpu_isa": cpu["isa"],
        "cpu_capability": capability,  # the instruction set ATen's kernels dispatch to
        "cpu_env": {n: os.environ.get(n) for n in names},  # the settings in force
        "mkldnn": {
            "available": torch.backends.mkldnn.is_available(),
            "enabled": bool(torch.backends.mkldnn.enabled),
            "deterministic": bool(torch.backends.mkldnn.deterministic),
        },
        "mkl_available": torch.backends.mkl.is_available(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        **build_config(torch.__config__.show()),
        "cpu_pinning": {
            **state,
            # the pinned instruction set really is what torch dispatches to
            "in_effect": pinned_isa and capability == pinning.PINNED_CAPABILITY,
        },
    }


def environment(device: str) -> dict[str, Any]:
    """The versions and machine a run used (env.json)."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "timm": _version("timm"),
        "pytorch_metric_learning": _version("pytorch_metric_learning"),
        "numpy": _version("numpy"),
        "pandas": _version("pandas"),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "git_commit": git_commit(),
        "host": socket.gethostname(),
        "device": device,
        "device_name": torch.cuda.get_device_name()
        if device.startswith("cuda")
        else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        **cpu_settings(),
        "platform": platform.platform(),
        "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
