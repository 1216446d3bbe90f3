"""The Service plugin's figures (issue 16): real servers on 127.0.0.1 under a bounded concurrent load.

The bundled specs are applied in a scratch copy (Dataset, Model, the ONNX Runtime Optimization, the
Service), with two more Services on the same Optimization: batching off, and two workers. The load
generator (loadgen.py: its own process, raw HTTP/1.1 keep-alive connections, `concurrency` requests
in flight, one review per request) runs in the same session against:

- the Service through its router (what clients use), the backend directly (what the router costs),
  the batching-off Service, the two-worker Service;
- peers on the same ONNX graph and tokenizer (benchmarks/peers/): a hand-written BentoML service
  (BentoML's defaults; without batching, and batchable with max_latency_ms 1000 and 20) and a
  Starlette app (FastAPI's base) with the model in process.

Every answer that is not a 200 is a failed request, counted. Also: cold start (`mlspec serve start` to
`/readyz`), the idle memory of the router and the backend, and a canary whose server dies while it
takes traffic: the time to full rollback, and what the load generator saw meanwhile.

    python benchmarks/serve.py [--seconds 10] [--concurrency 1,8,32,64] [--skip-peers]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import run as load

REPO = Path(__file__).resolve().parent.parent


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


PEERS = REPO / "benchmarks" / "peers"


def variant(root: Path, text: str, name: str, port: int, change: tuple[str, str] | None = None) -> None:
    made = text.replace("name: sentiment-api", f"name: {name}").replace("port: 3391", f"port: {port}")
    if change is not None:
        made = made.replace(*change)
    (root / "specs" / "serving" / f"{name}.yaml").write_text(made)


def wait_ready(url: str, seconds: float = 120) -> None:
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            body = b'{"inputs": [{"text": "warm"}]}'
            request = urllib.request.Request(url + "/predict", data=body, headers={"content-type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not come up")


def peers(root: Path, model_dir: Path) -> tuple[dict[str, str], list[subprocess.Popen[bytes]]]:
    """The hand-written services, each on a port of its own, once they answer."""
    env = {**os.environ, "PEER_MODEL_DIR": str(model_dir), "BENTOML_HOME": str(root / ".peer-bentoml"),
           "BENTOML_DO_NOT_TRACK": "true"}
    bento = [sys.executable, "-m", "bentoml", "serve", "handwritten_bento:Handwritten", "--host", "127.0.0.1",
             "--port"]
    plans = {
        "peer: hand-written BentoML, no batching": (bento, {"PEER_BATCH": "0"}),
        "peer: hand-written BentoML, batching, max_latency_ms 1000": (bento, {"PEER_BATCH": "1"}),
        "peer: hand-written BentoML, batching, max_latency_ms 20": (bento, {"PEER_BATCH": "1",
                                                                          "PEER_MAX_LATENCY_MS": "20"}),
        "peer: hand-written BentoML, batching, max_latency_ms 1000, padded to the longest": (
            bento, {"PEER_BATCH": "1", "PEER_PAD": "longest"}),
        "peer: Starlette (FastAPI's base), model in process": (
            [sys.executable, "-m", "uvicorn", "starlette_app:app", "--log-level", "warning", "--host",
             "127.0.0.1", "--port"], {}),
    }
    urls, started = {}, []
    for port, (name, (command, extra)) in enumerate(plans.items(), start=3395):
        log = open(root / f"peer-{port}.log", "ab")  # noqa: SIM115 (the server writes it until it stops)
        started.append(subprocess.Popen([*command, str(port)], cwd=PEERS, env={**env, **extra}, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True))
        urls[name] = f"http://127.0.0.1:{port}"
    for url in urls.values():
        wait_ready(url)
    return urls, started


def canary_rollback(root: Path, api: Path, seconds: float) -> dict[str, Any]:
    """A new version rolled out as a canary whose server dies once it takes traffic, under load."""
    import signal

    text = api.read_text()
    api.write_text(text.replace("canary: {traffic: 0.1, duration_s: 120}", "canary: {traffic: 0.3, duration_s: 30}")
                   .replace("max_batch_size: 32", "max_batch_size: 16"))
    routes = root / ".mlspec" / "serving" / "sentiment-api" / "routes.json"
    url = state(root, "Service/sentiment-api")["url"]
    client = subprocess.Popen([sys.executable, str(REPO / "benchmarks" / "loadgen.py"), url + "/predict",
                               "--concurrency", "32", "--seconds", str(seconds)], stdout=subprocess.PIPE, text=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "BENTOML_DO_NOT_TRACK": "true"}
    applying = subprocess.Popen([sys.executable, "-m", "mlspec", "apply", "-y"], cwd=root, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed_at = rolled_back_at = None
    while applying.poll() is None:
        backends = json.loads(routes.read_text())["backends"]
        if killed_at is None and len(backends) > 1:
            canary = backends[-1]
            time.sleep(1.0)  # it takes its share of the traffic for a second
            os.killpg(os.getpgid(int(canary["pid"])), signal.SIGKILL)
            killed_at, dead = time.perf_counter(), canary["url"]
        if killed_at is not None and rolled_back_at is None and all(
                b["url"] != dead or float(b["weight"]) == 0 for b in backends):
            rolled_back_at = time.perf_counter()
        time.sleep(0.02)
    output = applying.communicate()[0]
    found = json.loads(client.communicate()[0])
    api.write_text(text)
    return {"apply_rc": applying.returncode, "killed": killed_at is not None,
            "rollback_s": (rolled_back_at - killed_at) if killed_at and rolled_back_at else None,
            "load": found, "said": [line for line in output.splitlines() if "canary" in line][-1:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", default="1,8,32,64")
    parser.add_argument("--skip-peers", action="store_true")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    started: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "repo"
        for part in ("specs", "scripts"):
            shutil.copytree(REPO / part, root / part)
        shutil.copy(REPO / "mlspec.yaml", root / "mlspec.yaml")
        api = root / "specs" / "serving" / "sentiment-api.yaml"
        text = api.read_text().replace("port: 3311", "port: 3391")
        api.write_text(text)
        variant(root, text, "sentiment-unbatched", 3392, ("batching: {max_batch_size: 32, max_latency_ms: 20}",
                                                          "batching: {enabled: false}"))
        variant(root, text, "sentiment-two-workers", 3393, ("port: 3393", "port: 3393\n  workers: 2"))
        services = ("Service/sentiment-api", "Service/sentiment-unbatched", "Service/sentiment-two-workers")
        try:
            mlspec(root, "apply", "-y", "--parallelism", "1")
            batched, plain, two = (state(root, s) for s in services)
            time.sleep(2)
            idle = {"router": rss_mb(batched["router"]["pid"]), "backend": rss_mb(batched["backend"]["pid"])}
            targets = {"mlspec Service (router), batching on": batched["url"],
                       "mlspec backend directly, batching on": batched["backend"]["url"],
                       "mlspec Service (router), batching off": plain["url"],
                       "mlspec Service (router), batching on, 2 workers": two["url"]}
            if not args.skip_peers:
                model_dir = next((root / ".mlspec" / "bentoml" / "models").glob("*/*/mlspec-model.json")).parent
                found, started = peers(root, model_dir)
                targets.update(found)
            print(f"# {os.cpu_count()} CPUs, {args.seconds:g} s per run, one review per request\n")
            print("| target | concurrency | req/s | p50 ms | p99 ms | failed |")
            print("|---|---:|---:|---:|---:|---:|")
            for name, url in targets.items():
                load(url + "/predict", 4, 2.0)  # warm up
                for level in levels:
                    found = load(url + "/predict", level, args.seconds)
                    failed = f"{found['failed']}" + (f" {found['failures']}" if found["failed"] else "")
                    print(f"| {name} | {level} | {found['rps']:.0f} | {found['p50_ms']:.1f} | {found['p99_ms']:.1f} | "
                          f"{failed} |", flush=True)
            for process in started:
                os.killpg(process.pid, 15)
            mlspec(root, "serve", "stop", "Service/sentiment-api")
            began = time.perf_counter()
            mlspec(root, "serve", "start", "Service/sentiment-api")
            cold = time.perf_counter() - began
            print(f"\ncold start (`mlspec serve start` to /readyz): {cold:.1f} s; the apply's Service step: "
                  f"{batched['seconds']:.1f} s (bento build and start)")
            print(f"idle memory: router {idle['router']:.0f} MB, backend {idle['backend']:.0f} MB (RSS, with workers)")
            rolled = canary_rollback(root, api, 40.0)
            load_seen = rolled["load"]
            print(f"\ncanary killed at 30% of traffic, under 32 concurrent clients: full rollback "
                  f"{rolled['rollback_s'] if rolled['rollback_s'] is None else round(rolled['rollback_s'], 2)} s "
                  f"after the kill; the load generator saw {load_seen['ok']} answered, {load_seen['failed']} failed "
                  f"{load_seen['failures'] or ''}; apply exit code {rolled['apply_rc']}; {rolled['said']}")
        finally:
            for process in started:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, 15)
            for address in services:
                subprocess.run([sys.executable, "-m", "mlspec", "serve", "stop", address], cwd=root,
                               capture_output=True, check=False)


if __name__ == "__main__":
    main()
