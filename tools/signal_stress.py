"""``python -m tools signal-stress [--repetitions N] [--bound S] [--out DIR]``: how long ``python -m experiments run``
takes to end after a SIGINT, over many repetitions, beside a busy core.

A Ctrl+C must stop a run at its next batch boundary, keep its last checkpoint and end the command with status 130,
however loaded the machine is. One repetition starts the micro run of the fault suite (Table 6b's Mformer row on 32
generated videos, checkpointed at every step) with two seeds and a loader process, in a session of its own and in a
folder of its own under ``--out``; once the second seed trains (its first checkpoint is on disk) it sends the command
one SIGINT and times how long the command takes to end. A command still running ``--bound`` seconds after its SIGINT
is a hang: its processes are recorded (with ``py-spy dump`` of each, where py-spy is installed), then killed. A
process spinning on one core (``--busy``, the default) runs beside every repetition, as other work does on a shared
machine. Linux only: a command's processes are found by their session in /proc.

Each repetition is a line of ``<out>/results.json`` ({"rep", "rc", "took"}, or "hung" with the processes, or "error"
for a command that ended before its SIGINT); the last line printed is the summary: repetitions, exit statuses, the
median and longest time to end, and how many passed the bound. Exit status 1 if any repetition hung, ended before its
SIGINT or ended with another status than 130.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data.atomic_write import atomic_write_text, open_log
from data.command_line import SECONDS, OneLineParser, count, path
from experiments.harness.run_dir import RunDir

REPO = Path(__file__).resolve().parents[1]
TABLE, ROW = "mformer_table6b", "mformer"
SECOND_RUN = RunDir(Path(TABLE, ROW, "seed1", "tiny-k_400")).last_checkpoint  # the second seed trains
# The fault suite's micro run (tests/experiments/micro_run.py), two seeds, a checkpoint at every step
RUN_ARGS = ["--rows", ROW, "--seeds", "2", "--jobs", "1", "--num-workers", "1", "--batch-size", "8", "--threads", "1",
            "--no-progress-bar", "--epochs", "2", "--set", "optim.warmup_epochs=0", "--set",
            "trainer.log_every_n_steps=2", "--set", 'data.synthetic_params={"num_train": 32, "num_val": 16, "seed": 0}',
            "--set", "trainer.checkpoint_every_n_steps=1"]
INTERRUPTED = 128 + signal.SIGINT  # what the command exits with after a SIGINT
START_LIMIT_S = 600.0  # a command that has not started its second run by then is recorded as an error


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m tools signal-stress",
                                     description="how long `python -m experiments run` takes to end after a SIGINT, "
                                                 "over many repetitions, beside a busy core")
    parser.add_argument("--repetitions", type=count(1, 10_000, "a repetition count"), default=50,
                        help="commands to interrupt (default: 50)")
    parser.add_argument("--bound", type=SECONDS, default=60.0,
                        help="seconds a command may take to end after its SIGINT before it counts as hung (default: "
                             "60)")
    parser.add_argument("--out", type=path("a folder"), required=True,
                        help="a new or empty folder: each repetition's runs and output, and results.json")
    parser.add_argument("--no-busy", dest="busy", action="store_false", help="no busy process beside the commands")
    return parser


def run_command(runs: Path) -> list[str]:
    return [sys.executable, "-m", "experiments", "run", TABLE, "--runs-dir", str(runs), "--reports-dir",
            str(runs.parent / "reports"), *RUN_ARGS]


def session_processes(session: int) -> dict[int, str]:
    """{pid: command line} of the live processes of ``session`` (a zombie has ended: only its parent's wait is due)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, _, _, sid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:4]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # it ended while we looked
            continue
        if int(sid) == session and state != "Z":
            found[int(entry.name)] = command.strip()
    return found


def kill_session(session: int) -> None:
    """SIGKILL what is left of a command's session (its process group: its children did not leave it)."""
    for pid in session_processes(session):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def repetition(index: int, out: Path, bound: float) -> dict[str, Any]:
    """One command, interrupted once its second run trains: how it ended, and how long after its SIGINT."""
    work = out / f"rep{index}"
    runs = work / "runs"
    runs.mkdir(parents=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with open_log(work / "out.txt", append=False) as log:
        command = subprocess.Popen(run_command(runs), cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        start = time.monotonic()
        while not (runs / SECOND_RUN).exists() and command.poll() is None and time.monotonic() - start < START_LIMIT_S:
            time.sleep(0.01)
        if command.poll() is not None or not (runs / SECOND_RUN).exists():
            return {"rep": index, "error": f"no second run training (status {command.poll()}); see {work}/out.txt"}
        command.send_signal(signal.SIGINT)
        sent = time.monotonic()
        try:
            status = command.wait(bound)
        except subprocess.TimeoutExpired:
            return {"rep": index, "hung": True, "procs": _dump(session_processes(command.pid), work)}
        return {"rep": index, "rc": status, "took": round(time.monotonic() - sent, 2)}
    finally:
        if command.poll() is None:
            command.kill()
        command.wait()
        kill_session(command.pid)


def _dump(processes: dict[int, str], work: Path) -> dict[int, str]:
    """The hung command's processes; their Python and native stacks into ``work/stacks.json`` where py-spy is."""
    if shutil.which("py-spy"):
        stacks = {pid: subprocess.run(["py-spy", "dump", "--native", "--pid", str(pid)], capture_output=True,
                                      text=True, check=False).stdout for pid in processes}
        atomic_write_text(work / "stacks.json", json.dumps(stacks, indent=1))
    return processes


def summary(results: Sequence[dict[str, Any]], bound: float) -> str:
    """One line: repetitions, exit statuses, median and longest time to end, and what passed the bound."""
    took = [r["took"] for r in results if "took" in r]
    statuses = Counter(str(r["rc"]) for r in results if "rc" in r)
    hung = sum(1 for r in results if r.get("hung"))
    errors = sum(1 for r in results if "error" in r)
    times = (f"median {statistics.median(took):.2f}s, longest {max(took):.2f}s" if took else "no command ended")
    shown = ", ".join(f"{n} x status {rc}" for rc, n in sorted(statuses.items())) or "none"
    return (f"{len(results)} repetition(s): {shown}; {times} after SIGINT; {hung} past the {bound:g}s bound; "
            f"{errors} ended before their SIGINT")


def all_interrupted(results: Sequence[dict[str, Any]]) -> bool:
    return bool(results) and all(r.get("rc") == INTERRUPTED for r in results)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise ValueError(f"--out {args.out}: not a new or empty folder")
    args.out.mkdir(parents=True, exist_ok=True)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    results: list[dict[str, Any]] = []
    try:
        for index in range(args.repetitions):
            results.append(repetition(index, args.out, args.bound))
            print(json.dumps(results[-1]), flush=True)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
        atomic_write_text(args.out / "results.json", json.dumps(results, indent=1))
    print(summary(results, args.bound))
    return 0 if all_interrupted(results) else 1


if __name__ == "__main__":
    sys.exit(main())
