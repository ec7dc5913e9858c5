"""Two "nodes" of one CPU process each, launched as a cluster launches them: torch's own launcher once per node
(``python -m torch.distributed.run --nnodes 2 --nproc-per-node 1 --node-rank N --master-addr ... -m experiments
run ...``), both writing to one runs folder, as nodes on a shared file system do. Lightning reads the launcher's
variables (RANK, LOCAL_RANK, WORLD_SIZE, GROUP_RANK) and runs DDP over gloo across the two.

Checked: both launches finish; the run trained on a world of 2 processes on 2 nodes; its test counts each of 15
videos once (the distributed sampler pads node 1 with a repeat); only global rank 0 wrote the record, the checkpoint,
the TensorBoard files and the report, and node 1 printed no report."""

import json
import random
import socket
import subprocess
import sys
import time

import pytest

from tests.experiments.micro_run import MICRO_ARGS, RUN, TABLE, cli_env

pytestmark = pytest.mark.slow  # two launchers and their two processes: ~40 s on 2 idle cores

NUM_VAL = 15  # odd: the distributed sampler pads the second rank
SYNTHETIC = f'data.synthetic_params={{"num_train": 32, "num_val": {NUM_VAL}, "seed": 0}}'


def _free_port() -> int:
    """A free port below the ephemeral range: a port the kernel hands out as a connection's own source port could
    let node 1's early connection attempts connect to themselves before node 0 listens."""
    rng = random.Random()
    for _ in range(100):
        port = rng.randrange(20000, 30000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-29999")


def _wait_until_listening(port: int, node: subprocess.Popen, timeout: float = 120) -> None:
    """Node 0's launcher hosts the rendezvous: node 1 starts once it listens, as a second node's job would."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and node.poll() is None:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"node 0 did not listen on port {port} (exit status {node.poll()})")


def node_command(node_rank: int, port: int, runs) -> list[str]:
    """The command a user types on node ``node_rank`` of two (one process per node, here on the CPU)."""
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
            "--node-rank", str(node_rank), "--master-addr", "127.0.0.1", "--master-port", str(port),
            "-m", "experiments", "run", TABLE, "--runs-dir", str(runs), "--reports-dir", str(runs.parent / "reports"),
            *MICRO_ARGS, "--set", SYNTHETIC, "--epochs", "1", "--accelerator", "cpu", "--devices", "1",
            "--num-nodes", "2", "--strategy", "ddp"]


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    runs = tmp_path_factory.mktemp("multinode") / "runs"
    port = _free_port()
    logs = [runs.parent / f"node{rank}.log" for rank in (0, 1)]  # files, not pipes: neither node blocks on output
    nodes = []
    try:
        for rank, log in enumerate(logs):
            with open(log, "w") as out:
                nodes.append(subprocess.Popen(node_command(rank, port, runs), env=cli_env(), stdout=out,
                                              stderr=subprocess.STDOUT, text=True))
            if rank == 0:
                _wait_until_listening(port, nodes[0])
        for node in nodes:
            node.wait(timeout=600)
    finally:
        for node in nodes:
            if node.poll() is None:
                node.kill()
    outputs = [log.read_text() for log in logs]
    for rank, (node, output) in enumerate(zip(nodes, outputs)):
        assert node.returncode == 0, f"node {rank}:\n{output[-4000:]}"
    return runs, outputs


def test_trains_across_two_nodes_and_counts_each_test_video_once(two_nodes):
    runs, _ = two_nodes
    record = json.loads((runs / RUN / "metrics.json").read_text())
    provenance = record["provenance"]
    assert provenance["world_size"] == 2 and provenance["num_nodes"] == 2
    assert provenance["strategy"] == "DDPStrategy"
    assert provenance["batch"]["global_batch"] == 16  # 8 per process x 2
    assert record["test_videos"] == NUM_VAL
    correct = record["metrics"]["top1"] * NUM_VAL / 100
    assert correct == pytest.approx(round(correct), abs=1e-4)  # a count out of 15, not of the padded 16


def test_only_global_rank_zero_writes(two_nodes):
    runs, (node0, node1) = two_nodes
    run = runs / RUN
    written_by = json.loads((run / "metrics.json").read_text())["provenance"]["written_by"]
    assert written_by["global_rank"] == 0
    events = sorted(run.glob("events.out.tfevents.*"))
    assert events and all(e.name.split(".")[-2] == str(written_by["pid"]) for e in events)
    assert sorted(p.name for p in run.iterdir() if not p.name.startswith("events.")) == [
        "checkpoints", "hparams.yaml", "metrics.json"]
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["last.ckpt"]
    assert node0.count("your report: ") == 1 and "your report: " not in node1
    assert "GLOBAL_RANK: 1" in node1 and "GLOBAL_RANK: 0" in node0
