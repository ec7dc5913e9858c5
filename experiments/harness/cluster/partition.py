"""What a SLURM partition can give one job, read before ``sbatch``: a job that asks more than any of its nodes has
(cores, memory, GPUs), more nodes than it holds or lets a job take, or a longer time than its ``MaxTime``, is
accepted by ``sbatch`` and then waits in the queue for ever (or is refused by the scheduler hours later), so
``run --submit slurm`` refuses it first, in one line that names the limit and the option that fits it.

The partition's limits come from ``scontrol show partition -o`` (``MaxTime``, ``MaxNodes``, ``TotalNodes``,
``MaxCPUsPerNode``, ``MaxMemPerNode``, ``Default=YES`` for the partition a job gets without ``--partition``) and its
nodes' from ``sinfo -h -N -p PART -o %N|%c|%m|%G`` (each node's CPUs, memory in MB and generic resources, ``gpu:8``
or ``gpu:h100:8(S:0-1)``). Each limit is checked against the partition's largest node alone, so a job is refused
only where no node could ever run it. Where SLURM does not answer (no SLURM here, a controller down, an output
this code cannot read), nothing is refused: ``read_partition`` says why the limits were not checked.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from .resources import Resources
from .submission import PlannedJob, SubmitError

QUERY_TIMEOUT_S = 20.0
UNLIMITED = ("UNLIMITED", "INFINITE", "NONE", "")


@dataclass(frozen=True)
class Partition:
    """A partition's limits on one job (None: none, or not said): ``nodes`` it holds, ``max_nodes`` a job may
    take, ``max_time_s``; and its largest node's ``cpus``, ``memory_mb`` (each within the partition's per-node
    limit) and ``gpus``."""

    name: str
    default: bool
    nodes: int | None
    max_nodes: int | None
    max_time_s: int | None
    cpus: int | None
    memory_mb: int | None
    gpus: int | None

    def describe(self) -> str:
        """e.g. "partition gpu (the default): 16 node(s), at most 4 a job; its largest node 112 CPUs, 2014 GB, 8 GPUs;
        MaxTime 2-00:00:00"."""
        nodes = ", ".join(part for part in (
            f"{self.nodes} node(s)" if self.nodes is not None else "",
            f"at most {self.max_nodes} a job" if self.max_nodes is not None else "") if part)
        node = ", ".join(part for part in (
            f"{self.cpus} CPUs" if self.cpus is not None else "",
            f"{self.memory_mb // 1024} GB" if self.memory_mb is not None else "",
            f"{self.gpus} GPUs" if self.gpus is not None else "") if part)
        limit = slurm_time(self.max_time_s) if self.max_time_s is not None else "UNLIMITED"
        return "; ".join(part for part in (
            f"partition {self.name}{' (the default)' if self.default else ''}: {nodes}" if nodes else
            f"partition {self.name}{' (the default)' if self.default else ''}",
            f"its largest node {node}" if node else "", f"MaxTime {limit}") if part)


def _query(command: list[str]) -> str | None:
    """A SLURM command's output, or None where it cannot answer (not installed, refused, too slow). The one place
    this module runs a command: tests replace it."""
    if shutil.which(command[0]) is None:
        return None
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def parse_time_s(text: str) -> int | None:
    """SLURM's time (``MaxTime``, ``--time``) in seconds: ``MIN``, ``MIN:SS``, ``H:MM:SS``, ``D-H``, ``D-H:MM``,
    ``D-H:MM:SS``; None for no limit (``UNLIMITED``, ``INFINITE``) or a value it cannot read."""
    text = text.strip()
    if text.upper() in UNLIMITED:
        return None
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if match is None:
        return None
    days, first, second, third = match.groups()
    if days is not None:  # D-H, D-H:MM, D-H:MM:SS
        hours, minutes, seconds = int(first), int(second or 0), int(third or 0)
    elif third is not None:  # H:MM:SS
        hours, minutes, seconds = int(first), int(second), int(third)
    else:  # MIN or MIN:SS
        hours, minutes, seconds = 0, int(first), int(second or 0)
    return ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds


def slurm_time(seconds: int) -> str:
    """Seconds as SLURM writes a time: ``D-HH:MM:SS``, or ``HH:MM:SS`` under a day."""
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


def _fields(line: str) -> dict[str, str]:
    """``Key=Value`` pairs of one line of ``scontrol ... -o`` (a value with spaces, e.g. ``OS=Linux 6.1``, keeps
    its words)."""
    out: dict[str, str] = {}
    key = None
    for word in line.split():
        name, sep, value = word.partition("=")
        if sep and re.fullmatch(r"[A-Za-z][\w/]*", name):
            key, out[name] = name, value
        elif key is not None:
            out[key] += " " + word
    return out


def _count(text: str | None) -> int | None:
    """The leading number of a count (``112``, ``112+`` as sinfo writes the least of several); None: unlimited or
    unreadable."""
    match = re.match(r"\s*(\d+)", text or "")
    return int(match.group(1)) if match and (text or "").strip().upper() not in UNLIMITED else None


def gres_gpus(gres: str) -> int:
    """The GPUs a node's generic resources hold: ``gpu:8``, ``gpu:h100:8(S:0-1)``, ``gpu:a100:4,gpu:v100:2``,
    ``(null)`` (none), a ``gpu`` without a count (one)."""
    total = 0
    for entry in re.sub(r"\([^)]*\)", "", gres).split(","):
        parts = entry.strip().split(":")
        if parts[0] != "gpu":
            continue
        count = re.fullmatch(r"(\d+)([KMG]?)", parts[-1]) if len(parts) > 1 else None
        total += int(count.group(1)) * {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}[count.group(2)] \
            if count else 1
    return total


def _within(limit: int | None, largest: int | None) -> int | None:
    """The least of a partition's limit per node and its largest node's amount (None: neither is said)."""
    return min((x for x in (limit, largest) if x is not None), default=None)


def read_partition(name: str | None) -> Partition | str:
    """The limits of partition ``name`` (None: the default one), or why they cannot be read here."""
    listed = _query(["scontrol", "show", "partition", "-o"])
    if listed is None:
        return "SLURM did not answer `scontrol show partition` here"
    partitions = [_fields(line) for line in listed.splitlines() if line.strip()]
    found = next((p for p in partitions if (p.get("PartitionName") == name if name else
                                            p.get("Default", "").upper() == "YES")), None)
    if found is None:
        return f"SLURM lists no partition {name}" if name else "SLURM names no default partition (give --partition)"
    part = found["PartitionName"]
    nodes = _query(["sinfo", "-h", "-N", "-p", part, "-o", "%N|%c|%m|%G"]) or ""
    cpus, memory, gpus = [], [], []
    for line in nodes.splitlines():
        cells = line.split("|")
        if len(cells) == 4:
            cpus.append(_count(cells[1]))
            memory.append(_count(cells[2]))
            gpus.append(gres_gpus(cells[3]))
    largest = lambda values: max((v for v in values if v is not None), default=None)  # noqa: E731
    return Partition(name=part, default=found.get("Default", "").upper() == "YES",
                     nodes=_count(found.get("TotalNodes")), max_nodes=_count(found.get("MaxNodes")),
                     max_time_s=parse_time_s(found.get("MaxTime", "UNLIMITED")),
                     cpus=_within(_count(found.get("MaxCPUsPerNode")), largest(cpus)),
                     memory_mb=_within(_count(found.get("MaxMemPerNode")), largest(memory)),
                     gpus=largest(gpus) if gpus else None)


def misfits(resources: Resources, partition: Partition) -> list[str]:
    """What of the allocation no node of ``partition`` can give, each with the option that fits it; [] if it
    fits."""
    out = []
    tasks, asked_cpus = resources.tasks_per_node, resources.tasks_per_node * resources.cpus_per_task
    if partition.cpus is not None and asked_cpus > partition.cpus:
        fit = max(1, partition.cpus // tasks)
        fix = f"--cpus-per-task {fit}" if resources.options.cpus_per_task else \
            f"--num-workers {fit - 1}: a task asks its loader processes and itself"
        out.append(f"{tasks} task(s) x {resources.cpus_per_task} CPUs = {asked_cpus} CPUs a node, its largest node "
                   f"has {partition.cpus} ({fix})")
    if partition.gpus is not None and resources.gpus_per_node > partition.gpus:
        fix = f"--gpus-per-node {partition.gpus}" if partition.gpus else "--partition of GPU nodes"
        out.append(f"{resources.gpus_per_node} GPUs a node, its largest node has {partition.gpus} ({fix})")
    limit = min((n for n in (partition.nodes, partition.max_nodes) if n is not None), default=None)
    if limit is not None and resources.nodes > limit:
        held = "a job may take" if limit == partition.max_nodes else "it holds"
        fix = f"--nodes {limit}: the lr follows the global batch" if limit else "another --partition"
        out.append(f"{resources.nodes} nodes, {held} {limit} ({fix})")
    mem_gb = resources.options.mem_gb
    if partition.memory_mb is not None and mem_gb and mem_gb * 1024 > partition.memory_mb:
        out.append(f"--mem-gb {mem_gb:g}, its largest node has {partition.memory_mb} MB (--mem-gb "
                   f"{partition.memory_mb // 1024}, or none: the node's)")
    max_time_s = partition.max_time_s
    if max_time_s is not None and resources.options.time_min * 60 > max_time_s:
        out.append(f"--time {resources.options.time_min} min, its MaxTime is {slurm_time(max_time_s)} (--time "
                   f"{max_time_s // 60}: a job requeues itself before its limit and resumes)")
    return out


def _named(jobs: Sequence[PlannedJob]) -> str:
    """e.g. "mformer_table4's 10 job(s) (joint / K-400 seed 0, joint / SSv2 seed 0, ... and 8 more)"."""
    names = [f"{job.cfg.row} / {job.cfg.column} seed {job.cfg.seed}" for job in jobs]
    shown = ", ".join(names[:2]) + (f", and {len(names) - 2} more" if len(names) > 2 else "")
    tables = ", ".join(dict.fromkeys(job.cfg.table for job in jobs))
    return f"{tables}'s {len(jobs)} job(s) ({shown})"


def check_partition(jobs: Sequence[PlannedJob], name: str | None, dry_run: bool) -> list[str]:
    """Before ``sbatch``: refuse in one line (``SubmitError``) the jobs the partition can never run, naming each
    limit and the option that fits it; a dry run returns that as a line instead. Returns what to say: the
    partition's limits, or why they were not checked (then nothing is refused: ``sbatch`` decides)."""
    if not jobs:
        return []
    if name and "," in name:  # SLURM takes the first partition of the list that can start the job
        return [f"partition limits not checked: --partition {name} names several"]
    partition = read_partition(name)
    if isinstance(partition, str):
        return [f"partition limits not checked: {partition}" + ("" if dry_run else "; sbatch decides")]
    groups: dict[Resources, list[PlannedJob]] = {}
    for job in jobs:
        groups.setdefault(job.resources, []).append(job)
    refused = [f"{_named(group)}: {'; '.join(found)}" for resources, group in groups.items()
               if (found := misfits(resources, partition))]
    if refused and not dry_run:
        raise SubmitError(f"partition {partition.name} cannot run {'; '.join(refused)}; nothing was submitted")
    if refused:
        return [partition.describe(), *(f"--submit slurm would refuse {line}" for line in refused)]
    return [f"{partition.describe()}: every job fits"]
