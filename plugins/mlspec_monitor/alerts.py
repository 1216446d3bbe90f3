"""Where a run's verdict goes: the run's own output (`log`), a JSON-lines file, a webhook (a JSON body),
Slack (an incoming webhook). A sink that fails (a webhook that times out after its retries, a variable
that is not set) is reported in the run's result and its output; the run still completes and the other
sinks still get the verdict. A URL is resolved from the environment here, and never printed."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlspec.sdk import MlspecError, resolve_env

BACKOFF_S = 0.5


def send(alerts: Sequence[Any], report: Mapping[str, Any], workdir: Path,
         log: Callable[[str], None]) -> list[dict[str, Any]]:
    results = []
    drifted = report["verdict"] == "drift"
    for i, alert in enumerate(alerts):
        if not (drifted or alert.always):
            continue
        try:
            detail = _one(alert, report, workdir, log)
            results.append({"alert": i, "type": alert.type, "sent": True, **detail})
        except (OSError, MlspecError, ValueError) as err:
            problem = str(err)
            log(f"{report['monitor']}: alert {i} ({alert.type}) not sent: {problem}")
            results.append({"alert": i, "type": alert.type, "sent": False, "error": problem})
    return results


def body(report: Mapping[str, Any]) -> dict[str, Any]:
    """What a webhook receives: the verdict and each drifted feature, not the whole report."""
    drifted = {n: f.get("because") for n, f in (report.get("features") or {}).items() if f.get("drifted")}
    return {"monitor": report["monitor"], "verdict": report["verdict"], "summary": report["summary"],
            "rows": report["rows"], "at": report["at"], "drifted": drifted,
            "report": (report.get("files") or {}).get("json")}


def _one(alert: Any, report: Mapping[str, Any], workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
    if alert.type == "log":
        log(f"{report['monitor']}: {report['verdict']}: {report['summary']}")
        return {}
    if alert.type == "file":
        path = Path(alert.path)
        path = path if path.is_absolute() else workdir / path
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as sink:
            sink.write(json.dumps(body(report)) + "\n")
        return {"path": str(path)}
    url = resolve_env(str(alert.url), f"alert `{alert.type}` url")
    payload = body(report) if alert.type == "webhook" else {"text": f"*{report['monitor']}*: {report['summary']}"}
    attempts = _post(url, payload, alert.timeout_s, alert.retries)
    return {"attempts": attempts}


def _post(url: str, payload: Mapping[str, Any], timeout_s: float, retries: int) -> int:
    data = json.dumps(payload).encode()
    problem = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(BACKOFF_S * 2 ** (attempt - 1))
        request = urllib.request.Request(url, data=data, method="POST", headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as answer:
                answer.read()
            return attempt + 1
        except urllib.error.HTTPError as err:
            problem = f"the webhook answered {err.code}"
            if err.code < 500 and err.code != 429:
                break
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            reason = getattr(err, "reason", err)
            problem = "the webhook timed out" if isinstance(reason, TimeoutError) or "timed out" in str(reason) \
                else f"the webhook did not answer ({reason})"
    raise OSError(f"{problem}, after {attempt + 1} attempt(s)")
