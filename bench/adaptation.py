"""A profile adapted to its cell: the values the dataset, the variant and the task change.

``cell_values`` picks the profile's values for the cell (a full memory where the paper used one,
none for ``no_xbm``, MoCo's own protocol); ``adapt`` then fits the sampler to datasets with few
classes and delayed XBN's delay to the profile's schedule, returning each adaptation as a
deviation (the config records them). Only a profile default is adapted: a value the user gave is
never rewritten.
"""

from __future__ import annotations

from typing import Any

from bench.profiles import MOCO_PROFILES, PROFILES
from common import UserError

# number of classes of the datasets whose few classes constrain the sampler
FEW_CLASSES = {"cifar10": 10, "fashion-mnist": 10}
FULL_MEMORY = {"deepfashion2"}  # paper: memory = 100% of the training set


def cell_values(profile: str, dataset: str, variant: str, task: str | None) -> dict[str, Any]:
    """The profile's values for this cell, before the caller's overrides."""
    values: dict[str, Any] = dict(PROFILES[profile])
    if dataset in FULL_MEMORY and profile == "paper":
        values["memory_ratio"] = 1.0
    if task == "moco":  # MoCo's own protocol (bench/engine/moco, paper app. B)
        values.update(MOCO_PROFILES[profile])
    if variant == "no_xbm":
        values["memory_ratio"] = 0.0  # the memory is never used; the paper reports 0
    return values


def sampler_fix(batch: int, m: int, n_classes: int) -> tuple[int, str | None]:
    """MPerClassSampler needs batch % m == 0 and m * n_classes >= batch: raise m if needed."""
    if m * n_classes >= batch:
        return m, None
    for new_m in range(m, batch + 1):
        if batch % new_m == 0 and new_m * n_classes >= batch:
            return new_m, (
                f"m_per_class raised from {m} to {new_m}: {n_classes} classes cannot "
                f"fill a batch of {batch} with {m} per class"
            )
    raise UserError(f"batch_size {batch} cannot be sampled from {n_classes} classes")


def adapt(
    dataset: str,
    variant: str,
    values: dict[str, Any],
    opts: dict[str, Any],
    specs: dict,
    explicit_m: bool = False,
) -> list[str]:
    """The profile adapted to the cell, in place; returns each adaptation as a deviation. Only a
    profile default is adapted: ``explicit_m`` (m_per_class given by the caller) is refused
    where it would have to change."""
    notes = []
    if (
        variant == "delayed_xbn"
        and "delay_epochs" not in opts
        and values["lr_step_epochs"] != specs["delay_epochs"].default
    ):
        # the thesis' 15 is the paper schedule's first LR decay (thesis 4.3.3): follow the
        # profile's first decay instead, or a 5-epoch cpu run would never normalise
        opts["delay_epochs"] = values["lr_step_epochs"]
        notes.append(
            f"delayed_xbn: delay_epochs = {values['lr_step_epochs']}, the first "
            f"LR decay of this schedule (the thesis' 15 is the paper's)"
        )
    if dataset in FEW_CLASSES:
        m, why = sampler_fix(values["batch_size"], values["m_per_class"], FEW_CLASSES[dataset])
        if why and explicit_m:  # the user's own value is never rewritten
            raise UserError(
                f"m_per_class {values['m_per_class']} with batch_size {values['batch_size']} "
                f"cannot be sampled from {dataset}'s {FEW_CLASSES[dataset]} classes (a batch "
                f"needs batch_size / m_per_class classes); give --m-per-class {m}, or a "
                f"batch_size of at most {values['m_per_class'] * FEW_CLASSES[dataset]} that "
                f"m_per_class divides"
            )
        if why:  # only a profile default is adapted; `run` prints the deviation
            values["m_per_class"] = m
            notes.append(why)
    return notes
