"""Pretrained sources checked by name before anything trains (``--dry-run``): a local file that does not exist or a
model timm does not have is refused here, whichever loader would read it later."""

from __future__ import annotations

from pathlib import Path

from .cast.checkpoints import EXPERT_SOURCE_KINDS
from .mformer_official import OFFICIAL_PREFIX
from .weights import CheckpointError, check_timm_name


def check_source(source: str) -> None:
    """Refuse, by name, a pretrained source that names a local file which does not exist or a model timm does not
    have, before anything trains (``--dry-run``). ``kind:`` prefixes (``official:``, CAST's ``clip:``...) are
    looked through; ``run:`` and registered sources resolve when the run starts, and are checked then."""
    kind, _, rest = source.partition(":")
    if kind == "timm":
        check_timm_name(rest)
    elif kind == OFFICIAL_PREFIX.removesuffix(":") or kind in EXPERT_SOURCE_KINDS:
        check_source(rest)
    elif not rest or len(kind) == 1:  # a plain path (a one-letter "kind" is a Windows drive)
        if not Path(source).is_file():
            raise CheckpointError(f"pretrained checkpoint {source} does not exist")
