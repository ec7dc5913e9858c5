"""The subcommands of ``python -m experiments`` that are defined beside what they run, in a paper's folder (CAST's
``pretrain-experts``, ``probe-experts``) or in the stand-in pretraining (``pretrain-images``): each module registers
the function that adds its parser, so that the command line names no paper and a new paper's command needs no edit
here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

AddParser = Callable[[Any], None]  # takes argparse's subparsers; sets ``fn`` on the parser it adds
_COMMANDS: list[AddParser] = []


def register_command(add_parser: AddParser) -> AddParser:
    """Decorator: ``add_parser(sub)`` adds one subcommand to ``python -m experiments``."""
    _COMMANDS.append(add_parser)
    return add_parser


def registered_commands() -> tuple[AddParser, ...]:
    return tuple(_COMMANDS)
