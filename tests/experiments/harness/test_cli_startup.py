"""``python -m experiments list``, ``show`` and ``--help`` answer at once: they import no torch, Lightning, timm or
scipy (5-6 s before anything is printed, on 2 cores). A model is built, and those libraries loaded, only by the
commands that need one (``run``, ``static``)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
HEAVY = ("torch", "lightning", "timm", "scipy", "torchvision")

# Runs the CLI in-process, then prints which heavy libraries it loaded.
PROBE = """
import runpy, sys
sys.argv = ["experiments", *sys.argv[1:]]
try:
    runpy.run_module("experiments", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
print("loaded:", sorted(m for m in {heavy!r} if m in sys.modules))
"""


@pytest.mark.parametrize("args", [["--help"], ["list"], ["show", "mformer_table3a", "--runs-dir", "none"]])
def test_cli_answers_without_loading_torch(args):
    out = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "loaded: []"


@pytest.mark.parametrize("module", ["experiments", "reports"])
def test_a_reader_that_goes_away_ends_the_command_quietly(module, tmp_path):
    """``python -m experiments show ID | head -1``: once the reader has closed the pipe, the command ends with the
    shell's status for it (141) and says nothing, however much it still had to print."""
    args = (["show", "mformer_table4", "--runs-dir", "none"] if module == "experiments"
            else ["build", "mformer_table4", "--runs-dir", str(tmp_path), "--out-dir", str(tmp_path / "out")])
    reader, writer = os.pipe()
    os.close(reader)  # the reader is gone before the first line (a race with the output's size otherwise)
    command = subprocess.Popen([sys.executable, "-m", module, *args], stdout=writer, stderr=subprocess.PIPE,
                               cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})
    os.close(writer)
    _, err = command.communicate(timeout=120)
    assert command.returncode == 141 and err == b"", err.decode()
