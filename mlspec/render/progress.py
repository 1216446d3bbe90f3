"""What `mlspec apply` shows while it works: a rich progress bar on a terminal, plain lines elsewhere.

Plain lines (CI logs, pipes) carry the same events, one per line, so a log read later says what
happened in what order. Step logs from plugins are printed above the bar, prefixed by the address.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from mlspec.plan.model import Step

VERBS = {"create": "creating", "update": "updating", "replace": "replacing", "delete": "deleting", "read": "reading"}


class ApplyProgress:
    """A Reporter (mlspec/engine/reporter.py). The bar starts with the first step, not before: the
    plan is printed and, on a terminal, confirmed first. `expect(total)` says how many steps come."""

    def __init__(self, total: int = 0, *, fancy: bool | None = None, quiet: bool = False) -> None:
        self.total = total
        self.quiet = quiet
        self.fancy = (sys.stderr.isatty() if fancy is None else fancy) and not quiet
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> ApplyProgress:
        return self

    def expect(self, total: int) -> None:
        self.total = total
        if self._progress is not None:
            self._progress.update(self._task, total=total)

    def _start(self) -> None:
        if self.fancy and self._progress is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.fields[what]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TimeRemainingColumn(), TextColumn("{task.description}"), console=Console(stderr=True),
                transient=True,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("", total=self.total or None, what="apply")

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.__exit__(kind, err, tb)

    def meter(self, address: str) -> Callable[[int, int, str], None]:
        """A step's own bar (training: loss, samples/s, ETA) under the apply's, while it runs."""
        task: list[Any] = []

        def update(done: int, total: int, detail: str) -> None:
            self._start()
            if self._progress is None:
                return  # plain output: the plugin's log lines say the same every tenth of the way
            with self._lock:
                if not task:
                    task.append(self._progress.add_task(detail, total=total, what=f"  {address}"))
                self._progress.update(task[0], completed=done, total=total, description=detail)
                if done >= total:
                    self._progress.remove_task(task[0])
                    task.clear()

        return update

    def log(self, line: str) -> None:
        if self.quiet:
            return
        with self._lock:
            if self._progress is not None:
                self._progress.console.print(line, markup=False, highlight=False)
            else:  # not click.echo: it asks isatty() on every call, which adds up over 10,000 steps
                sys.stderr.write(line + "\n")
                sys.stderr.flush()

    def event(self, event: str, step: Step, detail: str) -> None:
        self._start()
        now = time.monotonic()
        if event == "started":
            self._started[step.address] = now
            line = f"{step.address}: {VERBS.get(step.action.value, step.action.value)}…"
        elif event == "done":
            took = now - self._started.get(step.address, now)
            line = f"{step.address}: {step.action.past} ({took:.1f}s)"
        elif event == "held":
            took = now - self._started.get(step.address, now)
            line = f"{step.address}: {step.action.past} ({took:.1f}s), held: {detail}"
        elif event == "withheld":
            line = f"{step.address}: withheld ({detail})"
        elif event == "failed":
            line = f"{step.address}: FAILED: {detail}"
        elif event == "interrupted":
            line = f"{step.address}: interrupted"
        elif event == "cutoff":
            line = f"{step.address}: cut off, kept as it was ({detail})"
        else:
            line = f"{step.address}: skipped ({detail})"
        if self._progress is not None:
            if event != "started":
                self._progress.advance(self._task)
            running = [a for a in self._started if a != step.address or event == "started"]
            self._progress.update(self._task, description=", ".join(running[-3:]))
            if event != "started":  # what ended stays on screen, as Terraform prints it; the bar shows the rest
                self.log(line)
            if event != "started":
                self._started.pop(step.address, None)
        else:
            self.log(line)
