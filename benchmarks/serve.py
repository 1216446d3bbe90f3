"""The Service plugin's figures (issue 16): a real server on 127.0.0.1 under a bounded concurrent load.

The bundled specs are applied in a scratch copy (Dataset, Model, the ONNX Runtime Optimization, the
Service), with a second Service on the same Optimization with batching off. A load generator (asyncio,
httpx, `concurrency` requests in flight, one review per request) runs against, in the same session:

- the Service through its router (what clients use), batching on;
- the same backend directly (what the router costs);
- the batching-off Service through its router.

Every answer that is not a 200 is a failed request, counted. Also: cold start (`mlspec serve start` to
`/readyz`) and the idle memory of the router and the backend (RSS, with the backend's workers).

    python benchmarks/serve.py [--seconds 10] [--concurrency 1,8,32,64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
REVIEWS = ["great product, works as described", "broke after two days, want a refund", "ok for the price",
           "terrible support and it arrived late", "love it, would buy again"]


async def load(url: str, concurrency: int, seconds: float) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    failures: dict[str, int] = {}
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def worker(index: int) -> None:
            n = index
            while time.perf_counter() < deadline:
                body = {"inputs": [{"text": REVIEWS[n % len(REVIEWS)]}]}
                n += 1
                started = time.perf_counter()
                try:
                    response = await client.post(url + "/predict", json=body)
                    code = str(response.status_code)
                except httpx.HTTPError as err:
                    code = type(err).__name__
                if code == "200":
                    latencies.append(time.perf_counter() - started)
                else:
                    failures[code] = failures.get(code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1e3 if ordered else float("nan")

    return {"concurrency": concurrency, "rps": len(latencies) / elapsed, "p50_ms": pct(0.5), "p99_ms": pct(0.99),
            "ok": len(latencies), "failed": sum(failures.values()), "failures": failures}


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants."""
    total, todo, seen = 0, [pid], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            todo += [int(c) for t in Path(f"/proc/{current}/task").iterdir()
                     for c in (t / "children").read_text().split()]
        except OSError:
            continue
    return total / 1024


def mlspec(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "BENTOML_DO_NOT_TRACK": "true"}
    return subprocess.run([sys.executable, "-m", "mlspec", *args], cwd=root, env=env, capture_output=True, text=True,
                          check=True)


def state(root: Path, address: str) -> dict[str, Any]:
    return dict(json.loads(mlspec(root, "state", "show", address, "--format", "json").stdout)["outputs"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", default="1,8,32,64")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "repo"
        for part in ("specs", "scripts"):
            shutil.copytree(REPO / part, root / part)
        shutil.copy(REPO / "mlspec.yaml", root / "mlspec.yaml")
        api = root / "specs" / "serving" / "sentiment-api.yaml"
        text = api.read_text()
        api.write_text(text.replace("port: 3311", "port: 3391"))
        unbatched = text.replace("name: sentiment-api", "name: sentiment-unbatched").replace("port: 3311", "port: 3392")
        unbatched = unbatched.replace("batching: {max_batch_size: 32, max_latency_ms: 20}",
                                      "batching: {enabled: false}")
        (root / "specs" / "serving" / "sentiment-unbatched.yaml").write_text(unbatched)
        try:
            mlspec(root, "apply", "-y", "--parallelism", "1")
            batched, plain = state(root, "Service/sentiment-api"), state(root, "Service/sentiment-unbatched")
            time.sleep(2)
            idle = {"router": rss_mb(batched["router"]["pid"]), "backend": rss_mb(batched["backend"]["pid"])}
            targets = {"router, batching on": batched["url"],
                       "backend directly, batching on": batched["backend"]["url"],
                       "router, batching off": plain["url"]}
            print(f"# {os.cpu_count()} CPUs, {args.seconds:g} s per run, one review per request\n")
            print("| target | concurrency | req/s | p50 ms | p99 ms | failed |")
            print("|---|---:|---:|---:|---:|---:|")
            for name, url in targets.items():
                asyncio.run(load(url, 4, 2.0))  # warm up
                for level in levels:
                    found = asyncio.run(load(url, level, args.seconds))
                    failed = f"{found['failed']}" + (f" {found['failures']}" if found["failed"] else "")
                    print(f"| {name} | {level} | {found['rps']:.0f} | {found['p50_ms']:.1f} | {found['p99_ms']:.1f} | "
                          f"{failed} |")
            mlspec(root, "serve", "stop", "Service/sentiment-api")
            started = time.perf_counter()
            mlspec(root, "serve", "start", "Service/sentiment-api")
            cold = time.perf_counter() - started
            print(f"\ncold start (`mlspec serve start` to /readyz): {cold:.1f} s; the apply's Service step: "
                  f"{batched['seconds']:.1f} s (bento build and start)")
            print(f"idle memory: router {idle['router']:.0f} MB, backend {idle['backend']:.0f} MB (RSS, with workers)")
        finally:
            for address in ("Service/sentiment-api", "Service/sentiment-unbatched"):
                subprocess.run([sys.executable, "-m", "mlspec", "serve", "stop", address], cwd=root,
                               capture_output=True, check=False)


if __name__ == "__main__":
    main()
