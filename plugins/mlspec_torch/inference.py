"""A stored Model back as something to run: what an Optimization exports and a Service serves.

Every Model's files carry `mlspec-model.json` (written by training, read here), the way MLflow's
`MLmodel` file describes a model to whoever loads it: the task, the named inputs with their dtypes
and dynamic dimensions, the features and label, the classes, the tokenizer's max length, and the
Dataset splits it was evaluated on (by digest). So a consumer needs only the champion's files, not
the Model's spec, to rebuild the module, encode a table into its inputs and score its outputs with
the same metrics training reported.

Entrypoint models describe themselves: their module (the one named by `architecture.entrypoint`)
defines `load_model(model_dir) -> torch.nn.Module` and `encode(table) -> {input name: array}`
beside its training function; the module's outputs are scored like a built-in model's (logits for
a classifier, one value per row for a regression).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlspec.sdk import StepFailed
from mlspec_torch.metrics import from_outputs

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    import torch

MANIFEST = "mlspec-model.json"
FORMAT = 1
BATCH, SEQUENCE = "batch", "sequence"  # the names of the dynamic dimensions an input may have


class NotLoadable(StepFailed):
    """A stored model that cannot be rebuilt for inference (no manifest, an entrypoint without a loader)."""


@dataclass(frozen=True)
class Input:
    """One named input of the module: its dtype and dimensions, each a size or a dynamic name."""

    name: str
    dtype: str  # numpy dtype name: int64, float32
    dims: tuple[int | str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "dims": list(self.dims)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Input:
        return cls(str(data["name"]), str(data["dtype"]), tuple(data["dims"]))


def manifest(*, task: str, family: str | None, entrypoint: str | None, inputs: Sequence[Input] | None,
             features: Sequence[str] | None, label: str | None, classes: Sequence[Any], max_length: int | None,
             metrics: Sequence[str], dataset: str, evaluated_on: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What training writes beside the weights (`evaluated_on`: role -> the Dataset's split artifact)."""
    return {
        "format": FORMAT, "task": task, "architecture": {"family": family, "entrypoint": entrypoint},
        "inputs": [i.to_json() for i in inputs] if inputs is not None else None,
        "features": list(features or ()), "label": label, "classes": [str(c) for c in classes],
        "max_length": max_length, "metrics": list(metrics), "dataset": dataset,
        "evaluated_on": {role: dict(ref) for role, ref in sorted(evaluated_on.items())},
    }


class Stored:
    """A stored model rebuilt: the torch module (eval mode, CPU) and how to feed and score it."""

    def __init__(self, directory: Path, data: Mapping[str, Any], module: Any, inputs: list[Input],
                 encoder: Any, loader: Any = None) -> None:
        self.directory, self.data, self.module, self.inputs = directory, data, module, inputs
        self._encoder, self._loader = encoder, loader
        self.device = "cpu"

    def to(self, device: str) -> Stored:
        """Run the module on `device` ("cpu", "cuda"): the original, timed where the optimized one runs."""
        self.module.to(device)
        self.device = device
        return self

    @property
    def task(self) -> str:
        return str(self.data["task"])

    @property
    def label(self) -> str | None:
        return self.data.get("label")

    @property
    def metrics(self) -> list[str]:
        return list(self.data.get("metrics") or ())

    def evaluated_on(self, role: str) -> Mapping[str, Any] | None:
        """The Dataset split artifact (uri, digest, rows) the model was validated or tested on."""
        return (self.data.get("evaluated_on") or {}).get(role)

    def encode(self, table: pa.Table) -> dict[str, np.ndarray]:
        """A table's rows as the module's named inputs, batch first, as training encoded them."""
        if self._loader is not None:
            return _checked_encoding(self._loader.encode(table), self.inputs)
        return self._encoder(table)  # type: ignore[no-any-return]

    def targets(self, table: pa.Table) -> np.ndarray:
        import numpy as np

        values = table.column(self.data["label"]).to_pylist()
        if "classification" in self.task:
            index = {c: i for i, c in enumerate(self.data["classes"])}
            return np.array([index.get(str(v), -1) for v in values], dtype=np.int64)
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float32)

    def run(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        """The module's output for one batch of encoded inputs, as float32 numpy."""
        import torch

        with torch.inference_mode():
            out = self.module(*(torch.from_numpy(feeds[i.name]).to(self.device) for i in self.inputs))
        return out.float().cpu().numpy()  # type: ignore[no-any-return]

    def score(self, outputs: np.ndarray, targets: np.ndarray, wanted: Sequence[str] | None = None) -> dict[str, float]:
        """The model's evaluation metrics on outputs (logits or values), as training computes them."""
        return from_outputs(self.task, outputs, targets, list(wanted or self.metrics))

    def example(self, batch: int, sequence: int | None) -> dict[str, torch.Tensor]:
        """Zero-valued inputs of a shape, for tracing an export (ids 0 are [PAD], a valid token)."""
        import torch

        out = {}
        for spec in self.inputs:
            shape = [batch if d == BATCH else (sequence or self.data.get("max_length") or 8) if d == SEQUENCE
                     else int(d) for d in spec.dims]
            tensor = torch.zeros(shape, dtype=getattr(torch, spec.dtype))
            if spec.name == "attention_mask":
                tensor += 1
            out[spec.name] = tensor
        return out


def load(directory: Path, workdir: Path | None = None, address: str = "") -> Stored:
    """The model in `directory` (a Model's files, fetched under their names)."""
    path = directory / MANIFEST
    if not path.is_file():
        raise NotLoadable(f"{address or directory}: its files have no {MANIFEST} (trained by an older mlspec); "
                          f"retrain it: mlspec apply --replace {address or 'Model/<name>'}")
    data = json.loads(path.read_text())
    if int(data.get("format") or 0) > FORMAT:
        raise NotLoadable(f"{address}: {MANIFEST} is format {data['format']}; this mlspec_torch reads up to {FORMAT}")
    architecture = data.get("architecture") or {}
    if architecture.get("entrypoint"):
        return _entrypoint(directory, data, workdir or Path.cwd(), address)
    if data["task"] == "text-classification":
        return _text(directory, data)
    return _tabular(directory, data)


def encoder(directory: Path, data: Mapping[str, Any],
            pad: str = "max_length") -> Callable[[pa.Table], dict[str, np.ndarray]]:
    """How a built-in model's inputs are made from a table, from its files alone and without torch: what
    a Service runs in front of an ONNX graph. Text: the `tokenizers` library on `tokenizer.json`,
    truncated to max_length and padded to it (the ids transformers' tokenizer gave in training; tested)
    or, with `pad="longest"`, only as far as the batch's longest text: a Service's requests are mostly
    short, and the attention mask makes the padding's length invisible to the outputs (equal to the
    last bit on the bundled model, at a quarter of the cost for batches of reviews). Tables: the encoder
    fitted on the train split (`encoder.json`)."""
    if data["task"] == "text-classification":
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        length = int(data["max_length"])
        pad_id = tokenizer.token_to_id("[PAD]")
        tokenizer.enable_truncation(length)
        tokenizer.enable_padding(length=length if pad == "max_length" else None,
                                 pad_id=pad_id if pad_id is not None else 0, pad_token="[PAD]")
        column = data["features"][0]

        def text(table: pa.Table) -> dict[str, np.ndarray]:
            import numpy as np

            found = tokenizer.encode_batch([t or "" for t in table.column(column).to_pylist()])
            width = len(found[0].ids) if found else length
            return {"input_ids": np.array([e.ids for e in found], dtype=np.int64).reshape(len(found), width),
                    "attention_mask": np.array([e.attention_mask for e in found], dtype=np.int64)
                    .reshape(len(found), width)}

        return text
    from mlspec_torch.tabular import Encoder

    fitted = Encoder.from_json(json.loads((directory / "encoder.json").read_text()))
    return lambda table: {"features": fitted.inputs(table)}


def _text(directory: Path, data: Mapping[str, Any]) -> Stored:
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging

    logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    model = AutoModelForSequenceClassification.from_pretrained(directory, local_files_only=True).eval()

    inputs = [Input.from_json(i) for i in data["inputs"]]
    return Stored(directory, data, logits_of(model).eval(), inputs, encoder(directory, data))


def logits_of(model: Any) -> Any:
    """A transformers classifier as a function of (input_ids, attention_mask) to its logits tensor: what an
    exporter traces, and what a benchmark times."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits  # type: ignore[no-any-return]

    return Logits(model)


def _tabular(directory: Path, data: Mapping[str, Any]) -> Stored:
    from safetensors.torch import load_file

    from mlspec_torch.architectures import mlp

    weights = load_file(str(directory / "model.safetensors"))
    # The MLP's layout is in its weights: Linear layers at indices of a Sequential, ReLU (and Dropout,
    # a no-op in eval mode) between them. Rebuilt from the shapes, its state dict's keys are the same.
    linear = sorted(int(k.split(".")[0]) for k in weights if k.endswith(".weight"))
    sizes = [int(weights[f"{i}.weight"].shape[0]) for i in linear]
    dropout = 0.5 if len(linear) > 1 and linear[1] - linear[0] == 3 else 0.0
    module = mlp(int(weights[f"{linear[0]}.weight"].shape[1]), sizes[-1], sizes[:-1], dropout)
    module.load_state_dict(weights)
    inputs = [Input.from_json(i) for i in data["inputs"]]
    return Stored(directory, data, features_of(module).eval(), inputs, encoder(directory, data))


def features_of(module: Any) -> Any:
    """`module` (an MLP: a Sequential, whose one input is `input`) with that input named `features`, as the
    manifest names it."""
    import torch

    class Named(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            return self.inner(features)  # type: ignore[no-any-return]

    return Named(module)


def _entrypoint(directory: Path, data: Mapping[str, Any], workdir: Path, address: str) -> Stored:
    import importlib

    from mlspec_torch.entrypoint import load as load_function

    entrypoint = data["architecture"]["entrypoint"]
    module_name = entrypoint.partition(":")[0]
    load_function(entrypoint, workdir, address, "")  # imports the module fresh from the repo, errors framed
    module = importlib.import_module(module_name)
    missing = [name for name in ("load_model", "encode") if not callable(getattr(module, name, None))]
    if missing:
        raise NotLoadable(f"{address}: the entrypoint module `{module_name}` defines no {' or '.join(missing)}; "
                          "to export or serve an entrypoint model, define `load_model(model_dir) -> torch.nn.Module` "
                          "and `encode(table) -> {input name: numpy array}` beside its training function")
    model = module.load_model(directory)
    model.eval()
    return Stored(directory, data, model, [], None, loader=module)


def _checked_encoding(found: Any, inputs: list[Input]) -> dict[str, np.ndarray]:
    """An entrypoint's `encode` result: named numpy arrays, batch first. Learns the inputs the first time."""
    import numpy as np

    if not isinstance(found, Mapping) or not found:
        raise NotLoadable(f"the entrypoint's encode() returned {type(found).__name__}; it must return "
                          "{input name: numpy array}")
    out = {str(k): np.ascontiguousarray(v) for k, v in found.items()}
    if not inputs:
        inputs.extend(Input(name, str(array.dtype), (BATCH, *array.shape[1:])) for name, array in out.items())
    return out
