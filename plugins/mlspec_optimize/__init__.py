"""The built-in Optimization plugin: a trained Model exported to ONNX, optimized for ONNX Runtime
(fp32, dynamic int8) or built into a TensorRT engine, and proven to be the same model.

`plugin` is what the engine calls; the rest is what it is made of: `step` (one run, in order:
export, runtime, parity, benchmark, artifacts), `export` (torch.export and the dynamo ONNX exporter),
`ort` (ONNX Runtime: graph optimization, quantization, sessions), `tensorrt` (engines: build and
run), `parity` (is it the same model? pure numpy) and `bench` (latency and throughput). The model
comes back from its files through `mlspec_torch.inference`. Nothing imports torch at import time.
"""

from mlspec_optimize.plugin import OptimizationPlugin

__all__ = ["OptimizationPlugin"]
