"""``python -m tools <command> [options]``: the measurement tools, each its own module with its own options
(``python -m tools <command> --help``). Only the named tool is imported, so the list answers at once."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Sequence
from typing import NamedTuple


class Tool(NamedTuple):
    module: str
    help: str


# The commands, in the order the list shows them: the paper tables' tools first, then the models' and the decoder's.
COMMANDS = {
    "smoke": Tool("tools.smoke.sweep", "every run of tables at paper scale, a few optimizer steps each, on generated "
                                       "data of the datasets' shape: pass or the first error, rates, memory"),
    "loader-rate": Tool("tools.loader_rate", "clips/s one loader process reads on each training data path of "
                                             "tables, at paper shape, no model"),
    "bench": Tool("tools.bench", "per row of a table: parameters, GFLOPs per view, training and inference clips/s, "
                                 "peak memory on this machine's device"),
    "trajectory-attention": Tool("tools.trajectory_attention", "time and peak memory of one trajectory attention "
                                                               "layer (or block) in four formulations"),
    "trajectory-memory": Tool("tools.trajectory_memory", "memory against the token count of one trajectory "
                                                         "attention layer: exact against its approximations"),
    "trajectory-step": Tool("tools.trajectory_step", "training-step time of ViT-B at the paper's shape: trajectory "
                                                     "attention's variants against joint attention"),
    "memory-breakdown": Tool("tools.memory_breakdown", "where the bytes of one training step go, by module, op "
                                                       "and shape"),
    "shift-family": Tool("tools.shift_family", "time and memory of the shift family against the frame-wise ViT "
                                               "(--record FILE: the README's records)"),
    "cast-complexity": Tool("tools.cast_complexity", "CAST's learnable parameters and GFLOPs at paper scale, and its "
                                                     "training cost with frozen experts against all trainable"),
    "paper-step": Tool("tools.paper_step", "each paper's training step and peak memory, ours against the authors' "
                                           "code (a checkout of theirs given), side by side"),
    "d3da-step": Tool("tools.d3da_step", "training-step time and memory of the RGB+pose model"),
    "decoding": Tool("tools.decoding", "clips/s of our video decoding against pytorchvideo's on the same files"),
    "power-rule": Tool("tools.power_rule", "the tiny design's power rule from the tracked records: each stand-in's "
                                           "test-set size, each table's seeds, power and cost"),
    "signal-stress": Tool("tools.signal_stress", "seconds `experiments run` takes to end after a SIGINT, over "
                                                 "many repetitions beside a busy core"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [textwrap.fill(tool.help, 100, initial_indent=f"  {name:<{width}}  ", subsequent_indent=" " * (width + 4))
             for name, tool in COMMANDS.items()]
    return "\n".join(["usage: python -m tools <command> [options]", "",
                      "The measurement tools; `python -m tools <command> --help` lists a tool's options.", "",
                      "commands:", *lines])


def main(argv: Sequence[str] | None = None) -> int:
    """Run one tool; its exit status (``experiments.harness.cli.exit_status``: an error that names what is wrong is
    one line and exit status 2)."""
    from experiments.harness.cli import exit_status

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, options = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: no tool {name!r}; the tools: {', '.join(COMMANDS)} (`python -m tools --help`)",
              file=sys.stderr)
        return 2
    tool = importlib.import_module(COMMANDS[name].module)
    shown, sys.argv[0] = sys.argv[0], f"python -m tools {name}"  # the name its parser shows in usage and errors
    try:
        return exit_status(lambda: _status(tool.main(options)))
    finally:
        sys.argv[0] = shown


def _status(returned: object) -> int:
    """A tool's ``main`` returns its exit status, or its results (then 0)."""
    return returned if isinstance(returned, int) else 0


if __name__ == "__main__":
    sys.exit(main())
