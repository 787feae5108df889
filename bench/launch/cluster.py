"""What the cluster says, through Slurm's own commands: ``sinfo`` before submitting (can any node
run the request?), ``squeue`` while waiting (state and pending reason of each job), ``scancel``.

Accounting (``sacct``) is not needed: many clusters run without it, and squeue tells the states
that matter while a job is in the queue; a job that left the queue is judged by its cell's record.
"""

from __future__ import annotations

import getpass
import re
import shutil
import subprocess
from dataclasses import dataclass

from bench.launch.request import SlurmRequest
from common import UserError

# pending reasons that no wait resolves: the request exceeds what the partition, account or QOS
# allow any one job, or names what does not exist (squeue's %r; Slurm's "Job Reason Codes")
NEVER = re.compile(
    r"^(PartitionConfig|PartitionNodeLimit|PartitionTimeLimit|BadConstraints|InvalidAccount|"
    r"InvalidQOS|AccountNotAllowed|QOSNotAllowed|DependencyNeverSatisfied|"
    r"(Assoc|QOS)Max\w*PerJob\w*)$"
)
# limits on the association's or QOS's jobs together: stuck only while no job of the grid runs
GROUP = re.compile(r"^(AssocGroup|AssocGrp|QOSGrp)\w*Limit$")
USABLE_NODE = re.compile(r"^(idle|mix|mixed|alloc|allocated|comp|completing)")


@dataclass(frozen=True)
class Node:
    partition: str
    default: bool
    name: str
    cpus: int
    mem_mb: int
    gpus: int
    features: frozenset[str]
    state: str


def _run(*cmd: str) -> str:
    if shutil.which(cmd[0]) is None:
        raise UserError(f"{cmd[0]} not found: --launcher slurm needs Slurm's commands on this host")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise UserError(f"{' '.join(cmd[:2])} failed: {out.stderr.strip() or out.stdout.strip()}")
    return out.stdout


def _gpus(gres: str) -> int:
    """GPUs in sinfo's %G, e.g. ``gpu:a100:4(S:0-1),shard:8`` -> 4; ``(null)`` -> 0."""
    total = 0
    for item in gres.split(","):
        parts = re.sub(r"\(.*?\)", "", item).split(":")
        if parts[0] == "gpu" and parts[-1].isdigit():
            total += int(parts[-1])
    return total


def nodes() -> list[Node]:
    """Every node of every partition (a node in two partitions is listed twice)."""
    out = _run("sinfo", "-h", "-N", "-o", "%P|%N|%c|%m|%G|%f|%t")
    listed = []
    for line in out.splitlines():
        part, name, cpus, mem, gres, feats, state = line.split("|")
        listed.append(
            Node(
                partition=part.rstrip("*"),
                default=part.endswith("*"),
                name=name,
                cpus=int(cpus.rstrip("+")),
                mem_mb=int(mem.rstrip("+")) if mem.rstrip("+").isdigit() else 0,
                gpus=_gpus(gres),
                features=frozenset(f for f in feats.split(",") if f and f != "(null)"),
                state=state,
            )
        )
    return listed


def mem_mb(mem: str) -> int:
    """``16G`` -> 16384 (Slurm's units: M when none is given)."""
    number, unit = int(mem.rstrip("KMGT")), (mem[-1] if mem[-1] in "KMGT" else "M")
    return {"K": number // 1024, "M": number, "G": number * 1024, "T": number * 1024**2}[unit]


def check_request(req: SlurmRequest, listed: list[Node] | None = None) -> str:
    """The partition the jobs go to; a UserError naming what no node of it can give."""
    listed = nodes() if listed is None else listed
    names = sorted({n.partition for n in listed})
    if req.partition is None:
        default = sorted({n.partition for n in listed if n.default})
        if not default:
            raise UserError(f"the cluster has no default partition: give --partition ({names})")
        partition = default[0]
    else:
        partition = req.partition
    mine = [n for n in listed if n.partition == partition]
    if not mine:
        raise UserError(
            f"partition {partition!r} does not exist on this cluster (it has: {', '.join(names)})"
        )
    wants = [("CPUs", req.cpus_per_job, lambda n: n.cpus, str)]
    if req.gpus_per_job:
        wants.append(("GPUs", req.gpus_per_job, lambda n: n.gpus, str))
    if req.mem:
        wants.append(("memory", mem_mb(req.mem), lambda n: n.mem_mb, lambda v: f"{v}M"))
    fits = [n for n in mine if all(get(n) >= want for _, want, get, _ in wants)]
    if req.constraint and re.fullmatch(r"[\w.-]+", req.constraint):  # one feature name
        fits = [n for n in fits if req.constraint in n.features]
    if fits:
        return partition
    short = [
        f"{want if what != 'memory' else req.mem} {what} (the most a node has: "
        f"{show(max(get(n) for n in mine))})"
        for what, want, get, show in wants
        if all(get(n) < want for n in mine)
    ]
    if req.constraint and not any(req.constraint in n.features for n in mine):
        have = sorted({f for n in mine for f in n.features}) or ["none"]
        short.append(f"feature {req.constraint!r} (features: {', '.join(have)})")
    needs = "; ".join(short) or (
        f"{req.cpus_per_job} CPUs, {req.gpus_per_job} GPUs, {req.mem or 'any'} memory and "
        f"{req.constraint or 'no'} constraint on one node"
    )
    raise UserError(
        f"no node of partition {partition!r} can run a job of this grid: it asks for {needs} "
        f"(--cpus-per-job, --gpus-per-job, --mem, --constraint)"
    )


def queue() -> dict[str, tuple[str, str]]:
    """Job id (``123_4`` for an array task) -> (state, reason) of this user's queued jobs."""
    out = _run("squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%i|%T|%r")
    jobs = {}
    for line in out.splitlines():
        job, state, reason = line.split("|", 2)
        jobs[job] = (state, reason)
    return jobs


def stuck(reason: str, partition_usable: bool, any_running: bool) -> bool:
    """Whether a pending job's ``reason`` can never resolve while this grid waits."""
    head = reason.split(",")[0].strip()
    if NEVER.match(head):
        return True
    if head == "ReqNodeNotAvail":  # stuck when no node of the partition can come up
        return not partition_usable
    return bool(GROUP.match(head)) and not any_running


def partition_usable(partition: str) -> bool:
    states = _run("sinfo", "-h", "-p", partition, "-o", "%t").split()
    return any(USABLE_NODE.match(s) for s in states)


def cancel(job_ids: list[str]) -> None:
    if job_ids:
        subprocess.run(["scancel", *job_ids], capture_output=True, timeout=60)
