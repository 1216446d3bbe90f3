"""The Service plugin: what the engine calls for a Service spec (the contract is mlspec.sdk).

Plan time stays light: refresh asks the running server (its pid, `/livez`, the bento it was started
with) and never imports BentoML. A server that is down, answers nothing, or serves another bento than
state names is drift: the next apply starts the planned one again.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from mlspec.sdk import (
    API_VERSION,
    Capabilities,
    Diff,
    Estimate,
    Issue,
    Observation,
    PlanContext,
    ReplaceOrder,
    Resource,
    ResourceState,
    Runtime,
    ServiceOutputs,
    StepRequest,
    StepResult,
    processes,
)

__version__ = "0.1.0"
FIRST_GUESS_SECONDS = 20.0


class ServicePlugin:
    api_version: ClassVar[int] = API_VERSION
    name: ClassVar[str] = "bentoml"
    version: ClassVar[str] = __version__
    settings_model: ClassVar[None] = None
    # It serves what its upstream publishes: with policy gated_serving, only a champion that passed its gates.
    # A new version starts beside the old one behind the router, which then moves traffic (rollout.py).
    capabilities: ClassVar[Capabilities] = Capabilities(publishes=ServiceOutputs, serves=True,
                                                        replace_order=ReplaceOrder.CREATE_BEFORE_DESTROY)

    def validate(self, resource: Resource) -> Iterator[Issue]:
        missing = [m for m in ("bentoml", "onnxruntime", "tokenizers") if importlib.util.find_spec(m) is None]
        if missing:
            yield Issue(("spec", "runtime"), f"serving with BentoML needs {', '.join(missing)}, not installed here",
                        expected="the bentoml and onnx extras", hint="pip install 'mlspec[bentoml,onnx]' (from this "
                        "repository; bentoml 1.4.39: 1.4.40 needs a certifi release some indexes lack)")

    def inputs(self, resource: Resource, context: PlanContext) -> Mapping[str, str]:
        return {}  # what it serves reaches the fingerprint as its upstream's

    def refresh(self, resource: Resource, state: ResourceState, context: PlanContext) -> Observation:
        from mlspec_serve import supervise

        outputs = state.outputs
        url = str(outputs.get("url") or "")
        name = resource.envelope.metadata.name
        for role in ("router", "backend"):
            pid = int((outputs.get(role) or {}).get("pid") or 0)
            if not pid or not processes.alive(pid) or not supervise.ours(context.workdir, name, pid):
                return Observation(exists=False, drift=f"the server is down (its {role}, pid {pid}, is gone)")
        try:
            routes = json.loads((supervise.directory(context.workdir, name) / "routes.json").read_text())
        except (OSError, ValueError):
            routes = {}
        serving = sorted({str(b.get("bento")) for b in routes.get("backends") or () if float(b.get("weight", 0)) > 0})
        if serving != [outputs.get("bento")]:
            shown = ", ".join(serving) or "nothing"
            return Observation(exists=True, drift=f"the router on {url} sends traffic to {shown}, not to "
                                                  f"{outputs.get('bento')} as state says")
        if not processes.answers(f"{url}/livez"):
            return Observation(exists=True, drift=f"the server does not answer {url}/livez")
        return Observation(exists=True)

    def diff(self, resource: Resource, before: Mapping[str, Any], after: Mapping[str, Any]) -> Diff:
        return Diff.replacing(before, after)

    def apply(self, request: StepRequest, runtime: Runtime) -> StepResult:
        from mlspec_serve.step import serve

        return StepResult(serve(request, runtime))

    def destroy(self, request: StepRequest, runtime: Runtime) -> None:
        """Stop what state names that no longer takes traffic. After a create-before-destroy replace that
        is nothing (the rollout stopped the old backend; the router serves the new one); after a delete,
        the backend and then the router."""
        from mlspec_serve import supervise
        from mlspec_serve.rollout import live

        outputs = request.previous.outputs if request.previous is not None else {}
        name = request.resource.envelope.metadata.name
        router, taking = live(request.workdir, name)
        backend = int((outputs.get("backend") or {}).get("pid") or 0)
        replaced = taking is not None and taking.pid != backend  # a newer version is behind the router
        stops = [("backend", backend)] + ([] if replaced or router is None else [("router", router.pid)])
        for role, pid in stops:
            if pid and processes.alive(pid) and supervise.ours(request.workdir, name, pid):
                supervise.stop(pid)
                runtime.log(f"{request.address}: stopped its {role} (pid {pid})")

    def rollback(self, resource: Resource, outputs: Mapping[str, Any], workdir: Path,
                 log: Callable[[str], None]) -> dict[str, Any]:
        """`mlspec rollback Service/x`: the bento that served before this one, again, behind the router."""
        from mlspec_serve.rollout import back
        from mlspec_serve.step import environment, live_outputs

        spec, name = resource.envelope.spec, resource.envelope.metadata.name
        found, previous = back(workdir, name, spec, environment(spec, workdir, resource.address), log)
        facts: dict[str, Any] = {k: previous[k] for k in ("version", "digest", "serves") if k in previous}
        made = live_outputs(found, {**dict(outputs), "bento": previous["bento"], **facts})
        made["summary"] = f"{made['url']} serves {made.get('version')} (bento {previous['bento']}, rolled back)"
        return made

    def manifests(self, resource: Resource, outputs: Mapping[str, Any], image: str | None = None
                  ) -> list[dict[str, Any]]:
        """Kubernetes manifests for this Service (`mlspec render k8s`)."""
        from mlspec_serve.kubernetes import manifests

        return manifests(resource, outputs, image)

    def estimate(self, resource: Resource, previous: ResourceState | None) -> Estimate:
        seconds = float((previous.outputs if previous is not None else {}).get("seconds") or 0)
        if seconds:
            return Estimate(seconds=seconds, basis="the last run (bento build and cold start)")
        return Estimate(seconds=FIRST_GUESS_SECONDS, basis="a first guess: bento build and cold start")
