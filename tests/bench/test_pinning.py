"""Portable mode (bench/pinning.py) and what env.json records of it (bench/engine/env.py).

The pinning must happen before torch loads, so each check of ``apply`` runs in a fresh
interpreter (this one has torch loaded already) and reads what it prints. This process itself
was pinned by tests/conftest.py before any import of torch.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench import pinning
from bench.config import make_config
from bench.engine.env import build_config, environment
from bench.engine.metric import run
from bench.store import RunDir
from tests.conftest import PINNING, TINY

ROOT = Path(__file__).resolve().parents[2]
KNOBS = sorted({n for names in pinning.ALIASES.values() for n in names})
CLEAN = {k: v for k, v in os.environ.items() if k not in (*KNOBS, pinning.MODE_VAR,
                                                         pinning.PINNED_VAR)}  # fmt: skip
CPUINFO = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
FLAGS = re.search(r"^flags\s*:(.*)$", CPUINFO, re.M)
CPU_FLAGS = set(FLAGS[1].split()) if FLAGS else set()


def _python(code: str, **env: str) -> dict:
    """Run ``code`` in a fresh interpreter with a clean pinning environment plus ``env``; the
    last line it prints is JSON."""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**CLEAN, **env}, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# the knob variables as the child process sees them
ENV_OF = "{k: os.environ.get(k) for k in sorted({n for v in pinning.ALIASES.values() for n in v})}"
APPLY_THEN_TORCH = f"""
import json, os
from bench import pinning
before = pinning.apply(MODE)
import torch
print(json.dumps({{"state": pinning.state(), "capability": torch.backends.cpu.get_cpu_capability(),
                  "threads": torch.get_num_threads(), "env": {ENV_OF}}}))
"""


def _apply(mode=None, **env):
    return _python(APPLY_THEN_TORCH.replace("MODE", repr(mode)), **env)


@pytest.mark.skipif("avx2" not in CPU_FLAGS, reason="portable mode pins the AVX2 level")
def test_portable_mode_pins_before_torch_and_torch_dispatches_to_avx2():
    got = _apply()
    assert got["capability"] == "AVX2"  # torch's own view: the pinning took effect
    assert got["state"]["mode"] == "portable" and got["state"]["applied"]
    assert got["state"]["pinned"] == pinning.PORTABLE and got["state"]["user"] == {}
    assert {k: got["env"][k] for k in pinning.PORTABLE} == pinning.PORTABLE
    assert got["threads"] == int(pinning.PORTABLE["OMP_NUM_THREADS"])  # whatever the cores


def test_a_value_the_user_set_is_kept_and_recorded_as_the_users():
    got = _apply(MKL_CBWR="AUTO", DNNL_MAX_CPU_ISA="AVX512_CORE", OMP_NUM_THREADS="1")
    assert got["env"]["MKL_CBWR"] == "AUTO" and got["env"]["DNNL_MAX_CPU_ISA"] == "AVX512_CORE"
    # oneDNN's other name was the user's: xbmbench did not set the one that would override it
    assert got["env"]["ONEDNN_MAX_CPU_ISA"] is None
    assert got["threads"] == 1
    assert got["state"]["user"] == {
        "DNNL_MAX_CPU_ISA": "AVX512_CORE", "MKL_CBWR": "AUTO", "OMP_NUM_THREADS": "1",
    }  # fmt: skip
    assert got["state"]["pinned"] == {"ATEN_CPU_CAPABILITY": "avx2"}


@pytest.mark.skipif("avx512f" not in CPU_FLAGS, reason="needs a CPU with AVX-512")
def test_native_mode_sets_nothing_and_torch_takes_avx512():
    for got in (_apply(XBMBENCH_CPU_MODE="native"), _apply("native")):
        assert got["capability"] == "AVX512"
        assert got["state"]["mode"] == "native" and got["state"]["pinned"] == {}
        assert all(v is None for v in got["env"].values())


def test_native_after_portable_removes_only_what_xbmbench_set():
    code = f"""
import json, os
from bench import pinning
pinning.apply("portable")
state = pinning.apply("native")
print(json.dumps({{"state": state, "env": {ENV_OF}}}))
"""
    got = _python(code, MKL_CBWR="AVX2")
    assert got["env"] == {k: ("AVX2" if k == "MKL_CBWR" else None) for k in KNOBS}
    assert got["state"]["mode"] == "native" and got["state"]["user"] == {"MKL_CBWR": "AVX2"}


def test_after_torch_is_imported_nothing_is_set_and_the_state_says_why():
    code = f"""
import json, os
import torch
from bench import pinning
state = pinning.apply()
print(json.dumps({{"state": state, "env": {ENV_OF},
                  "capability": torch.backends.cpu.get_cpu_capability()}}))
"""
    got = _python(code)
    assert not got["state"]["applied"] and "torch was imported" in got["state"]["reason"]
    assert all(v is None for v in got["env"].values())


CHILD = """
import json, multiprocessing as mp, sys
sys.path.insert(0, {root!r})
from concurrent.futures import ProcessPoolExecutor
from bench import pinning

def child():
    import torch
    from bench import pinning
    return {{"state": pinning.state(), "capability": torch.backends.cpu.get_cpu_capability()}}

if __name__ == "__main__":
    pinning.apply()
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        print(json.dumps(pool.submit(child).result()))
"""


@pytest.mark.skipif("avx2" not in CPU_FLAGS, reason="portable mode pins the AVX2 level")
def test_child_processes_inherit_the_pinning(tmp_path):
    """A worker process (spawned, as launch_local's pool and submitit's jobs are) runs pinned."""
    script = tmp_path / "parent.py"
    script.write_text(CHILD.format(root=str(ROOT)))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=CLEAN, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["capability"] == "AVX2"
    assert got["state"]["applied"] and got["state"]["pinned"] == pinning.PORTABLE


def test_a_bad_mode_is_refused_by_name():
    with pytest.raises(ValueError, match="XBMBENCH_CPU_MODE.*'fast'"):
        pinning.requested_mode("fast")
    proc = subprocess.run([sys.executable, "cli.py", "grid", "studies"], cwd=ROOT,
                          capture_output=True, text=True,
                          env={**CLEAN, "XBMBENCH_CPU_MODE": "fast"})  # fmt: skip
    assert proc.returncode == 2 and "--cpu-mode" in proc.stderr and "fast" in proc.stderr


def test_cpu_info_reads_the_first_processor(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) X\n"
        "flags\t\t: fpu sse4_2 avx avx2 fma avx512f\n\nprocessor\t: 1\nmodel name\t: other\n"
    )
    assert pinning.cpu_info(info) == {
        "model": "Intel(R) Xeon(R) X", "vendor": "GenuineIntel",
        "isa": ["sse4_2", "avx", "avx2", "fma", "avx512f"],
    }  # fmt: skip
    missing = pinning.cpu_info(tmp_path / "absent")
    assert missing["vendor"] is None and missing["isa"] is None and missing["model"]


def test_build_config_reads_torch_config():
    text = torch.__config__.show()
    got = build_config(text)
    assert got["blas"] == re.search(r"BLAS_INFO=(\w+)", text)[1]
    assert build_config("nothing") == dict.fromkeys(got)


def test_two_pinned_runs_are_identical_and_env_json_says_what_decided_them(
    tiny_data, tmp_path, two_threads
):
    cfg = make_config("fashion-mnist", "xbm", 0, "cpu", **TINY)
    for name in ("a", "b"):
        assert run(cfg, tiny_data, tmp_path / name, progress=False)["status"] == "done"
    a, b = (pd.read_csv(RunDir(tmp_path / n, cfg).metrics) for n in ("a", "b"))
    pd.testing.assert_frame_equal(a.drop(columns=["seconds", "images_per_s"]),
                                  b.drop(columns=["seconds", "images_per_s"]))  # fmt: skip
    env = json.loads(RunDir(tmp_path / "a", cfg).env.read_text())
    if CPUINFO:  # Linux: read independently of bench/pinning.py's parser
        model = re.search(r"^model name\s*:\s*(.*)$", CPUINFO, re.M)[1].strip()
        assert env["cpu_model"] == model
        assert env["cpu_vendor"] == re.search(r"^vendor_id\s*:\s*(.*)$", CPUINFO, re.M)[1].strip()
        assert set(env["cpu_isa"]) == set(pinning.ISA_FLAGS) & CPU_FLAGS
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["cpu_env"] == {k: os.environ.get(k) for k in KNOBS}
    assert env["torch_threads"] == 2
    assert env["blas"] == re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())[1]
    assert env["mkldnn"]["enabled"] is torch.backends.mkldnn.enabled
    assert env["cpu_pinning"]["mode"] == PINNING["mode"]
    if PINNING["mode"] == "portable" and "avx2" in CPU_FLAGS:  # tests/conftest.py pinned us
        assert env["cpu_capability"] == "AVX2" and env["cpu_pinning"]["in_effect"] is True
        assert env["cpu_env"]["ONEDNN_MAX_CPU_ISA"] == pinning.PORTABLE["ONEDNN_MAX_CPU_ISA"]


def test_environment_of_an_unpinned_process_says_so(monkeypatch):
    monkeypatch.delenv(pinning.PINNED_VAR, raising=False)
    monkeypatch.setattr(pinning, "_state", None)
    env = environment("cpu")
    assert env["cpu_pinning"]["applied"] is False and env["cpu_pinning"]["in_effect"] is False
    assert "torch was imported" in env["cpu_pinning"]["reason"]


def _cli_run(tiny_data, results, **env):
    """A tiny cell through the command line in a fresh interpreter; its metrics and env.json."""
    args = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    proc = subprocess.run(
        [sys.executable, "cli.py", "run", "--dataset", "fashion-mnist", "--variant", "xbm",
         "--data", tiny_data, "--results", str(results), *args],
        cwd=ROOT, capture_output=True, text=True, env={**CLEAN, **env}, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rd = RunDir(results, make_config("fashion-mnist", "xbm", 0, "cpu", **TINY))
    metrics = pd.read_csv(rd.metrics).drop(columns=["seconds", "images_per_s"])
    return metrics, json.loads(rd.env.read_text())


@pytest.mark.slow
@pytest.mark.skipif("avx2" not in CPU_FLAGS, reason="portable mode pins the AVX2 level")
def test_the_command_line_pins_and_equals_avx2_forced_from_outside(tiny_data, tmp_path):
    """`xbmbench run` pins before torch loads (env.json says so), and its numbers are those of
    native mode with every library held at AVX2 by the user's own variables."""
    pinned, env = _cli_run(tiny_data, tmp_path / "portable")
    assert env["cpu_capability"] == "AVX2" and env["cpu_pinning"]["in_effect"] is True
    assert env["cpu_pinning"]["pinned"] == pinning.PORTABLE and env["torch_threads"] == 1
    forced, env = _cli_run(tiny_data, tmp_path / "forced", XBMBENCH_CPU_MODE="native",
                           MKL_ENABLE_INSTRUCTIONS="AVX2", **pinning.PORTABLE)  # fmt: skip
    assert env["cpu_pinning"]["mode"] == "native" and env["cpu_pinning"]["pinned"] == {}
    assert env["cpu_capability"] == "AVX2"
    pd.testing.assert_frame_equal(pinned, forced)


@pytest.mark.slow
@pytest.mark.skipif(
    PINNING["mode"] != "portable" or "avx2" not in CPU_FLAGS,
    reason="needs this test process pinned (tests/conftest.py) on a CPU with AVX2",
)
def test_a_submitit_job_runs_pinned(tiny_data, tmp_path):
    """The Slurm code path (submitit's local executor): the job inherits the pinning."""
    from bench.launch import launch_submitit

    cfg = make_config("fashion-mnist", "xbm", 0, "cpu", **TINY)
    seen = []
    launch_submitit([cfg], tiny_data, str(tmp_path), lambda c, r: seen.append(r), poll_s=0.2)
    assert seen[0]["status"] == "done", seen
    env = json.loads(RunDir(tmp_path, cfg).env.read_text())
    assert env["cpu_capability"] == "AVX2" and env["cpu_pinning"]["in_effect"] is True
    assert env["cpu_pinning"]["pinned"] == pinning.PORTABLE


@pytest.mark.parametrize(
    "omp,cores,cuda,threads,jobs",
    [
        ("1", 2, False, 1, 2),  # portable mode on the reference machine: two one-thread cells
        ("1", 16, False, 1, 16),  # a bigger machine: more cells side by side, same numbers
        ("1", 16, True, 1, 1),  # a GPU: one cell
        (None, 8, False, 4, 1),  # native mode: one cell on every core (4 each when 2 share)
        ("4", 16, False, 4, 4),  # a user's own count: cells of that many threads
        ("x", 6, False, 3, 1),  # not a count: as if unset
    ],
)
def test_cells_side_by_side_share_the_cores(monkeypatch, omp, cores, cuda, threads, jobs):
    if omp is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    monkeypatch.setattr(pinning, "cores", lambda: cores)
    assert pinning.cell_threads(2) == threads
    assert pinning.default_jobs(cuda) == jobs
