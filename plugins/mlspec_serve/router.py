"""The routing layer on a Service's port: every request goes to one of its backends (BentoML servers on
loopback ports), by weight, so a new version can start beside the old one and take traffic in steps.

`python -m mlspec_serve.router ROUTES.json` serves `host:port` from the file and re-reads the backends
and their weights when the file changes (mlspec writes it whole, by rename). A request whose backend
refuses the connection is sent to another backend: a backend stopped mid-rollout costs its clients
nothing. Per backend it counts requests, failures (5xx, or no connection) and latencies, which the
rollout reads at `GET /-/mlspec/routes` to judge a canary. Everything else is passed through as is,
`/readyz`, `/livez` and `/metrics` included.
"""

import asyncio
import json
import os
import random
import sys
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ADMIN = "/-/mlspec/routes"
HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade", b"host",
              b"proxy-authorization", b"proxy-authenticate", b"content-length"}
RELOAD_S = 0.2
TIMEOUT_S = 60.0


class Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.failures = 0
        self.latencies: deque[float] = deque(maxlen=2000)

    def to_json(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3 if ordered else None
        return {"requests": self.requests, "failures": self.failures, "p99_ms": p99}


class Router:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.mtime = 0.0
        self.checked = 0.0
        self.backends: list[dict[str, Any]] = []
        self.stats: dict[str, Stats] = {}
        self.client: Any = None
        self.reload(force=True)

    def reload(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.checked < RELOAD_S:
            return
        self.checked = now
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return
        if force or mtime != self.mtime:
            data = json.loads(self.path.read_text())
            self.backends = [b for b in data["backends"] if float(b.get("weight", 0)) > 0] or data["backends"]
            self.mtime = mtime
            for backend in data["backends"]:
                self.stats.setdefault(backend["url"], Stats())

    def order(self) -> list[str]:
        """The backends to try for one request: one chosen by weight, then the others."""
        urls = [b["url"] for b in self.backends]
        weights = [float(b.get("weight", 0)) for b in self.backends]
        if not urls:
            return []
        first = random.choices(urls, weights=weights)[0] if sum(weights) > 0 else urls[0]
        return [first, *(u for u in urls if u != first)]

    async def __call__(self, scope: Mapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        self.reload()
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == ADMIN:
            data = {"backends": self.backends, "stats": {u: s.to_json() for u, s in self.stats.items()}}
            await respond(send, 200, [(b"content-type", b"application/json")], json.dumps(data).encode())
            return
        await self.forward(scope, body, send)

    async def forward(self, scope: Mapping[str, Any], body: bytes, send: Any) -> None:
        import httpx

        target = scope["path"] + (("?" + scope["query_string"].decode()) if scope.get("query_string") else "")
        headers = [(k, v) for k, v in scope.get("headers") or () if k.lower() not in HOP_BY_HOP]
        for url in self.order():
            stats = self.stats.setdefault(url, Stats())
            started = time.perf_counter()
            try:
                response = await self.client.request(scope["method"], url + target, headers=headers, content=body)
            except httpx.HTTPError:  # refused, reset, timed out: another backend may answer
                stats.requests += 1
                stats.failures += 1
                continue
            stats.requests += 1
            stats.latencies.append(time.perf_counter() - started)
            if response.status_code >= 500:
                stats.failures += 1
            kept = [(k.encode(), v.encode()) for k, v in response.headers.items()
                    if k.lower().encode() not in HOP_BY_HOP]
            await respond(send, response.status_code, kept, response.content)
            return
        await respond(send, 503, [(b"content-type", b"application/json")],
                      json.dumps({"error": "no backend of this Service answers"}).encode())

    async def lifespan(self, receive: Any, send: Any) -> None:
        import httpx

        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                limits = httpx.Limits(max_connections=512, max_keepalive_connections=128)
                self.client = httpx.AsyncClient(timeout=TIMEOUT_S, limits=limits)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.client is not None:
                    await self.client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def respond(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def write_routes(path: Path, host: str, port: int, backends: list[dict[str, Any]]) -> None:
    """The routes file, whole (a reader sees the old file or the new one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"host": host, "port": port, "backends": backends}, indent=2))
    os.replace(tmp, path)


def main() -> None:
    import uvicorn

    path = Path(sys.argv[1])
    data = json.loads(path.read_text())
    router = Router(path)
    asyncio.run(uvicorn.Server(uvicorn.Config(router, host=data["host"], port=int(data["port"]), log_level="warning",
                                              access_log=False, lifespan="on")).serve())


if __name__ == "__main__":
    main()
