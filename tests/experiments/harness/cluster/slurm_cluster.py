"""A one-node SLURM on this machine, for the tests that submit real jobs: ``munged`` with a key and socket of its own,
``slurmctld`` and ``slurmd`` with a ``slurm.conf`` whose state, spool, logs and pid files sit in a scratch folder and
whose ports are free ones, so that nothing of the machine's own configuration is read or touched. No cgroups:
``ProctrackType=proctrack/linuxproc`` and ``TaskPlugin=task/none``. Debian's packages: ``apt-get install slurm-wlm
munge``. Torn down after: every job cancelled, every daemon stopped."""

from __future__ import annotations

import getpass
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PACKAGES = "slurm-wlm munge"
NODE_CPUS = 16
SHORT_PARTITION, SHORT_MAX_MIN = "short", 5  # a partition whose time limit a job's --time may exceed
COMMANDS = ("munged", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "scontrol", "scancel")


def missing_commands() -> list[str]:
    return [command for command in COMMANDS if shutil.which(command) is None]


def _free_port(taken: set[int]) -> int:
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 30000)
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port in 20000-29999")


def _memory_mb() -> int:
    """The node's memory for slurm.conf: a little under what slurmd measures (more would drain the node)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(int(line.split()[1]) / 1024 * 0.9)
    return 1024


def slurm_conf(folder: Path, user: str) -> str:
    controller = _free_port(set())
    node = _free_port({controller})
    return "\n".join([
        "ClusterName=vidrepro-test", "SlurmctldHost=localhost", f"SlurmctldPort={controller}", f"SlurmdPort={node}",
        "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={folder}/munge/munge.socket",
        f"SlurmUser={user}", f"SlurmdUser={user}", f"StateSaveLocation={folder}/state",
        f"SlurmdSpoolDir={folder}/spool", f"SlurmctldPidFile={folder}/slurmctld.pid",
        f"SlurmdPidFile={folder}/slurmd.pid", f"SlurmctldLogFile={folder}/slurmctld.log",
        f"SlurmdLogFile={folder}/slurmd.log", "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU", "JobCompType=jobcomp/none",
        "AccountingStorageType=accounting_storage/none", "MpiDefault=none", "ReturnToService=2",
        "SchedulerType=sched/backfill", "KillWait=5", "MinJobAge=600", "InactiveLimit=0",
        # the node as configured, not as measured: several jobs of a task and its loader workers (3 CPUs each) side
        # by side on a machine of two cores (nothing binds a task to its cores: TaskPlugin=task/none)
        "SlurmdParameters=config_overrides",
        f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={NODE_CPUS} RealMemory={_memory_mb()} State=UNKNOWN",
        "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
        f"PartitionName={SHORT_PARTITION} Nodes=localhost MaxTime={SHORT_MAX_MIN} State=UP", ""])


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stop(pid_file: Path, timeout: float = 15.0) -> None:
    """SIGTERM the daemon whose pid the file names, then SIGKILL it if it has not ended."""
    pid = _pid(pid_file)
    if pid is None:
        return
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def _wait_for_idle_node(env: dict[str, str], folder: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True)
        if out.stdout.strip() == "idle":
            return
        time.sleep(0.2)
    logs = "\n".join(f"{p.name}:\n{p.read_text()[-2000:]}" for p in folder.glob("*.log"))
    raise RuntimeError(f"the one-node SLURM did not come up in {timeout:.0f}s:\n{logs}")


@contextmanager
def one_node_slurm(folder: Path) -> Iterator[dict[str, str]]:
    """Bring the cluster up in ``folder``; yields the environment its commands need (``SLURM_CONF``)."""
    user = getpass.getuser()
    for sub in ("state", "spool", "munge"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "munge").chmod(0o700)
    key = folder / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    conf = folder / "slurm.conf"
    conf.write_text(slurm_conf(folder, user))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    munge = folder / "munge"
    try:
        subprocess.run(["munged", f"--key-file={key}", f"--socket={munge}/munge.socket",
                        f"--pid-file={munge}/munged.pid", f"--log-file={munge}/munged.log",
                        f"--seed-file={munge}/munged.seed", "--force"], env=env, check=True, capture_output=True)
        subprocess.run(["slurmctld", "-f", str(conf)], env=env, check=True, capture_output=True)
        subprocess.run(["slurmd", "-f", str(conf), "-N", "localhost"], env=env, check=True, capture_output=True)
        _wait_for_idle_node(env, folder)
        yield env
    finally:
        subprocess.run(["scancel", "--full", "-u", user], env=env, capture_output=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the jobs end (KillWait=5) before their daemon does
            out = subprocess.run(["squeue", "-h", "-t", "RUNNING,COMPLETING"], env=env, capture_output=True,
                                 text=True)
            if out.returncode != 0 or not out.stdout.strip():
                break
            time.sleep(0.5)
        for pid_file in (folder / "slurmd.pid", folder / "slurmctld.pid", munge / "munged.pid"):
            _stop(pid_file)
