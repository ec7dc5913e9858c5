"""models.hardware: every benchmark and record names the CPU by its model name, with its threads, and a GPU by its
CUDA name; and the commit of the code that measured it."""

from __future__ import annotations

import subprocess
import types

import torch

from experiments.harness import provenance
from models import hardware

X86_CPUINFO = ("processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 106\n"
               "model name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz\nstepping\t: 6\n")


def _cpuinfo(monkeypatch, text):
    def read_text():
        if text is None:
            raise OSError("no /proc")
        return text
    monkeypatch.setattr(hardware, "Path", lambda path: types.SimpleNamespace(read_text=read_text))


def test_the_cpu_name_is_the_model_name_line_else_the_platforms(monkeypatch):
    _cpuinfo(monkeypatch, X86_CPUINFO)  # "model\t\t: 106" comes first and is not the name
    assert hardware.cpu_name() == provenance.cpu_name() == "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz"
    monkeypatch.setattr(hardware.platform, "processor", lambda: "")
    monkeypatch.setattr(hardware.platform, "machine", lambda: "aarch64")
    _cpuinfo(monkeypatch, "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\n")  # ARM: no model name
    assert hardware.cpu_name() == "aarch64"
    _cpuinfo(monkeypatch, None)
    assert hardware.cpu_name() == "aarch64"


def test_a_device_is_named_by_its_gpu_or_by_the_cpu_and_threads(monkeypatch):
    _cpuinfo(monkeypatch, X86_CPUINFO)
    assert hardware.device_name("cpu", 2) == "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz, 2 thread(s)"
    assert hardware.device_name(torch.device("cpu")).endswith(f", {torch.get_num_threads()} thread(s)")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: f"NVIDIA H100 80GB HBM3 ({device})")
    assert hardware.device_name("cuda:1") == "NVIDIA H100 80GB HBM3 (cuda:1)"


def _git(*args, cwd):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_a_record_names_the_commit_and_whether_the_code_differed_from_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # no checkout above tmp_path counts
    assert hardware.source_commit(tmp_path) == "unknown"  # not a checkout
    _git("init", "-q", cwd=tmp_path)
    (tmp_path / "f.py").write_text("a = 1\n")
    (tmp_path / "README.md").write_text("a\n")
    _git("add", "f.py", "README.md", cwd=tmp_path)
    _git("commit", "-q", "-m", "first", cwd=tmp_path)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True,
                          text=True, check=True).stdout.strip()
    assert hardware.source_commit(tmp_path) == head
    (tmp_path / "untracked.py").write_text("")
    (tmp_path / "README.md").write_text("b\n")
    assert hardware.source_commit(tmp_path) == head  # untracked files and prose are not the measured code
    (tmp_path / "f.py").write_text("a = 2\n")
    assert hardware.source_commit(tmp_path) == head + "-dirty"
    assert hardware.source_commit() == provenance.git_commit()  # runs and benchmarks name this checkout alike
