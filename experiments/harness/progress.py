"""How far a table's runs are, and when they will end: the line ``run`` prints after each run.

The ETA scales what each remaining run took when its tracked record was trained (``expected``, seconds; the
caller reads them) by how much faster or slower this machine has been on the runs it finished, so rows of unequal
cost (trajectory attention takes about twice joint attention's time) are counted as such from the first run on.
Without an expected time for a run, the mean of the runs finished here stands in for it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


def duration(seconds: float) -> str:
    """45s, 3m05s, 1h02m."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@dataclass
class TableProgress:
    """Runs told so far out of ``total``. ``to_train``: each run that will train or test here (by its directory), in
    the order they start, with its expected seconds (None: unknown), ``jobs`` at a time. ``start``: when training
    began (data generation and static columns before it are not counted)."""

    total: int
    to_train: dict[str, float | None]
    jobs: int = 1
    start: float = field(default_factory=time.perf_counter)
    told: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # the runs trained here: their time
    ended: dict[str, float] = field(default_factory=dict)  # ... and when they ended, in seconds since start

    def finished(self, run: str | None = None, seconds: float | None = None) -> str:
        """Count one run; ``seconds``: its time here when it trained (``run`` names it), else None."""
        self.told += 1
        if seconds is not None and run is not None:
            self.seconds[str(run)] = seconds
            self.ended[str(run)] = time.perf_counter() - self.start
        return self.line()

    def skipped(self, run: str | None = None) -> None:
        """Count one run that will not train here (``run``: one this table expected to train)."""
        self.told += 1
        self.to_train.pop(str(run), None)

    def line(self) -> str:
        elapsed = time.perf_counter() - self.start
        text = f"{self.told}/{self.total} runs, {duration(elapsed)} elapsed"
        eta = self.eta(elapsed)
        return text if eta is None else f"{text}, ETA {duration(eta)} if the rest train"

    def eta(self, elapsed: float) -> float | None:
        """Seconds left, by replaying the schedule: ``jobs`` workers take the runs in order; a finished run ends when
        it ended, a run not finished after its expected time scaled to this machine (and not before now); None
        before any run trained here (nothing to scale by) or when every run is told."""
        if not self.seconds or self.told >= self.total:
            return None
        scaled = [(self.seconds[run], expected) for run, expected in self.to_train.items()
                  if expected and run in self.seconds]
        speed = sum(s for s, _ in scaled) / sum(e for _, e in scaled) if scaled else None
        mean = sum(self.seconds.values()) / len(self.seconds)
        free = [0.0] * self.jobs  # when each worker is next free, in seconds since start
        for run, expected in self.to_train.items():
            worker = min(range(self.jobs), key=free.__getitem__)
            begin = free[worker]
            if run in self.ended:
                free[worker] = self.ended[run]
            else:
                guess = expected * speed if expected and speed else mean
                free[worker] = begin + max(guess, elapsed - begin)
        return max(0.0, max(free) - elapsed)
