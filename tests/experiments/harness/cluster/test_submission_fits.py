"""A submission that fits before it waits (``run --submit slurm``): what no node of the partition could ever run (its
cores, memory and GPUs, its node count, its ``MaxTime``) and a pretrained file a job would read at its start and
this machine lacks are refused in one line before ``sbatch``, since SLURM would accept such jobs and leave them
waiting, or fail them hours later. Where SLURM does not answer, nothing is refused and one line says so. The dry run
prints every option submitit writes into each sbatch script (``--array=0-K%N`` with ``--array-parallelism N``, the
logs, the signal, the requeue), and they are the options of the script a submission hands to ``sbatch``; a job that
copies a record asks a little memory, not a node's; the loader rule's tasks fit the node it names.

No SLURM here: ``sbatch`` and ``srun`` are shell scripts (``sbatch`` keeps each script it is given), and the
partition's answers are faked where ``experiments.harness.cluster.partition`` asks for them (``_query``)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from experiments.__main__ import main
from experiments.harness.cluster import partition as partition_module
from experiments.harness.cluster.partition import gres_gpus, parse_time_s, read_partition
from experiments.harness.cluster.resources import COPY_MEM_GB, JobOptions
from experiments.harness.cluster.submission import missing_files, plan_submission, sbatch_options
from experiments.harness.plan import resolve_runs
from tests.experiments.micro_run import MICRO_ARGS, TABLE

ON_SLURM = MICRO_ARGS[:MICRO_ARGS.index("--jobs")] + MICRO_ARGS[MICRO_ARGS.index("--jobs") + 2:]

# what SLURM 22.05 answered on a one-node test cluster (tests/experiments/harness/cluster/slurm_cluster.py), a
# partition "debug" beside, here, a GPU partition "gpu" of two nodes
PARTITIONS = (
    "PartitionName=debug AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=YES QoS=N/A "
    "DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=UNLIMITED MaxTime=UNLIMITED "
    "MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED Nodes=localhost PriorityJobFactor=1 PriorityTier=1 RootOnly=NO "
    "ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=2 TotalNodes=1 "
    "SelectTypeParameters=NONE JobDefaults=(null) DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED "
    "TRES=cpu=2,mem=21695M,node=1,billing=2\n"
    "PartitionName=gpu AllowGroups=ALL Default=NO MaxNodes=1 MaxTime=2-00:00:00 MaxCPUsPerNode=UNLIMITED "
    "Nodes=g[1-2] State=UP TotalCPUs=224 TotalNodes=2 MaxMemPerNode=UNLIMITED TRES=cpu=224,node=2,gres/gpu=16\n")
NODES = {"debug": "localhost|2|21695|(null)\n",
         "gpu": "g1|112|2063000|gpu:h100:8(S:0-1)\ng2|112+|2063000|gpu:h100:8(S:0-1),shard:4\n"}


def _slurm_answers(monkeypatch, partitions: str | None = PARTITIONS, nodes: dict[str, str] = NODES) -> list:
    """``scontrol show partition -o`` and ``sinfo -N -p PART`` answer with these (None: SLURM does not answer);
    returns the commands asked."""
    asked = []

    def query(command):
        asked.append(command)
        if command[0] == "scontrol":
            return partitions
        return nodes.get(command[command.index("-p") + 1], "") if partitions is not None else None

    monkeypatch.setattr(partition_module, "_query", query)
    return asked


@pytest.fixture
def sbatch(tmp_path, monkeypatch) -> Path:
    """``srun`` that does nothing and an ``sbatch`` that keeps the script it is given (``scripts/``) and answers as
    SLURM does; returns the scripts' folder."""
    folder, scripts = tmp_path / "bin", tmp_path / "scripts"
    folder.mkdir()
    scripts.mkdir()
    (folder / "srun").write_text("#!/bin/sh\nexit 0\n")
    (folder / "sbatch").write_text(f'#!/bin/sh\ncp "$1" "{scripts}/$(ls {scripts} | wc -l).sh"\n'
                                   f'echo "Submitted batch job 4242"\n')
    for name in ("srun", "sbatch"):
        (folder / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{Path(sys.executable).parent}:/usr/bin:/bin")
    return scripts


def _cli(capsys, runs: Path, *extra: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["run", TABLE, "--runs-dir", str(runs), "--reports-dir", str(runs.parent / "reports"), *ON_SLURM,
                 *extra])
    out, err = capsys.readouterr()
    return code, out, err


def _without_stamp(lines: list[str]) -> list[str]:
    """Options with the submission folder's UTC time left out (a dry run's folder is not the submission's)."""
    return [re.sub(r"\.jobs/\d{8}T\d{6}\.\d{6}Z", ".jobs/TIME", line) for line in lines]


# --- the dry run prints what sbatch is handed ------------------------------------------------------------------

def test_the_dry_run_prints_the_options_of_the_script_sbatch_is_handed(capsys, tmp_path, monkeypatch, sbatch):
    _slurm_answers(monkeypatch)
    runs = tmp_path / "runs"
    code, out, err = _cli(capsys, runs, "--seeds", "3", "--submit", "slurm", "--array-parallelism", "2", "--dry-run")
    assert code == 0, err
    shown = [line.removeprefix("#SBATCH ") for line in out.splitlines() if line.startswith("#SBATCH ")]
    assert "--array=0-2%2" in shown and "--open-mode=append" in shown and "--signal=USR2@120" in shown
    assert "--requeue" in shown and "--job-name=mformer_table6b" in shown and "--wckey=submitit" in shown
    assert any(re.fullmatch(r"--output=.*/runs/\.jobs/\d{8}T\d{6}\.\d{6}Z/%A_%a_0_log\.out", s) for s in shown)
    assert not list(sbatch.iterdir()) and not runs.exists()

    code, out, err = _cli(capsys, runs, "--seeds", "3", "--submit", "slurm", "--array-parallelism", "2")
    assert code == 0, err
    [script] = list(sbatch.iterdir())  # one array of the 3 runs
    sent = [line.removeprefix("#SBATCH ") for line in script.read_text().splitlines() if line.startswith("#SBATCH ")]
    assert _without_stamp(sent) == _without_stamp(shown)
    job = json.loads(next(runs.rglob("job.json")).read_text())
    assert job["job_id"].startswith("4242_") and job["sbatch"] == sent  # the job file keeps what was sent


def test_a_copy_job_asks_a_little_memory_not_a_nodes(tmp_path):
    table3a = resolve_runs("mformer_table3a", "tiny", ["exact"], 1)[0]
    table4 = resolve_runs("mformer_table4", "tiny", None, 1)
    plan = plan_submission([table3a, *table4], tmp_path, JobOptions(mem_gb=64.0), force=False, dry_run=False)
    copy = next(job for job in plan.jobs if job.reuse_only)
    trains = next(job for job in plan.jobs if not job.reuse_only)
    assert copy.resources.options.mem_gb == COPY_MEM_GB
    assert f"--mem={COPY_MEM_GB:g}GB" in sbatch_options(tmp_path, copy.resources, TABLE, "afterok:1", 1)
    assert "--mem=64GB" in sbatch_options(tmp_path, trains.resources, TABLE, None, 1)


def test_array_parallelism_is_a_slurm_option(capsys, tmp_path):
    code, _, err = _cli(capsys, tmp_path / "runs", "--submit", "local", "--array-parallelism", "2")
    assert code == 2 and err == "error: --array-parallelism: SLURM options; --submit local runs the jobs on this " \
                                "machine\n"


# --- what the partition can never run -----------------------------------------------------------------------------

@pytest.mark.parametrize("extra, says", [
    (("--cpus-per-task", "3"), "mformer_table6b's 1 job(s) (mformer / K-400 seed 0): 1 task(s) x 3 CPUs = 3 CPUs a "
                               "node, its largest node has 2 (--cpus-per-task 2)"),
    (("--num-workers", "4"), "1 task(s) x 5 CPUs = 5 CPUs a node, its largest node has 2 (--num-workers 1: a task "
                             "asks its loader processes and itself)"),
    (("--mem-gb", "64"), "--mem-gb 64, its largest node has 21695 MB (--mem-gb 21, or none: the node's)"),
    (("--nodes", "2"), "2 nodes, it holds 1 (--nodes 1: the lr follows the global batch)"),
    (("--accelerator", "gpu", "--gpus-per-node", "2"), "2 GPUs a node, its largest node has 0 (--partition of GPU "
                                                        "nodes)"),
    (("--partition", "gpu", "--accelerator", "gpu", "--gpus-per-node", "9"),
     "9 GPUs a node, its largest node has 8 (--gpus-per-node 8)"),
    (("--partition", "gpu", "--nodes", "2"), "2 nodes, a job may take 1 (--nodes 1"),
    (("--partition", "gpu", "--time", "4320"),
     "--time 4320 min, its MaxTime is 2-00:00:00 (--time 2880: a job requeues itself before its limit and resumes)"),
])
def test_a_job_no_node_of_the_partition_can_run_is_refused_in_one_line_before_sbatch(capsys, tmp_path, monkeypatch,
                                                                                   sbatch, extra, says):
    _slurm_answers(monkeypatch)
    runs = tmp_path / "runs"
    code, _, err = _cli(capsys, runs, "--submit", "slurm", *extra)
    assert code == 2 and says in err and err.count("\n") == 1, err
    assert err.startswith("error: partition ") and " cannot run mformer_table6b's 1 job(s) (mformer / K-400 seed 0): " \
        in err and err.endswith("; nothing was submitted\n")
    assert not list(sbatch.iterdir()) and not list(runs.rglob("job.json"))
    code, out, err = _cli(capsys, runs, "--submit", "slurm", "--dry-run", *extra)  # the dry run says it, exit 0
    assert code == 0 and "# --submit slurm would refuse mformer_table6b's 1 job(s) " in out and says in out, err


def test_a_job_that_fits_goes_on_and_one_that_slurm_cannot_say_goes_on_unchecked(capsys, tmp_path, monkeypatch,
                                                                               sbatch):
    asked = _slurm_answers(monkeypatch)
    code, out, err = _cli(capsys, tmp_path / "a", "--submit", "slurm", "--partition", "gpu", "--time", "2880")
    assert code == 0, err
    assert ["sinfo", "-h", "-N", "-p", "gpu", "-o", "%N|%c|%m|%G"] in asked
    assert "# partition gpu: 2 node(s), at most 1 a job; its largest node 112 CPUs, 2014 GB, 8 GPUs; MaxTime " \
           "2-00:00:00: every job fits" in out
    assert len(list(sbatch.iterdir())) == 1
    _slurm_answers(monkeypatch, partitions=None)  # no controller answers: nothing is refused, one line says so
    code, out, err = _cli(capsys, tmp_path / "b", "--submit", "slurm", "--cpus-per-task", "64")
    assert code == 0, err
    assert "# partition limits not checked: SLURM did not answer `scontrol show partition` here; sbatch decides" in out
    assert len(list(sbatch.iterdir())) == 2


def test_the_partitions_answers_are_read_as_slurm_writes_them(monkeypatch):
    _slurm_answers(monkeypatch)
    debug = read_partition(None)  # the default partition
    assert (debug.name, debug.default, debug.nodes, debug.max_nodes, debug.max_time_s) == ("debug", True, 1, None, None)
    assert (debug.cpus, debug.memory_mb, debug.gpus) == (2, 21695, 0)
    gpu = read_partition("gpu")
    assert (gpu.nodes, gpu.max_nodes, gpu.max_time_s, gpu.cpus, gpu.gpus) == (2, 1, 2 * 86400, 112, 8)
    assert read_partition("nope") == "SLURM lists no partition nope"
    _slurm_answers(monkeypatch, partitions=PARTITIONS.replace("Default=YES", "Default=NO"))
    assert read_partition(None) == "SLURM names no default partition (give --partition)"


@pytest.mark.parametrize("text, seconds", [
    ("UNLIMITED", None), ("infinite", None), ("30", 1800), ("30:15", 1815), ("2:00:00", 7200), ("1-00:00:00", 86400),
    ("2-12", 216000), ("1-2:30", 95400), ("soon", None)])
def test_slurm_times_are_read_in_every_format_it_writes(text, seconds):
    assert parse_time_s(text) == seconds


@pytest.mark.parametrize("gres, gpus", [
    ("(null)", 0), ("gpu:8", 8), ("gpu:h100:8(S:0-1)", 8), ("gpu:a100:4,gpu:v100:2", 6),
    ("gpu:a100:4(S:0,1),mps:200", 4), ("shard:4", 0), ("gpu", 1)])
def test_a_nodes_gpus_are_read_from_its_generic_resources(gres, gpus):
    assert gres_gpus(gres) == gpus


# --- a file a job reads at its start ------------------------------------------------------------------------------

def test_a_missing_pretrained_file_is_refused_before_sbatch_and_noted_by_the_dry_run(capsys, tmp_path, monkeypatch,
                                                                                  sbatch):
    _slurm_answers(monkeypatch)
    runs, absent = tmp_path / "runs", tmp_path / "weights" / "expert.pth"
    code, _, err = _cli(capsys, runs, "--submit", "slurm", "--pretrained", str(absent))
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"error: mformer_table6b/mformer/K-400 seed 0: pretrained checkpoint {absent} does not "
                          f"exist (experiments/mformer/README.md says where it comes from; or pass another with "
                          f"--pretrained); nothing was submitted")
    assert not list(sbatch.iterdir()) and not runs.exists()
    code, out, err = _cli(capsys, runs, "--submit", "slurm", "--dry-run", "--pretrained", str(absent))
    assert code == 0, err
    assert f"# missing here, so --submit refuses 1 run(s) (mformer/K-400 seed 0) until it is there: pretrained " \
           f"checkpoint {absent} does not exist" in out


def test_a_source_another_run_trains_is_not_a_missing_file():
    [davis] = resolve_runs("mformer_table9", "tiny", None, 1)  # starts from run:mformer_table6b/mformer/K-400
    assert str(davis.model.pretrained).startswith("run:") and missing_files([davis], dry_run=True) == []
