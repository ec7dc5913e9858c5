"""Test-wide setup: nothing may reach a model hub, torchvision is repaired before anything imports it, and no test
reads or writes the user's checkout.

The commands' defaults name the working directory (``runs/``, ``<runs>/reports/``, ``lightning_logs/``, the
generated-data cache ``.cache/``), so every test runs in a folder of its own (``own_working_directory``), and so do
the session's fixtures (``session_working_directory``): a user's ``runs/`` from the quick start is never read, and
nothing a test does lands in the checkout. The generated-data cache is shared by the session's tests: its sets are
built once, keyed by their parameters, and a test's folder reaches it through a link. Commands a test starts in a
subprocess inherit the test's folder and import the repository through ``PYTHONPATH``.
"""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ["HF_HUB_OFFLINE"] = "1"  # a test that tries to download weights fails fast instead of hanging
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))
# Triton kernels (models/attention/trajectory_triton.py) run on CPU tensors through Triton's interpreter, which must
# be chosen before anything imports triton (timm does, through torch._dynamo).
os.environ.setdefault("TRITON_INTERPRET", "1")

import data.torchvision_compat  # noqa: E402,F401

CACHE = ".cache"  # the generated-data cache, relative to the working directory as the commands name it


def pytest_addoption(parser):
    parser.addoption("--evaluate-device", choices=("cpu", "cuda"), default="cpu",
                     help="where tests/experiments/harness/test_evaluate_smoke.py evaluates: cuda at each entry's own "
                          "crop on full-size frames (tools/gpu/evaluate.sh), cpu at a crop of 16 (the default)")


@pytest.fixture(scope="session", autouse=True)
def session_working_directory(tmp_path_factory) -> Path:
    """The session's folder, where session-scoped fixtures run and the shared cache lives."""
    work = tmp_path_factory.mktemp("session")
    (work / CACHE).mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)
        yield work


@pytest.fixture(autouse=True)
def own_working_directory(session_working_directory, tmp_path_factory, monkeypatch) -> Path:
    """The test's own working directory: empty but for a link to the session's generated-data cache."""
    work = tmp_path_factory.mktemp("cwd")
    (work / CACHE).symlink_to(session_working_directory / CACHE, target_is_directory=True)
    monkeypatch.chdir(work)
    return work


# ---- the checkout after the session: a test that wrote into it fails the run --------------------------------------

_BEFORE = pytest.StashKey[set]()


def checkout_state(repo: Path = REPO) -> set[str] | None:
    """Every path git reports as changed, untracked or ignored in the checkout (Python's bytecode caches aside), or
    None outside a git checkout."""
    if not (repo / ".git").exists():
        return None
    import subprocess

    listed = subprocess.run(["git", "status", "--porcelain", "-z", "--untracked-files=all", "--ignored"], cwd=repo,
                            capture_output=True, check=True).stdout.decode(errors="replace").split("\0")
    return {entry for entry in listed if entry and "__pycache__/" not in entry and ".pytest_cache/" not in entry}


def pytest_sessionstart(session):
    session.config.stash[_BEFORE] = checkout_state()
    # Hypothesis keeps its example database and its cache of the tested modules' constants (written before the
    # session's fixtures run) in the folder it was imported from, the checkout: here in a folder of the session's
    import shutil
    import tempfile

    from hypothesis.configuration import set_hypothesis_home_dir

    home = Path(tempfile.mkdtemp(prefix="vidrepro-hypothesis-"))
    set_hypothesis_home_dir(home)
    session.config.add_cleanup(lambda: shutil.rmtree(home, ignore_errors=True))


def pytest_sessionfinish(session, exitstatus):
    before = session.config.stash.get(_BEFORE, None)
    after = checkout_state() if before is not None else None
    if after is None or after == before:
        return
    changed = sorted(after - before) + sorted(f"{entry} (gone)" for entry in before - after)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"error: the tests changed the checkout {REPO} (a test must work in its own folders; "
                            "or files were edited while the tests ran): "
                            + "; ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10
                                                         else ""), red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED

