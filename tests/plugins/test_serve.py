"""The Service plugin through the command line, against real BentoML servers on 127.0.0.1: apply builds a
bento and starts a supervised server that outlives the apply; requests are typed (422 naming the field,
413 over the limit); a server that dies is drift; `mlspec serve` stops and starts it; a taken port is
named with its holder. Every server a test starts is stopped when it ends."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("bentoml")
pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

from mlspec.sdk import processes
from tests.cli import Result
from tests.plugins.test_optimize import applied, optimization
from tests.plugins.test_torch_training import DATASET, TABULAR, customers

pytestmark = pytest.mark.slow
Mlspec = Callable[..., Result]
SERVICE = """apiVersion: mlspec/v1
kind: Service
metadata: {{name: {name}}}
spec:
  model: {model}
  host: 127.0.0.1
  port: {port}
  batching: {{max_batch_size: 16, max_latency_ms: 1000}}
  health: {{timeout_s: 90}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Dataset, Model and an ONNX Runtime Optimization of it, applied once for the module."""
    files = {"specs/customers.yaml": DATASET.format(name="customers"), "data/customers.csv": customers(),
             "specs/churn.yaml": TABULAR, "specs/churn-onnx.yaml": optimization("churn-onnx", "churn")}
    yield applied(tmp_path_factory.mktemp("served") / "repo", files)


@pytest.fixture
def repo(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Path]]:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    made: list[Path] = []

    def make(**services: str) -> Path:
        root = tmp_path / "repo"
        shutil.copytree(trained, root, ignore=shutil.ignore_patterns("*.lock"))
        for name, text in services.items():
            (root / "specs" / f"{name}.yaml").write_text(text)
        made.append(root)
        return root

    yield make
    for root in made:  # every server this test started, stopped
        for record in (root / ".mlspec" / "serving").glob("*/*.json"):  # routers and backends
            data = json.loads(record.read_text())
            pid = int(data.get("pid") or 0) if isinstance(data, dict) else 0
            if pid and processes.alive(pid):
                processes.stop({pid} | processes.descendants(pid), 5.0)


def service(name: str, model: str, port: int) -> str:
    return SERVICE.format(name=name, model=model, port=port)


def post(url: str, body: Any, raw: bytes | None = None) -> tuple[int, Any]:
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def outputs(mlspec: Mlspec, root: Path, address: str) -> dict[str, Any]:
    return dict(mlspec(root, "state", "show", address, "--format", "json").json()["outputs"])


ROW = {"tenure": 3, "spend": 20.5, "plan": "basic"}


def test_an_optimization_is_served_with_typed_requests_and_a_request_log(
    mlspec: Mlspec, repo: Callable[..., Path]
) -> None:
    port = free_port()
    root = repo(api=service("api", "Optimization/churn-onnx", port))
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    assert f"Service/api: serving at http://127.0.0.1:{port}; try: curl -s -X POST" in applied.err
    out = outputs(mlspec, root, "Service/api")
    assert out["url"] == f"http://127.0.0.1:{port}" and out["runtime"] == "onnxruntime"
    assert out["version"] == "Model/churn v1 via Optimization/churn-onnx"
    assert {"Dockerfile", "bentofile.yaml"} <= set(out["container"])
    code, answer = post(out["url"] + "/predict", {"inputs": [ROW, {**ROW, "tenure": 50, "plan": "pro"}]})
    assert code == 200, answer
    assert [a["label"] for a in answer] == [a["label"] for a in answer] and len(answer) == 2
    assert set(answer[0]["scores"]) == {"False", "True"} and answer[0]["version"] == out["version"]
    code, problem = post(out["url"] + "/predict", {"inputs": [{**ROW, "tenure": "three"}]})
    assert code == 422 and problem["field"] == "inputs.0.tenure", problem
    code, problem = post(out["url"] + "/predict", {"inputs": [{**ROW, "tenur": 3}]})
    assert code == 422 and "inputs.0.tenur" in json.dumps(problem), problem
    code, problem = post(out["url"] + "/predict", None, raw=b'{"inputs": [' + b'{"plan": "basic"},' * 90_000 + b"{}]}")
    assert code == 413, problem
    logged = [json.loads(line) for line in (root / ".mlspec/serving/api/requests.jsonl").read_text().splitlines()]
    assert logged[0]["features"] == {"tenure": 3.0, "spend": 20.5, "plan": "basic"}
    assert logged[0]["version"] == out["version"] and logged[0]["prediction"] in ("False", "True")
    with urllib.request.urlopen(out["url"] + "/metrics", timeout=10) as response:
        metrics = response.read().decode()
    assert 'mlspec_predictions_total{address="Service/api",label="' in metrics, metrics[-2000:]
    status = mlspec(root, "serve", "status", "Service/api")
    assert status.code == 0 and "ready" in status.out, status.output
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0


def test_a_server_that_dies_is_drift_and_serve_stop_and_start_bring_it_back(
    mlspec: Mlspec, repo: Callable[..., Path]
) -> None:
    port = free_port()
    root = repo(api=service("api", "churn", port))  # the torch Model itself, no Optimization
    assert mlspec(root, "apply", "-y").code == 0
    out = outputs(mlspec, root, "Service/api")
    assert out["runtime"] == "torch" and out["version"] == "Model/churn v1"
    assert post(out["url"] + "/predict", {"inputs": [ROW]})[0] == 200
    stopped = mlspec(root, "serve", "stop", "Service/api")
    assert stopped.code == 0 and "stopped" in stopped.out
    assert mlspec(root, "serve", "status", "Service/api").code == 1
    plan = mlspec(root, "plan")
    assert f"because drift: the server is down (its router, pid {out['router']['pid']}, is gone)" in plan.out, plan.out
    started = mlspec(root, "serve", "start", "Service/api")
    assert started.code == 0, started.output
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0  # the pid it started is the one state names
    assert post(out["url"] + "/predict", {"inputs": [ROW]})[0] == 200
    logs = mlspec(root, "serve", "logs", "Service/api", "-n", "5")
    assert logs.code == 0 and logs.out.strip(), logs.output


def test_a_port_in_use_is_named_with_its_holder(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        root = repo(api=service("api", "churn", port))
        applied = mlspec(root, "apply", "-y")
    assert applied.code == 1
    assert f"port {port} on 127.0.0.1 is in use by pid {os.getpid()} (" in applied.err, applied.err


def test_serve_commands_name_what_is_not_served(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    root = repo()
    shown = mlspec(root, "serve", "status")
    assert shown.code == 0 and "No servers" in shown.out
    missing = mlspec(root, "serve", "stop", "Service/nope")
    assert missing.code == 1 and "Service/nope has no server mlspec started here" in missing.err


class Load:
    """A client sending requests one after another until stopped, counting every answer by status."""

    def __init__(self, url: str) -> None:
        import collections
        import threading

        self.url, self.codes = url, collections.Counter[str]()
        self.versions = collections.Counter[str]()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                code, answer = post(self.url + "/predict", {"inputs": [ROW]})
            except OSError as err:
                code, answer = 0, str(err)
            self.codes[str(code)] += 1
            if code == 200:
                self.versions[answer[0]["version"]] += 1

    def stop(self) -> dict[str, int]:
        self.done.set()
        self.thread.join(timeout=30)
        return dict(self.codes)


CANARY = """  rollout:
    strategy: canary
    canary: {traffic: 0.3, duration_s: 4}
"""


def test_a_canary_takes_traffic_in_steps_and_no_request_fails(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    port = free_port()
    root = repo(api=service("api", "churn", port) + CANARY)
    assert mlspec(root, "apply", "-y").code == 0
    before = outputs(mlspec, root, "Service/api")
    (root / "specs/api.yaml").write_text(service("api", "churn", port).replace("max_batch_size: 16", "max_batch_size: 8")
                                         + CANARY)
    plan = mlspec(root, "plan")
    assert "Service/api  replace (create before destroy)" in plan.out, plan.out
    load = Load(before["url"])
    applied = mlspec(root, "apply", "-y")
    codes = load.stop()
    assert applied.code == 0, applied.output
    after = outputs(mlspec, root, "Service/api")
    assert f"canary: 30% of traffic on {after['bento']} for 4s" in applied.err
    assert f"all traffic on {after['bento']}; stopped {before['bento']}" in applied.err
    assert set(codes) == {"200"} and codes["200"] > 10, codes  # the rollout cost no request
    assert after["port"] == port and after["router"]["pid"] == before["router"]["pid"]  # one router throughout
    assert not processes.alive(before["backend"]["pid"])
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0


def test_a_canary_that_fails_its_health_check_is_rolled_back(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    import threading
    import time

    port = free_port()
    slow = CANARY.replace("duration_s: 4", "duration_s: 30")
    root = repo(api=service("api", "churn", port) + slow)
    assert mlspec(root, "apply", "-y").code == 0
    before = outputs(mlspec, root, "Service/api")
    (root / "specs/api.yaml").write_text(service("api", "churn", port).replace("max_batch_size: 16", "max_batch_size: 8")
                                         + slow)
    place = root / ".mlspec/serving/api"

    def kill_the_canary() -> None:  # once the new backend is up, it dies: its health check fails
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            backends = json.loads((place / "routes.json").read_text())["backends"]
            canary = [b["pid"] for b in backends if b["pid"] != before["backend"]["pid"]]
            if len(backends) > 1 and canary:  # the canary takes its share of traffic now
                processes.stop({canary[0]} | processes.descendants(canary[0]), 2.0)
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_the_canary, daemon=True)
    killer.start()
    load = Load(before["url"])
    applied = mlspec(root, "apply", "-y")
    codes = load.stop()
    killer.join(timeout=5)
    assert applied.code == 1
    assert "failed at 30% of traffic: its server exited; all traffic is back on " + before["bento"] in applied.err, (
        applied.err)
    assert set(codes) == {"200"}, codes  # the stable version answered throughout
    assert outputs(mlspec, root, "Service/api")["bento"] == before["bento"]  # state still names it
    assert post(before["url"] + "/predict", {"inputs": [ROW]})[0] == 200


def test_a_version_that_crashes_at_startup_fails_the_step_and_the_old_one_serves_on(
    mlspec: Mlspec, repo: Callable[..., Path]
) -> None:
    port = free_port()
    root = repo(api=service("api", "churn", port))
    assert mlspec(root, "apply", "-y").code == 0
    before = outputs(mlspec, root, "Service/api")
    # The new version's server cannot find its bento: it exits at once.
    (root / "specs/api.yaml").write_text(service("api", "churn", port) + "  env: {BENTOML_HOME: /nonexistent-home}\n")
    load = Load(before["url"])
    applied = mlspec(root, "apply", "-y")
    codes = load.stop()
    assert applied.code == 1
    assert "Service/api: the server exited at startup (code " in applied.out, applied.output
    assert "its log ends:\n" in applied.out and "  │ " in applied.out  # the tail of its log, framed
    assert set(codes) == {"200"}, codes
    assert outputs(mlspec, root, "Service/api")["bento"] == before["bento"]
    assert post(before["url"] + "/predict", {"inputs": [ROW]})[0] == 200


def test_rollback_serves_the_previous_bento_again(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    port = free_port()
    root = repo(api=service("api", "churn", port))
    assert mlspec(root, "apply", "-y").code == 0
    first = outputs(mlspec, root, "Service/api")
    nothing = mlspec(root, "rollback", "Service/api")
    assert nothing.code == 1 and "there is no earlier version of it to roll back to" in nothing.err, nothing.output
    (root / "specs/api.yaml").write_text(service("api", "churn", port).replace("max_batch_size: 16", "max_batch_size: 8"))
    assert mlspec(root, "apply", "-y").code == 0
    second = outputs(mlspec, root, "Service/api")
    assert second["bento"] != first["bento"]
    load = Load(first["url"])
    rolled = mlspec(root, "rollback", "Service/api")
    codes = load.stop()
    assert rolled.code == 0, rolled.output
    assert f"Service/api: serving {second['bento']} -> {first['bento']}" in rolled.out
    assert set(codes) == {"200"}, codes  # no request failed while it moved back
    now = outputs(mlspec, root, "Service/api")
    assert now["bento"] == first["bento"] and now["version"] == first["version"]
    assert post(now["url"] + "/predict", {"inputs": [ROW]})[0] == 200
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0  # a rollback by hand stands until the next change
    assert "rollback" in mlspec(root, "audit", "log").out
