"""The Optimization plugin: what the engine calls for an Optimization spec (the contract is mlspec.sdk).

Plan time stays light: library versions come from package metadata and, for a TensorRT target, one
`nvidia-smi` call says which GPU an engine would be bound to; nothing imports torch or onnxruntime.
An engine runs only on the TensorRT version, GPU and platform it was built for, so those are inputs
of the fingerprint (the plan says `inputs changed: GPU changed (A100 -> H100)`) and refresh compares
them with the machine. A stored artifact whose bytes no longer match its digest is drift: rebuilt.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from mlspec.sdk import (
    API_VERSION,
    ArtifactStore,
    Capabilities,
    Diff,
    Estimate,
    Issue,
    Observation,
    OptimizationOutputs,
    PlanContext,
    Resource,
    ResourceState,
    Runtime,
    StepRequest,
    StepResult,
)

__version__ = "0.1.0"
# What exporting and running needs, by target: (module to find, the extra that brings it).
NEEDS = {"onnx": ("onnx", "onnxruntime", "onnxscript", "torch"), "tensorrt": ("onnx", "onnxscript", "torch")}
FIRST_GUESS_SECONDS = 30.0


class OptimizationPlugin:
    api_version: ClassVar[int] = API_VERSION
    name: ClassVar[str] = "optimize"
    version: ClassVar[str] = __version__
    settings_model: ClassVar[None] = None
    capabilities: ClassVar[Capabilities] = Capabilities(publishes=OptimizationOutputs)

    def validate(self, resource: Resource) -> Iterator[Issue]:
        spec = resource.envelope.spec
        extra = "tensorrt" if spec.target == "tensorrt" else "onnx"
        absent = [m for m in NEEDS[extra] if importlib.util.find_spec(m) is None]
        if spec.dynamic_int8 or (spec.target == "tensorrt" and spec.precision == "int8"):
            absent += [] if importlib.util.find_spec("onnxruntime") else ["onnxruntime"]
        if absent:
            yield Issue(("spec", "target"), f"target `{spec.target}` needs {', '.join(sorted(set(absent)))}, "
                        "not installed here", expected=f"the {extra} extra",
                        hint=f"pip install 'mlspec[{extra},torch]' (from this repository)")

    def inputs(self, resource: Resource, context: PlanContext) -> Mapping[str, str]:
        """The libraries that make the artifact (a new exporter or runtime may make other bytes), and,
        for TensorRT, the machine an engine is bound to."""
        spec = resource.envelope.spec
        out = {name: _version(name) for name in ("torch", "onnx", "onnxscript")}
        if spec.target != "tensorrt":
            out["onnxruntime"] = _version("onnxruntime")
            return out
        from mlspec_optimize.tensorrt import machine

        here = machine()
        return {**out, **({"onnxruntime": _version("onnxruntime")} if spec.precision == "int8" else {}),
                "TensorRT": here.tensorrt or "none", "GPU": here.gpu or "none",
                "compute capability": here.compute_capability or "none", "CUDA": here.cuda or "none",
                "platform": here.platform}

    def refresh(self, resource: Resource, state: ResourceState, context: PlanContext) -> Observation:
        files = state.outputs.get("files") or {}
        store = ArtifactStore(context.artifacts, context.workdir)
        missing = store.missing(files)
        if missing:
            return Observation(exists=False, drift=f"{', '.join(missing)} deleted from the artifact store")
        if not store.remote:  # a local store costs a stat per file (the digest cache): check the bytes too
            for name, ref in sorted(files.items()):
                if context.digests.file(store.path(ref["uri"])) != ref["digest"]:
                    return Observation(exists=True, drift=f"{name} in the artifact store does not hold the bytes "
                                                          "its digest names (corrupt): rebuild")
        recorded = state.outputs.get("machine")
        if resource.envelope.spec.target == "tensorrt" and isinstance(recorded, Mapping):
            from mlspec_optimize.tensorrt import drift, machine

            moved = drift(recorded, machine())
            if moved:
                return Observation(exists=True, drift=f"rebuild: {moved}")
        return Observation(exists=True)

    def diff(self, resource: Resource, before: Mapping[str, Any], after: Mapping[str, Any]) -> Diff:
        # Every field changes the artifact or the verdict on it.
        return Diff.replacing(before, after)

    def notices(self, resource: Resource) -> Iterator[str]:
        """A TensorRT step planned where it cannot run: the plan says so before apply fails."""
        if resource.envelope.spec.target != "tensorrt":
            return
        from mlspec_optimize.tensorrt import machine

        missing = machine().missing()
        if missing:
            yield f"needs an NVIDIA GPU and TensorRT, and {missing}: apply will fail on this machine"

    def apply(self, request: StepRequest, runtime: Runtime) -> StepResult:
        from mlspec_optimize.step import optimize

        return StepResult(optimize(request, runtime))

    def destroy(self, request: StepRequest, runtime: Runtime) -> None:
        """Nothing to remove: the artifacts stay in the store until `mlspec artifacts gc`."""

    def estimate(self, resource: Resource, previous: ResourceState | None) -> Estimate:
        """The last run's time, and what its benchmark measured (shown in the plan and the PR comment)."""
        last = previous.outputs if previous is not None else {}
        seconds = float(last.get("seconds") or 0) or None
        figures = last.get("benchmark") or {}
        measured = "; ".join(f"batch {size} {data['speedup']:.2f}x" for size, data in figures.items()
                             if isinstance(data, Mapping) and "speedup" in data)
        if seconds is None:
            return Estimate(seconds=FIRST_GUESS_SECONDS, basis="a first guess: export, parity check and benchmark")
        return Estimate(seconds=seconds, basis="the last run" + (f" (speedup {measured})" if measured else ""))


# The distributions a module may come from: a GPU build of onnxruntime is another distribution.
DISTRIBUTIONS = {"onnxruntime": ("onnxruntime", "onnxruntime-gpu")}


def _version(package: str) -> str:
    """The release, less a local label: torch 2.13.0+cpu and 2.13.0+cu128 export the same graph, so a CPU
    CI runner and a GPU workstation must not re-plan each other's Optimizations."""
    for name in DISTRIBUTIONS.get(package, (package,)):
        try:
            return importlib.metadata.version(name).split("+")[0]
        except importlib.metadata.PackageNotFoundError:
            continue
    return "none"
