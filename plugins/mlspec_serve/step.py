"""One Service step: what it serves (a Model, or an Optimization of one), the bento, the rollout.

The processes the step leaves running (the router on the Service's port, the backend behind it) are
the ones state then names, so refresh can tell a server that is down, or one that routes to another
bento, from the one that was planned. A new version starts beside the old one and takes its traffic
(rollout.py): create before destroy, as the plan says.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mlspec.sdk import (
    ENV_REF,
    Address,
    ArtifactStore,
    ModelOutputs,
    OptimizationOutputs,
    Runtime,
    StepFailed,
    StepRequest,
)
from mlspec_serve import supervise
from mlspec_serve.rollout import describe, roll_out
from mlspec_serve.schema import features, json_schema

WEIGHTS = ("model.safetensors",)  # what an Optimization's graph replaces among the Model's files
MAX_BODY = 1 << 20  # a request body over 1 MiB is refused (413) before it is parsed


def served_address(spec: Any) -> str:
    return str(Address.parse(spec.model, default_kind="Model"))


def serve(request: StepRequest, runtime: Runtime) -> dict[str, Any]:
    spec, address = request.spec, str(request.address)
    started = time.monotonic()
    name = request.resource.envelope.metadata.name
    workdir = request.workdir
    store = ArtifactStore(request.artifacts, workdir)
    (workdir / ".mlspec").mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".serve-", dir=workdir / ".mlspec"))
    try:
        what = _what(request)
        model_dir = store.fetch(what["files"], scratch / "model")
        manifest = json.loads((model_dir / "mlspec-model.json").read_text())
        fitted = model_dir / "encoder.json"
        encoder = json.loads(fitted.read_text()) if fitted.is_file() else None
        fields = features(manifest, encoder)
        config = {
            "name": name, "address": address, "digest": what["digest"], "version": what["version"],
            "runtime": what["runtime"], "entry": what["entry"], "features": fields,
            "batching": spec.batching.model_dump(), "timeout_s": max(1, int(spec.timeout_s)),
            "workers": spec.worker_count(),
            "max_body_bytes": MAX_BODY,
            "request_log": {"path": str(supervise.directory(workdir, name) / "requests.jsonl"),
                            "sample": spec.request_log.sample, "max_bytes": spec.request_log.max_mb << 20,
                            "keep": spec.request_log.keep} if spec.request_log.enabled else {},
        }
        built = _bento(request, name, config, model_dir, scratch)
        runtime.log(f"{address}: built bento {built['bento']} ({what['version']})")
        runtime.check(address)
        try:
            describe(workdir, name, built["bento"], {"version": what["version"], "digest": what["digest"],
                                                     "serves": what["address"]})
            live = roll_out(workdir, name, spec, built["bento"], environment(spec, workdir, address),
                            lambda line: runtime.log(f"{address}: {line}"))
        except supervise.ServeFailed as err:
            raise StepFailed(f"{address}: {err}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    router = live.router
    curl = (f"curl -s -X POST {router.url}/predict -H 'content-type: application/json' "
            f"-d '{json.dumps({'inputs': [_example(fields)]})}'")
    runtime.log(f"{address}: serving at {router.url}; try: {curl}")
    return live_outputs(live, {
        "bento": built["bento"], "digest": what["digest"], "model_tag": built["model_tag"],
        "serves": what["address"], "version": what["version"], "runtime": what["runtime"],
        "env": _bentoml_env(workdir, inherit=False), "container": built["container"],
        "schema": json_schema(fields), "try": curl,
        "summary": f"{router.url} serves {what['version']} on {what['runtime']} (bento {built['bento']})",
        "request_log": str(supervise.directory(workdir, name) / "requests.jsonl") if spec.request_log.enabled else "",
        "seconds": round(time.monotonic() - started, 3),
    })


def _what(request: StepRequest) -> dict[str, Any]:
    """The files to serve, their runtime and digest, and the version a response names."""
    upstream = served_address(request.spec)
    kind = upstream.split("/", 1)[0]
    if kind == "Optimization":
        made = request.published(upstream, OptimizationOutputs)
        if made.format != "onnx":
            raise StepFailed(f"{request.address}: serving a {made.format} artifact is not built yet; serve an "
                             f"ONNX Runtime Optimization or the Model itself")
        source = made.source or {}
        files = {k: dict(v) for k, v in (source.get("files") or {}).items() if k not in WEIGHTS and k != "README.md"}
        files |= {k: v.model_dump() for k, v in made.files.items()}
        version = f"{source.get('address', '?')} v{source.get('version', '?')} via {upstream}"
        return {"address": upstream, "files": files, "runtime": "onnxruntime", "entry": made.entry or "model.onnx",
                "digest": made.digest, "version": version}
    model = request.published(upstream, ModelOutputs)
    files = {k: v.model_dump() for k, v in model.files.items() if k != "README.md"}
    return {"address": upstream, "files": files, "runtime": "torch", "entry": "", "digest": model.digest,
            "version": f"{upstream} v{model.version}"}


def _bento(request: StepRequest, name: str, config: dict[str, Any], model_dir: Path, scratch: Path) -> dict[str, Any]:
    place = supervise.directory(request.workdir, name)
    job = {
        "model_name": _slug(name), "model_dir": str(model_dir), "class": _class_name(name), "config": config,
        "labels": {"mlspec-address": _slug(config["address"]), "mlspec-digest": config["digest"][:32]},
        "metadata": {"address": config["address"], "serves": config["version"], "digest": config["digest"]},
        "service_dir": str(scratch / "service"), "container_dir": str(place / "container"),
        "packages": [_install_requirement()], "result": str(scratch / "built.json"),
    }
    (scratch / "job.json").write_text(json.dumps(job))
    done = subprocess.run([sys.executable, "-m", "mlspec_serve.bento", str(scratch / "job.json")], capture_output=True,
                          text=True, env=_bentoml_env(request.workdir), check=False, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise StepFailed(f"{request.address}: the bento could not be built: " + "\n".join(said[-15:]))
    return dict(json.loads((scratch / "built.json").read_text()))


def environment(spec: Any, workdir: Path, address: str) -> dict[str, str]:
    """BentoML's home in the repo, no telemetry, and the spec's `env` (secrets resolved only here)."""
    env = _bentoml_env(workdir)
    for key, value in spec.env.items():
        found = ENV_REF.fullmatch(str(value))
        if found is None:
            env[key] = str(value)
            continue
        variable = found.group(1)
        if variable not in os.environ:
            raise StepFailed(f"{address}: spec.env.{key} names ${{env:{variable}}}, which is not set here")
        env[key] = os.environ[variable]
    return env


def live_outputs(live: Any, outputs: dict[str, Any]) -> dict[str, Any]:
    """The outputs that say which processes serve: the router (the Service's URL) and its backend."""
    router, backend = live.router, live.backend
    return {**outputs, "url": router.url, "pid": router.pid, "host": router.host, "port": router.port,
            "log": backend.log, "router": router.to_json(), "backend": backend.to_json(),
            "processes": [{"role": "backend", **backend.to_json()}, {"role": "router", **router.to_json()}]}


def _bentoml_env(workdir: Path, *, inherit: bool = True) -> dict[str, str]:
    """This process's environment (less the run's marks) with BentoML's home in the repo; `inherit=False`:
    only what mlspec adds, which state keeps so `mlspec serve start` can start the server again."""
    base = {k: v for k, v in os.environ.items() if k not in supervise.RUN_MARKS} if inherit else {}
    return {**base, "BENTOML_HOME": str(workdir / ".mlspec" / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}


def _install_requirement() -> str:
    """What the bento's image installs to run mlspec's service code: this mlspec, with the runtime."""
    from importlib.metadata import version

    return f"mlspec[onnx,torch,bentoml]=={version('mlspec')}"


def _example(fields: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in fields:
        if field["type"] == "text":
            out[field["name"]] = "great product, works as described"
        elif field["type"] == "number":
            out[field["name"]] = 1.0
        else:
            out[field["name"]] = (field.get("examples") or ["x"])[0]
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "-", text.lower()).strip("-.")[:63] or "service"


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name) if part) or "Service"
