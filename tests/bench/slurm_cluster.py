"""A single-node Slurm for the tests marked ``slurm``: munged, slurmctld and slurmd started as
root in a temporary folder (their own munge key and socket, free ports, no accounting), stopped
at the end. ``SLURM_CONF`` points every Slurm command of the test process (and of the jobs) at
it, so a cluster this machine may already have is left alone.

``why_not()`` says why no cluster can start here (not root, no Slurm and no apt-get to install
it); the tests are skipped with that reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")
PARTITION = "cpu"


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(SBIN))


def why_not() -> str | None:
    """None when a cluster can be started (installing Slurm with apt-get if needed), else why."""
    if os.geteuid() != 0:
        return "a single-node Slurm is started as root; these tests run as another user"
    if all(_which(d) for d in DAEMONS) and _which("sbatch"):
        return None
    if not shutil.which("apt-get"):
        return "slurmctld/slurmd/munged are not installed and there is no apt-get to install them"
    done = subprocess.run(
        "apt-get install -y -qq slurm-wlm munge || "
        "(apt-get update -qq && apt-get install -y -qq slurm-wlm munge)",
        shell=True,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 or not all(_which(d) for d in DAEMONS):
        return f"could not install slurm-wlm and munge: {done.stderr.strip()[-300:]}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 // 2  # half: room for the other processes
    return 1024


class Cluster:
    """One controller, one node (``cpus`` CPUs, the host's name), one partition ``cpu``."""

    def __init__(self, root: Path, cpus: int | None = None) -> None:
        self.root = root
        self.cpus = cpus or os.cpu_count() or 1
        self.node = socket.gethostname().split(".")[0]
        self.conf = root / "slurm.conf"
        self.socket = root / "munge.socket"
        self.procs: list[subprocess.Popen] = []

    def _write(self) -> None:
        r = self.root
        for d in ("state", "spool", "log"):
            (r / d).mkdir(parents=True, exist_ok=True)
        key = r / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        r.chmod(0o755)
        self.conf.write_text(
            f"""ClusterName=xbmtest
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.socket}
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MpiDefault=none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=30
KillWait=5
Waittime=0
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={_memory_mb()} State=UNKNOWN
PartitionName={PARTITION} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
"""
        )

    def start(self, timeout: float = 60.0) -> None:
        self._write()
        r = self.root
        os.environ["SLURM_CONF"] = str(self.conf)
        self._daemon(
            "munged",
            f"--socket={self.socket}",
            f"--key-file={r}/munge.key",
            f"--pid-file={r}/munged.pid",
            f"--log-file={r}/log/munged.log",
            f"--seed-file={r}/munged.seed",
            "--foreground",
            "--force",
        )
        self._wait(lambda: self.socket.exists(), timeout, "munged")
        self._daemon("slurmctld", "-D", "-f", str(self.conf))
        self._wait(lambda: self._ok("scontrol", "ping"), timeout, "slurmctld")
        self._daemon("slurmd", "-D", "-f", str(self.conf))
        self._wait(self._node_idle, timeout, "slurmd")

    def _daemon(self, name: str, *args: str) -> None:
        log = open(self.root / "log" / f"{name}.out", "ab")  # noqa: SIM115 (closed with the process)
        env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.procs.append(subprocess.Popen([_which(name), *args], stdout=log, stderr=log, env=env))

    def _ok(self, *cmd: str) -> bool:
        out = subprocess.run(cmd, capture_output=True, text=True)
        return out.returncode == 0 and "DOWN" not in out.stdout

    def _node_idle(self) -> bool:
        out = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True
        ).stdout.split()
        return out == ["idle"]

    def _wait(self, ready, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if ready():
                return
            if any(p.poll() is not None for p in self.procs):
                break
            time.sleep(0.3)
        logs = "\n".join(
            p.read_text()[-800:] for p in sorted((self.root / "log").iterdir()) if p.is_file()
        )
        self.stop()
        raise RuntimeError(f"{what} did not come up in {timeout:.0f} s; logs:\n{logs}")

    def jobs(self) -> list[str]:
        """The ids of every job in the queue (pending or running)."""
        out = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True)
        return out.stdout.split()

    def stop(self) -> None:
        if self.procs and self.jobs():
            subprocess.run(["scancel", "--full", "--quiet", *self.jobs()], capture_output=True)
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs.clear()
        os.environ.pop("SLURM_CONF", None)
