"""A new version beside the old one, behind the router, then all traffic on it: create before destroy.

The Service's port belongs to the router (router.py); versions are backends on loopback ports. A
rollout starts the new backend, waits for its health check, then moves traffic: at once (`recreate`),
or in Argo Rollouts' manner (`canary`: setWeight to `traffic`, pause `duration_s` while its health
and error rate are watched, then 100%). A failure puts all traffic back on the stable backend, stops
the new one and fails the step with the reason; the old version never stopped serving. The old
backend is stopped only once the router no longer sends it anything.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlspec.sdk import StepFailed, processes
from mlspec_serve import supervise
from mlspec_serve.router import ADMIN, write_routes

LOOPBACK = "127.0.0.1"
DRAIN_S = 1.0  # the router re-reads its routes every 0.2 s; requests in flight finish within this
HISTORY = 10  # bentos remembered for `mlspec rollback`


@dataclass(frozen=True)
class Live:
    router: supervise.Running
    backend: supervise.Running


def roll_out(workdir: Path, name: str, spec: Any, bento: str, env: Mapping[str, str],
             log: Callable[[str], None], *, remember: bool = True) -> Live:
    """What serves now is read from the live world (the router's and backends' records beside the
    routes), not from state: the engine applies a create-before-destroy replace without `previous`."""
    place = supervise.directory(workdir, name)
    place.mkdir(parents=True, exist_ok=True)
    routes = place / "routes.json"
    running_router, stable = live(workdir, name)
    port = supervise.free_port()
    backend = supervise.start(workdir, name, bento, LOOPBACK, port, env, timeout_s=spec.health.timeout_s,
                              health=spec.health.path, log=log, label=f"backend-{port}")
    try:
        router = _router(workdir, name, spec, routes, running_router, backend if stable is None else stable, env, log)
    except supervise.ServeFailed:
        supervise.stop(backend.pid)  # nothing routes to it
        raise
    if stable is None:
        _route(routes, spec, [_weighted(backend, 1.0)])
        return Live(router, backend)
    if spec.rollout.strategy == "canary" and spec.rollout.canary is not None:
        _canary(routes, spec, stable, backend, router, log)
    _route(routes, spec, [_weighted(backend, 1.0)])
    time.sleep(DRAIN_S)
    supervise.stop(stable.pid)
    log(f"all traffic on {backend.bento}; stopped {stable.bento}")
    if remember:
        served = [b for b in history(workdir, name) if b.get("bento") != stable.bento]
        _write_history(workdir, name, [*served, {"bento": stable.bento, **_described(place, stable)}][-HISTORY:])
    return Live(router, backend)


def history(workdir: Path, name: str) -> list[dict[str, Any]]:
    """The bentos that served before the current one, oldest first: what `mlspec rollback` returns to."""
    try:
        found = json.loads((supervise.directory(workdir, name) / "history.json").read_text())
    except (OSError, ValueError):
        return []
    return [b for b in found if isinstance(b, dict) and b.get("bento")]


def _write_history(workdir: Path, name: str, entries: list[dict[str, Any]]) -> None:
    path = supervise.directory(workdir, name) / "history.json"
    tmp = path.with_name(".history.json.tmp")
    tmp.write_text(json.dumps(entries, indent=2))
    tmp.replace(path)


def _described(place: Path, backend: supervise.Running) -> dict[str, Any]:
    """What a bento served (its version line and digest), from the description beside its record."""
    try:
        return dict(json.loads((place / "served.json").read_text()).get(backend.bento) or {})
    except (OSError, ValueError):
        return {}


def describe(workdir: Path, name: str, bento: str, facts: Mapping[str, Any]) -> None:
    """Remember what `bento` serves (version, digest), so a rollback to it can say so."""
    path = supervise.directory(workdir, name) / "served.json"
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    known[bento] = dict(facts)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".served.json.tmp")
    tmp.write_text(json.dumps(known, indent=2))
    tmp.replace(path)


def back(workdir: Path, name: str, spec: Any, env: Mapping[str, str], log: Callable[[str], None]
         ) -> tuple[Live, dict[str, Any]]:
    """Serve the bento that served before this one again (recreate: all traffic once it is healthy)."""
    served = history(workdir, name)
    if not served:
        raise StepFailed("there is no earlier version of it to roll back to")
    previous = served[-1]
    immediate = spec.model_copy(update={"rollout": spec.rollout.model_copy(update={"strategy": "recreate"})})
    found = roll_out(workdir, name, immediate, previous["bento"], env, log, remember=False)
    _write_history(workdir, name, served[:-1])
    return found, previous


def _canary(routes: Path, spec: Any, stable: supervise.Running, new: supervise.Running, router: supervise.Running,
            log: Callable[[str], None]) -> None:
    """The canary's steps in order: each weight moves traffic, each pause watches the new version."""
    canary = spec.rollout.canary
    share = 0.0
    for kind, value in canary.plan():
        if kind == "weight":
            share = value
            _route(routes, spec, [_weighted(stable, 1 - share), _weighted(new, share)])
            continue
        log(f"canary: {share:.0%} of traffic on {new.bento} for {value:g}s")
        deadline = time.monotonic() + value
        while time.monotonic() < deadline:
            time.sleep(min(spec.health.interval_s, max(0.0, deadline - time.monotonic())))
            problem = _judge(new, router, canary, spec.health.path)
            if problem is not None:
                _route(routes, spec, [_weighted(stable, 1.0)])
                time.sleep(DRAIN_S)
                supervise.stop(new.pid)
                raise StepFailed(f"the canary {new.bento} failed at {share:.0%} of traffic: {problem}; all traffic "
                                 f"is back on {stable.bento}, and the canary is stopped (its log: {new.log})")


def _judge(new: supervise.Running, router: supervise.Running, canary: Any, health: str) -> str | None:
    """Why the canary must be rolled back now, or None: health, then the router's figures for it."""
    if not processes.alive(new.pid):
        return "its server exited"
    if not processes.answers(new.url + health):
        return f"it does not answer {health}"
    stats = (_routes(router.url).get("stats") or {}).get(new.url) or {}
    requests, failures = int(stats.get("requests") or 0), int(stats.get("failures") or 0)
    if requests and failures / requests > canary.max_error_rate:
        return f"{failures} of {requests} requests failed ({failures / requests:.1%} > {canary.max_error_rate:.1%})"
    p99 = stats.get("p99_ms")
    if canary.max_p99_ms is not None and p99 is not None and p99 > canary.max_p99_ms:
        return f"p99 latency {p99:.0f} ms > {canary.max_p99_ms:g} ms"
    return None


def _router(workdir: Path, name: str, spec: Any, routes: Path, running: supervise.Running | None,
            first: supervise.Running, env: Mapping[str, str], log: Callable[[str], None]) -> supervise.Running:
    """The router on the Service's port: the one running, or a new one routing to `first`."""
    if running is not None and (running.host, running.port) == (spec.host, spec.port):
        return running
    if running is not None:
        supervise.stop(running.pid)  # the spec moved the Service to another host or port
    _route(routes, spec, [_weighted(first, 1.0)])
    command = [sys.executable, "-m", "mlspec_serve.router", str(routes)]
    return supervise.start(workdir, name, "", spec.host, spec.port, env, timeout_s=30, health=ADMIN, log=log,
                           command=command, label="router")


def live(workdir: Path, name: str) -> tuple[supervise.Running | None, supervise.Running | None]:
    """The router and the backend taking most traffic now, each if it is running."""
    place = supervise.directory(workdir, name)
    router = _record(place / "router.json")
    try:
        backends = json.loads((place / "routes.json").read_text()).get("backends") or []
    except (OSError, ValueError):
        backends = []
    taking = sorted((b for b in backends if float(b.get("weight") or 0) > 0), key=lambda b: -float(b["weight"]))
    for backend in taking:
        port = str(backend.get("url", "")).rsplit(":", 1)[-1]
        stable = _record(place / f"backend-{port}.json")
        if stable is not None:
            return router, stable
    return router, None


def _record(path: Path) -> supervise.Running | None:
    try:
        data = json.loads(path.read_text())
        found = supervise.Running(**{k: data[k] for k in ("pid", "host", "port", "bento", "log", "command",
                                                          "started_at")})
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return found if processes.alive(found.pid) else None


def _route(routes: Path, spec: Any, backends: list[dict[str, Any]]) -> None:
    # the router gives a backend the Service's request timeout, and a little more (the backend's own 504
    # is the better answer: it says which request was slow)
    write_routes(routes, spec.host, spec.port, backends, timeout_s=float(spec.timeout_s) + 5)


def _weighted(backend: supervise.Running, weight: float) -> dict[str, Any]:
    return {"url": backend.url, "weight": round(weight, 6), "bento": backend.bento, "pid": backend.pid}


def _routes(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url + ADMIN, timeout=2) as response:
            return dict(json.loads(response.read()))
    except (OSError, ValueError):
        return {}
