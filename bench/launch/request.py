"""What one Slurm job of a grid asks for (``reproduce --launcher slurm`` options), its defaults
from the cells' profile, and its translation into submitit's executor parameters.

None of it enters a run id: where a cell trains never changes its numbers, except its torch
thread count, which follows the job's CPUs (bench/pinning.py, bench/engine/guards.py).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bench.config import RunConfig
from common import UserError

# GPUs a cell of each profile asks for; CPUs: the training process and one per loader worker
PROFILE_GPUS = {"paper": 1, "cpu": 0}
# the options that have their own flag: --slurm-opt must not set them behind the flag's back
OWN_FLAGS = {
    "partition": "--partition",
    "cpus-per-task": "--cpus-per-job",
    "gpus-per-node": "--gpus-per-job",
    "gres": "--gpus-per-job",
    "mem": "--mem",
    "account": "--account",
    "qos": "--qos",
    "constraint": "--constraint",
    "time": "--timeout-min",
    "array": "--array-parallelism",
    "requeue": "(always set: a job that reaches its time limit is requeued)",
}
MEM = re.compile(r"^\d+[KMGT]?$")
# seconds before the time limit at which Slurm warns a job (USR2) so that it can requeue itself.
# sbatch(1): the signal "may be sent up to 60 seconds earlier than specified", and a USR2 that
# arrives before the job's Python has installed submitit's handler kills the job (measured: a
# one-minute limit warned 30 s ahead got its USR2 1.2 s after the start). So a short limit is
# warned later: never earlier than START_S after the start by that rule, never under MIN_DELAY_S.
SIGNAL_DELAY_S = 120
SIGNAL_EARLY_S = 60  # how early Slurm may send it (sbatch --signal)
START_S = 30  # a job's start: Python, torch, submitit's handler
MIN_DELAY_S = 10  # time left to requeue (scontrol requeue takes about a second)


@dataclass(frozen=True)
class SlurmRequest:
    cpus_per_job: int  # --cpus-per-task; also the job's torch thread count
    gpus_per_job: int = 0  # --gpus-per-node
    partition: str | None = None  # None: the cluster's default partition
    mem: str | None = None  # --mem, e.g. 32G (None: the partition's default)
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None  # node features, e.g. a100
    timeout_min: int = 24 * 60  # --time; a job that reaches it is requeued and resumes
    array_parallelism: int = 32  # jobs of the array running at once
    extra: tuple[tuple[str, str], ...] = ()  # --slurm-opt KEY=VALUE, any other sbatch option

    @property
    def signal_delay_s(self) -> int:
        latest = self.timeout_min * 60 - SIGNAL_EARLY_S - START_S
        return max(MIN_DELAY_S, min(SIGNAL_DELAY_S, latest))

    def executor_parameters(self) -> dict[str, Any]:
        """The keyword arguments of submitit's ``SlurmExecutor.update_parameters`` (its
        ``#SBATCH`` options; ``--slurm-opt`` ones in ``additional_parameters``)."""
        params: dict[str, Any] = dict(
            time=self.timeout_min,
            cpus_per_task=self.cpus_per_job,
            array_parallelism=self.array_parallelism,
            signal_delay_s=self.signal_delay_s,
        )
        if self.gpus_per_job:
            params["gpus_per_node"] = self.gpus_per_job
        for name in ("partition", "mem", "account", "qos", "constraint"):
            if getattr(self, name) is not None:
                params[name] = getattr(self, name)
        params["additional_parameters"] = {"requeue": True, **dict(self.extra)}
        return params


def parse_slurm_opts(items: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """``--slurm-opt KEY=VALUE`` (repeatable) -> sorted (key, value) pairs; a UserError names a
    malformed item or one that has its own flag."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not re.fullmatch(r"[a-z][a-z0-9-]*", key):
            raise UserError(
                f"--slurm-opt takes KEY=VALUE with an sbatch option name as KEY "
                f"(e.g. --slurm-opt exclude=node3), got {item!r}"
            )
        if key in OWN_FLAGS:
            raise UserError(f"--slurm-opt {item!r}: set {key} with {OWN_FLAGS[key]}")
        out[key.replace("-", "_")] = value
    return tuple(sorted(out.items()))


def default_request(cells: Iterable[RunConfig], **given: Any) -> SlurmRequest:
    """The request for a grid: each option given (not None) as it is, the others from the
    cells' profiles (the largest cell's needs: GPUs by ``PROFILE_GPUS``, CPUs for the training
    process and each loader worker)."""
    cells = list(cells)
    given = {k: v for k, v in given.items() if v is not None}
    if "mem" in given and not MEM.match(str(given["mem"]).upper()):
        raise UserError(f"--mem takes a size such as 16G or 4000M, got {given['mem']!r}")
    if "mem" in given:
        given["mem"] = str(given["mem"]).upper()
    if "cpus_per_job" not in given:
        given["cpus_per_job"] = max((c.num_workers + 1 for c in cells), default=1)
    if "gpus_per_job" not in given:
        unknown = sorted({c.profile for c in cells} - set(PROFILE_GPUS))
        if unknown:
            raise UserError(f"no GPU default for profile(s) {unknown}: give --gpus-per-job")
        given["gpus_per_job"] = max((PROFILE_GPUS[c.profile] for c in cells), default=0)
    names = {f.name for f in dataclasses.fields(SlurmRequest)}
    return SlurmRequest(**{k: v for k, v in given.items() if k in names})
