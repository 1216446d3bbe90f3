"""The Monitor kind through the command line: a reference profile built at apply from the Dataset's split,
`mlspec monitor run` judging a logged window (report JSON, HTML, Prometheus gauges; exit code 3 on
drift), alerts that fail without failing the run, not enough data, a truncated log, and the loop
closed through the plan: drift with `on_drift: retrain` makes the next plan replace the Model."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from tests.cli import Result
from tests.plugins.test_torch_training import DATASET, TABULAR, customers

pytestmark = pytest.mark.slow
Mlspec = Callable[..., Result]
MONITOR = """apiVersion: mlspec/v1
kind: Monitor
metadata: {{name: churn-drift}}
spec:
  reference: {{dataset: customers, split: train}}
  features: [tenure, spend, plan]
  current: {{log: logs/requests*.jsonl}}
  window: {{duration: 1h, min_samples: 100}}
  alerts: {alerts}
  on_drift: {{action: retrain, model: churn}}
"""


def log_rows(n: int, *, spend_shift: float = 0.0, pro_share: float = 0.5, age_s: float = 0.0,
             seed: int = 5) -> list[str]:
    rng = random.Random(seed)
    now = time.time() - age_s
    return [json.dumps({"ts": now - rng.random() * 60, "service": "Service/churn-api", "version": "Model/churn v1",
                        "features": {"tenure": rng.randrange(0, 60), "spend": round(rng.uniform(5, 50) + spend_shift, 2),
                                     "plan": "pro" if rng.random() < pro_share else "basic"},
                        "prediction": rng.choice(["true", "false"]), "score": 0.8}) for _ in range(n)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.plugins.test_optimize import applied

    files = {"specs/customers.yaml": DATASET.format(name="customers"), "data/customers.csv": customers(2000),
             "specs/churn.yaml": TABULAR}
    return applied(tmp_path_factory.mktemp("monitored") / "repo", files)


@pytest.fixture
def repo(trained: Path, tmp_path: Path) -> Callable[..., Path]:
    import shutil

    def make(alerts: str = "[{type: log}, {type: file, path: .mlspec/alerts.jsonl}]", rows: list[str] | None = None,
             tail: str = "") -> Path:
        root = tmp_path / "repo"
        shutil.copytree(trained, root, ignore=shutil.ignore_patterns("*.lock"))
        (root / "specs" / "monitor.yaml").write_text(MONITOR.format(alerts=alerts))
        (root / "logs").mkdir()
        (root / "logs" / "requests.jsonl").write_text("\n".join(rows or []) + ("\n" if rows else "") + tail)
        return root

    return make


def test_no_drift_then_drift_then_the_plan_retrains_the_model(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    root = repo(rows=log_rows(600))
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    assert "reference: 1,6" in applied.err and "tenure (numeric), spend (numeric), plan (categorical)" in applied.err
    steady = mlspec(root, "monitor", "run")
    assert steady.code == 0, steady.output
    assert "Monitor/churn-drift: no drift: no drift in 3 feature(s)" in steady.out
    assert "spend (numeric): wasserstein" in steady.out  # a reference of 1,600 rows: Evidently's choice
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0  # no drift: nothing asked of the plan

    (root / "logs" / "requests.jsonl").write_text("\n".join(log_rows(600, spend_shift=25, pro_share=0.9)) + "\n")
    drifted = mlspec(root, "monitor", "run", "--format", "json")
    assert drifted.code == 3, drifted.output
    report = drifted.json()["reports"][0]
    assert report["verdict"] == "drift" and report["features"]["spend"]["drifted"]
    assert report["features"]["plan"]["drifted"] and not report["features"]["tenure"]["drifted"]
    assert "2 of 3 feature(s) drifted (wasserstein" in report["summary"]
    place = root / ".mlspec" / "monitoring" / "churn-drift"
    page = (place / "report.html").read_text()
    assert page.count("<svg") == 2 and "<script" not in page
    gauges = (place / "drift.prom").read_text()
    assert 'mlspec_drift_detected{monitor="Monitor/churn-drift"} 1' in gauges
    assert json.loads((root / ".mlspec" / "alerts.jsonl").read_text().splitlines()[-1])["verdict"] == "drift"
    assert "Monitor/churn-drift: drift: 2 of 3 feature(s) drifted" in drifted.err  # the `log` alert

    plan = mlspec(root, "plan")
    assert "-/+ Model/churn  replace" in plan.out, plan.out
    assert "because Monitor/churn-drift detected drift (2 of 3 feature(s) drifted (wasserstein" in plan.out
    assert mlspec(root, "apply", "-y").code == 0
    again = mlspec(root, "plan")
    assert "Model/churn  replace" not in again.out, again.out  # the request was answered by the retrain


def test_too_few_rows_is_not_enough_data_and_a_truncated_line_is_counted(mlspec: Mlspec,
                                                                         repo: Callable[..., Path]) -> None:
    root = repo(rows=log_rows(40, spend_shift=25), tail='{"ts": 1, "features": {"tenure": 3')
    assert mlspec(root, "apply", "-y").code == 0
    found = mlspec(root, "monitor", "run", "--format", "json")
    assert found.code == 0, found.output
    report = found.json()["reports"][0]
    assert report["verdict"] == "not enough data" and report["rows"] == 40
    assert report["skipped"] == {"truncated last line": 1}
    assert "Model/churn  replace" not in mlspec(root, "plan").out


def test_an_old_window_is_not_current(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    root = repo(rows=log_rows(500, spend_shift=25, age_s=7200))  # two hours old: outside `duration: 1h`
    assert mlspec(root, "apply", "-y").code == 0
    report = mlspec(root, "monitor", "run", "--format", "json").json()["reports"][0]
    assert (report["verdict"], report["rows"], report["read"]) == ("not enough data", 0, 500)


@pytest.fixture
def slow_webhook() -> Iterator[tuple[str, list[int]]]:
    calls: list[int] = []

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            calls.append(1)
            time.sleep(2)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", calls
    server.shutdown()
    server.server_close()


def test_a_webhook_that_times_out_is_reported_and_the_run_completes(
        mlspec: Mlspec, repo: Callable[..., Path], slow_webhook: tuple[str, list[int]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    url, calls = slow_webhook
    monkeypatch.setenv("CHURN_HOOK", url)
    alerts = ('[{type: webhook, url: "${env:CHURN_HOOK}", timeout_s: 0.3, retries: 1}, '
              '{type: file, path: .mlspec/alerts.jsonl}, {type: slack, url: "${env:UNSET_SLACK}"}]')
    root = repo(alerts=alerts, rows=log_rows(600, spend_shift=25, pro_share=0.9))
    assert mlspec(root, "apply", "-y").code == 0
    found = mlspec(root, "monitor", "run", "--format", "json")
    assert found.code == 3, found.output
    sent = {a["type"]: a for a in found.json()["reports"][0]["alerts"]}
    assert not sent["webhook"]["sent"] and "the webhook timed out, after 2 attempt(s)" in sent["webhook"]["error"]
    assert len(calls) == 2
    assert sent["file"]["sent"]  # the other sinks still got it
    assert not sent["slack"]["sent"] and "names ${env:UNSET_SLACK}, which is not set here" in sent["slack"]["error"]
    assert url not in found.output  # a URL from the environment is a secret


def test_prometheus_rules_render_and_pass_promtool(mlspec: Mlspec, repo: Callable[..., Path], tmp_path: Path) -> None:
    import shutil
    import subprocess

    root = repo(rows=log_rows(10))
    out = tmp_path / "rules.yml"
    rendered = mlspec(root, "render", "prometheus", "--out", str(out))
    assert rendered.code == 0, rendered.output
    from ruamel.yaml import YAML

    groups: Any = YAML(typ="safe").load(out.read_text())["groups"]
    alerts = {r["alert"]: r for g in groups for r in g["rules"]}
    assert alerts["MlspecDataDrift"]["expr"] == 'mlspec_drift_detected{monitor="Monitor/churn-drift"} == 1'
    assert "> 7200" in alerts["MlspecMonitorStale"]["expr"]
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (Debian: apt install prometheus)")
    checked = subprocess.run(["promtool", "check", "rules", str(out)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
