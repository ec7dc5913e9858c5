"""What a user types into the job options is checked before it reaches a job script or a query (issue 77's probes):
``--mem-gb inf`` or ``nan`` is refused in one line (it ended in an OverflowError traceback); a newline or another
control character in ``--partition``, ``--account``, ``--qos``, ``--constraint`` or a ``--slurm-option`` value is
refused (it was written raw into the sbatch script, ending its ``#SBATCH`` block); and a seed folder no ``run`` makes
(``seed99999``) does not make ``status`` blame a ``--seeds`` the user never gave."""

import json

import pytest

from experiments.__main__ import main
from tests.experiments.micro_run import MICRO_ARGS, TABLE

ON_SLURM = MICRO_ARGS[:MICRO_ARGS.index("--jobs")] + MICRO_ARGS[MICRO_ARGS.index("--jobs") + 2:]


def _dry_run(tmp_path, *extra):
    return main(["run", TABLE, "--runs-dir", str(tmp_path / "runs"), *ON_SLURM, "--submit", "slurm", "--dry-run",
                 *extra])


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400", "0", "-2", "lots"])
def test_memory_that_is_not_a_finite_positive_number_is_refused_in_one_line(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as refused:
        _dry_run(tmp_path, f"--mem-gb={value}")
    err = capsys.readouterr().err
    assert refused.value.code == 2 and "expected a memory size in gigabytes greater than 0" in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("flag", ["--partition", "--account", "--qos", "--constraint"])
@pytest.mark.parametrize("value", ["gpu\n#SBATCH --exclusive", "gpu\x1b[2J", "two words", ""])
def test_a_scheduler_word_with_a_newline_control_or_space_is_refused(tmp_path, capsys, flag, value):
    with pytest.raises(SystemExit) as refused:
        _dry_run(tmp_path, f"{flag}={value}")
    err = capsys.readouterr().err
    assert refused.value.code == 2 and "expected one word of printable characters" in err, err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("value", ["mail-type=END\n#SBATCH --exclusive", "comment=a\x1bb"])
def test_an_sbatch_option_value_on_more_than_one_line_is_refused(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as refused:
        _dry_run(tmp_path, f"--slurm-option={value}")
    assert refused.value.code == 2 and "printable characters on one line" in capsys.readouterr().err


def test_the_printable_values_sbatch_takes_still_pass(tmp_path, capsys):
    code = _dry_run(tmp_path, "--partition", "gpu-a100", "--constraint", "a100&nvlink", "--mem-gb", "64",
                    "--slurm-option", "mail-type=END,FAIL", "--slurm-option", "comment=seed sweep")
    out = capsys.readouterr().out
    assert code == 0 and "#SBATCH --partition=gpu-a100" in out and "#SBATCH --constraint='a100&nvlink'" in out, out


def test_status_leaves_out_a_seed_folder_no_run_makes(tmp_path, capsys):
    runs = tmp_path / "runs"
    (runs / TABLE / "mformer" / "seed99999" / "tiny-k_400").mkdir(parents=True)
    code = main(["status", TABLE, "--runs-dir", str(runs), "--json"])
    captured = capsys.readouterr()
    assert code == 0 and "--seeds" not in captured.err, captured.err
    assert all(run["seed"] < 100 for run in json.loads(captured.out))
