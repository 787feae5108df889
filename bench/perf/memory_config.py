"""What ``xbmbench bench memory`` measures: its sizes and their checks, without torch.

Kept apart from bench.perf.memory so that the command line can build its options and check
them without importing torch (``xbmbench --help`` stays light).
"""

from __future__ import annotations

from dataclasses import dataclass

PER_CLASS = 4  # samples per class in a batch, as MPerClassSampler(m=4) gives them


@dataclass(frozen=True)
class MemoryBenchConfig:
    memory_size: int = 30000  # entries in the (full) memory
    batch: int = 64  # batch size: batch / 4 classes x 4 samples
    dim: int = 512  # embedding size
    classes: int = 1000  # classes in the data (and, ~memory_size / classes each, in memory)
    reps: int = 12  # timed rounds (one step of every row each); the median is reported
    warmup: int = 2  # untimed rounds first
    device: str = "cpu"
    threads: int = 2  # torch CPU threads, set explicitly for the run
    seed: int = 0


def check_config(cfg: MemoryBenchConfig) -> None:
    """Raise ValueError where the sizes cannot make MPerClassSampler batches or a full memory."""
    if cfg.batch % PER_CLASS or cfg.batch < PER_CLASS:
        raise ValueError(f"batch must be a positive multiple of {PER_CLASS}, got {cfg.batch}")
    if cfg.classes * PER_CLASS < cfg.batch:
        raise ValueError(
            f"classes x {PER_CLASS} must be >= batch, got {cfg.classes} x {PER_CLASS} < {cfg.batch}"
        )
    if cfg.memory_size < cfg.batch:
        raise ValueError(f"memory_size must be >= batch, got {cfg.memory_size} < {cfg.batch}")
    if min(cfg.dim, cfg.reps, cfg.threads) < 1 or cfg.warmup < 1:
        raise ValueError(
            f"dim, reps, threads and warmup must be >= 1, got {cfg.dim}, "
            f"{cfg.reps}, {cfg.threads}, {cfg.warmup}"
        )
