"""The servers mlspec supervises on this machine, by hand: `mlspec serve status|logs|stop|start`.

Kind-agnostic: any resource whose outputs name a supervised server (ServiceOutputs with a pid, its
log and command) is one. Status asks the process and the server (`/livez`, `/readyz`); stop ends the
server's process tree; start runs the recorded command again, detached, and records the new pid in
state under the lock (audited), so the next plan sees the server it started.
"""

from __future__ import annotations

import time
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


def _pids(outputs: ServiceOutputs) -> list[int]:
    """Every process of the server (a router and its backend), or the one pid."""
    listed = [int(p.get("pid") or 0) for p in getattr(outputs, "processes", None) or () if isinstance(p, dict)]
    return [p for p in listed if p] or ([int(outputs.pid)] if outputs.pid else [])


def _status(address: str, outputs: ServiceOutputs) -> Server:
    running = bool(_pids(outputs)) and all(processes.alive(p) for p in _pids(outputs))
    return Server(address, outputs.url, outputs.pid, running, running and processes.answers(outputs.url + "/livez"),
                  running and processes.answers(outputs.url + "/readyz"), outputs.bento, outputs.log)


def _one(found: dict[str, ServiceOutputs], address: str) -> ServiceOutputs:
    if address not in found:
        from mlspec.spec.suggest import did_you_mean

        hint = did_you_mean(address, list(found))
        raise NotServed(f"{address} has no server mlspec started here"
                        + (f"; {hint}" if hint else f" (serving: {', '.join(found) or 'nothing'})"))
    return found[address]


def logs(entries: list[ResourceState], address: str, lines: int = 50) -> list[str]:
    outputs = _one(served(entries), address)
    try:
        return Path(outputs.log).read_text(errors="replace").splitlines()[-lines:]
    except OSError as err:
        raise NotServed(f"{address}: its log {outputs.log} cannot be read: {err.strerror}") from None


def stop(entries: list[ResourceState], address: str) -> bool:
    """Stop the server; True when it was running. State keeps it: the next plan says it is down."""
    outputs = _one(served(entries), address)
    running = [p for p in _pids(outputs) if processes.alive(p)]
    for pid in running:
        processes.stop({pid} | processes.descendants(pid), 10.0)
    return bool(running)


def start(current: ResourceState, timeout_s: float = 60.0) -> ResourceState:
    """Run the recorded command again (detached, in its own session, without any run's mark) and wait
    for /readyz; the entry to commit, with the new pid."""
    outputs = ServiceOutputs.model_validate(current.outputs)
    if any(processes.alive(p) for p in _pids(outputs)):
        raise NotServed(f"{current.address} is running already; `mlspec serve stop` it first")
    listed = [p for p in current.outputs.get("processes") or () if isinstance(p, dict) and p.get("command")]
    if not listed and outputs.command:
        listed = [{"role": "server", "pid": outputs.pid, "command": outputs.command, "log": outputs.log}]
    if not listed:
        raise NotServed(f"{current.address}: state records no command to start it with; run `mlspec apply`")
    env = {**outputs.env, **_secrets(current)}
    started: list[dict[str, Any]] = []
    for process in listed:  # in the order the apply started them: backends, then the router
        log = Path(str(process["log"]))
        child = processes.daemon(process["command"], log.parent, env, log)
        started.append({**process, "pid": child.pid})
        _record_pid(log.with_suffix(".json"), child.pid)
    deadline = time.monotonic() + timeout_s
    while not processes.answers(outputs.url + "/readyz"):
        if time.monotonic() > deadline or not all(processes.alive(p["pid"]) for p in started):
            processes.stop({int(p["pid"]) for p in started}, 5.0)
            raise NotServed(f"{current.address}: the server did not come back (no /readyz within {timeout_s:g}s); "
                            f"`mlspec serve logs {current.address}`")
        time.sleep(0.25)
    from mlspec.state.model import now

    roles = {p.get("role"): p for p in started}
    changed = {**current.outputs, "processes": started, "pid": started[-1]["pid"],
               **{role: {**(current.outputs.get(role) or {}), "pid": roles[role]["pid"]}
                  for role in ("router", "backend") if role in roles}}
    return ResourceState(current.address, current.fingerprint, current.spec, changed, current.status,
                         current.created_at, now(), current.commit)


def _secrets(current: ResourceState) -> dict[str, str]:
    """The spec's `env` entries that name `${env:…}`: never recorded with the server (state keeps no
    secret), so resolved again from this environment; a variable that is not set is named."""
    import os

    from mlspec.masking import ENV_REF

    wanted = ((current.spec.get("spec") or {}).get("env") or {}) if isinstance(current.spec, dict) else {}
    found: dict[str, str] = {}
    for key, value in wanted.items():
        names = ENV_REF.findall(str(value))
        if not names:
            continue
        missing = [n for n in names if n not in os.environ]
        if missing:
            raise NotServed(f"{current.address}: spec.env.{key} names ${{env:{missing[0]}}}, which is not set here; "
                            "set it and start again")
        found[str(key)] = ENV_REF.sub(lambda m: os.environ[m.group(1)], str(value))
    return found


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
        record_edit(store, project.root, "serve.start", {"address": address,
                                                         "pids": [p["pid"] for p in started.outputs["processes"]]})
    return started


def _record_pid(path: Path, pid: int) -> None:
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    path.write_text(json.dumps({**data, "pid": pid}, indent=2))
