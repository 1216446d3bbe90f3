"""The routing layer on a Service's port: every request goes to one of its backends (BentoML servers on
loopback ports), by weight, so a new version can start beside the old one and take traffic in steps.

`python -m mlspec_serve.router ROUTES.json` serves `host:port` from the file and re-reads the backends
and their weights when the file changes (mlspec writes it whole, by rename). A request whose backend
refuses the connection is sent to another backend: a backend stopped mid-rollout costs its clients
nothing. Per backend it counts requests, failures (5xx, or no answer) and latencies, which the rollout
reads at `GET /-/mlspec/routes` to judge a canary. Everything else is passed through as is, `/readyz`,
`/livez` and `/metrics` included.

It is an HTTP/1.1 proxy on asyncio protocols, parsing with httptools (llhttp, in C) and keeping
connections to the backends alive, because every request of the Service pays for this hop: the first
router (uvicorn and an httpx client) cost a third of the Service's throughput on 2 cores; this one
costs a few percent (benchmarks/results/serve.md).
"""

import asyncio
import contextlib
import http
import json
import os
import random
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httptools

ADMIN = "/-/mlspec/routes"
HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade",
              b"proxy-authorization", b"proxy-authenticate", b"content-length",
              b"expect"}  # the router has read the whole body: a backend's `100 Continue` would be a stray answer
RELOAD_S = 0.2
TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0
MAX_BODY = 64 << 20  # the backend enforces its own (smaller) limit with a 413; this bounds the router's memory


class Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.failures = 0
        self.latencies: deque[float] = deque(maxlen=2000)

    def to_json(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3 if ordered else None
        return {"requests": self.requests, "failures": self.failures, "p99_ms": p99}


class Message:
    """One HTTP message as httptools' callbacks see it; whole ones are queued on `ready`."""

    def __init__(self, ready: deque["Message"], on_head: Callable[["Message"], None] | None = None) -> None:
        self.ready, self.on_head = ready, on_head
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()
        self.method = b""
        self.status = 0
        self.keep_alive = True
        self.parser: Any = None

    def on_message_begin(self) -> None:
        self.url, self.headers, self.body = b"", [], bytearray()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if isinstance(self.parser, httptools.HttpRequestParser):
            self.method = self.parser.get_method()
        else:
            self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        if self.on_head is not None:
            self.on_head(self)

    def on_body(self, body: bytes) -> None:
        self.body += body
        if len(self.body) > MAX_BODY:
            raise httptools.HttpParserError("body too large")

    def on_message_complete(self) -> None:
        done = Message(self.ready)
        done.url, done.headers, done.body = self.url, self.headers, self.body
        done.method, done.status, done.keep_alive = self.method, self.status, self.keep_alive
        self.ready.append(done)


class Upstream:
    """A keep-alive connection to one backend: one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, request: bytes, head_only: bool) -> Message:
        self.writer.write(request)
        ready: deque[Message] = deque()
        heads: list[Message] = []
        collector = Message(ready, on_head=heads.append)
        parser = httptools.HttpResponseParser(collector)
        collector.parser = parser
        while True:
            while ready and 100 <= ready[0].status < 200:  # an interim answer (100 Continue): the real one follows
                ready.popleft()
                heads.clear()
            if ready:
                return ready[0]
            if head_only and heads and not 100 <= heads[0].status < 200:  # a HEAD answer has headers only
                return heads[0]
            data = await self.reader.read(1 << 16)
            if not data:
                raise ConnectionResetError("the backend closed the connection")
            parser.feed_data(data)

    def close(self) -> None:
        self.writer.close()


class Router:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.mtime = 0.0
        self.checked = 0.0
        self.backends: list[dict[str, Any]] = []
        self.stats: dict[str, Stats] = {}
        self.idle: dict[str, list[Upstream]] = {}
        self.active = 0
        self.clients: set[asyncio.StreamWriter] = set()
        self.timeout_s = TIMEOUT_S
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
            self.timeout_s = float(data.get("timeout_s") or TIMEOUT_S)
            for backend in data["backends"]:
                self.stats.setdefault(backend["url"], Stats())
            known = {b["url"] for b in data["backends"]}
            for url in [u for u in self.idle if u not in known]:  # a backend gone from the routes
                for upstream in self.idle.pop(url):
                    upstream.close()

    def order(self) -> list[str]:
        """The backends to try for one request: one chosen by weight, then the others."""
        urls = [b["url"] for b in self.backends]
        if len(urls) == 1:
            return urls
        weights = [float(b.get("weight", 0)) for b in self.backends]
        if not urls:
            return []
        first = random.choices(urls, weights=weights)[0] if sum(weights) > 0 else urls[0]
        return [first, *(u for u in urls if u != first)]

    async def client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client connection: its requests in order (HTTP/1.1 keep-alive and pipelining)."""
        ready: deque[Message] = deque()
        collector = Message(ready)
        parser = httptools.HttpRequestParser(collector)
        collector.parser = parser
        self.clients.add(writer)
        try:
            while True:
                while not ready:
                    data = await reader.read(1 << 16)
                    if not data:
                        return
                    try:
                        parser.feed_data(data)
                    except (httptools.HttpParserError, httptools.HttpParserUpgrade) as err:
                        writer.write(response(400, [(b"content-type", b"application/json")],
                                              json.dumps({"error": f"bad request: {err}"}).encode(), keep=False))
                        return
                request = ready.popleft()
                self.active += 1
                try:
                    writer.write(await self.answer(request))
                    await writer.drain()
                finally:
                    self.active -= 1
                if not request.keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self.clients.discard(writer)
            writer.close()

    async def answer(self, request: Message) -> bytes:
        self.reload()
        keep = request.keep_alive
        if request.url.split(b"?", 1)[0] == ADMIN.encode():
            data = {"backends": self.backends, "stats": {u: s.to_json() for u, s in self.stats.items()}}
            return response(200, [(b"content-type", b"application/json")], json.dumps(data).encode(), keep)
        head = [request.method + b" " + request.url + b" HTTP/1.1\r\n"]
        head += [k + b": " + v + b"\r\n" for k, v in request.headers if k.lower() not in HOP_BY_HOP]
        head.append(b"content-length: %d\r\n\r\n" % len(request.body))
        raw = b"".join(head) + bytes(request.body)
        for url in self.order():
            stats = self.stats.setdefault(url, Stats())
            started = time.perf_counter()
            try:
                found = await self.exchange(url, raw, request.method == b"HEAD")
            except TimeoutError:  # a slow model: reported, not sent again to another backend
                stats.requests += 1
                stats.failures += 1
                said = {"error": f"the backend did not answer within {self.timeout_s:g} s"}
                return response(504, [(b"content-type", b"application/json")], json.dumps(said).encode(), keep)
            except (OSError, httptools.HttpParserError):  # refused, reset: another backend may answer
                stats.requests += 1
                stats.failures += 1
                continue
            stats.requests += 1
            stats.latencies.append(time.perf_counter() - started)
            if found.status >= 500:
                stats.failures += 1
            kept = [(k, v) for k, v in found.headers if k.lower() not in HOP_BY_HOP]
            if request.method == b"HEAD":  # the length of the body a GET would get, as the backend said it
                length = next((v for k, v in found.headers if k.lower() == b"content-length"), b"0")
                return response(found.status, kept, b"", keep, head_only=True, length=int(length))
            return response(found.status, kept, bytes(found.body), keep)
        return response(503, [(b"content-type", b"application/json")],
                        json.dumps({"error": "no backend of this Service answers"}).encode(), keep)

    async def exchange(self, url: str, raw: bytes, head_only: bool) -> Message:
        """Send one request to `url` on a kept-alive connection (a fresh one when a kept one turns out
        closed: a backend may drop idle connections), within the timeout."""
        async with asyncio.timeout(self.timeout_s):
            pool = self.idle.setdefault(url, [])
            while pool:
                upstream = pool.pop()
                try:
                    found = await upstream.exchange(raw, head_only)
                except (OSError, httptools.HttpParserError):
                    upstream.close()
                    continue
                except BaseException:  # timed out or cancelled: the connection is mid-answer, unusable
                    upstream.close()
                    raise
                self._release(url, upstream, found)
                return found
            parts = urlsplit(url)
            upstream = Upstream(*await asyncio.open_connection(parts.hostname, parts.port))
            try:
                found = await upstream.exchange(raw, head_only)
            except BaseException:
                upstream.close()
                raise
            self._release(url, upstream, found)
            return found

    def _release(self, url: str, upstream: Upstream, found: Message) -> None:
        if found.keep_alive and any(b["url"] == url for b in self.backends):
            self.idle.setdefault(url, []).append(upstream)
        else:
            upstream.close()


def response(status: int, headers: list[tuple[bytes, bytes]], body: bytes, keep: bool,
             head_only: bool = False, length: int | None = None) -> bytes:
    try:
        reason = http.HTTPStatus(status).phrase.encode()
    except ValueError:
        reason = b""
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason), *(k + b": " + v + b"\r\n" for k, v in headers),
             b"content-length: %d\r\n" % (len(body) if length is None else length),
             b"" if keep else b"connection: close\r\n", b"\r\n"]
    return b"".join(lines) + (b"" if head_only else body)


def write_routes(path: Path, host: str, port: int, backends: list[dict[str, Any]],
                 timeout_s: float = TIMEOUT_S) -> None:
    """The routes file, whole (a reader sees the old file or the new one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"host": host, "port": port, "timeout_s": timeout_s, "backends": backends}, indent=2))
    os.replace(tmp, path)


async def serve(path: Path) -> None:
    data = json.loads(path.read_text())
    router = Router(path)
    server = await asyncio.start_server(router.client, data["host"], int(data["port"]), reuse_address=True,
                                        backlog=2048)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"mlspec router on http://{data['host']}:{data['port']} ({path})", flush=True)
    await stop.wait()
    server.close()  # no new connections; requests in flight get their answers
    deadline = time.monotonic() + STOP_GRACE_S
    while router.active and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for writer in list(router.clients):  # idle kept-alive clients: closed, so their handlers end on EOF
        writer.close()
    await asyncio.sleep(0.05)


def main() -> None:
    runner: Callable[[Any], Any] = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    runner(serve(Path(sys.argv[1])))


if __name__ == "__main__":
    main()
