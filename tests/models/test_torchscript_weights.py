"""A TorchScript archive's tensors are read without running anything it holds: not its code, not its
``__setstate__``, not a global its pickle names."""

from __future__ import annotations

import pickle
import zipfile

import pytest
import torch
from torch import nn

from models.torchscript_weights import TorchScriptReadError, is_torchscript_archive, read_torchscript_tensors


class Inner(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = Inner()
        self.blocks = nn.ModuleList([Inner(), Inner()])
        self.scale = nn.Parameter(torch.linspace(0, 1, 2, dtype=torch.float64))
        self.register_buffer("steps", torch.arange(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.inner(x)
        for block in self.blocks:
            y = y + block(x)
        return y * self.scale.float().sum()


class Crafted(nn.Module):
    """Its __setstate__ is code the archive carries: torch.jit.load runs it."""

    def __init__(self):
        super().__init__()
        self.register_buffer("b", torch.arange(4.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b.sum()

    @torch.jit.export
    def __getstate__(self):
        return (self.b, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, bool]):
        print("THE ARCHIVE'S CODE RAN")
        self.b = state[0]
        self.training = state[1]


@pytest.fixture
def no_jit_load(monkeypatch):
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: pytest.fail("torch.jit.load ran the archive's code"))


def test_every_tensor_is_read_by_its_state_dict_name(tmp_path, no_jit_load):
    model = torch.jit.script(Plain())
    model.save(str(tmp_path / "plain.pt"))
    assert is_torchscript_archive(tmp_path / "plain.pt")
    tensors = read_torchscript_tensors(tmp_path / "plain.pt")
    expected = model.state_dict()
    assert sorted(tensors) == sorted(expected)
    for name, value in expected.items():
        assert tensors[name].dtype == value.dtype and torch.equal(tensors[name], value), name


def test_an_archive_with_its_own_setstate_is_refused_and_its_code_never_runs(tmp_path, capfd, no_jit_load):
    torch.jit.script(Crafted()).save(str(tmp_path / "crafted.pt"))
    capfd.readouterr()
    with pytest.raises(TorchScriptReadError, match="keeps its state through its own __setstate__ code"):
        read_torchscript_tensors(tmp_path / "crafted.pt")
    assert "CODE RAN" not in capfd.readouterr().out


def test_a_pickle_naming_any_other_global_is_refused_before_anything_runs(tmp_path, no_jit_load):
    torch.jit.script(Plain()).save(str(tmp_path / "plain.pt"))
    marker = tmp_path / "written-by-the-archive"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with zipfile.ZipFile(tmp_path / "plain.pt") as source, zipfile.ZipFile(tmp_path / "evil.pt", "w") as target:
        for item in source.infolist():
            data = source.read(item)
            target.writestr(item, pickle.dumps(Payload(), protocol=2) if item.filename.endswith("/data.pkl")
                            else data)
    with pytest.raises(TorchScriptReadError, match=r"names io\.open, which a weights file has no use for"):
        read_torchscript_tensors(tmp_path / "evil.pt")
    assert not marker.exists()


def test_a_plain_checkpoint_is_no_torchscript_archive(tmp_path):
    torch.save({"w": torch.ones(1)}, tmp_path / "plain.pth")
    assert not is_torchscript_archive(tmp_path / "plain.pth")
    assert not is_torchscript_archive(tmp_path / "absent.pt")


class TypedState(nn.Module):
    """Its state is a typed ``Dict[str, Tensor]``, which TorchScript's pickler wraps in ``restore_type_tag``."""

    def __init__(self):
        super().__init__()
        self.weights = {"blocks.0.w": torch.arange(3.0), "cls_token": torch.ones(1, 1, 2)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    @torch.jit.export
    def __getstate__(self) -> dict[str, torch.Tensor]:
        return self.weights

    @torch.jit.export
    def __setstate__(self, state: dict[str, torch.Tensor]) -> None:
        print("THE ARCHIVE'S CODE RAN")
        self.weights = state
        self.training = False


def test_a_typed_dict_state_is_read_by_its_keys_without_its_setstate(tmp_path, capfd, no_jit_load):
    torch.jit.script(TypedState()).save(str(tmp_path / "typed.pt"))
    capfd.readouterr()
    tensors = read_torchscript_tensors(tmp_path / "typed.pt")
    assert sorted(tensors) == ["blocks.0.w", "cls_token"] and torch.equal(tensors["blocks.0.w"], torch.arange(3.0))
    assert "CODE RAN" not in capfd.readouterr().out


def test_any_zip_holding_constants_pkl_is_an_archive_as_torch_load_sees_it(tmp_path):
    """``torch.load`` hands such a zip to ``torch.jit.load`` whether or not it holds code: so must the check."""
    with zipfile.ZipFile(tmp_path / "bare.pt", "w") as archive:
        archive.writestr("bare/constants.pkl", pickle.dumps((), protocol=2))
        archive.writestr("bare/data.pkl", pickle.dumps({}, protocol=2))
    assert is_torchscript_archive(tmp_path / "bare.pt")
