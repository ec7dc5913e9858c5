"""The compatibility module repairs the CPU-torch + CUDA-torchvision pair as torchvision is imported, and does
nothing elsewhere."""

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_stack_imports_after_compat():
    code = textwrap.dedent("""
        import sys
        import data.torchvision_compat as compat
        assert "torch" not in sys.modules  # the repairs wait for the imports they are for
        import torchvision, lightning, timm, torchmetrics
        import pytorchvideo.transforms  # imports torchvision.transforms.functional_tensor
        import torchvision.transforms.functional_tensor as ft
        print(compat.repaired)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


def test_does_nothing_where_torchvision_loads_normally(tmp_path):
    # A torchvision that imports cleanly and still has the old module name: nothing may be touched.
    pkg = tmp_path / "torchvision"
    (pkg / "transforms").mkdir(parents=True)
    (pkg / "__init__.py").write_text("__version__ = '0.0+healthy'\n")
    (pkg / "transforms" / "__init__.py").write_text("")
    (pkg / "transforms" / "functional_tensor.py").write_text("MARK = 'original'\n")
    code = textwrap.dedent("""
        import importlib.util, sys, torch
        # Load the module file alone: the models package would import timm, which a fake torchvision can't serve.
        spec = importlib.util.spec_from_file_location("compat", "{repo}/data/torchvision_compat.py")
        compat = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(compat)
        import torchvision.transforms.functional_tensor as ft
        assert compat.repaired == [], compat.repaired
        assert ft.MARK == 'original'
        assert torchvision.__version__ == '0.0+healthy'
        print('untouched')
    """).replace("import torchvision.transforms", "import torchvision, torchvision.transforms")
    code = code.replace("{repo}", str(REPO))
    env = {"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "untouched" in out.stdout


def test_unrelated_import_errors_are_not_swallowed(tmp_path):
    pkg = tmp_path / "torchvision"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise RuntimeError('something else is broken')\n")
    env = {"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin"}
    code = ("import importlib.util; s = importlib.util.spec_from_file_location('c', '"
            f"{REPO}/data/torchvision_compat.py'); "
            "s.loader.exec_module(importlib.util.module_from_spec(s)); import torchvision")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode != 0
    assert "something else is broken" in out.stderr
