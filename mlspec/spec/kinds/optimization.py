"""Optimization: turn a trained Model into a faster artifact (ONNX, ONNX Runtime, int8, TensorRT)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from mlspec.spec.kinds.base import Envelope, Issue, Need, Ref, SpecBase, Strict


class Dim(Strict):
    min: int = Field(gt=0)
    opt: int = Field(gt=0)
    max: int = Field(gt=0)

    def issues(self) -> Iterator[Issue]:
        if not self.min <= self.opt <= self.max:
            yield Issue((), f"min {self.min}, opt {self.opt}, max {self.max} are out of order",
                        expected="min <= opt <= max")


class Profile(Strict):
    name: str | None = None
    batch: Dim
    sequence: Dim | None = Field(None, description="sequence length, for text models")


class Tolerance(Strict):
    """How close the optimized model must stay to the original: every output within atol + rtol x |original|
    on the validation split, and no evaluation metric worse by more than max_metric_drop on the test split.
    Unset atol/rtol take the precision's defaults (PRECISION_TOLERANCE); int8 compares metrics only."""

    atol: float | None = Field(None, ge=0, description="absolute tolerance on every output (logits)")
    rtol: float | None = Field(None, ge=0, description="relative tolerance on every output")
    max_metric_drop: float = Field(0.01, ge=0, le=1, description="how much any evaluation metric may worsen")


# (atol, rtol) when the spec sets none: fp32 is a numerical re-expression of the same model; fp16 and
# bf16 round every activation; int8 changes the logits by design, so only its metrics are held.
PRECISION_TOLERANCE: dict[str, tuple[float, float] | None] = {
    "fp32": (1e-4, 1e-3), "fp16": (1e-2, 1e-2), "bf16": (5e-2, 5e-2), "int8": None}


class Benchmark(Strict):
    warmup: int = Field(10, ge=0)
    iterations: int = Field(100, gt=0, le=100_000)
    batch_sizes: list[Annotated[int, Field(gt=0, le=65_536)]] = Field(default_factory=lambda: [1], min_length=1)
    min_speedup: float | None = Field(None, gt=0, description="fail unless the optimized model is at least this "
                                      "many times faster than the original at every batch size (p50)")


class Calibration(Strict):
    dataset: Ref("Dataset")  # type: ignore[valid-type]
    split: str = "train"
    samples: int = Field(512, gt=0)


class OptimizationSpec(SpecBase):
    model: Ref("Model")  # type: ignore[valid-type]
    target: Literal["onnx", "onnxruntime", "int8", "tensorrt"]
    precision: Literal["fp32", "fp16", "bf16", "int8"] = "fp32"
    accelerator: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="ONNX Runtime's execution provider: CUDA when there is a GPU (auto), else the CPU")
    opset: int = Field(18, ge=18, description="the ONNX opset the exporter targets (torch's dynamo "
                       "exporter starts at 18)")
    workspace_mib: int = Field(1024, gt=0, description="TensorRT's builder workspace limit")
    profiles: list[Profile] = Field(default_factory=list)
    tolerance: Tolerance = Field(default_factory=Tolerance)
    benchmark: Benchmark = Field(default_factory=Benchmark)
    calibration: Calibration | None = None

    def needs(self) -> Iterator[Need]:
        if self.calibration is not None:
            yield Need(("calibration", "split"), self.calibration.dataset, "splits", self.calibration.split)

    def issues(self) -> Iterator[Issue]:
        int8 = self.target == "int8" or self.precision == "int8"
        if int8 and self.calibration is None and self.target == "tensorrt":
            yield Issue((), "int8 TensorRT needs `calibration` data", code="MLS100",
                        expected="calibration: {dataset: <Dataset>}")
        if self.target == "tensorrt" and not self.profiles:
            yield Issue((), "a TensorRT engine needs at least one input shape profile", code="MLS100",
                        expected="profiles: [{batch: {min, opt, max}}]")
        if self.target == "onnx" and self.precision != "fp32":
            yield Issue(("precision",), f"a plain ONNX export is fp32, not {self.precision}",
                        expected="fp32", hint="for int8 use `target: int8`; for fp16 use `target: tensorrt`")
        if self.target == "int8" and self.precision not in ("fp32", "int8"):
            yield Issue(("precision",), f"`target: int8` quantizes to int8; precision {self.precision} contradicts it",
                        expected="int8 (or leave it out)")
        if self.target == "onnxruntime" and self.precision in ("fp16", "bf16"):
            yield Issue(("precision",), f"ONNX Runtime {self.precision} is not built in",
                        expected="fp32 or int8", hint="for fp16 or bf16 use `target: tensorrt`")
        if self.dynamic_int8 and self.accelerator == "cuda":
            yield Issue(("accelerator",), "dynamic int8 runs on the CPU: on ONNX Runtime's CUDA provider its "
                        "quantized ops fall back to the CPU with a copy each way (microsoft/onnxruntime#7745)",
                        expected="cpu or auto (int8 runs on the CPU)",
                        hint="for int8 on a GPU use `target: tensorrt` with `calibration`")
        if self.target == "tensorrt" and self.profiles:
            low, high = min(p.batch.min for p in self.profiles), max(p.batch.max for p in self.profiles)
            for i, size in enumerate(self.benchmark.batch_sizes):
                if not low <= size <= high:
                    yield Issue(("benchmark", "batch_sizes", i), f"batch size {size} is outside every profile "
                                f"(batch {low} to {high}): the engine cannot run it", expected=f"{low} to {high}")
        if self.target == "tensorrt" and self.accelerator == "cpu":
            yield Issue(("accelerator",), "a TensorRT engine runs on an NVIDIA GPU, not the CPU",
                        expected="cuda or auto")

    @property
    def dynamic_int8(self) -> bool:
        """ONNX Runtime's dynamic quantization: `target: int8`, or onnxruntime at int8."""
        return self.target == "int8" or (self.target == "onnxruntime" and self.precision == "int8")

    @property
    def effective_precision(self) -> str:
        return "int8" if self.dynamic_int8 else self.precision

    def tolerances(self) -> tuple[float | None, float | None]:
        """(atol, rtol): the spec's, else its precision's defaults; None for int8 without either set."""
        default = PRECISION_TOLERANCE[self.effective_precision]
        if self.tolerance.atol is None and self.tolerance.rtol is None and default is None:
            return None, None
        base = default or (0.0, 0.0)
        return (self.tolerance.atol if self.tolerance.atol is not None else base[0],
                self.tolerance.rtol if self.tolerance.rtol is not None else base[1])


class Optimization(Envelope):
    kind_name: ClassVar[str] = "Optimization"
    kind: Literal["Optimization"]
    spec: OptimizationSpec
