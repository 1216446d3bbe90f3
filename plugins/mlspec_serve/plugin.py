"""The Service plugin: what the engine calls for a Service spec (the contract is mlspec.sdk).

Plan time stays light: refresh asks the running server (its pid, `/livez`, the bento it was started
with) and never imports BentoML. A server that is down, answers nothing, or serves another bento than
state names is drift: the next apply starts the planned one again.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from mlspec.sdk import (
    API_VERSION,
    Capabilities,
    Diff,
    Estimate,
    Issue,
    Observation,
    PlanContext,
    Resource,
    ResourceState,
    Runtime,
    ServiceOutputs,
    StepRequest,
    StepResult,
)

__version__ = "0.1.0"
FIRST_GUESS_SECONDS = 20.0


class ServicePlugin:
    api_version: ClassVar[int] = API_VERSION
    name: ClassVar[str] = "bentoml"
    version: ClassVar[str] = __version__
    settings_model: ClassVar[None] = None
    # It serves what its upstream publishes: with policy gated_serving, only a champion that passed its gates.
    capabilities: ClassVar[Capabilities] = Capabilities(publishes=ServiceOutputs, serves=True)

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
        pid, url = int(outputs.get("pid") or 0), str(outputs.get("url") or "")
        if not pid or not supervise.alive(pid):
            return Observation(exists=False, drift=f"the server is down (pid {pid} is gone)")
        place = supervise.directory(context.workdir, resource.envelope.metadata.name)
        try:
            recorded = json.loads((place / "server.json").read_text())
        except (OSError, ValueError):
            recorded = {}
        if recorded.get("pid") != pid or recorded.get("bento") != outputs.get("bento"):
            return Observation(exists=True, drift=f"the server on {url} is not the one state names "
                                                  f"(bento {recorded.get('bento')!s}, not {outputs.get('bento')})")
        if not supervise.answers(f"{url}/livez"):
            return Observation(exists=True, drift=f"the server (pid {pid}) does not answer {url}/livez")
        return Observation(exists=True)

    def diff(self, resource: Resource, before: Mapping[str, Any], after: Mapping[str, Any]) -> Diff:
        return Diff.replacing(before, after)

    def apply(self, request: StepRequest, runtime: Runtime) -> StepResult:
        from mlspec_serve.step import serve

        return StepResult(serve(request, runtime))

    def destroy(self, request: StepRequest, runtime: Runtime) -> None:
        """Stop the server state names, if it is still the one mlspec started."""
        from mlspec_serve import supervise
        from mlspec_serve.step import _ours

        outputs = request.previous.outputs if request.previous is not None else {}
        pid = int(outputs.get("pid") or 0)
        name = request.resource.envelope.metadata.name
        if pid and supervise.alive(pid) and _ours(request.workdir, name, pid):
            supervise.stop(pid)
            runtime.log(f"{request.address}: stopped the server (pid {pid})")

    def estimate(self, resource: Resource, previous: ResourceState | None) -> Estimate:
        seconds = float((previous.outputs if previous is not None else {}).get("seconds") or 0)
        if seconds:
            return Estimate(seconds=seconds, basis="the last run (bento build and cold start)")
        return Estimate(seconds=FIRST_GUESS_SECONDS, basis="a first guess: bento build and cold start")
