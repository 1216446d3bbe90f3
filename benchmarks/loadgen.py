"""A bounded concurrent HTTP load generator that costs the server as little CPU as it can.

`concurrency` keep-alive connections, one request in flight on each (a closed loop, as `wrk -c N` or
`hey -c N`), the same POST body shapes for every target. It speaks HTTP/1.1 on raw asyncio protocols
(uvloop when installed) instead of a client library: httpx's per-request cost on this 2-core VM
(~1.5 ms of CPU) was more than a trivial BentoML service's, so the client, not the server, set the
figures. Run in its own process (`run()` starts one) and, where there are cores to spare, pinned to one.

    python benchmarks/loadgen.py URL/predict --concurrency 32 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REVIEWS = ["great product, works as described", "broke after two days, want a refund", "ok for the price",
           "terrible support and it arrived late", "love it, would buy again"]


def requests_for(host: str, path: str) -> list[bytes]:
    """One prepared request per review: the same bytes every run."""
    made = []
    for review in REVIEWS:
        body = json.dumps({"inputs": [{"text": review}]}).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        made.append(head + body)
    return made


class Connection(asyncio.Protocol):
    """One keep-alive connection: send a request, read one response (by Content-Length), repeat."""

    def __init__(self, requests: list[bytes], index: int, deadline: float, results: dict[str, Any],
                 done: asyncio.Future[None]) -> None:
        self.requests, self.n, self.deadline, self.results, self.done = requests, index, deadline, results, done
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.started = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio's classes
        self.send()

    def send(self) -> None:
        assert self.transport is not None
        if time.perf_counter() >= self.deadline:
            self.transport.close()
            return
        self.started = time.perf_counter()
        self.transport.write(self.requests[self.n % len(self.requests)])
        self.n += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            length = next((int(line.split(":", 1)[1]) for line in head[1:]
                           if line.lower().startswith("content-length:")), 0)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length:]
            code = head[0].split(" ", 2)[1]
            if code == "200":
                self.results["latencies"].append(time.perf_counter() - self.started)
            else:
                failures = self.results["failures"]
                failures[code] = failures.get(code, 0) + 1
            self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        if time.perf_counter() < self.deadline:
            failures = self.results["failures"]
            failures["connection lost"] = failures.get("connection lost", 0) + 1
        if not self.done.done():
            self.done.set_result(None)


async def load(url: str, concurrency: int, seconds: float) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = requests_for(f"{host}:{port}", parts.path or "/")
    loop = asyncio.get_running_loop()
    results: dict[str, Any] = {"latencies": [], "failures": {}}
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    waits = []
    for i in range(concurrency):
        done: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(functools.partial(Connection, requests, i, deadline, results, done), host, port)
        waits.append(done)
    await asyncio.gather(*waits)
    elapsed = time.perf_counter() - started
    ordered = sorted(results["latencies"])

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1e3 if ordered else float("nan")

    return {"concurrency": concurrency, "rps": len(ordered) / elapsed, "p50_ms": pct(0.5), "p99_ms": pct(0.99),
            "ok": len(ordered), "failed": sum(results["failures"].values()), "failures": results["failures"]}


def run(url: str, concurrency: int, seconds: float, cpu: int | None = None) -> dict[str, Any]:
    """The load generator in a process of its own (pinned to `cpu` when given); its figures as a dict."""
    command = [sys.executable, str(Path(__file__)), url, "--concurrency", str(concurrency), "--seconds", str(seconds)]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    print(json.dumps(runner(load(args.url, args.concurrency, args.seconds))))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
