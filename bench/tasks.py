"""The tasks a run can train (``RunConfig.task``): the engine's ``Task`` of each and the
augmentations it understands.

Light (no torch): the config checks ``task`` and ``augment`` against this table, and the engine
imports a task's module only when a run of it starts (``bench.engine.metric.run``). An augment
name of the other task would silently fall back to timm's default transform, so the pair is
checked (bench/config.py ``validate``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    module: str  # the engine module that defines the task's Task class
    cls: str  # that class's name
    augments: tuple[str, ...]  # the values of RunConfig.augment this task's data pipeline knows


TASKS: dict[str, TaskSpec] = {
    # metric learning with a memory variant: bench/engine/data.py's transforms
    "metric": TaskSpec("bench.engine.metric", "MetricTask", ("randaugment", "flip", "none")),
    # MoCo with a memory variant as its queue: the two views of bench/engine/moco/data.py
    "moco": TaskSpec("bench.engine.moco.task", "MocoTask", ("moco", "moco_tensor")),
}
AUGMENTS: tuple[str, ...] = tuple(a for spec in TASKS.values() for a in spec.augments)
