"""The Model plugin: what the engine calls for a Model spec (the contract is mlspec.sdk).

Plan time stays light: no torch import unless a spec asks for CUDA or several GPUs, which only a
look at the machine can check. Apply trains (training.run, or torchrun for `gpus > 1`), and returns
the version for the engine to register: under the alias the spec names when every gate passes, else
as `candidate` with the step held, so nothing downstream takes a model that failed its gates.
"""

from __future__ import annotations

import importlib.util
import itertools
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from mlspec.sdk import (
    API_VERSION,
    CANDIDATE,
    CHAMPION,
    ArtifactStore,
    Capabilities,
    DatasetOutputs,
    Diff,
    Estimate,
    Issue,
    MlspecError,
    ModelOutputs,
    Observation,
    PlanContext,
    Resource,
    ResourceState,
    Runtime,
    StepRequest,
    StepResult,
    Version,
    alias_record,
    listing_digest,
    paths,
    position,
)

__version__ = "0.2.0"  # 0.2: mlspec-model.json beside the weights
# Trainings in this process take turns: torch's random generators (dropout, shuffling, init) are
# process-wide, so two Models trained side by side at --parallelism 4 would each consume the other's
# random numbers and neither would be reproducible. Runs through torchrun are processes of their own.
_IN_PROCESS = threading.Lock()
# First-run throughput guesses (samples a second on a laptop CPU), until a run measures its own.
THROUGHPUT = {"text-classification": 400.0, "tabular-classification": 50_000.0, "tabular-regression": 50_000.0}


class ModelPlugin:
    api_version: ClassVar[int] = API_VERSION
    name: ClassVar[str] = "torch"
    version: ClassVar[str] = __version__
    settings_model: ClassVar[None] = None
    # Each apply is a registry version (a replace is in place: a new version never removes the old ones);
    # its gates decide whether dependents may take it; dependents receive the champion's ModelOutputs.
    capabilities: ClassVar[Capabilities] = Capabilities(publishes=ModelOutputs, registers_versions=True,
                                                        gates_dependents=True)

    def validate(self, resource: Resource, context: PlanContext | None = None) -> Iterator[Issue]:
        spec = resource.envelope.spec
        yield from _sizes(spec)
        pretrained = spec.architecture.pretrained
        root, outside = (context.workdir, context.outside) if context is not None else (None, ())
        if pretrained is not None and paths.leaves(root, pretrained, outside):
            yield Issue(("spec", "architecture", "pretrained"), f"`{pretrained}` leaves the spec repo",
                        expected="a directory inside the spec repo", hint="copy the model into the repo, or list "
                        "its directory in mlspec.yaml's `paths.outside`")
        if importlib.util.find_spec("torch") is None:
            yield Issue(("spec",), "training a Model needs torch, which is not installed",
                        expected="the torch extra", hint="pip install 'mlspec[torch]'")
            return
        resources = spec.resources
        if resources.accelerator == "cuda" or (resources.gpus > 1 and resources.accelerator != "cpu"):
            import torch

            have = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if resources.accelerator == "cuda" and have == 0:
                yield Issue(("spec", "resources", "accelerator"), "`cuda` is asked for, but no CUDA GPU is "
                            "visible on this machine", expected="a machine with an NVIDIA GPU",
                            hint="use `accelerator: auto` to train on the CPU where there is no GPU")
            elif have and resources.gpus > have:
                yield Issue(("spec", "resources", "gpus"), f"{resources.gpus} GPUs asked for, {have} visible",
                            expected=f"at most {have}")

    def inputs(self, resource: Resource, context: PlanContext) -> Mapping[str, str]:
        """The entrypoint's source files and a pretrained directory's files: code and weights the run
        depends on that no spec field shows. (The Dataset's version reaches us as its fingerprint.)"""
        architecture = resource.envelope.spec.architecture
        out: dict[str, str] = {}
        if architecture.entrypoint:
            for path in _sources(context.workdir, architecture.entrypoint.split(":")[0]):
                out[path.relative_to(context.workdir).as_posix()] = context.digests.file(path)
        if architecture.pretrained:
            root = paths.inside(context.workdir, architecture.pretrained, f"{resource.address}: pretrained",
                                context.outside)
            files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
            out[f"pretrained {architecture.pretrained}"] = listing_digest(
                (p.relative_to(root).as_posix(), context.digests.file(p)) for p in files)
        return out

    def refresh(self, resource: Resource, state: ResourceState, context: PlanContext) -> Observation:
        store = ArtifactStore(context.artifacts, context.workdir)
        missing = sorted(store.missing(state.outputs.get("files") or {}))
        if missing:
            return Observation(exists=False, drift=f"model file{'s' if len(missing) > 1 else ''} "
                                                   f"{', '.join(missing)} deleted from the artifact store")
        return Observation(exists=True)

    def diff(self, resource: Resource, before: Mapping[str, Any], after: Mapping[str, Any]) -> Diff:
        # Every field either changes the weights or the verdict on them (gates, alias): a new version.
        return Diff.replacing(before, after)

    def progress(self, resource: Resource, fingerprint: str, context: PlanContext) -> str | None:
        """What the plan says of a run an earlier apply left half done: "resume from step 1,200 of 3,000"."""
        from mlspec_torch.training import checkpoint_dir

        directory = checkpoint_dir(context.workdir, resource.address, fingerprint)
        found = sorted(directory.glob("step-*.pt")) if directory.is_dir() else []
        if not found:
            return None
        step = int(found[-1].stem.split("-")[1])
        total = _total_steps(directory)
        return f"resume from step {step:,}" + (f" of {total:,}" if total else "") + " (an earlier apply's checkpoint)"

    def apply(self, request: StepRequest, runtime: Runtime) -> StepResult:
        resource, spec = request.resource, request.spec
        current = alias_record(request.registry, CHAMPION)
        champion = current.get("metrics") if current else None
        where = _where(resource)
        from mlspec_torch.training import RunContext, checkpoint_dir, run

        _remember_total(checkpoint_dir(request.workdir, resource.address, request.fingerprint), spec, request)
        ranks = _torchrun_ranks(spec)
        if ranks:
            outputs = self._distributed(request, runtime, champion, where, ranks)
        else:
            context = RunContext(request, champion=champion, log=runtime.log, cancelled=runtime.cancelled,
                                 meter=runtime.meter, where=where)
            with _IN_PROCESS:  # torch's RNG is global: two runs side by side would draw from each other's
                outputs = run(context) or {}
        failed = [g for g in outputs["gates"] if not g["passed"]]
        if failed:
            held = "; ".join(f"gate `{g['gate']}` failed ({g['why']})" for g in failed)
            return StepResult(outputs, Version(_record(outputs), (CANDIDATE,)), held=held)
        return StepResult(outputs, Version(_record(outputs), (spec.registry.alias,)))

    def _distributed(self, request: StepRequest, runtime: Runtime, champion: Mapping[str, float] | None,
                     where: str, ranks: int) -> dict[str, Any]:
        from mlspec_torch.distributed import launch

        # The request is data: each rank rebuilds it (StepRequest.from_json); the rest is what this
        # process worked out beside it.
        job = {"request": request.to_json(), "champion": dict(champion) if champion is not None else None,
               "where": where, "accelerator": request.spec.resources.accelerator}
        (request.workdir / ".mlspec").mkdir(exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".ddp-", dir=request.workdir / ".mlspec"))
        try:
            return launch(job, ranks, scratch, runtime.log, runtime.cancelled)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def destroy(self, request: StepRequest, runtime: Runtime) -> None:
        """Nothing to remove: versions stay in the registry and the artifact store (rollback needs them)."""

    def estimate(self, resource: Resource, previous: ResourceState | None,
                 context: PlanContext | None = None) -> Estimate:
        """epochs x training rows / samples a second, plus what the last run spent around training
        (tokenizer, evaluation, saving). Rows: the Dataset's train split as state recorded it, else the
        last run's; throughput: the last run's, else a first guess for the task."""
        spec = resource.envelope.spec
        epochs = spec.hyperparameters.epochs
        rows = _train_rows(spec, context) or _int((previous.outputs if previous else {}).get("train_rows"))
        if rows is None:
            return Estimate(basis="never run before")
        last = previous.outputs if previous is not None else {}
        rate = float(last.get("samples_per_second") or 0)
        gpus = max(1, spec.resources.gpus)
        if rate > 0:
            trained = float(last.get("train_rows") or rows) * float(last.get("epochs") or epochs) / rate
            around = max(0.0, float(last.get("seconds") or 0) - trained)
            seconds = around + epochs * rows / rate
            on_gpu = float(last.get("gpu_hours") or 0) > 0
            return Estimate(seconds=seconds, gpu_hours=seconds * gpus / 3600 if on_gpu else None,
                            basis=f"{epochs} x {rows:,} rows at the last run's {rate:,.0f} samples/s")
        guess = THROUGHPUT.get(spec.task, 1000.0)
        seconds = epochs * rows / guess
        return Estimate(seconds=seconds, gpu_hours=seconds * gpus / 3600 if spec.resources.accelerator == "cuda"
                        else None, basis=f"{epochs} x {rows:,} rows at a first guess of {guess:,.0f} samples/s")


MAX_HIDDEN = 16_384  # an MLP layer wider than this is a typo more often than a plan
MAX_PARAMETERS = 1_000_000_000  # between hidden layers: ~4 GB of fp32 weights, before the optimiser's state


def _sizes(spec: Any) -> Iterator[Issue]:
    """An MLP's hidden sizes, bounded at plan time: `hidden_sizes: [60000, 60000]` would ask the
    allocator for 14 GB an hour into a run."""
    architecture = spec.architecture
    sizes = (architecture.config or {}).get("hidden_sizes") if architecture.family == "mlp" else None
    if not isinstance(sizes, list):
        return
    where = ("spec", "architecture", "config", "hidden_sizes")
    for i, size in enumerate(sizes):
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_HIDDEN:
            yield Issue((*where, i), f"hidden size {size!r} is not a layer width",
                        expected=f"a whole number from 1 to {MAX_HIDDEN:,}")
            return
    weights = sum(a * b for a, b in itertools.pairwise(sizes))
    if weights > MAX_PARAMETERS:
        yield Issue(where, f"{weights:,} weights between hidden layers ({weights * 4 / 1e9:.1f} GB in fp32)",
                    expected=f"at most {MAX_PARAMETERS:,}", hint="narrower layers, or a custom entrypoint")


def _train_rows(spec: Any, context: PlanContext | None) -> int | None:
    if context is None:
        return None
    from mlspec_torch.splits import dataset_address

    recorded = context.upstream_outputs.get(dataset_address(spec.dataset))
    if not recorded:
        return None
    try:
        split = DatasetOutputs.model_validate(recorded).split(spec.splits.train)
    except ValueError:  # not (yet) what a Dataset publishes: the estimate falls back to the last run
        return None
    return split.rows if split is not None else None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _torchrun_ranks(spec: Any) -> int | None:
    """How many ranks torchrun launches, or None to train in this process."""
    resources = spec.resources
    if resources.gpus > 1 or resources.launcher == "torchrun":
        return max(1, int(resources.gpus))
    return None


def _record(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """What the registry keeps of a version (the card and the metrics log stay in the outputs)."""
    keys = ("digest", "files", "metrics", "gates", "gates_passed", "dataset", "device", "seconds", "gpu_hours",
            "steps", "commit")
    return {k: outputs[k] for k in keys if k in outputs}


def _where(resource: Resource) -> str:
    """`specs/models/x.yaml:14:17 spec.architecture.entrypoint`: where the entrypoint is named."""
    if not resource.envelope.spec.architecture.entrypoint:
        return ""
    return position(resource, "spec", "architecture", "entrypoint")


def _sources(workdir: Path, module: str) -> list[Path]:
    """The entrypoint module's file, or every .py file of its top-level package."""
    parts = module.split(".")
    package = workdir / parts[0]
    if package.is_dir():
        return sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)
    single = workdir / f"{parts[0]}.py"
    return [single] if single.is_file() else []


def _remember_total(directory: Path, spec: Any, request: StepRequest) -> None:
    """The run's total steps beside its checkpoints, so a plan can say "of 3,000" after a kill -9."""
    from mlspec_torch.splits import dataset_outputs

    try:
        _, outputs = dataset_outputs(request, spec.dataset)
        rows = outputs.splits[spec.splits.train].rows
    except (KeyError, MlspecError):
        return  # the run itself reports what is missing
    from mlspec_torch.loop import total_steps
    from mlspec_torch.training import _settings

    batches = -(-rows // spec.hyperparameters.batch_size)
    batches //= _torchrun_ranks(spec) or 1  # each rank's share (loop._shard)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "total").write_text(str(total_steps(_settings(spec), batches)))


def _total_steps(directory: Path) -> int | None:
    try:
        return int((directory / "total").read_text())
    except (OSError, ValueError):
        return None
