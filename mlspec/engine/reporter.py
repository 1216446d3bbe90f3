"""One interface for everything an apply tells the world while it works: step events, plugins' log
lines, and per-step meters. The CLI's is a rich progress bar (mlspec/render/progress.py); a library
caller passes its own, or gets `QuietReporter`, which keeps the lines and draws nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mlspec.plan.model import Step

Meter = Callable[[int, int, str], None]

# The events, in the order a step can go through them.
EVENTS = ("started", "done", "held", "cutoff", "withheld", "skipped", "failed", "interrupted")


class Reporter(Protocol):
    def event(self, kind: str, step: Step, detail: str) -> None:
        """`kind` is one of EVENTS; `detail` says why (an error, a held reason, what was cut off)."""
        ...

    def log(self, line: str) -> None:
        """A line a plugin logged, already prefixed with its address; secrets already masked."""
        ...

    def meter(self, address: str) -> Meter | None:
        """A progress callback (done, total, note) for one long step, or None to draw none."""
        ...


class QuietReporter:
    """Draws nothing; keeps what it was told, for callers that read it afterwards (and tests)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []
        self.lines: list[str] = []

    def event(self, kind: str, step: Step, detail: str) -> None:
        self.events.append((kind, step.address, detail))

    def log(self, line: str) -> None:
        self.lines.append(line)

    def meter(self, address: str) -> Meter | None:
        return None
