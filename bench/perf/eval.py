"""Benchmark: our chunked exact Recall@1/10 against faiss ``IndexFlatIP`` brute force.

Both methods get the same random L2-normalised embeddings (float32, N/4 random classes) and
compute Recall@1 and Recall@10 of the set against itself, self excluded. Each method runs in a
fresh subprocess (``python -m bench.perf.eval ours|faiss N DIM SEED REPEATS``) for its memory
peak and recall, and a third one (``... time ...``) times both:

- time: median wall time of ``--repeats`` runs of each method after one warm-up run each, the
  runs interleaved (ours, faiss, faiss, ours, ...) so that load from other processes hits both
  alike; a run is the whole computation (ours: ``recall_at_k``; faiss: build the index, add,
  search k=11, turn the result into recalls); both use the same number of threads (torch's
  default, given to faiss);
- peak memory: the process' peak resident set size (``VmHWM`` in /proc/self/status) during two
  runs (the first call included) minus its resident size just before them, after resetting it with
  ``echo 5 > /proc/self/clear_refs`` (Linux >= 4.0), so it counts what the method itself
  allocates above the embeddings it is given. ``tracemalloc`` does not see torch's allocations.
  ``-1`` where /proc is unavailable.

Targets (docs/performance.md, not tests): ours at most faiss' time at 20,000 x 512 (parity;
it was 1.5x before the self protocol used the symmetry of the similarities), the same recalls,
and a memory peak that does not grow with N^2.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np
import torch

KS = (1, 10)
REPO_ROOT = Path(__file__).resolve().parents[2]  # bench/perf/eval.py -> the repository


def make_data(n: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random unit embeddings and labels from ``max(1, n // 4)`` classes, seeded."""
    gen = torch.Generator().manual_seed(seed)
    emb = torch.nn.functional.normalize(torch.randn(n, dim, generator=gen), dim=1)
    labels = torch.randint(0, max(1, n // 4), (n,), generator=gen)
    return emb, labels


def faiss_recall(emb: np.ndarray, labels: np.ndarray, ks=KS) -> dict[int, float]:
    """Recall@K (self excluded) by faiss IndexFlatIP: search max(ks)+1 and drop self.

    faiss lists equal similarities by decreasing index, and with duplicates the query itself may
    fall outside the k+1 results: each row is re-sorted by (-similarity, index), then self is
    dropped where present, else the last item, which is bench.evaluate's tie rule wherever faiss
    kept the same tied items (see bench.evaluate's docstring).
    """
    import faiss

    kmax = max(ks)
    index = faiss.IndexFlatIP(emb.shape[1])
    index.add(emb)
    sims, ids = index.search(emb, kmax + 1)
    order = np.lexsort((ids, -sims), axis=1)
    ids = np.take_along_axis(ids, order, axis=1)
    is_self = ids == np.arange(len(ids))[:, None]
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), kmax)
    keep = np.ones_like(ids, dtype=bool)
    keep[np.arange(len(ids)), drop] = False
    ids = ids[keep].reshape(len(ids), kmax)
    hits = np.maximum.accumulate(labels[ids] == labels[:, None], axis=1)
    return {k: 100.0 * hits[:, k - 1].sum() / len(ids) for k in ks}


def _memory_kb() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmHWM:", "VmRSS:")):
                key, value = line.split(":")
                out[key] = int(value.split()[0])
    return out


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _methods(n: int, dim: int, seed: int) -> dict[str, Callable[[], dict[int, float]]]:
    """The two ways to compute Recall@1/10 on the same data, each a no-argument callable."""
    import faiss

    from bench.measure.evaluate import recall_at_k

    emb, labels = make_data(n, dim, seed)
    emb_np, labels_np = emb.numpy(), labels.numpy()
    faiss.omp_set_num_threads(torch.get_num_threads())
    return {
        "ours": lambda: recall_at_k(emb, labels, KS),
        "faiss": lambda: faiss_recall(emb_np, labels_np),
    }


def _memory_worker(method: str, n: int, dim: int, seed: int) -> dict:
    """Recall and peak memory of one method: two runs (first call included) in this process."""
    call = _methods(n, dim, seed)[method]
    peak_ok = _reset_peak()
    rss_before = _memory_kb()["VmRSS"] if peak_ok else 0
    call()
    recall = call()
    peak_mb = (_memory_kb()["VmHWM"] - rss_before) / 1024 if peak_ok else -1.0
    return {"recall": recall, "peak_mb": peak_mb}


def _timing_worker(n: int, dim: int, seed: int, repeats: int) -> dict:
    """Median seconds of each method, runs interleaved (ours, faiss, faiss, ours, ...) so that
    a change in machine load hits both alike; one warm-up run each first."""
    methods = _methods(n, dim, seed)
    times: dict[str, list[float]] = {name: [] for name in methods}
    for call in methods.values():
        call()
    for rep in range(repeats):
        for name in list(methods)[:: 1 if rep % 2 == 0 else -1]:
            start = time.perf_counter()
            methods[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()} | {
        "threads": torch.get_num_threads()
    }


def _spawn(worker: str, n: int, dim: int, seed: int, repeats: int) -> dict:
    """Run ``worker`` (ours, faiss: memory; time: both timings) in a fresh interpreter."""
    path = [str(REPO_ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    cmd = [sys.executable, "-m", "bench.perf.eval", *map(str, (worker, n, dim, seed, repeats))]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    if proc.returncode != 0:
        raise click.ClickException(f"{worker} worker failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if "recall" in result:
        result["recall"] = {int(k): v for k, v in result["recall"].items()}
    return result


def format_table(summary: dict, ours: dict, theirs: dict) -> str:
    c = summary["config"]
    lines = [
        f"Recall@1/10, {c['n']} x {c['dim']} random unit embeddings, self excluded, "
        f"{c['threads']} threads, median of {c['repeats']} interleaved runs after a warm-up",
        f"{'method':<8}{'seconds':>10}{'peak MB':>10}{'R@1':>9}{'R@10':>9}",
    ]
    for name, r in (("ours", ours), ("faiss", theirs)):
        lines.append(
            f"{name:<8}{summary[name + '_s']:>10.3f}{r['peak_mb']:>10.1f}"
            f"{r['recall'][1]:>9.3f}{r['recall'][10]:>9.3f}"
        )
    lines.append(
        f"ratio ours/faiss: {summary['ratio']:.2f}   recall agrees: {summary['recall_agrees']}"
    )
    return "\n".join(lines)


def compare(n: int, dim: int, seed: int, repeats: int) -> tuple[dict, dict, dict]:
    """(summary, ours, faiss): each method's recall and memory peak in its own process, then
    both timed in a third; the summary is what ``--json`` prints."""
    ours = _spawn("ours", n, dim, seed, repeats)
    theirs = _spawn("faiss", n, dim, seed, repeats)
    timing = _spawn("time", n, dim, seed, repeats)
    summary = {
        "config": {
            "n": n,
            "dim": dim,
            "seed": seed,
            "repeats": repeats,
            "ks": list(KS),
            "threads": timing["threads"],
        },
        "ours_s": timing["ours"],
        "faiss_s": timing["faiss"],
        "ratio": timing["ours"] / timing["faiss"],
        "recall_agrees": ours["recall"] == theirs["recall"],
        "ours_peak_mb": ours["peak_mb"],
        "faiss_peak_mb": theirs["peak_mb"],
    }
    return summary, ours, theirs


def _worker_main(argv: list[str]) -> None:
    """``WORKER N DIM SEED REPEATS``: print the worker's result as one JSON line."""
    worker, n, dim, seed, repeats = argv[0], *map(int, argv[1:])
    if worker == "time":
        result = _timing_worker(n, dim, seed, repeats)
    else:
        result = _memory_worker(worker, n, dim, seed)
    print(json.dumps(result))


if __name__ == "__main__":
    _worker_main(sys.argv[1:])
