"""Supervised local serving: `bentoml serve` as a background process that outlives the apply.

The server runs in its own session (process group) so that neither a Ctrl-C in the terminal that ran
the apply nor the end of the apply stops it, and it does **not** carry the run's mark (MLSPEC_RUN,
MLSPEC_STEP): the run after a killed apply stops what carries a dead run's mark, and a Service must
survive that. What mlspec needs to find it again is a small file beside its log under
`.mlspec/serving/<name>/`: pid, port, URL, the bento it serves, the command. `bentoml serve` binds
0.0.0.0:3000 unless told: the host is always passed.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlspec.sdk import StepFailed, processes

LOG_TAIL = 30
STOP_GRACE_S = 10.0
RUN_MARKS = (processes.RUN_MARK, processes.STEP_MARK)


class ServeFailed(StepFailed):
    """The server did not come up (port taken, a crash at startup, no /readyz in time)."""


@dataclass(frozen=True)
class Running:
    pid: int
    host: str
    port: int
    bento: str
    log: str
    command: list[str]
    started_at: float

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "url": self.url}


def directory(workdir: Path, name: str) -> Path:
    return workdir / ".mlspec" / "serving" / name


def port_holder(host: str, port: int) -> str | None:
    """Who holds host:port, or None when it is free: `pid 4242 (python -m http.server)` when we can tell."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
            return None
        except OSError:
            pass
    return _holder_from_proc(port) or "another process"


def _holder_from_proc(port: int) -> str | None:
    """Linux: the socket inode listening on `port`, then the process whose fd points at it."""
    try:
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError), open(table) as rows:
                for row in list(rows)[1:]:
                    parts = row.split()
                    if int(parts[1].rsplit(":", 1)[1], 16) == port and parts[3] == "0A":  # LISTEN
                        inodes.add(parts[9])
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
            with contextlib.suppress(OSError):
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                        return f"pid {pid} ({command[:80]})"
    except OSError:
        return None
    return None


def start(workdir: Path, name: str, bento: str, host: str, port: int, env: Mapping[str, str], *,
          timeout_s: float, health: str = "/readyz", log: Callable[[str], None] = print,
          command: list[str] | None = None, label: str = "server") -> Running:
    """Start a server in the background (the bento's, or `command`) and wait until `health` answers 200.
    `label` names its files: `<label>.json` (what it is) and `<label>.log`."""
    holder = port_holder(host, port)
    if holder is not None:
        raise ServeFailed(f"port {port} on {host} is in use by {holder}: stop it, or set `port:` in the spec")
    place = directory(workdir, name)
    place.mkdir(parents=True, exist_ok=True)
    log_path = place / f"{label}.log"
    command = command or [sys.executable, "-m", "bentoml", "serve", bento, "--host", host, "--port", str(port)]
    process = processes.daemon(command, place, env, log_path)
    running = Running(process.pid, host, port, bento, str(log_path), command, time.time())
    (place / f"{label}.json").write_text(json.dumps(running.to_json(), indent=2))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServeFailed(f"the server exited at startup (code {process.returncode}); its log ends:\n"
                              + tail(log_path))
        if processes.answers(running.url + health):
            log(f"serving {bento} at {running.url} (pid {process.pid})")
            return running
        time.sleep(0.25)
    stop(running.pid)
    raise ServeFailed(f"the server did not answer {health} within {timeout_s:g}s (health.timeout_s); its log ends:\n"
                      + tail(log_path))


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel has free now, for a backend behind the router (only the router's port is the spec's)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def ours(workdir: Path, name: str, pid: int) -> bool:
    """Is `pid` a process mlspec started for this Service (its record is here), not a recycled pid?"""
    for record in directory(workdir, name).glob("*.json"):
        try:
            if int(json.loads(record.read_text()).get("pid") or 0) == pid:
                return True
        except (OSError, ValueError, AttributeError):
            continue
    return False


def stop(pid: int, grace_s: float = STOP_GRACE_S) -> bool:
    """SIGTERM to the server's process group and its children, SIGKILL after the grace period."""
    if not processes.alive(pid):
        return False
    processes.stop({pid} | processes.descendants(pid), grace_s)
    return True


def tail(path: Path, lines: int = LOG_TAIL) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return "  (no log)"
    return "\n".join(f"  │ {line}" for line in text)
