"""``python -m tools signal-stress``: its options and its summary (the stress itself, minutes per repetition, is run
by hand: ``python -m tools signal-stress --repetitions 50 --out DIR``)."""

from __future__ import annotations

import pytest

from tools.__main__ import main
from tools.signal_stress import INTERRUPTED, all_interrupted, build_parser, run_command, summary


@pytest.mark.parametrize("options, said", [
    (["--repetitions", "0"], "--repetitions: expected a repetition count from 1 to 10,000, got '0'"),
    (["--bound", "nan"], "--bound: expected a duration in seconds greater than 0 and at most 86400 (finite), got "
                         "'nan'"),
    (["--bound", "-1"], "--bound: expected a duration in seconds greater than 0 and at most 86400 (finite), got '-1'"),
    ([], "the following arguments are required: --out"),
])
def test_bad_options_are_refused_in_one_line(capsys, options, said):
    with pytest.raises(SystemExit) as stopped:
        main(["signal-stress", *options])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1 and "Traceback" not in err, err


def test_a_folder_that_holds_files_is_refused_before_any_command_starts(tmp_path, capsys):
    (tmp_path / "earlier.txt").write_text("an earlier stress's results")
    assert main(["signal-stress", "--repetitions", "1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: --out {tmp_path}: not a new or empty folder\n", err
    assert [p.name for p in tmp_path.iterdir()] == ["earlier.txt"]


def test_the_defaults_are_fifty_repetitions_within_a_minute_beside_a_busy_core(tmp_path):
    args = build_parser().parse_args(["--out", str(tmp_path)])
    assert (args.repetitions, args.bound, args.busy) == (50, 60.0, True)
    command = run_command(tmp_path / "runs")
    assert command[1:5] == ["-m", "experiments", "run", "mformer_table6b"] and "--seeds" in command


def test_the_summary_counts_statuses_times_hangs_and_early_ends():
    results = [{"rep": 0, "rc": INTERRUPTED, "took": 2.5}, {"rep": 1, "rc": INTERRUPTED, "took": 3.5},
               {"rep": 2, "rc": INTERRUPTED, "took": 9.0}, {"rep": 3, "hung": True, "procs": {}},
               {"rep": 4, "error": "no second run training (status 2)"}, {"rep": 5, "rc": 1, "took": 0.5}]
    assert summary(results, 60) == ("6 repetition(s): 1 x status 1, 3 x status 130; median 3.00s, longest 9.00s "
                                    "after SIGINT; 1 past the 60s bound; 1 ended before their SIGINT")
    assert not all_interrupted(results) and all_interrupted(results[:3]) and not all_interrupted([])
    assert summary([], 60) == ("0 repetition(s): none; no command ended after SIGINT; 0 past the 60s bound; 0 ended "
                               "before their SIGINT")
