"""The micro version of the embedded default as command-line arguments, for tests that run
``python -m experiments run`` in a subprocess (resume after a kill, determinism, DDP)."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Table 6b's Mformer row (one run: the K-400 column) on 32 generated training videos (4 steps of 8 an epoch) and 16
# test videos (2 views each), in the CLI's own process (--jobs 1).
TABLE, ROW, RUN = "mformer_table6b", "mformer", "mformer_table6b/mformer/seed0/tiny-k_400"
MICRO_ARGS = ["--rows", ROW, "--seeds", "1", "--jobs", "1", "--num-workers", "0", "--batch-size", "8",
              "--threads", "1", "--no-progress-bar",
              "--set", "optim.warmup_epochs=0", "--set", "trainer.log_every_n_steps=2",
              "--set", 'data.synthetic_params={"num_train": 32, "num_val": 16, "seed": 0}']


def cli_command(runs: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "experiments", "run", TABLE, "--runs-dir", str(runs), "--reports-dir",
            str(runs.parent / "reports"), *MICRO_ARGS, *extra]


def cli_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}  # HF_HUB_OFFLINE: conftest.py


def run_cli(runs: Path, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
    out = subprocess.run(cli_command(runs, *extra), env=cli_env(), capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out
