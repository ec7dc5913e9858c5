"""Pretrained sources checked by name before anything trains (``--dry-run``): a local file that does not exist, a
TorchScript archive named without the ``torchscript:`` opt-in, or a model timm does not have is refused here,
whichever loader would read it later."""

from __future__ import annotations

from pathlib import Path

from .cast.checkpoints import EXPERT_SOURCE_KINDS
from .released.mformer import OFFICIAL_PREFIX
from .torchscript_weights import is_torchscript_archive
from .weights import (TORCHSCRIPT_PREFIX, CheckpointError, UnsafeCheckpointError, check_timm_name,
                      torchscript_refusal)


def check_source(source: str, allow_torchscript: bool = False) -> None:
    """Refuse, by name, a pretrained source that names a local file which does not exist or is a TorchScript archive
    without the opt-in, or a model timm does not have, before anything trains (``--dry-run``). ``kind:`` prefixes
    (``official:``, CAST's ``clip:``, ``torchscript:``...) are looked through; ``run:`` sources are checked by the
    experiments floor (``experiments.harness.run_sources``), registered sources when their run starts."""
    kind, _, rest = source.partition(":")
    if kind == "timm":
        check_timm_name(rest)
    elif kind == TORCHSCRIPT_PREFIX.removesuffix(":"):
        check_source(rest, allow_torchscript=True)
    elif kind == OFFICIAL_PREFIX.removesuffix(":") or kind in EXPERT_SOURCE_KINDS:
        check_source(rest, allow_torchscript)
    elif not rest or len(kind) == 1:  # a plain path (a one-letter "kind" is a Windows drive)
        if not Path(source).is_file():
            raise CheckpointError(f"pretrained checkpoint {source} does not exist")
        if not allow_torchscript and is_torchscript_archive(source):
            raise UnsafeCheckpointError(f"pretrained checkpoint {torchscript_refusal(source)}")
