"""What one run's job asks the scheduler for, from the run's own configuration: its nodes (``trainer.num_nodes``),
one task per device on each (``trainer.devices``: Lightning's SLURM environment then gives each task its rank, as
``srun`` starts them), a GPU per task on a GPU run, and for each task its loader processes plus itself
(``data.num_workers``, which the paper presets size by the loader rule, ``experiments.presets.loader_workers``). A
run that trains nothing (an evaluation) is one task on one device. The user's ``--partition``, ``--time``,
``--mem-gb``, ``--account``, ``--qos``, ``--constraint``, ``--array-parallelism`` and ``--slurm-option K=V`` apply to
every job; a job that only copies an identical run's record asks one core, ``COPY_MEM_GB`` and minutes.

``executor_parameters`` is what submitit is given (``experiments.harness.cluster.submission`` hands it to submitit's
own ``SlurmExecutor``, which writes the sbatch script; ``--dry-run`` prints that script's options).
"""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..spec import RunConfig
from ..tasks import get_task

DEFAULT_TIME_MIN = 4320  # 3 days, the time Motionformer's own launcher asks for; a job requeues itself before it
SIGNAL_DELAY_S = 120  # the time-limit signal comes this long before the limit: time to end a batch and save
MAX_TIMEOUTS = 30  # requeues after a time limit before a job gives up (preemptions do not count), as the authors'
GPU_ACCELERATORS = ("gpu", "cuda", "auto")
REPO = Path(__file__).resolve().parents[3]
# At most this many jobs of one job array run at once (sbatch's --array=0-K%N): submitit's own default, so in effect
# no limit but the cluster's own (its fair share, its QOS); --array-parallelism N lowers it.
DEFAULT_ARRAY_PARALLELISM = 256
COPY_MEM_GB = 2.0  # a job that copies a record: Python with torch imported takes about 0.5 GB; SLURM's default may
# otherwise give it a whole node's memory


@dataclass(frozen=True)
class JobOptions:
    """The user's ``--submit`` options that hold for every job of a table (None: the scheduler's default)."""

    partition: str | None = None
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    time_min: int = DEFAULT_TIME_MIN
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    slurm_options: tuple[tuple[str, str | bool], ...] = ()
    array_parallelism: int = DEFAULT_ARRAY_PARALLELISM


@dataclass(frozen=True)
class Resources:
    """One job's allocation: ``nodes`` x ``tasks_per_node`` tasks (one per device), ``gpus_per_node`` GPUs on
    each node (0: none), ``cpus_per_task`` cores for each task, and the options that hold for every job."""

    nodes: int
    tasks_per_node: int
    gpus_per_node: int
    cpus_per_task: int
    options: JobOptions

    def describe(self) -> str:
        """e.g. "4 nodes x 8 GPUs (8 tasks a node, 9 CPUs a task), 4320 min"."""
        nodes = f"{self.nodes} node{'s' if self.nodes > 1 else ''}"
        devices = f"{self.gpus_per_node} GPU{'s' if self.gpus_per_node > 1 else ''}" if self.gpus_per_node else "CPU"
        memory = f", {self.options.mem_gb:g} GB a node" if self.options.mem_gb else ""
        return (f"{nodes} x {devices} ({self.tasks_per_node} task{'s' if self.tasks_per_node > 1 else ''} a node, "
                f"{self.cpus_per_task} CPU{'s' if self.cpus_per_task > 1 else ''} a task{memory}), "
                f"{self.options.time_min} min")

    def executor_parameters(self, name: str) -> dict[str, Any]:
        """The parameters of submitit's ``AutoExecutor.update_parameters`` for this allocation (its generic names, and
        the SLURM ones prefixed ``slurm_``, which the local executor ignores)."""
        o = self.options
        extra: dict[str, Any] = {"requeue": True, **dict(o.slurm_options)}  # a preempted job comes back
        slurm = {"slurm_partition": o.partition, "slurm_account": o.account, "slurm_qos": o.qos,
                 "slurm_constraint": o.constraint}
        return {
            "name": name, "nodes": self.nodes, "tasks_per_node": self.tasks_per_node,
            "cpus_per_task": self.cpus_per_task, "timeout_min": o.time_min,
            **({"gpus_per_node": self.gpus_per_node} if self.gpus_per_node else {}),
            **({"mem_gb": o.mem_gb} if o.mem_gb else {}),
            **{key: value for key, value in slurm.items() if value is not None},
            "slurm_signal_delay_s": SIGNAL_DELAY_S, "slurm_array_parallelism": o.array_parallelism,
            # a task that fails ends the job's other tasks, instead of leaving them waiting for it in a collective;
            # and each task its cores (srun in some SLURM releases, 22.05 among them, gives a task one core unless told)
            "slurm_srun_args": ["--kill-on-bad-exit=1", f"--cpus-per-task={self.cpus_per_task}"],
            "slurm_additional_parameters": extra,
            # the job imports this checkout (its pickled job names its classes), wherever it starts
            "slurm_setup": [f"export PYTHONPATH={shlex.quote(str(REPO))}${{PYTHONPATH:+:$PYTHONPATH}}"],
        }


def device_count(cfg: RunConfig) -> int:
    """The devices a run trains on per node, from ``trainer.devices``: a count, or a list of device indices; "auto"
    and -1 ("all of this machine's") say nothing of a node the job has not been given yet."""
    devices = cfg.trainer.devices
    if isinstance(devices, (list, tuple)):
        return len(devices)
    text = str(devices).strip()
    if "," in text:
        return len([part for part in text.split(",") if part.strip()])
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise ValueError(f"{cfg.table}/{cfg.row}: trainer.devices={devices!r} says no device count for a job's nodes; "
                     f"pass --gpus-per-node G (or --devices G), the devices each node gives the run")


def job_resources(cfg: RunConfig, options: JobOptions) -> Resources:
    """The allocation of ``cfg``'s job: a task per device on each of its nodes; an evaluation-only run: one task on
    one device. ``--cpus-per-task`` given holds for every job; else each task gets its loader processes and one core
    for itself."""
    accelerator = str(cfg.trainer.accelerator)
    if accelerator not in (*GPU_ACCELERATORS, "cpu"):
        raise ValueError(f"{cfg.table}/{cfg.row}: trainer.accelerator={accelerator!r}; a SLURM job runs on GPUs "
                         f"(gpu) or CPUs (cpu)")
    gpus = accelerator in GPU_ACCELERATORS
    cpus = options.cpus_per_task or cfg.data.num_workers + 1
    if not get_task(cfg.task).trains:
        return Resources(1, 1, int(gpus), cpus, options)
    devices = device_count(cfg)
    return Resources(cfg.trainer.num_nodes, devices, devices if gpus else 0, cpus, options)


def reuse_resources(options: JobOptions) -> Resources:
    """A job that copies an identical run's record once that run is done: one task on one core and
    ``COPY_MEM_GB``, no GPU, minutes."""
    return Resources(1, 1, 0, 1, dataclasses.replace(options, cpus_per_task=1, mem_gb=COPY_MEM_GB, constraint=None,
                                                     time_min=min(options.time_min, 30)))


def parse_slurm_option(text: str) -> tuple[str, str | bool]:
    """``--slurm-option KEY=VALUE`` (an sbatch option without its dashes, e.g. ``mail-type=END``), or ``KEY`` alone
    for a flag (``exclusive``)."""
    key, sep, value = text.partition("=")
    key = key.strip().lstrip("-").replace("-", "_")
    if not key or not all(part.isalnum() for part in key.split("_")):
        raise ValueError(f"--slurm-option {text!r}: expected an sbatch option as KEY=VALUE or KEY, e.g. "
                         f"mail-type=END or exclusive")
    if any(not char.isprintable() for char in value):  # a newline would end the script's #SBATCH block
        raise ValueError(f"--slurm-option {text!r}: its value must be printable characters on one line")
    return key, value if sep else True
