"""A stored Model to an ONNX graph, through torch.export and torch's dynamo ONNX exporter.

Two stages, so a failure says where it is: `torch.export` captures the graph (a data-dependent branch
fails here), then the exporter translates each aten op to ONNX (an op with no translation fails
here, and the captured graph still knows which line of the model's source made that op). Facts of
torch 2.13 this relies on: the dynamo exporter is the default and takes `dynamic_shapes`; it writes
the weights to `<name>.data` beside the graph, which must travel with it; torch.export cannot make a
dimension whose example size is 0 or 1 dynamic, so the example batch is at least 2.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlspec_torch.inference import BATCH, SEQUENCE, Stored

from mlspec.sdk import StepFailed

EXAMPLE_BATCH = 2  # the smallest batch torch.export keeps dynamic
# torch.export traces through process-wide state (the module hierarchy it is tracing, symbolic shape
# proxies): two exports side by side at --parallelism 4 break each other, so they take turns.
_EXPORTING = threading.Lock()
MAX_BATCH = 65_536


class ExportFailed(StepFailed):
    """The model has no graph ONNX can express: the op (and the source line that made it) is named."""


@dataclass(frozen=True)
class Exported:
    graph: Path  # model.onnx; its weights in model.onnx.data beside it
    inputs: list[str]
    outputs: list[str]


def output_name(task: str) -> str:
    return "logits" if "classification" in task else "value"


def export(stored: Stored, directory: Path, *, opset: int, precision: str = "fp32",
           sequence: int | None = None, max_sequence: int | None = None, address: str = "") -> Exported:
    """Export `stored`'s module to `directory/model.onnx` (+ `.data`), checked with onnx.checker.

    `precision` fp16 or bf16 casts the weights and puts the casts in the graph (a strongly typed
    TensorRT network takes its precision from them); inputs and outputs stay as they were.
    """
    import torch

    module = typed(stored.module, precision)
    example = stored.example(EXAMPLE_BATCH, sequence)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    length = torch.export.Dim("sequence", min=1, max=max_sequence or stored.data.get("max_length") or 4096)
    shapes = {i.name: {at: batch if d == BATCH else length for at, d in enumerate(i.dims) if d in (BATCH, SEQUENCE)}
              for i in stored.inputs}
    if stored.inputs and all(i.dims[0] != BATCH for i in stored.inputs):
        shapes = {name: {0: batch} for name in example}
    with _EXPORTING, _quiet():
        try:
            program = torch.export.export(module, (), kwargs=example, dynamic_shapes=shapes, strict=False)
        except Exception as err:
            raise ExportFailed(f"{address}: torch.export cannot capture the model's graph: {_first_lines(err)}"
                               ) from None
        path = directory / "model.onnx"
        directory.mkdir(parents=True, exist_ok=True)
        names = [i.name for i in stored.inputs] or list(example)
        out = [output_name(stored.task)]
        try:
            torch.onnx.export(program, (), str(path), input_names=names, output_names=out, opset_version=opset,
                              dynamo=True, external_data=True, verbose=False)
        except Exception as err:
            raise ExportFailed(_conversion(err, program, address, opset)) from None
    _check(path, address)
    return Exported(path, names, out)


def typed(module: Any, precision: str) -> Any:
    """The module at fp16 or bf16 (float inputs cast on the way in, outputs back to float32), or itself."""
    if precision not in ("fp16", "bf16"):
        return module
    import copy

    import torch

    dtype = torch.float16 if precision == "fp16" else torch.bfloat16

    class Cast(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = copy.deepcopy(inner).to(dtype)

        def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
            def cast(t: torch.Tensor) -> torch.Tensor:
                return t.to(dtype) if t.is_floating_point() else t

            out = self.inner(*(cast(a) for a in args), **{k: cast(v) for k, v in kwargs.items()})
            return out.float()  # type: ignore[no-any-return]

    return Cast(module).eval()


def _check(path: Path, address: str) -> None:
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=False)  # a path: the checker reads external data itself
    except onnx.checker.ValidationError as err:
        raise ExportFailed(f"{address}: the exported graph is not valid ONNX: {_first_lines(err)}") from None


_NO_FUNCTION = re.compile(r"No ONNX function found for <OpOverload\(op='(?P<op>[\w.]+)'")


def _conversion(err: BaseException, program: Any, address: str, opset: int) -> str:
    """The op without an ONNX translation, and where in the model's source it comes from."""
    text = str(err)
    found = _NO_FUNCTION.search(text)
    if found is None:
        return f"{address}: the ONNX exporter failed: {_first_lines(err)}"
    op = found["op"]
    where = _source_of(program, op)
    return (f"{address}: the op `{op}` has no ONNX translation (opset {opset}), so the model cannot be exported"
            + (f"; it comes from {where}" if where else "")
            + ". Rewrite that part with ops ONNX has, or keep this model on torch (no Optimization)")


def _source_of(program: Any, op: str) -> str:
    """The last frame of the captured node's stack trace: `model.py:12 in forward: `x = torch.linalg.eig(x)``.

    The exporter decomposes ops before translating them (`aten.linalg_eigvals` becomes
    `aten.linalg_eig`), so the captured node may carry the name the failing op came from."""
    nodes = [(_op_name(node), node) for node in program.graph.nodes if node.op == "call_function"]
    exact = [node for name, node in nodes if name == op]
    related = [node for name, node in nodes if name.startswith(op) or op.startswith(name)]
    for node in exact or related:
        trace = (node.meta.get("stack_trace") or "").strip().splitlines()
        frames = [line.strip() for line in trace if line.strip().startswith("File ")]
        last = re.match(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<fn>\S+)', frames[-1]) if frames else None
        if last:
            return f"{Path(last['file']).name}:{last['line']} in {last['fn']}: `{trace[-1].strip()}`"
    return ""


def _op_name(node: Any) -> str:
    """`aten.linalg_eig` for the node of <OpOverload(op='aten.linalg_eig', overload='default')>."""
    name = getattr(node.target, "name", None)
    return name().replace("::", ".").split(".default")[0] if callable(name) else str(node.target)


def _first_lines(err: BaseException, count: int = 3) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = " ".join(lines[:count]) or type(err).__name__
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


class _quiet:
    """The exporter's warnings and INFO logs are about torch's internals, not the user's model."""

    def __enter__(self) -> None:
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("ignore")
        self._levels = {name: logging.getLogger(name).level for name in ("torch.onnx", "torch.export", "onnxscript")}
        for name in self._levels:
            logging.getLogger(name).setLevel(logging.ERROR)

    def __exit__(self, *exc: Any) -> None:
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
        self._warnings.__exit__(*exc)
