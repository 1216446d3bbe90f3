"""Processes a step starts, found and stopped as a whole, whatever they do.

A command can fork, call `setsid()` to leave its process group, and keep its output open: killing
its group then misses the grandchild, and waiting for end-of-file on a pipe waits forever. So every
process a plugin starts carries two marks in its environment, which its descendants inherit even
across `setsid()`: `MLSPEC_RUN` (the apply that started it) and `MLSPEC_STEP` (the step). Stopping
a step stops every process that carries its mark, every descendant of its command, and their
process groups: SIGTERM, a short grace, then SIGKILL. A killed `mlspec apply` cannot stop what it
started; the next apply, taking over the lock of the dead one, stops every process that carries
its run's mark. Output goes to files, never to pipes, so nothing is waited on after a kill.

A server that must outlive the apply is the exception: `daemon` starts it in its own session and
without the marks, and `answers` asks it whether it is up.

Linux reads /proc; elsewhere only the command's process group is stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

RUN_MARK = "MLSPEC_RUN"
STEP_MARK = "MLSPEC_STEP"
GRACE_S = 1.0  # between SIGTERM and SIGKILL: a second Ctrl-C stops an apply within 2 s
PROC = Path("/proc")


def marked(name: str, value: str) -> set[int]:
    """Every process (but this one) whose environment has `name=value`."""
    if not value or not PROC.is_dir():
        return set()
    needle = f"\0{name}={value}\0".encode()
    found = set()
    me = os.getpid()
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone, or not ours to read
        if needle in b"\0" + environ:
            found.add(int(entry.name))
    return found


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (children, grandchildren, ...), from /proc's parent links."""
    if not PROC.is_dir():
        return set()
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running (a zombie has finished: only its parent's wait is missing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def stop(pids: Iterable[int], grace: float = GRACE_S) -> None:
    """SIGTERM each process and its group, wait up to `grace`, then SIGKILL what is left."""
    targets = {p for p in pids if p > 1 and p != os.getpid()}
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in sorted(targets):
            _signal(pid, sig)
        deadline = time.monotonic() + (grace if sig is signal.SIGTERM else 1.0)
        while targets and time.monotonic() < deadline:
            targets = {p for p in targets if alive(p)}
            if targets:
                time.sleep(0.02)
        if not targets:
            return


def stop_step(pid: int, step: str, grace: float = GRACE_S) -> None:
    """A step's command, everything below it, and everything that carries its mark."""
    stop({pid} | descendants(pid) | marked(STEP_MARK, step), grace)


def marks(run: str, step: str) -> dict[str, str]:
    """The environment entries every process of this step must carry."""
    return {RUN_MARK: run, STEP_MARK: step}


def daemon(command: Sequence[str], cwd: Path, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A process that outlives the apply that starts it (a server): its own session, so a Ctrl-C in the
    terminal does not reach it; no run's mark, so the apply after a killed one leaves it be; output
    appended to `log`. `env` is laid over this process's environment."""
    environment = {k: v for k, v in {**os.environ, **env}.items() if k not in (RUN_MARK, STEP_MARK)}
    with open(log, "ab") as sink:
        return subprocess.Popen([str(c) for c in command], cwd=cwd, env=environment, stdout=sink,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def answers(url: str, timeout: float = 2.0) -> bool:
    """Does the server at `url` answer 200 (a health check: `/readyz`, `/livez`)?"""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _signal(pid: int, sig: signal.Signals) -> None:
    own_group = os.getpgrp()
    try:
        group = os.getpgid(pid)
    except ProcessLookupError:
        return
    if group != own_group and group > 1:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, sig)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)

