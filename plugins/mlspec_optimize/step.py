"""One Optimization step: the champion's files, the export, the target's runtime, parity, the
benchmark, and the artifacts stored by digest.

The order is the promise: nothing is stored until the optimized model has been run on the Model's
own validation and test splits and found to be the same model within the spec's tolerance, and (when
the spec asks) to pay for itself. A step that fails leaves state as it was: dependents keep serving
what they served.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlspec_torch.inference import Stored, load

from mlspec.sdk import (
    Address,
    ArtifactStore,
    DatasetOutputs,
    ModelOutputs,
    Runtime,
    StepFailed,
    StepRequest,
    listing_digest,
)
from mlspec_optimize import bench, ort, parity
from mlspec_optimize.export import export, output_name

if TYPE_CHECKING:
    import numpy as np

PARITY_BATCH = 64  # rows per call when running a split through a model with no profile to bound it


class ParityFailed(StepFailed):
    """The optimized model is not the same model (outputs or metrics beyond the tolerance)."""


class TooSlow(StepFailed):
    """`benchmark.min_speedup` was asked for, and the optimized model does not reach it."""


@dataclass
class Built:
    """The optimized artifact, made and loaded: its files (name -> local path) and a way to run it."""

    files: dict[str, Path]
    run: Callable[[Mapping[str, Any]], np.ndarray]
    runtime: str  # onnxruntime | tensorrt
    provider: str
    format: str  # onnx | tensorrt
    extra: dict[str, Any] = field(default_factory=dict)


def model_address(spec: Any) -> str:
    return str(Address.parse(spec.model, default_kind="Model"))


def optimize(request: StepRequest, runtime: Runtime) -> dict[str, Any]:
    spec, address = request.spec, str(request.address)
    source_address = model_address(spec)
    model = request.published(source_address, ModelOutputs)
    store = ArtifactStore(request.artifacts, request.workdir)
    (request.workdir / ".mlspec").mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".optimize-", dir=request.workdir / ".mlspec"))
    started = time.monotonic()

    def log(line: str) -> None:
        runtime.log(f"{address}: {line}")

    try:
        source = load(store.fetch({k: v.model_dump() for k, v in model.files.items()}, scratch / "model"),
                      request.workdir, source_address)
        validation = _split(store, source, "validation", scratch) or _split(store, source, "test", scratch)
        test = _split(store, source, "test", scratch)
        if validation is None or test is None:
            raise StepFailed(f"{address}: {source_address}'s files name no test split to check parity on; "
                             f"retrain it: mlspec apply --replace {source_address}")
        feeds = {"validation": source.encode(validation), "test": source.encode(test)}
        _check_sequence(spec, source, address)
        runtime.check(address)
        moment = time.monotonic()
        exported = export(source, scratch / "export", opset=spec.opset, address=source_address,
                          precision=spec.precision if spec.target == "tensorrt" else "fp32",
                          max_sequence=_max_sequence(spec, source))
        log(f"exported {source_address} v{model.version} to ONNX (opset {spec.opset}) in "
            f"{time.monotonic() - moment:.1f}s")
        runtime.check(address)
        built = _build(request, source, exported.graph, scratch, store, log)
        if built.provider.startswith("CUDA") or built.runtime == "tensorrt":
            source.to("cuda")
        checked = _parity(spec, source, built, feeds, test, address)
        log(f"parity: {checked.summary()}")
        runtime.check(address)
        figures = _benchmark(spec, source, built, feeds["validation"], runtime, address)
        sizes = {"original": _size(source.directory, "model.safetensors"),
                 "optimized": sum(p.stat().st_size for p in built.files.values())}
        stored = {name: store.put(path, _suffix(name)).to_json() for name, path in sorted(built.files.items())}
        return {
            "digest": listing_digest((name, ref["digest"]) for name, ref in sorted(stored.items())),
            "format": built.format, "runtime": built.runtime, "provider": built.provider,
            "precision": spec.effective_precision, "files": stored,
            "entry": "model.plan" if built.format == "tensorrt" else "model.onnx",
            "inputs": [i.to_json() for i in source.inputs], "output": output_name(source.task),
            "profiles": [p.model_dump(mode="json", exclude_none=True) for p in spec.profiles],
            "source": {"address": source_address, "version": model.version, "digest": model.digest,
                       "files": {k: v.model_dump(mode="json") for k, v in model.files.items()}},
            "source_digest": model.digest, "parity": checked.to_json(), "benchmark": figures,
            "sizes": sizes,
            **built.extra, "seconds": round(time.monotonic() - started, 3),
            "summary": f"{built.runtime} {spec.effective_precision} on {built.provider}, {checked.summary()}, "
                       + ", ".join(f"{data['speedup']:.2f}x at batch {size}" for size, data in figures.items()),
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _build(request: StepRequest, source: Stored, graph: Path, scratch: Path, store: ArtifactStore,
           log: Callable[[str], None]) -> Built:
    spec = request.spec
    if spec.target == "tensorrt":
        return _tensorrt(request, source, graph, scratch, store, log)
    chosen = ort.providers(spec.accelerator)
    served = scratch / "served"
    served.mkdir()
    if spec.target == "onnx":
        final = graph
    elif spec.dynamic_int8:
        fused = ort.fuse_transformer(graph, scratch / "fused.onnx") if _transformer(source) else graph
        final = ort.quantize_dynamic(fused, served / "model.onnx", scratch)
        log("quantized to dynamic int8 (weights int8, activations at run time)")
    else:
        fused = ort.fuse_transformer(graph, scratch / "fused.onnx") if _transformer(source) else graph
        final = ort.optimize(fused, served / "model.onnx", chosen)
        log(f"ONNX Runtime graph optimizations applied ({'transformer fusions, ' if fused != graph else ''}"
            "extended level)")
    session = ort.Session(final, chosen, what=f"the {spec.effective_precision} graph")
    files = {p.name: p for p in sorted(final.parent.iterdir()) if p.is_file() and p.name.startswith(final.name)}
    return Built({("model.onnx" + name.removeprefix(final.name)): path for name, path in files.items()},
                 session.run, "onnxruntime", session.provider, "onnx")


def _tensorrt(request: StepRequest, source: Stored, graph: Path, scratch: Path, store: ArtifactStore,
              log: Callable[[str], None]) -> Built:
    from mlspec_optimize import tensorrt as trt

    spec, address = request.spec, str(request.address)
    here = trt.machine()
    missing = here.missing()
    if missing is not None:
        raise StepFailed(f"{address}: a TensorRT engine is built on the GPU it will run on, and {missing}; "
                         "apply it on a machine with an NVIDIA GPU and TensorRT (nothing was built)")
    if spec.precision == "int8":
        graph = ort.quantize_qdq(graph, scratch / "qdq.onnx", scratch, _calibration(request, source, store, scratch))
        log("calibrated int8 (symmetric Q/DQ) for a strongly typed network")
    dims = [(i.name, i.dims) for i in source.inputs]
    try:
        shapes = [trt.profile_shapes(dims, (p.batch.min, p.batch.opt, p.batch.max),
                                     (p.sequence.min, p.sequence.opt, p.sequence.max) if p.sequence else None)
                  for p in spec.profiles]
    except ValueError as err:  # a text model's profile without `sequence`, say
        raise StepFailed(f"{address}: spec.profiles do not fit {model_address(spec)}'s inputs: {err}") from None
    cache_name = timing_cache_name(here)
    moment = time.monotonic()
    try:
        plan, cache = trt.build(graph, shapes, workspace_bytes=spec.workspace_mib << 20,
                                timing_cache=store.named(cache_name), log=log)
    except trt.BuildFailed as err:
        raise StepFailed(f"{address}: TensorRT could not build the engine: {err}") from None
    store.set_named(cache_name, cache)
    log(f"TensorRT {here.tensorrt} engine built on {here.gpu} in {time.monotonic() - moment:.1f}s")
    path = scratch / "model.plan"
    path.write_bytes(plan)
    try:
        engine = trt.Engine(plan, log)
    except (RuntimeError, TypeError) as err:
        raise StepFailed(f"{address}: the engine TensorRT built does not load here: {err}") from None
    return Built({"model.plan": path}, engine.run, "tensorrt", f"TensorRT {here.tensorrt}", "tensorrt",
                 {"machine": here.to_json(), "timing_cache": cache_name})


def timing_cache_name(here: Any) -> str:
    """The timing cache's name in the artifact store: per GPU and TensorRT version, as its format is."""
    gpu = "".join(c if c.isalnum() else "-" for c in (here.gpu or "none")).strip("-").lower()
    return f"tensorrt/timing-{gpu}-sm{here.compute_capability}-trt{here.tensorrt}.cache"


def _calibration(request: StepRequest, source: Stored, store: ArtifactStore, scratch: Path
                 ) -> Iterator[Mapping[str, Any]]:
    spec = request.spec.calibration
    dataset = str(Address.parse(spec.dataset, default_kind="Dataset"))
    outputs = request.published(dataset, DatasetOutputs)
    split = outputs.split(spec.split)
    if split is None:
        raise StepFailed(f"{request.address}: {dataset} has no split `{spec.split}` for calibration")
    import pyarrow.parquet as pq

    table = pq.read_table(store.local(split.model_dump(), scratch))
    table = table.slice(0, min(spec.samples, table.num_rows))
    encoded = source.encode(table)
    rows = len(next(iter(encoded.values())))
    for start in range(0, rows, 8):
        yield {name: array[start : start + 8] for name, array in encoded.items()}


def _parity(spec: Any, source: Stored, built: Built, feeds: Mapping[str, Mapping[str, Any]], test: Any,
            address: str) -> parity.Parity:
    batch = max((p.batch.max for p in spec.profiles), default=PARITY_BATCH)
    original = _batched(source.run, feeds["validation"], batch)
    optimized = _batched(built.run, feeds["validation"], batch)
    targets = source.targets(test)
    before = source.score(_batched(source.run, feeds["test"], batch), targets)
    after = source.score(_batched(built.run, feeds["test"], batch), targets)
    atol, rtol = spec.tolerances()
    verdict = parity.compare(original, optimized, atol=atol, rtol=rtol, metrics_before=before, metrics_after=after,
                             max_metric_drop=spec.tolerance.max_metric_drop)
    if not verdict.passed:
        raise ParityFailed(f"{address}: the {spec.effective_precision} model is not the same model as "
                           f"{model_address(spec)}: " + "; ".join(verdict.failures))
    return verdict


def _benchmark(spec: Any, source: Stored, built: Built, feeds: Mapping[str, Any], runtime: Runtime,
               address: str) -> dict[str, Any]:
    results: dict[int, dict[str, bench.Timing]] = {}
    for size in spec.benchmark.batch_sizes:
        batch = _rows(feeds, size)
        runners: dict[str, Callable[[], Any]] = {"original": partial(source.run, batch),
                                                 "optimized": partial(built.run, batch)}
        results[size] = bench.compare(runners, size, warmup=spec.benchmark.warmup,
                                      iterations=spec.benchmark.iterations, cancelled=lambda: runtime.check(address))
    speedups = bench.speedups(results)
    figures = {str(size): {"original": r["original"].to_json(), "optimized": r["optimized"].to_json(),
                           "speedup": round(speedups[size], 3)} for size, r in results.items()}
    shown = ", ".join(f"batch {size}: {speedups[size]:.2f}x" for size in results)
    runtime.log(f"{address}: benchmark (p50, original / optimized): {shown}")
    wanted = spec.benchmark.min_speedup
    if wanted is not None:
        slow = {size: s for size, s in speedups.items() if s < wanted}
        if slow:
            raise TooSlow(f"{address}: the optimized model does not pay for itself: "
                          + ", ".join(f"{s:.2f}x at batch {size}" for size, s in slow.items())
                          + f", below min_speedup {wanted:g}x (p50 latency, original / optimized)")
    return figures


def _batched(run: Callable[[Mapping[str, Any]], np.ndarray], feeds: Mapping[str, Any], batch: int) -> np.ndarray:
    import numpy as np

    rows = len(next(iter(feeds.values())))
    parts = [run({name: array[start : start + batch] for name, array in feeds.items()})
             for start in range(0, rows, batch)]
    return np.concatenate(parts) if parts else np.zeros((0,), dtype=np.float32)


def _rows(feeds: Mapping[str, Any], size: int) -> dict[str, Any]:
    """`size` rows of real inputs (repeated when the split is smaller): what the benchmark feeds."""
    import numpy as np

    rows = len(next(iter(feeds.values())))
    index = np.arange(size) % max(rows, 1)
    return {name: np.ascontiguousarray(array[index]) for name, array in feeds.items()}


def _split(store: ArtifactStore, source: Stored, role: str, scratch: Path) -> Any:
    import pyarrow.parquet as pq

    ref = source.evaluated_on(role)
    return pq.read_table(store.local(dict(ref), scratch)) if ref else None


def _transformer(source: Stored) -> bool:
    return (source.data.get("architecture") or {}).get("family") in ("bert", "distilbert", "roberta")


def _max_sequence(spec: Any, source: Stored) -> int | None:
    found = [p.sequence.max for p in spec.profiles if p.sequence is not None]
    return max([*found, int(source.data.get("max_length") or 0)]) or None


def _check_sequence(spec: Any, source: Stored, address: str) -> None:
    """Text inputs are padded to the tokenizer's max length: a profile must admit it."""
    length = source.data.get("max_length")
    if not length or spec.target != "tensorrt":
        return
    for i, profile in enumerate(spec.profiles):
        if profile.sequence is not None and profile.sequence.max < length:
            raise StepFailed(f"{address}: profiles[{i}].sequence.max is {profile.sequence.max}, but "
                             f"{model_address(spec)} pads its inputs to max_length {length}; raise it to {length}")


def _suffix(name: str) -> str:
    return "".join(Path(name).suffixes)[-16:]


def _size(directory: Path, name: str) -> int:
    path = directory / name
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
