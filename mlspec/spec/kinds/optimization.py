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
    atol: float = Field(1e-3, ge=0)
    rtol: float = Field(1e-3, ge=0)
    max_metric_drop: float | None = Field(None, ge=0, description="allowed drop of the primary metric")


class Benchmark(Strict):
    warmup: int = Field(10, ge=0)
    iterations: int = Field(100, gt=0)
    batch_sizes: list[Annotated[int, Field(gt=0)]] = Field(default_factory=lambda: [1], min_length=1)


class Calibration(Strict):
    dataset: Ref("Dataset")  # type: ignore[valid-type]
    split: str = "train"
    samples: int = Field(512, gt=0)


class OptimizationSpec(SpecBase):
    model: Ref("Model")  # type: ignore[valid-type]
    target: Literal["onnx", "onnxruntime", "int8", "tensorrt"]
    precision: Literal["fp32", "fp16", "bf16", "int8"] = "fp32"
    opset: int = Field(17, ge=7)
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
        if self.target == "onnx" and self.precision == "int8":
            yield Issue(("precision",), "plain ONNX export has no int8; use target int8 or onnxruntime")


class Optimization(Envelope):
    kind_name: ClassVar[str] = "Optimization"
    kind: Literal["Optimization"]
    spec: OptimizationSpec
