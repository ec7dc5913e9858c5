"""A checkpoint's header is bounded before anything of it is read: a file whose header (the pickle that lists its
tensors) is over ``models.weights.MAX_HEADER_BYTES`` or declares more than ``MAX_TENSORS`` tensors is refused in one
line naming it, by every reader of weights files (``load_weights_file``, Lightning's checkpoint input through
``SafeCheckpointIO``, a TorchScript archive's tensors), before torch unpickles or allocates anything."""

from __future__ import annotations

import zipfile

import pytest
import torch

from lightning_modules.checkpoint_io import SafeCheckpointIO
from models import weights
from models.weights import MAX_HEADER_BYTES, MAX_TENSORS, CheckpointError, load_weights_file


@pytest.fixture
def nothing_read(monkeypatch):
    """Fail the test if torch (or the TorchScript reader) is asked to read the file."""
    def read(*args, **kwargs):
        raise AssertionError("the checkpoint was read past its header")

    monkeypatch.setattr(weights, "_torch_load", read)
    monkeypatch.setattr(weights, "read_torchscript_tensors", read)


def _zip(path, header: bytes, size: int | None = None):
    """A file in torch's zip layout whose ``data.pkl`` is ``header`` (compressed: the file stays small)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", header)
        archive.writestr("archive/version", "3\n")
    return path


def _refused(path, named, read=load_weights_file):
    with pytest.raises(CheckpointError) as refused:
        read(path)
    message = str(refused.value)
    assert "\n" not in message and str(path) in message and named in message, message


def test_the_bounds_leave_room_for_every_real_checkpoint():
    assert MAX_HEADER_BYTES >= 2**20 and MAX_TENSORS >= 10_000


def test_a_header_over_its_size_bound_is_refused_before_it_is_read(tmp_path, nothing_read):
    path = _zip(tmp_path / "big_header.ckpt", b"\x80\x02N" + b"\x00" * MAX_HEADER_BYTES)
    assert path.stat().st_size < 2**20  # what the file declares, not what it is
    _refused(path, f"its header archive/data.pkl is {MAX_HEADER_BYTES + 3:,} bytes")


def test_a_header_that_declares_too_many_tensors_is_refused_before_one_is_built(tmp_path, nothing_read):
    # a list of MAX_TENSORS + 1 persistent references (each a tensor to rebuild)
    path = _zip(tmp_path / "many.ckpt", b"\x80\x02(" + b"NQ" * (MAX_TENSORS + 1) + b"l.")
    _refused(path, f"declares more than {MAX_TENSORS:,} tensors")


@pytest.mark.parametrize("zip_format", [True, False])
def test_each_format_of_torch_save_is_bounded(tmp_path, monkeypatch, zip_format):
    path = tmp_path / "state.pt"
    torch.save({f"w{k}": torch.zeros(2) for k in range(12)}, path, _use_new_zipfile_serialization=zip_format)
    assert set(load_weights_file(path)) == {f"w{k}" for k in range(12)}  # within the bounds: read as before
    monkeypatch.setattr(weights, "MAX_TENSORS", 11)
    _refused(path, "declares more than 11 tensors")
    monkeypatch.setattr(weights, "MAX_TENSORS", 12)
    load_weights_file(path)
    monkeypatch.setattr(weights, "MAX_HEADER_BYTES", 100)
    _refused(path, "its header")


def test_lightning_reads_a_run_checkpoint_through_the_same_bound(tmp_path, nothing_read):
    path = _zip(tmp_path / "last.ckpt", b"\x80\x02(" + b"NQ" * (MAX_TENSORS + 1) + b"l.")
    _refused(path, "tensors", read=SafeCheckpointIO().load_checkpoint)


def test_a_torchscript_archive_is_bounded_before_its_tensors_are_read(tmp_path, monkeypatch, nothing_read):
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Sequential(*[torch.nn.Linear(2, 2) for _ in range(6)])), path)
    monkeypatch.setattr(weights, "MAX_TENSORS", 5)
    _refused(path, "declares more than 5 tensors", read=lambda p: load_weights_file(p, allow_torchscript=True))
