"""The scripts a lent GPU machine runs (``tools/gpu/``) parse as bash, and ``evaluate.sh`` runs a test file that exists
with a device the test suite's ``--evaluate-device`` option accepts (slow: a fresh pytest collects it): a GPU's
minutes are not lost to a typo. ``measure.sh`` runs end to end on the CPU in the slow part
(tests/tools/test_paper_step.py)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((REPO / "tools" / "gpu").glob("*.sh"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_each_gpu_script_parses_as_bash(script):
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow  # a fresh pytest process that collects the smoke
def test_the_gpu_evaluate_script_runs_the_paper_shape_smoke_on_a_device_the_suite_accepts():
    text = (REPO / "tools" / "gpu" / "evaluate.sh").read_text().replace("\\\n", " ")
    found = re.search(r"python -m pytest (\S+) .*(--evaluate-device \w+)", text)
    assert found is not None
    test_file, option = found.groups()
    assert option == "--evaluate-device cuda"
    done = subprocess.run([sys.executable, "-m", "pytest", test_file, "-m", "slow", *option.split(), "--co", "-q",
                           "-p", "no:cacheprovider"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "4 tests collected" in done.stdout, done.stdout + done.stderr
