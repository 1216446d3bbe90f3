"""The servers mlspec supervises on this machine, by hand: `mlspec serve status|logs|stop|start`.

Kind-agnostic: any resource whose outputs name a supervised server (ServiceOutputs with a pid, its
log and command) is one. Status asks the process and the server (`/livez`, `/readyz`); stop ends the
server's process tree; start runs the recorded command again, detached, and records the new pid in
state under the lock (audited), so the next plan sees the server it started.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlspec.errors import ServeError as NotServed
from mlspec.sdk import processes
from mlspec.sdk.outputs import ServiceOutputs
from mlspec.state.model import ResourceState


@dataclass(frozen=True)
class Server:
    address: str
    url: str
    pid: int | None
    running: bool
    live: bool
    ready: bool
    bento: str
    log: str

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "url": self.url, "pid": self.pid, "running": self.running,
                "live": self.live, "ready": self.ready, "bento": self.bento, "log": self.log}


def served(entries: list[ResourceState]) -> dict[str, ServiceOutputs]:
    """The state entries that name a supervised server, by address."""
    out: dict[str, ServiceOutputs] = {}
    for entry in entries:
        if entry.outputs.get("pid") and entry.outputs.get("url"):
            try:
                out[entry.address] = ServiceOutputs.model_validate(entry.outputs)
            except ValueError:
                continue
    return out


def status(entries: list[ResourceState], address: str | None = None) -> list[Server]:
    found = served(entries)
    if address is not None:
        found = {address: _one(found, address)}
    return [_status(a, o) for a, o in sorted(found.items())]


def _status(address: str, outputs: ServiceOutputs) -> Server:
    running = bool(outputs.pid) and processes.alive(int(outputs.pid or 0))
    return Server(address, outputs.url, outputs.pid, running, running and answers(outputs.url + "/livez"),
                  running and answers(outputs.url + "/readyz"), outputs.bento, outputs.log)


def _one(found: dict[str, ServiceOutputs], address: str) -> ServiceOutputs:
    if address not in found:
        from mlspec.spec.suggest import did_you_mean

        hint = did_you_mean(address, list(found))
        raise NotServed(f"{address} has no server mlspec started here"
                        + (f"; {hint}" if hint else f" (serving: {', '.join(found) or 'nothing'})"))
    return found[address]


def answers(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def logs(entries: list[ResourceState], address: str, lines: int = 50) -> list[str]:
    outputs = _one(served(entries), address)
    try:
        return Path(outputs.log).read_text(errors="replace").splitlines()[-lines:]
    except OSError as err:
        raise NotServed(f"{address}: its log {outputs.log} cannot be read: {err.strerror}") from None


def stop(entries: list[ResourceState], address: str) -> bool:
    """Stop the server; True when it was running. State keeps it: the next plan says it is down."""
    outputs = _one(served(entries), address)
    pid = int(outputs.pid or 0)
    if not processes.alive(pid):
        return False
    processes.stop({pid} | processes.descendants(pid), 10.0)
    return True


def start(current: ResourceState, timeout_s: float = 60.0) -> ResourceState:
    """Run the recorded command again (detached, in its own session, without any run's mark) and wait
    for /readyz; the entry to commit, with the new pid."""
    outputs = ServiceOutputs.model_validate(current.outputs)
    if outputs.pid and processes.alive(int(outputs.pid)):
        raise NotServed(f"{current.address} is running already (pid {outputs.pid}); `mlspec serve stop` it first")
    if not outputs.command:
        raise NotServed(f"{current.address}: state records no command to start it with; run `mlspec apply`")
    log = Path(outputs.log)
    env = {k: v for k, v in {**os.environ, **outputs.env}.items() if k not in (processes.RUN_MARK, processes.STEP_MARK)}
    with open(log, "ab") as sink:
        process = subprocess.Popen(outputs.command, cwd=log.parent, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NotServed(f"{current.address}: the server exited at startup (code {process.returncode}); "
                            f"`mlspec serve logs {current.address}`")
        if answers(outputs.url + "/readyz"):
            break
        time.sleep(0.25)
    else:
        processes.stop({process.pid}, 5.0)
        raise NotServed(f"{current.address}: the server did not answer /readyz within {timeout_s:g}s")
    _record_pid(log.parent / "server.json", process.pid)
    from mlspec.state.model import now

    return ResourceState(current.address, current.fingerprint, current.spec, {**current.outputs, "pid": process.pid},
                         current.status, current.created_at, now(), current.commit)


def start_recorded(address: str, *, lock_timeout: float = 0.0, root: Path | None = None) -> ResourceState:
    """`mlspec serve start`: under the lock, start the server and record its pid (audited)."""
    from mlspec.engine.session import record_edit, writing_state
    from mlspec.project import load_project

    project = load_project(root)
    with writing_state(project) as store, store.lock("serve start", timeout=lock_timeout):
        current = store.get(address)
        if current is None or address not in served([current]):
            _one(served(store.list()), address)  # names what is served, with did-you-mean
            raise NotServed(f"{address} has no server mlspec started here")
        started = start(current)
        store.commit(started)
        record_edit(store, project.root, "serve.start", {"address": address, "pid": started.outputs["pid"]})
    return started


def _record_pid(path: Path, pid: int) -> None:
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    path.write_text(json.dumps({**data, "pid": pid}, indent=2))
