"""``RunDir`` and ``RunsTree``: what a command does next with a run in each state its folder can be in
(``RunDir.next_step``) and each move between them, on small folders written by hand (a record, a checkpoint holding
only its run's state, a lock another process holds); ``status`` and ``run --dry-run`` saying the same of every run of
a table in each of them; the tree's layout; and the rules that no other production file names a run folder's files,
builds or globs a runs-tree path, or decides a run's fate from a file's existence. Nothing trains."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from experiments.harness.plan import resolve_runs
from experiments.harness.records import RUN_STATE, DamagedRecordError, RunConflictError, run_state
from experiments.harness.run_dir import RunDir, RunsTree, find_equivalent_run
from experiments.harness.run_lock import RunBusyError, RunLockError

REPO = Path(__file__).resolve().parents[3]
PRODUCTION = ("data", "models", "lightning_modules", "experiments", "reports", "tools")

# Another process holding a lock file as filelock does (``fcntl.flock``), until its stdin closes or it is killed
HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


def _cfg(table="mformer_table2b", row="traj_separatepe", **sections):
    return [c for c in resolve_runs(table, "tiny", [row], 1, None, sections) if c.column == "K-400"][0]


def _record(run, cfg, **extra):
    """A finished record of ``cfg`` in ``run``, as ``execute`` writes it."""
    run.write_record({"table": cfg.table, "row": cfg.row, "column": cfg.column, "seed": cfg.seed,
                      "scale": cfg.scale, "dataset": cfg.data.dataset, "metrics": {"top1": 50.0},
                      "config": cfg.to_dict(), **extra})


def _checkpoint(run, state):
    """A last checkpoint holding only the run's state (``RUN_STATE``; None: written before checkpoints had one)."""
    import torch

    run.checkpoints_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": 4, "callbacks": {} if state is None else {RUN_STATE: state}}, run.last_checkpoint)


@contextmanager
def _held_by_another_process(run):
    run.lock_file.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-S", "-c", HOLDER, str(run.lock_file)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait(30)


def _locked(lock_file: Path) -> bool:
    """Whether any open file holds the lock, seen from a descriptor of its own."""
    fd = os.open(lock_file, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


@pytest.fixture
def runs(tmp_path):
    return tmp_path / "runs"


def _next(run, cfg, runs):
    """What a command does next with ``cfg`` in ``run``; a refusal raises what the command stops with."""
    return run.next_step(cfg, runs).unless_refused().action


def test_the_folder_names_its_files_and_its_lock_beside_it(runs):
    run = RunDir.of(_cfg(), runs)
    assert run.path == runs / "mformer_table2b" / "traj_separatepe" / "seed0" / "tiny-k_400"
    assert run.record_file == run.path / "metrics.json"
    assert run.last_checkpoint == run.path / "checkpoints" / "last.ckpt"
    assert run.job_file == run.path / "job.json"
    assert run.lock_file == run.path.parent / ".tiny-k_400.lock"  # beside it: --force moves the folder, not the lock
    assert RunDir(str(run.path)) == run and run.relative_to(runs) == "mformer_table2b/traj_separatepe/seed0/tiny-k_400"


def test_the_last_checkpoint_is_the_one_lightning_writes():
    from lightning.pytorch.callbacks import ModelCheckpoint

    name = ModelCheckpoint.CHECKPOINT_NAME_LAST + ModelCheckpoint.FILE_EXTENSION
    assert RunDir.LAST_CHECKPOINT == f"{RunDir.CHECKPOINTS}/{name}"


def test_absent_then_busy_then_finished(runs):
    cfg = _cfg()
    run = RunDir.of(cfg, runs)
    assert _next(run, cfg, runs) == "train" and run.check(cfg, runs).state == "absent"
    with _held_by_another_process(run) as holder:
        step = run.next_step(cfg, runs)
        assert step.line(runs) == f"busy: another process (its lock {run.lock_file} does not say which) is running it"
        assert run.next_step(cfg, runs, holding=True).action == "train"  # asked by the lock's holder's ranks
        with pytest.raises(RunBusyError, match=re.escape(f"{run.path}: skipped, another process")):
            with run.hold():
                pass
        _record(run, cfg)  # the holder records it: a record is whole once there, whoever holds the lock
        assert _next(run, cfg, runs) == "done"
        holder.stdin.close()
        holder.wait(30)
    found = run.check(cfg, runs)
    assert found.state == "finished" and found.record["metrics"] == {"top1": 50.0}


def test_holding_it_here_is_busy_for_others_only(runs):
    cfg = _cfg()
    run = RunDir.of(cfg, runs)
    with run.hold():
        assert _locked(run.lock_file) and _next(run, cfg, runs) == "train"  # this process's own run
        with run.hold():  # re-entrant: the runner holds a run it moves, then execute holds it again
            pass
        _record(run, cfg)
    assert not _locked(run.lock_file) and _next(run, cfg, runs) == "done"
    assert json.loads(run.lock_file.read_text())["pid"] == os.getpid()  # the lock file names its last holder


def test_busy_then_resumable_once_its_holder_is_killed(runs):
    cfg = _cfg()
    run = RunDir.of(cfg, runs)
    with _held_by_another_process(run) as holder:
        _checkpoint(run, run_state(cfg, 1))  # the holder trains and checkpoints
        assert _next(run, cfg, runs) == "busy"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(30)
        assert _next(run, cfg, runs) == "resume"  # the kernel freed the lock with its process
    found = run.check(cfg, runs)
    assert found.state == "resumable" and found.started == run_state(cfg, 1)


def test_a_lock_file_naming_a_dead_process_is_no_busy_run(runs):
    cfg = _cfg()
    run = RunDir.of(cfg, runs)
    dead = subprocess.Popen([sys.executable, "-S", "-c", "pass"])
    dead.wait(30)
    run.lock_file.parent.mkdir(parents=True)
    run.lock_file.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "since": "2020-01-01"}))
    assert _next(run, cfg, runs) == "train"
    with run.hold():
        assert json.loads(run.lock_file.read_text())["pid"] == os.getpid()


def test_a_lock_path_that_is_no_file_is_refused(runs):
    cfg = _cfg()
    run = RunDir.of(cfg, runs)
    run.lock_file.mkdir(parents=True)
    for ask in (run.check_lock_file, lambda: _next(run, cfg, runs)):
        with pytest.raises(RunLockError, match=re.escape(f"{run.lock_file}: the run's lock file is a folder")):
            ask()


def test_a_checkpoint_from_before_checkpoints_named_their_run_is_resumable_unchecked(runs):
    cfg = _cfg()
    run = RunDir.of(cfg, runs)
    _checkpoint(run, None)
    step = run.next_step(cfg, runs)
    assert step.action == "resume" and step.started is None and step.checkpoint == run.last_checkpoint


def test_finished_then_another_configuration_once_the_options_change(runs):
    cfg, changed = _cfg(), _cfg(optim={"lr": 0.5})
    run = RunDir.of(cfg, runs)
    _record(run, cfg)
    assert _next(run, cfg, runs) == "done" and run.next_step(changed, runs).action == "refuse"
    with pytest.raises(RunConflictError) as conflict:
        _next(run, changed, runs)
    assert str(conflict.value) == (
        f"{run.path}: its metrics.json was written for another run (recorded -> asked: optim.lr: 0.001 -> 0.5); "
        f"run again with --force to replace it (the old run is moved to {RunsTree(runs).replaced_root}/), or use "
        f"another --runs-dir")


def test_a_checkpoint_of_another_configuration_is_not_resumed(runs):
    cfg, changed = _cfg(), _cfg(optim={"lr": 0.5})
    run = RunDir.of(cfg, runs)
    _checkpoint(run, run_state(changed, 1))
    assert run.next_step(cfg, runs).action == "refuse" and _next(run, changed, runs) == "resume"
    with pytest.raises(RunConflictError, match=r"its checkpoints/last\.ckpt was written for another run \(recorded "
                                               r"-> asked: optim\.lr: 0\.5 -> 0\.001\), run again with the original "
                                               r"options to finish it; run again with --force"):
        run.check(cfg, runs)


def test_a_finished_run_is_reusable_by_an_identical_run_of_another_table_unless_it_is_a_copy(runs):
    trained, identical = _cfg(), _cfg("mformer_table3a", "exact")
    source = RunDir.of(trained, runs)
    _record(source, trained)
    step = RunDir.of(identical, runs).next_step(identical, runs)
    assert step.action == "reuse" and step.source == source and step.line(runs) == f"reuse {source.relative_to(runs)}"
    changed = _cfg("mformer_table3a", "exact", optim={"lr": 0.5})
    assert _next(RunDir.of(changed, runs), changed, runs) == "train"
    _record(source, trained, reused_from="mformer_table4/joint/seed0/tiny-k_400")  # itself a copy
    assert _next(RunDir.of(identical, runs), identical, runs) == "train"
    assert find_equivalent_run(identical, runs) is None


def test_a_damaged_record_is_no_state_it_is_named_with_what_to_do(runs):
    cfg = _cfg()
    run = RunDir.of(cfg, runs)
    run.path.mkdir(parents=True)
    run.record_file.write_text('{"table": ')  # cut short
    message = (rf"{re.escape(str(run.record_file))}: not valid JSON \(.*\); delete the run folder "
               rf"{re.escape(str(run.path))} \(or move it away\), or run that run again with --force")
    for ask in (_next, lambda run, cfg, runs: run.check(cfg, runs)):
        with pytest.raises(DamagedRecordError, match=message):
            ask(run, cfg, runs)
    assert find_equivalent_run(_cfg("mformer_table3a", "exact"), runs) is None  # passed over, not an error


def test_a_damaged_checkpoint_is_no_state_either(runs):
    cfg = _cfg()
    run = RunDir.of(cfg, runs)
    run.checkpoints_dir.mkdir(parents=True)
    run.last_checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(DamagedRecordError, match=re.escape(f"delete the run folder {run.path} (or move it away)")):
        _next(run, cfg, runs)


@pytest.mark.parametrize("left", ["record", "damaged record", "checkpoint"])
def test_force_moves_the_old_run_away_whole_and_leaves_it_absent(runs, left):
    cfg = _cfg()
    run = RunDir.of(cfg, runs)
    if left == "checkpoint":
        _checkpoint(run, run_state(cfg, 1))
    else:
        _record(run, cfg)
        if left == "damaged record":
            run.record_file.write_bytes(b"\xff")
    with run.hold():  # as the runner does: none takes the run while it is moved
        said = []
        run.move_away(runs, said.append)
    [archive] = (RunsTree(runs).replaced_root).glob(f"*/{run.relative_to(runs)}")
    assert said == [f"    previous run moved to {archive}"]
    assert _next(run, cfg, runs) == "train" and run.lock_file.exists()  # the lock stays where the run is
    moved = RunDir(archive)
    assert (moved.has_checkpoint() if left == "checkpoint" else moved.record_file.exists())
    RunDir.of(cfg, runs).move_away(runs, said.append)  # nothing left to move: nothing said
    assert len(said) == 1


def _production_files():
    return sorted(path for top in PRODUCTION for path in (REPO / top).rglob("*.py"))


# Locks beside files that are no run folder's: the benchmark record files several smoke processes merge into, and
# the stores of decoded generated videos several runs fill
OTHER_LOCKS = {"reports/smoke_records.py", "data/decoded_store.py"}


def test_only_run_dir_names_a_run_folders_files():
    """Code, docstrings and help text alike: elsewhere they say ``RunDir.RECORD``, ``RunDir.LAST_CHECKPOINT``, ...
    (f-strings where a user reads the name), so a renamed file changes in one place."""
    names = re.compile(r"metrics\.json|last\.ckpt|job\.json")
    lock = re.compile(r"\.lock\b(?!\s*\()")
    found = []
    for path in _production_files():
        where = path.relative_to(REPO).as_posix()
        if where == "experiments/harness/run_dir.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if names.search(line) or (lock.search(line) and where not in OTHER_LOCKS):
                found.append(f"{where}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


# What builds or globs a runs-tree path (a seed or released folder, the replaced runs and the submissions' folders by
# name, a glob down the tree, a run folder's depth), and what decides a run's fate from a file's existence.
TREE_PATHS = re.compile(r"""["'/]seed[{*]|["']released/|= ["']released["']|["']\.(?:replaced|jobs)["']"""
                        r"""|\.glob\(f?["']\*/|(?<!__file__\)\.resolve\(\))\.parents\[\d\]""")
DECIDES = re.compile(r"\.has_record\(\)|\.has_checkpoint\(\)|\bfind_equivalent_run\(|(?<!def )\bheld_elsewhere\(")


def test_only_run_dir_lays_out_the_tree_and_decides_what_a_run_does_next():
    """Elsewhere the code asks ``RunsTree`` for a path and ``RunDir.next_step`` for a run's fate."""
    found = []
    for path in _production_files():
        where = path.relative_to(REPO).as_posix()
        if where == "experiments/harness/run_dir.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if TREE_PATHS.search(line) or DECIDES.search(line):
                found.append(f"{where}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def test_the_tree_places_every_run_and_finds_them_again(runs):
    tree, cfg = RunsTree(runs), _cfg()
    assert tree.folder(cfg) == RunDir.of(cfg, runs) == RunDir(runs / "mformer_table2b/traj_separatepe/seed0/tiny-k_400")
    assert tree.released(cfg).path == runs / "mformer_table2b/traj_separatepe/released/tiny-k_400"
    assert RunsTree.place("t", "r", 3, "paper", "K-400 top1") == ("t", "r", "seed3", "paper-k_400_top1")
    for seed in (0, 2, 7):
        _record(tree.run(cfg.table, cfg.row, seed, "tiny", cfg.column), dataclasses.replace(cfg, seed=seed))
    odd = runs / cfg.table / cfg.row / "seedling" / "tiny-k_400"
    odd.mkdir(parents=True)
    assert tree.folders(cfg.table, "tiny") == sorted([*(tree.run(cfg.table, cfg.row, s, "tiny", cfg.column).path
                                                        for s in (0, 2, 7)), odd])
    assert tree.seeds(cfg.table, "tiny", max_seeds=5) == (3, [odd.parent.parent / "seed7", odd.parent])
    assert tree.seeds(cfg.table, "paper", max_seeds=5) == (0, [])
    assert tree.records(seed=2, scale="tiny") == [tree.run(cfg.table, cfg.row, 2, "tiny", cfg.column).record_file]
    assert len(tree.records()) == 3 and tree.records(seed=2, scale="paper") == []
    from experiments.harness.cluster.job_file import write_job

    for seed in (0, 1):
        write_job(tree.run(cfg.table, cfg.row, seed, "tiny", cfg.column).path, {"state": "queued"})
    assert tree.job_files(cfg.table, unrecorded=True) == [tree.run(cfg.table, cfg.row, 1, "tiny", cfg.column).job_file]
    assert len(tree.job_files()) == 2 and tree.job_files("mformer_table4") == []
    assert tree.submission_folder().parent == runs.absolute() / ".jobs"


# The states the tests above build, one a run of mformer_table3a (exact trajectory attention is mformer_table2b's
# traj_separatepe row): what `run` does next with each.
AGREED = {("exact", "K-400"): "reuse", ("exact", "SSv2"): "train", ("performer", "K-400"): "done",
          ("performer", "SSv2"): "resume", ("nystrom", "K-400"): "busy", ("nystrom", "SSv2"): "resume",
          ("orthoformer", "K-400"): "train", ("orthoformer", "SSv2"): "train"}


def _said(capsys, argv):
    from experiments.__main__ import main

    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_status_and_the_dry_run_say_the_same_of_every_run_in_every_state(runs, capsys):
    table = "mformer_table3a"
    configs = {(c.row, c.column): c for c in resolve_runs(table, "tiny", None, 1, None, None)}
    assert set(configs) == set(AGREED)
    trained = _cfg()  # the identical run exact/K-400 reuses
    _record(RunDir.of(trained, runs), trained)
    _record(RunDir.of(configs["performer", "K-400"], runs), configs["performer", "K-400"])
    _checkpoint(RunDir.of(configs["performer", "SSv2"], runs), run_state(configs["performer", "SSv2"], 1))
    _checkpoint(RunDir.of(configs["nystrom", "SSv2"], runs), None)
    dry_run = ["run", table, "--seeds", "1", "--runs-dir", str(runs), "--dry-run", "--json"]
    status = ["status", table, "--scale", "tiny", "--seeds", "1", "--runs-dir", str(runs), "--json"]
    with _held_by_another_process(RunDir.of(configs["nystrom", "K-400"], runs)):
        code, out, err = _said(capsys, dry_run)
        assert code == 0, err
        planned = {run["run_dir"]: run["action"] for run in json.loads(out)["runs"]}
        code, out, err = _said(capsys, status)
        assert code == 0, err
        said = {run["run_dir"]: run["next"] for run in json.loads(out)}
        assert said == planned
        assert {key: planned[str(RunDir.of(cfg, runs).path)].split()[0].rstrip(":") for key, cfg in configs.items()} \
            == AGREED
        assert {run["state"] for run in json.loads(out)} == {"not submitted", "done", "busy"}

        other = configs["orthoformer", "K-400"]  # each state `run` refuses, one at a time: the same line
        folder = RunDir.of(other, runs)
        for refused in ("another configuration's record", "another configuration's checkpoint", "a damaged record",
                        "a damaged checkpoint", "a lock path that is a folder"):
            if refused == "another configuration's record":
                _record(folder, _cfg("mformer_table3a", "orthoformer", optim={"lr": 0.5}))
            elif refused == "another configuration's checkpoint":
                _checkpoint(folder, run_state(_cfg("mformer_table3a", "orthoformer", optim={"lr": 0.5}), 1))
            elif refused == "a damaged record":
                folder.path.mkdir(parents=True)
                folder.record_file.write_text('{"table": ')
            elif refused == "a damaged checkpoint":
                folder.checkpoints_dir.mkdir(parents=True)
                folder.last_checkpoint.write_bytes(b"not a checkpoint")
            else:
                folder.lock_file.mkdir()
            code, out, err = _said(capsys, dry_run)
            assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, (refused, err)
            code, out, _ = _said(capsys, status)
            [entry] = [run for run in json.loads(out) if run["run_dir"] == str(folder.path)]
            assert code == 0 and entry["state"] == "refused" and entry["next"] == f"refuse: {entry['note']}"
            assert err == f"error: {entry['note']}\n", refused
            shutil.rmtree(folder.path, ignore_errors=True)
            if folder.lock_file.is_dir():
                folder.lock_file.rmdir()
