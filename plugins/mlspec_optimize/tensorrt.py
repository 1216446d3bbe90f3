"""TensorRT engines: build one from an ONNX file, run it from numpy, and say where it can run.

A TensorRT engine (a "plan") is not a portable model like ONNX: it holds kernels chosen and compiled
for one GPU architecture by one TensorRT release. It deserializes only with the TensorRT version that
built it (without the version-compatible mode, which we do not use) and its tactics were timed on that
GPU, so an engine is bound to a `Machine`: the TensorRT version, the GPU and its compute capability,
the driver's CUDA version and the platform. mlspec records that machine beside each engine and rebuilds
(`drift`) rather than load a plan somewhere it was not made for.

Networks are always strongly typed. TensorRT 11 removed weak typing (`BuilderFlag.FP16`, `INT8`, ...):
every tensor's type follows from the ONNX graph, so reduced precision comes from the graph itself (Cast
nodes for fp16/bf16, explicit QuantizeLinear/DequantizeLinear for int8). We build the same way on
TensorRT 10 (`NetworkDefinitionCreationFlag.STRONGLY_TYPED`) so an engine means the same on both, and
never set a precision builder flag.

Where the API comes from: the TensorRT Python bindings' source in NVIDIA/TensorRT
(python/src/infer/pyCore.cpp, python/src/parsers/pyOnnx.cpp and python/docstrings/, compared on the
release/10.0, release/10.13 and main = 11.1 branches), the Python API reference
(docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/infer/Core/Builder.html) and the
migration guide "Removed Python APIs and Replacements" for 10.x -> 11.x
(docs.nvidia.com/deeplearning/tensorrt/latest/api/migration/tensorrt-10x-to-11x-python-api-reference.html).

`tensorrt` and `torch` are imported inside the functions that need them: plans call `machine()` on
machines without either, and importing this module must stay cheap there.
"""

from __future__ import annotations

import dataclasses
import functools
import platform
import re
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# The distributions that install the `tensorrt` module: the meta package and the CUDA-specific wheels.
TRT_PACKAGES = ("tensorrt", "tensorrt-cu12", "tensorrt-cu13", "tensorrt_cu12", "tensorrt_cu13")

NO_GPU = "no NVIDIA GPU is visible (nvidia-smi found none)"
NO_TENSORRT = "TensorRT is not installed (pip install tensorrt)"
NVIDIA_SMI_TIMEOUT_S = 10
LOG_PREFIX = "tensorrt: "
KEPT_ERRORS = 5  # the last TensorRT errors quoted in a BuildFailed

# TensorRT DataType member names -> torch dtype names (pyFoundationalTypes.cpp, `py::enum_<DataType>`).
# FP8, INT4, FP4 and E8M0 have no numpy counterpart to feed or read, so they are not here.
TORCH_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT32": "int32", "INT64": "int64",
                "INT8": "int8", "UINT8": "uint8", "BOOL": "bool"}


@dataclass(frozen=True)
class Machine:
    """What an engine is bound to: it runs only where these match."""

    tensorrt: str | None  # TensorRT version, from importlib.metadata (no import of tensorrt), None when absent
    gpu: str | None  # e.g. "NVIDIA H100 80GB HBM3", None when no GPU
    compute_capability: str | None  # "9.0"
    cuda: str | None  # the driver's CUDA version as nvidia-smi reports it, "12.4"
    platform: str  # f"{sys.platform}-{platform.machine()}", e.g. "linux-x86_64"

    def to_json(self) -> dict[str, str | None]:
        """The form recorded beside an engine, which `drift` compares with a later machine."""
        return dataclasses.asdict(self)

    def missing(self) -> str | None:
        """Why an engine cannot be built or run here, or None.

        The GPU comes first: without one, installing TensorRT would not help.
        """
        if self.gpu is None:
            return NO_GPU
        if self.tensorrt is None:
            return NO_TENSORRT
        return None


@functools.cache
def machine() -> Machine:
    """This machine, probed once per process: plans call it, so it spawns nvidia-smi at most twice."""
    gpu = _gpu()
    name, capability = gpu if gpu is not None else (None, None)
    cuda = _cuda_version(_nvidia_smi()) if gpu is not None else None
    return Machine(tensorrt=_tensorrt_version(), gpu=name, compute_capability=capability, cuda=cuda,
                   platform=f"{sys.platform}-{platform.machine()}")


def _tensorrt_version() -> str | None:
    """The installed TensorRT's version from its distribution metadata: importing tensorrt loads CUDA libraries."""
    from importlib import metadata  # here, not at the top: it is most of this module's import time

    for package in TRT_PACKAGES:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return None


def _nvidia_smi(*args: str) -> str | None:
    """nvidia-smi's output, or None for any failure: no binary, no driver, a hung driver (the timeout)."""
    try:
        done = subprocess.run(["nvidia-smi", *args], capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _gpu() -> tuple[str, str] | None:
    """The first GPU's name and compute capability; the engine is built for (and on) that one."""
    return _parse_gpu(_nvidia_smi("--query-gpu=name,compute_cap", "--format=csv,noheader"))


def _parse_gpu(text: str | None) -> tuple[str, str] | None:
    """`NVIDIA H100 80GB HBM3, 9.0` -> (name, "9.0"); anything else (no line, "[N/A]") means no usable GPU."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines or "," not in lines[0]:
        return None
    name, capability = (part.strip() for part in lines[0].rsplit(",", 1))
    if not name or re.fullmatch(r"\d+\.\d+", capability) is None:
        return None
    return name, capability


def _cuda_version(text: str | None) -> str | None:
    """The CUDA version in nvidia-smi's header (`CUDA Version: 12.4`): the newest CUDA the driver supports."""
    found = re.search(r"CUDA Version\s*:\s*(\d+(?:\.\d+)*)", text or "")
    return found.group(1) if found else None


_LABELS = {"tensorrt": "TensorRT", "gpu": "GPU", "compute_capability": "compute capability", "cuda": "CUDA",
           "platform": "platform"}


def drift(recorded: Mapping[str, str | None], now: Machine) -> str | None:
    """What changed since an engine was built, or None: a changed machine means the engine must be rebuilt.

    Only the keys `recorded` has are compared, so a record from before a key existed does not force a rebuild.
    """
    current = now.to_json()
    changes = [f"{label} changed ({_shown(recorded[key])} -> {_shown(current[key])})"
               for key, label in _LABELS.items() if key in recorded and recorded[key] != current[key]]
    return "; ".join(changes) or None


def _shown(value: str | None) -> str:
    return "none" if value is None else value


@dataclass(frozen=True)
class Shape:
    """One optimization profile for one input: TensorRT tunes for `opt` and accepts anything in [min, max]."""

    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]


def profile_shapes(inputs: list[tuple[str, tuple[int | str, ...]]], batch: tuple[int, int, int],
                   sequence: tuple[int, int, int] | None) -> dict[str, Shape]:
    """Input dims with 'batch' / 'sequence' named dynamic dims (others are ints) -> min/opt/max shapes.

    Any other dynamic dimension is refused: TensorRT needs a range for every one, and guessing one would
    build an engine that fails at serve time.
    """
    ranges: dict[str, tuple[int, int, int]] = {"batch": _checked_range("batch", batch)}
    if sequence is not None:
        ranges["sequence"] = _checked_range("sequence", sequence)
    shapes: dict[str, Shape] = {}
    for name, dims in inputs:
        triples = [_dim_range(name, dim, ranges) for dim in dims]
        shapes[name] = Shape(min=tuple(t[0] for t in triples), opt=tuple(t[1] for t in triples),
                             max=tuple(t[2] for t in triples))
    return shapes


def _checked_range(what: str, bounds: tuple[int, int, int]) -> tuple[int, int, int]:
    low, opt, high = bounds
    if not 1 <= low <= opt <= high:
        raise ValueError(f"the {what} range must have 1 <= min <= opt <= max, got {bounds}")
    return low, opt, high


def _dim_range(name: str, dim: int | str, ranges: Mapping[str, tuple[int, int, int]]) -> tuple[int, int, int]:
    if isinstance(dim, int):
        if dim < 0:
            raise ValueError(f"input {name!r} has an unnamed dynamic dimension ({dim}); name it 'batch' or 'sequence'")
        return dim, dim, dim
    if dim in ranges:
        return ranges[dim]
    if dim == "sequence":
        raise ValueError(f"input {name!r} has a 'sequence' dimension but no sequence range was given")
    raise ValueError(f"input {name!r} has a dynamic dimension {dim!r}; only 'batch' and 'sequence' can be profiled")


class BuildFailed(Exception):
    """TensorRT could not make an engine; the message says what failed (parser errors, an empty build)."""


def build(onnx_path: Path, profiles: list[dict[str, Shape]], *, workspace_bytes: int,
          timing_cache: bytes | None, log: Callable[[str], None]) -> tuple[bytes, bytes]:
    """Parse the ONNX file, build a strongly typed engine, and return (plan, timing cache after the build).

    The timing cache is returned so the next build on the same machine skips re-timing tactics: that
    is most of a build's time, and reusing it also makes rebuilds pick the same kernels.
    """
    if not onnx_path.is_file():
        raise BuildFailed(f"the ONNX file {onnx_path} does not exist")
    try:
        trt = _import_tensorrt()
    except ImportError as error:
        raise BuildFailed(str(error)) from error
    logger = _Forward(log)
    trt_logger = _trt_logger(trt, logger)
    builder = trt.Builder(trt_logger)
    network = builder.create_network(_network_flags(trt))
    parser = trt.OnnxParser(network, trt_logger)
    # parse_from_file (not parse(bytes)) so weights stored as external data beside the file are found.
    if not parser.parse_from_file(str(onnx_path)):
        raise BuildFailed(_parser_failure(parser, onnx_path))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    _add_profiles(builder, network, config, profiles)
    # The cache must outlive the build; set_timing_cache ties it to the config (py::keep_alive<1, 2>).
    _attach_timing_cache(config, timing_cache, log)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise BuildFailed(_empty_build(onnx_path, workspace_bytes, logger.errors))
    return bytes(plan), bytes(config.get_timing_cache().serialize())


def _import_tensorrt() -> Any:
    try:
        import tensorrt as trt  # type: ignore[import-not-found,unused-ignore]
    except ImportError as error:
        raise ImportError(f"{NO_TENSORRT}: {error}") from error
    return trt


def _major(version: str) -> int:
    found = re.match(r"\d+", version)
    return int(found.group()) if found else 0


def _network_flags(trt: Any) -> int:
    """create_network's flags for a strongly typed network on this TensorRT.

    TensorRT 11 is strongly typed always; STRONGLY_TYPED is kept there but documented "[DEPRECATED] ...
    ignored" and EXPLICIT_BATCH is gone (pyCore.cpp, `py::enum_<NetworkDefinitionCreationFlag>` on main),
    so 11 gets no flags. TensorRT 10 needs STRONGLY_TYPED and ignores the deprecated EXPLICIT_BATCH, which
    only releases before 10 (implicit batch still possible) need.
    """
    major = _major(str(getattr(trt, "__version__", "0")))
    if major >= 11:
        return 0
    flag = trt.NetworkDefinitionCreationFlag
    if not hasattr(flag, "STRONGLY_TYPED"):
        raise BuildFailed(f"TensorRT {trt.__version__} cannot build strongly typed networks; mlspec needs TensorRT 10+")
    flags = 1 << int(flag.STRONGLY_TYPED)
    if major < 10 and hasattr(flag, "EXPLICIT_BATCH"):
        flags |= 1 << int(flag.EXPLICIT_BATCH)
    return flags


def _parser_failure(parser: Any, onnx_path: Path) -> str:
    """Every parser error with the ONNX node it names: that node is what to change or cast in the export."""
    errors = [_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
    return f"TensorRT could not parse {onnx_path}: " + ("; ".join(errors) or "no error was reported")


def _parser_error(error: Any) -> str:
    """One IParserError. desc()/node() exist in every release; node_name()/node_operator() came with
    TensorRT 10.0 (pyOnnx.cpp, `py::class_<IParserError>` on release/10.0 and main), hence the guards."""
    where: list[str] = []
    node = int(error.node()) if hasattr(error, "node") else -1
    if node >= 0:
        where.append(f"node {node}")
    name = error.node_name() if hasattr(error, "node_name") else ""
    if name:
        where.append(repr(name))
    operator = error.node_operator() if hasattr(error, "node_operator") else ""
    if operator:
        where.append(f"({operator})")
    location = f" at {' '.join(where)}" if where else ""
    return f"{error.desc()}{location}"


def _add_profiles(builder: Any, network: Any, config: Any, profiles: list[dict[str, Shape]]) -> None:
    """One optimization profile per entry; every dynamic network input needs a range in each of them."""
    inputs = {network.get_input(i).name: network.get_input(i) for i in range(network.num_inputs)}
    dynamic = sorted(name for name, tensor in inputs.items() if any(int(d) < 0 for d in tensor.shape))
    if dynamic and not profiles:
        raise BuildFailed(f"inputs {dynamic} have dynamic dimensions but no optimization profile was given")
    for index, shapes in enumerate(profiles):
        profile = builder.create_optimization_profile()
        for name in dynamic:
            if name not in shapes:
                raise BuildFailed(f"optimization profile {index} has no shape for the dynamic input {name!r}")
        for name, shape in shapes.items():
            if name not in inputs:
                raise BuildFailed(f"optimization profile {index} names {name!r}, which is not an input of the "
                                  f"network (inputs: {sorted(inputs)})")
            _check_rank(index, name, shape, len(inputs[name].shape))
            profile.set_shape(name, shape.min, shape.opt, shape.max)
        if not profile or config.add_optimization_profile(profile) < 0:
            raise BuildFailed(f"optimization profile {index} is invalid: {shapes}")


def _check_rank(index: int, name: str, shape: Shape, rank: int) -> None:
    if not len(shape.min) == len(shape.opt) == len(shape.max) == rank:
        raise BuildFailed(f"optimization profile {index} gives {name!r} shapes of rank "
                          f"{len(shape.min)}/{len(shape.opt)}/{len(shape.max)}; the input has rank {rank}")


def _attach_timing_cache(config: Any, serialized: bytes | None, log: Callable[[str], None]) -> None:
    """Use the cache given, or a fresh one when there is none or TensorRT rejects it.

    set_timing_cache(cache, ignore_mismatch=False) refuses a cache made on another device: ignoring the
    mismatch would reuse timings from a different GPU, so a fresh cache is the honest fallback.
    """
    cache = config.create_timing_cache(serialized) if serialized else None
    if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
        return
    if serialized:
        log(f"{LOG_PREFIX}the timing cache given does not fit this GPU or TensorRT; starting a fresh one")
    # create_timing_cache(b"") makes an empty cache (pyCoreDoc.h, IBuilderConfigDoc::create_timing_cache).
    config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)


def _empty_build(onnx_path: Path, workspace_bytes: int, errors: Sequence[str]) -> str:
    said = f" TensorRT said: {' | '.join(errors[-KEPT_ERRORS:])}." if errors else ""
    return (f"TensorRT could not build an engine from {onnx_path.name}: build_serialized_network returned None."
            f"{said} Try a bigger workspace (now {workspace_bytes} bytes) and read the TensorRT messages in the log.")


class _Forward:
    """Where TensorRT's messages go: WARNING and above to `log`, and the errors kept for a BuildFailed."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.errors: list[str] = []

    def message(self, severity: int, error_level: int, warning_level: int, text: str) -> None:
        # Severity counts down: INTERNAL_ERROR 0, ERROR 1, WARNING 2, INFO 3, VERBOSE 4 (pyCore.cpp, ILogger).
        if severity <= error_level:
            self.errors.append(text)
        if severity <= warning_level:
            self.log(f"{LOG_PREFIX}{text}")


def _trt_logger(trt: Any, forward: _Forward) -> Any:
    """A trt.ILogger subclass: TensorRT calls its log() from C++ (the PyLogger trampoline in pyCore.cpp)."""
    severity = trt.ILogger.Severity
    error_level, warning_level = int(severity.ERROR), int(severity.WARNING)

    class Logger(trt.ILogger):  # type: ignore[misc]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)  # pybind11 trampolines need the base initialised explicitly

        def log(self, level: Any, msg: str) -> None:
            forward.message(int(level), error_level, warning_level, msg)

    return Logger()


class Engine:
    """A deserialized engine with one execution context, for inference from numpy."""

    def __init__(self, plan: bytes, log: Callable[[str], None] = print) -> None:
        trt, torch = _import_tensorrt(), _import_torch()
        if not torch.cuda.is_available():
            raise RuntimeError("a TensorRT engine needs a CUDA GPU, and torch sees none")
        self._trt, self._torch = trt, torch
        self._logger = _trt_logger(trt, _Forward(log))
        self._runtime = trt.Runtime(self._logger)  # kept: the engine must not outlive its runtime
        self._engine = self._runtime.deserialize_cuda_engine(plan)
        if self._engine is None:
            raise RuntimeError("TensorRT could not deserialize the engine: it was built by another TensorRT "
                               "version or for another GPU (see the tensorrt messages in the log)")
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise RuntimeError("TensorRT could not create an execution context (out of GPU memory?)")
        # A stream of our own: TensorRT warns that the default stream costs extra device synchronizations.
        self._stream = torch.cuda.Stream()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        mode = trt.TensorIOMode
        self._inputs = [n for n in names if self._engine.get_tensor_mode(n) == mode.INPUT]
        self._outputs = [n for n in names if self._engine.get_tensor_mode(n) == mode.OUTPUT]

    @property
    def inputs(self) -> list[str]:
        return list(self._inputs)

    @property
    def outputs(self) -> list[str]:
        return list(self._outputs)

    def run(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        """Run on `feeds` (input name -> array) and return the first output as float32 on the host.

        Inputs are cast to the engine's input dtypes, since the strongly typed engine fixes them at build.
        """
        torch = self._torch
        self._check_feeds(feeds)
        arrays = {name: _host_array(feeds[name]) for name in self._inputs}
        self._select_profile({name: tuple(array.shape) for name, array in arrays.items()})
        with torch.cuda.stream(self._stream):
            tensors = {name: self._device_input(name, array) for name, array in arrays.items()}
            tensors.update({name: self._device_output(name) for name in self._outputs})
            for name, tensor in tensors.items():
                if not self._context.set_tensor_address(name, tensor.data_ptr()):
                    raise RuntimeError(f"TensorRT refused the device address of {name!r}")
            if not self._context.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError("TensorRT's execute_async_v3 failed (see the tensorrt messages in the log)")
            first = tensors[self._outputs[0]].to(torch.float32)
        self._stream.synchronize()
        return first.cpu().numpy()  # type: ignore[no-any-return]

    def synchronize(self) -> None:
        """Wait for the work queued on the engine's stream, e.g. before timing a run."""
        self._stream.synchronize()

    def _check_feeds(self, feeds: Mapping[str, Any]) -> None:
        missing = [name for name in self._inputs if name not in feeds]
        unknown = [name for name in feeds if name not in self._inputs]
        if missing or unknown:
            raise ValueError(f"the engine takes inputs {self._inputs}; missing {missing}, unknown {unknown}")

    def _select_profile(self, shapes: Mapping[str, tuple[int, ...]]) -> None:
        """Switch the context to the first optimization profile that admits every input's shape."""
        count = max(1, int(self._engine.num_optimization_profiles))
        for index in range(count):
            if all(self._fits(name, shape, index) for name, shape in shapes.items()):
                self._use_profile(index)
                return
        name = next(n for n, shape in shapes.items() if not self._fits(n, shape, 0))
        raise ValueError(f"input {name!r} has shape {shapes[name]}, outside every profile of the engine: "
                         f"{self._ranges(name, count)}")

    def _use_profile(self, index: int) -> None:
        """Input shapes must be set again after a switch, which `run` does right after."""
        if index == self._context.active_optimization_profile:
            return
        if not self._context.set_optimization_profile_async(index, self._stream.cuda_stream):
            raise RuntimeError(f"TensorRT could not switch the execution context to optimization profile {index}")

    def _fits(self, name: str, shape: tuple[int, ...], index: int) -> bool:
        declared = _dims(self._engine.get_tensor_shape(name))
        if len(declared) != len(shape):
            return False
        if all(d >= 0 for d in declared):  # a static input: no profile range, its shape is fixed
            return declared == shape
        low, _, high = (_dims(d) for d in self._engine.get_tensor_profile_shape(name, index))
        return all(lo <= s <= hi for lo, s, hi in zip(low, shape, high, strict=True))

    def _ranges(self, name: str, count: int) -> str:
        declared = _dims(self._engine.get_tensor_shape(name))
        if all(d >= 0 for d in declared):
            return f"the input's shape is fixed at {declared}"
        ranges = []
        for index in range(count):
            low, _, high = (_dims(d) for d in self._engine.get_tensor_profile_shape(name, index))
            ranges.append(f"profile {index}: min {low}, max {high}")
        return "; ".join(ranges)

    def _device_input(self, name: str, array: np.ndarray) -> Any:
        torch = self._torch
        dtype = self._torch_dtype(name)
        tensor = torch.from_numpy(array).to(device="cuda", dtype=dtype).contiguous()
        if not self._context.set_input_shape(name, tuple(array.shape)):
            raise ValueError(f"TensorRT refused shape {tuple(array.shape)} for input {name!r}")
        return tensor

    def _device_output(self, name: str) -> Any:
        shape = _dims(self._context.get_tensor_shape(name))
        if any(d < 0 for d in shape):
            raise RuntimeError(f"output {name!r} has a data-dependent shape {shape}, which mlspec cannot allocate")
        return self._torch.empty(shape, dtype=self._torch_dtype(name), device="cuda")

    def _torch_dtype(self, name: str) -> Any:
        kind = self._engine.get_tensor_dtype(name)
        label = getattr(kind, "name", str(kind))
        if label not in TORCH_DTYPES:
            raise TypeError(f"engine tensor {name!r} has dtype {label}, which has no numpy/torch counterpart here")
        return getattr(self._torch, TORCH_DTYPES[label])


def _import_torch() -> Any:
    import torch

    return torch


def _host_array(value: Any) -> np.ndarray:
    """A C-contiguous, writable numpy array: torch.from_numpy shares its memory, and warns on read-only arrays."""
    import numpy as np

    array = np.ascontiguousarray(value)
    return array if array.flags.writeable else array.copy()


def _dims(dims: Any) -> tuple[int, ...]:
    """A trt.Dims (a sequence of ints) as a tuple."""
    return tuple(int(d) for d in dims)
