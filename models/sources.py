"""Pretrained sources checked by name before anything trains (``--dry-run``): a local file that does not exist, a
TorchScript archive named without the ``torchscript:`` opt-in, or a model timm does not have is refused here,
whichever loader would read it later."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from .cast.checkpoints import EXPERT_SOURCE_KINDS
from .released.mformer import OFFICIAL_PREFIX
from .torchscript_weights import is_torchscript_archive
from .weights import TORCHSCRIPT_PREFIX, CheckpointError, UnsafeCheckpointError, check_timm_name, torchscript_refusal


def check_source(source: str, allow_torchscript: bool = False, other_kinds: Collection[str] = ("run",)) -> None:
    """Refuse, by name, a pretrained source that names a local file which does not exist or is a TorchScript archive
    without the opt-in, or a model timm does not have, before anything trains (``--dry-run``). ``kind:`` prefixes
    (``official:``, CAST's ``clip:``, ``torchscript:``...) are looked through; ``run:`` sources are checked by the
    experiments floor (``experiments.harness.run_sources``), registered sources when their run starts: their kinds
    are ``other_kinds``, and a ``kind:`` prefix that is none of these (a misspelt ``timmm:``) is refused unless it is
    a file's name."""
    kind, _, rest = source.partition(":")
    if kind == "timm":
        check_timm_name(rest)
    elif kind == TORCHSCRIPT_PREFIX.removesuffix(":"):
        check_source(rest, allow_torchscript=True)
    elif kind == OFFICIAL_PREFIX.removesuffix(":") or kind in EXPERT_SOURCE_KINDS:
        check_source(rest, allow_torchscript)
    elif rest and len(kind) > 1 and kind not in other_kinds and not Path(source).exists():
        known = ["timm", TORCHSCRIPT_PREFIX.removesuffix(":"), OFFICIAL_PREFIX.removesuffix(":"),
                 *EXPERT_SOURCE_KINDS, *other_kinds]
        raise CheckpointError(f"pretrained source {source!r}: no source kind {kind!r} (known: "
                              f"{', '.join(sorted(set(known)))}) and no such file")
    elif not rest or len(kind) == 1:  # a plain path (a one-letter "kind" is a Windows drive)
        if not Path(source).is_file():
            raise CheckpointError(f"pretrained checkpoint {source} does not exist")
        if not allow_torchscript and is_torchscript_archive(source):
            raise UnsafeCheckpointError(f"pretrained checkpoint {torchscript_refusal(source)}")
