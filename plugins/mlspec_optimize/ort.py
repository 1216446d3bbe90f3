"""ONNX Runtime: graph optimization saved to a file, dynamic int8, static Q/DQ int8 for TensorRT, sessions.

The optimized graph is saved (`optimized_model_filepath`) at the extended level: its fusions are the
same on any CPU, unlike the `all` level's layout changes, which ONNX Runtime documents as specific
to the machine that made them; a session that loads the saved graph applies those itself. Every
graph made here is loaded and run at once: some options fail only when a session is created
(microsoft/onnxruntime#25489), and a step must fail, not the Service that loads it later.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlspec.sdk import StepFailed

CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"


class RuntimeFailed(StepFailed):
    """ONNX Runtime refused a graph (at optimization, quantization or session creation)."""


def providers(accelerator: str) -> list[str]:
    """The execution providers for `accelerator` (auto: CUDA when this onnxruntime has it and a GPU answers)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if accelerator == "cpu" or CUDA not in available:
        if accelerator == "cuda":
            raise RuntimeFailed("accelerator `cuda`: this onnxruntime has no CUDA execution provider "
                                f"(it has {', '.join(available)}); install onnxruntime-gpu, or use `auto`")
        return [CPU]
    return [CUDA, CPU]


class Session:
    """An inference session over a saved graph: numpy in, the first output out (float32)."""

    def __init__(self, graph: Path, provider_list: Sequence[str], *, what: str = "") -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: its warnings are about its own fallbacks
        # Its threads busy-wait after each run by default, taking the cores torch needs when the two
        # take turns (the benchmark; a step beside other steps): 4x slower torch on 2 cores, measured.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(graph), options, providers=list(provider_list))
        except Exception as err:  # onnxruntime raises its own pybind exception classes
            raise RuntimeFailed(f"ONNX Runtime cannot load {what or graph.name}: {_short(err)}") from None
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.provider = self.session.get_providers()[0]

    def run(self, feeds: Mapping[str, Any]) -> Any:
        import numpy as np

        out = self.session.run(None, {name: feeds[name] for name in self.inputs})[0]
        return np.asarray(out, dtype=np.float32)


def fuse_transformer(graph: Path, target: Path) -> Path:
    """Fuse a BERT-style graph for ONNX Runtime (Attention, SkipLayerNormalization, BiasGelu): onnxscript's
    `optimize_for_ort`, the rewriter written for the dynamo exporter's graphs (ONNX Runtime's own
    transformer optimizer matches the TorchScript exporter's patterns, and finds no attention in
    these). A graph it cannot rewrite is kept as exported: still correct, only slower."""
    try:
        import onnx_ir as ir
        from onnxscript.rewriter.ort_fusions import optimize_for_ort

        with _quiet_logs():
            model = ir.load(str(graph))
            fused = optimize_for_ort(model)
            ir.save(fused[0] if isinstance(fused, tuple) else fused, str(target), external_data=f"{target.name}.data")
    except Exception:  # a graph the rewrite rules do not know: the exported one is still correct
        return graph
    return target


def optimize(graph: Path, target: Path, provider_list: Sequence[str]) -> Path:
    """Save `graph` with ONNX Runtime's extended graph optimizations applied, its weights beside it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(target)
    options.add_session_config_entry("session.optimized_model_external_initializers_file_name",
                                     f"{target.name}.data")
    options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    try:
        ort.InferenceSession(str(graph), options, providers=list(provider_list))
    except Exception as err:
        raise RuntimeFailed(f"ONNX Runtime cannot optimize the exported graph: {_short(err)}") from None
    return target


def quantize_dynamic(graph: Path, target: Path, scratch: Path) -> Path:
    """Dynamic int8 (weights int8, activations quantized at run time), after ONNX Runtime's
    pre-processing (shape inference and basic fusions), as its quantization guide recommends."""
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization import quantize_dynamic as quantize

    prepared = _preprocessed(graph, scratch)
    try:
        with _quiet_logs():
            quantize(str(prepared), str(target), weight_type=QuantType.QInt8, per_channel=False,
                     use_external_data_format=True, extra_options={"MatMulConstBOnly": True})
    except Exception as err:
        raise RuntimeFailed(f"dynamic int8 quantization failed: {_short(err)}") from None
    return target


def quantize_qdq(graph: Path, target: Path, scratch: Path, samples: Iterator[Mapping[str, Any]]) -> Path:
    """Static int8 in the Q/DQ format from calibration samples: symmetric scales, the form TensorRT's
    strongly typed networks read int8 from (explicit QuantizeLinear/DequantizeLinear pairs)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.samples = samples

        def get_next(self) -> dict[str, Any] | None:
            found = next(self.samples, None)
            return dict(found) if found else None

    prepared = _preprocessed(graph, scratch)
    try:
        quantize_static(str(prepared), str(target), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True,
                        use_external_data_format=True,
                        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    except Exception as err:
        raise RuntimeFailed(f"int8 calibration (Q/DQ) failed: {_short(err)}") from None
    return target


def _preprocessed(graph: Path, scratch: Path) -> Path:
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = scratch / "preprocessed.onnx"
    try:
        # Symbolic shape inference is for graphs with few dynamic dims; on a dynamic batch and sequence it
        # gives up (printing as it goes), and ONNX's own shape inference is what quantization needs.
        with _quiet_logs():
            quant_pre_process(str(graph), str(out), skip_symbolic_shape=True, save_as_external_data=True,
                          all_tensors_to_one_file=True, external_data_location="preprocessed.onnx.data")
    except Exception:  # symbolic shape inference gives up on some graphs: quantize the graph as exported
        return graph
    return out


class _quiet_logs:
    """onnxruntime's Python tools log advice through the root logger ("consider pre-processing")."""

    def __enter__(self) -> None:
        import logging

        self.level = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        import logging

        logging.getLogger().setLevel(self.level)


def _short(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= 400 else text[:400] + "…"
