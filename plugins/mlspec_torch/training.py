"""One Model's training run, start to finish: data from its Dataset's splits, the architecture (or
the team's own entrypoint), the shared loop (with resume), evaluation, gates, and the artifacts
(safetensors weights, encoder or tokenizer, config, model card, metrics log) stored by digest.

The plugin (plugin.py) calls `run`, in its own process or, for `gpus > 1`, in each torchrun worker
(distributed.py); everything here takes plain arguments, so it is testable without the engine.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mlspec.sdk import ArtifactStore, DatasetOutputs, StepRequest, listing_digest, paths
from mlspec_torch.card import CardFacts
from mlspec_torch.card import render as render_card
from mlspec_torch.inference import BATCH, MANIFEST, SEQUENCE, Input, manifest
from mlspec_torch.loop import LoopSettings, Meter, TrainingFailed, TrainResult, train
from mlspec_torch.metrics import from_outputs, gates
from mlspec_torch.splits import dataset_address, dataset_outputs, load_split, require_columns


@dataclass
class RunContext:
    """One run: the step's request (the spec, its Dataset's outputs, where to store) and what the
    process running it provides beside it (logs, cancellation, a meter)."""

    request: StepRequest
    champion: Mapping[str, float] | None = None  # the current champion's metrics, for relative gates
    commit: str | None = None
    log: Callable[[str], None] = print
    cancelled: threading.Event | None = None
    meter: Meter | None = None
    where: str = ""  # the spec position of architecture.entrypoint, to frame its traceback

    @property
    def address(self) -> str:
        return self.request.resource.address

    @property
    def spec(self) -> Any:  # ModelSpec
        return self.request.spec

    @property
    def workdir(self) -> Path:
        return self.request.workdir

    @property
    def artifacts(self) -> str:
        return self.request.artifacts

    @property
    def fingerprint(self) -> str:
        return self.request.fingerprint


def checkpoint_dir(workdir: Path, address: str, fingerprint: str) -> Path:
    """Per address and fingerprint: a changed spec starts afresh, an interrupted one resumes."""
    return workdir / ".mlspec" / "checkpoints" / address.replace("/", "-") / fingerprint[:16]


def device_for(accelerator: str) -> Any:
    import os

    import torch

    if accelerator == "cuda" or (accelerator == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise TrainingFailed("resources.accelerator is `cuda` but no CUDA GPU is visible here; use `auto` to "
                                 "fall back to the CPU")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def hardware(device: Any) -> str:
    import torch

    if device.type == "cuda":
        return str(torch.cuda.get_device_name(device))
    return f"cpu ({torch.get_num_threads()} threads)"


def run(context: RunContext) -> dict[str, Any] | None:
    """Train, evaluate, gate and store one model; None on the ranks other than 0 of a DDP run."""
    import torch

    from mlspec_torch.loop import rank

    spec, address = context.spec, context.address
    started = time.monotonic()
    torch.manual_seed(spec.seed)
    if spec.resources.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    device = device_for(spec.resources.accelerator)
    dataset, outputs = dataset_outputs(context.request, spec.dataset)
    store = ArtifactStore(context.artifacts, context.workdir)
    (context.workdir / ".mlspec").mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".model-", dir=context.workdir / ".mlspec"))
    checkpoints = checkpoint_dir(context.workdir, address, context.fingerprint)
    me, world = rank()
    try:
        roles = {"train": spec.splits.train, "test": spec.evaluation.split or spec.splits.test}
        if spec.architecture.entrypoint and spec.splits.validation:
            roles["validation"] = spec.splits.validation
        splits = {role: load_split(store, outputs, name, dataset, scratch) for role, name in roles.items()}
        if spec.architecture.entrypoint:
            from mlspec_torch.entrypoint import EntrypointJob

            job: Job = EntrypointJob(spec, splits, context, device, checkpoints, scratch)
        elif spec.task.startswith("tabular"):
            job = _Tabular(spec, splits)
        elif spec.task == "text-classification":
            job = _Text(spec, splits, context.workdir, context.request.outside)
        else:
            raise TrainingFailed(f"{address}: a `{spec.task}` model needs architecture.entrypoint")
        total = job.train(_settings(spec), device, checkpoints, context, scratch / "metrics.jsonl")
        if me != 0:
            return None
        found = job.evaluate(device, spec.evaluation.metrics)
        verdicts = gates(spec.evaluation.gates, found, context.champion)
        passed = all(v.passed for v in verdicts)
        for verdict in verdicts:
            context.log(f"{address}: gate `{verdict.gate}` {verdict.why}")
        files = job.save(scratch / "model")
        evaluated = {"validation": spec.splits.validation, "test": roles["test"]}
        files[MANIFEST] = _manifest(spec, job, dataset, {role: outputs.splits[name].model_dump(mode="json")
                                                         for role, name in evaluated.items()
                                                         if name and name in outputs.splits},
                                    scratch / "model" / MANIFEST)
        seconds = time.monotonic() - started
        facts = _facts(context, outputs, dataset, found, verdicts, hardware(device), seconds, job)
        (scratch / "model").mkdir(parents=True, exist_ok=True)
        (scratch / "model" / "README.md").write_text(render_card(facts))
        stored = {name: store.put(path, Path(name).suffix).to_json() for name, path in sorted(files.items())}
        card = store.put(scratch / "model" / "README.md", ".md").to_json()
        log = (store.put(scratch / "metrics.jsonl", ".jsonl").to_json()
               if (scratch / "metrics.jsonl").is_file() else None)
        shutil.rmtree(checkpoints.parent, ignore_errors=True)  # finished: nothing of this address left to resume
        return {
            # The weights' identity: the card (timings, hardware) is beside them, not part of it.
            "digest": listing_digest((name, artifact["digest"]) for name, artifact in stored.items()),
            "files": {**stored, "README.md": card}, "metrics": found, "gates_passed": passed,
            "gates": [{"gate": v.gate, "passed": v.passed, "observed": v.observed, "threshold": v.threshold,
                       "margin": v.margin, "why": v.why} for v in verdicts],
            "dataset": {"address": dataset, "version": outputs.version},
            "device": hardware(device) + (f" x{world}" if world > 1 else ""), "steps": total.steps,
            "resumed_from": total.resumed_from, "samples_per_second": round(total.samples_per_second, 1),
            "train_rows": job.rows, "epochs": spec.hyperparameters.epochs, "seconds": round(seconds, 3),
            "gpu_hours": round(seconds * world / 3600, 6) if device.type == "cuda" else 0.0,
            **({"metrics_log": log} if log else {}),
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _manifest(spec: Any, job: Job, dataset: str, evaluated_on: Mapping[str, Mapping[str, Any]],
              path: Path) -> Path:
    """`mlspec-model.json`, beside the weights: what a consumer needs to run the model (inference.py)."""
    architecture = spec.architecture
    data = manifest(task=spec.task, family=architecture.family, entrypoint=architecture.entrypoint,
                    inputs=job.signature, features=spec.features, label=spec.label, classes=job.classes,
                    max_length=getattr(job, "max_length", None), metrics=spec.evaluation.metrics, dataset=dataset,
                    evaluated_on=evaluated_on)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def _facts(context: RunContext, outputs: DatasetOutputs, dataset: str, found: Mapping[str, float],
           verdicts: list[Any], device: str, seconds: float, job: Job) -> CardFacts:
    spec = context.spec
    return CardFacts(
        address=context.address, task=spec.task, dataset=dataset, dataset_version=outputs.version,
        split_digests={name: split.digest for name, split in outputs.splits.items()},
        metrics=found, gates=[(v.gate, v.passed, v.why) for v in verdicts], fingerprint=context.fingerprint,
        hyperparameters={**spec.hyperparameters.model_dump(exclude={"params"}), "seed": spec.seed,
                         "precision": spec.resources.precision, **spec.hyperparameters.params},
        hardware=device, seconds=seconds, library=job.library, base_model=job.base_model,
        license=spec.license,
        commit=context.commit, description=spec.description,
    )


class Job(Protocol):
    """What `run` needs of an architecture: built-in ones (below) and entrypoint.EntrypointJob."""

    rows: int
    library: str
    base_model: str | None
    signature: list[Input] | None  # the module's named inputs; None: an entrypoint's own (its encode())
    classes: list[Any]

    def train(self, settings: LoopSettings, device: Any, checkpoints: Path, context: RunContext,
              metrics: Path) -> TrainResult: ...

    def evaluate(self, device: Any, wanted: list[str]) -> dict[str, float]: ...

    def save(self, directory: Path) -> dict[str, Path]: ...


class _Job:
    """One built-in architecture's data, model and evaluation; the shared loop trains it."""

    model: Any
    batches_per_epoch: int
    rows: int
    library = "pytorch"
    base_model: str | None = None
    signature: list[Input] | None = None
    classes: list[Any]

    def train(self, settings: LoopSettings, device: Any, checkpoints: Path, context: RunContext,
              metrics: Path) -> TrainResult:
        address = context.address
        return train(self.model, self.batches, self.batches_per_epoch, self.loss, settings, device, checkpoints,
                     log=lambda line: context.log(f"{address}: {line}"), metrics=metrics,
                     cancelled=context.cancelled, meter=context.meter)

    def batches(self, epoch: int) -> Iterator[tuple[Any, ...]]:
        raise NotImplementedError

    def loss(self, model: Any, batch: tuple[Any, ...]) -> Any:
        raise NotImplementedError

    def evaluate(self, device: Any, wanted: list[str]) -> dict[str, float]:
        raise NotImplementedError

    def save(self, directory: Path) -> dict[str, Path]:
        raise NotImplementedError


def _order(rows: int, seed: int, epoch: int) -> Any:
    """The data order of an epoch: a function of the seed and the epoch, which is what makes resume exact."""
    import torch

    return torch.randperm(rows, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


class _Tabular(_Job):
    def __init__(self, spec: Any, splits: Mapping[str, Any]) -> None:
        import torch

        from mlspec_torch.architectures import mlp
        from mlspec_torch.tabular import Encoder

        label = spec.label
        require_columns(splits["train"], [*(spec.features or ()), label], dataset_address(spec.dataset),
                        spec.splits.train)
        try:
            self.encoder = Encoder.fit(splits["train"], spec.features, label, spec.task)
            inputs, targets = self.encoder.transform(splits["train"])
            self.test = self.encoder.transform(splits["test"])
        except ValueError as err:
            raise TrainingFailed(str(err)) from None
        self.task, self.classify = spec.task, spec.task == "tabular-classification"
        self.inputs, self.targets = torch.from_numpy(inputs), torch.from_numpy(targets)
        outputs = len(self.encoder.classes) if self.classify else 1
        config = spec.architecture.config or {}
        self.model = mlp(inputs.shape[1], outputs, config.get("hidden_sizes", [64, 32]), config.get("dropout", 0.0))
        self.batch_size, self.seed, self.rows = spec.hyperparameters.batch_size, spec.seed, len(inputs)
        self.classes = list(self.encoder.classes)
        self.signature = [Input("features", "float32", (BATCH, self.encoder.width))]
        self.batches_per_epoch = -(-len(inputs) // self.batch_size)

    def batches(self, epoch: int) -> Iterator[tuple[Any, ...]]:
        order = _order(len(self.inputs), self.seed, epoch)
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.inputs[index], self.targets[index]

    def loss(self, model: Any, batch: tuple[Any, ...]) -> Any:
        import torch

        out = model(batch[0])
        if self.classify:
            return torch.nn.functional.cross_entropy(out, batch[1])
        return torch.nn.functional.mse_loss(out.squeeze(-1), batch[1])

    def evaluate(self, device: Any, wanted: list[str]) -> dict[str, float]:
        import torch

        inputs, targets = self.test
        self.model.eval()
        with torch.no_grad():
            out = self.model(torch.from_numpy(inputs).to(device)).float().cpu()
        return from_outputs(self.task, out.numpy(), targets, wanted)

    def save(self, directory: Path) -> dict[str, Path]:
        from safetensors.torch import save_file

        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous().cpu() for k, v in self.model.state_dict().items()},
                  str(directory / "model.safetensors"))
        (directory / "encoder.json").write_text(json.dumps(self.encoder.to_json(), sort_keys=True, default=str))
        return {"model.safetensors": directory / "model.safetensors", "encoder.json": directory / "encoder.json"}


class _Text(_Job):
    library = "transformers"

    def __init__(self, spec: Any, splits: Mapping[str, Any], workdir: Path, outside: tuple[str, ...] = ()) -> None:
        import torch

        from mlspec_torch.architectures import text_classifier, train_tokenizer

        if not spec.features or len(spec.features) != 1:
            raise TrainingFailed("a text-classification model takes exactly one text column in `features`")
        text, label = spec.features[0], spec.label
        require_columns(splits["train"], [text, label], dataset_address(spec.dataset), spec.splits.train)
        config = dict(spec.architecture.config or {})
        vocab = int(config.pop("vocab_size", 4000))
        self.max_length = spec.hyperparameters.max_length or 128
        train_texts = [t or "" for t in splits["train"].column(text).to_pylist()]
        labels = splits["train"].column(label).to_pylist()
        self.classes = sorted({str(v) for v in labels if v is not None})
        if len(self.classes) < 2:
            raise TrainingFailed(f"label `{label}` has {len(self.classes)} class in the train split; a classifier "
                                 "needs at least 2")
        index = {c: i for i, c in enumerate(self.classes)}
        if spec.architecture.pretrained:
            where = paths.inside(workdir, spec.architecture.pretrained, "pretrained", outside)  # resolved as read
            self.tokenizer, self.model = _pretrained(where, len(self.classes))
            self.base_model = spec.architecture.pretrained
        else:
            self.tokenizer = train_tokenizer(train_texts, vocab, max_length=self.max_length)
            try:
                self.model = text_classifier(spec.architecture.family, config, len(self.tokenizer),
                                             len(self.classes), self.max_length)
            except ValueError as err:
                raise TrainingFailed(str(err)) from None
        self.model.config.id2label = dict(enumerate(self.classes))
        self.model.config.label2id = index
        encoded = self.tokenizer(train_texts, padding="max_length", truncation=True, max_length=self.max_length,
                                 return_tensors="pt")
        self.ids, self.mask = encoded["input_ids"], encoded["attention_mask"]
        self.targets = torch.tensor([index[str(v)] for v in labels])
        test_texts = [t or "" for t in splits["test"].column(text).to_pylist()]
        test = self.tokenizer(test_texts, padding="max_length", truncation=True, max_length=self.max_length,
                              return_tensors="pt")
        unknown = sorted({str(v) for v in splits["test"].column(label).to_pylist()} - set(index))
        if unknown:
            raise TrainingFailed(f"label `{label}` holds values the train split did not: {', '.join(unknown[:5])}")
        self.test = (test["input_ids"], test["attention_mask"],
                     [index[str(v)] for v in splits["test"].column(label).to_pylist()])
        self.batch_size, self.seed, self.rows = spec.hyperparameters.batch_size, spec.seed, len(self.ids)
        self.signature = [Input(name, "int64", (BATCH, SEQUENCE)) for name in ("input_ids", "attention_mask")]
        self.batches_per_epoch = -(-len(self.ids) // self.batch_size)

    def batches(self, epoch: int) -> Iterator[tuple[Any, ...]]:
        order = _order(len(self.ids), self.seed, epoch)
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.ids[index], self.mask[index], self.targets[index]

    def loss(self, model: Any, batch: tuple[Any, ...]) -> Any:
        return model(input_ids=batch[0], attention_mask=batch[1], labels=batch[2]).loss

    def evaluate(self, device: Any, wanted: list[str]) -> dict[str, float]:
        import numpy as np
        import torch

        ids, mask, labels = self.test
        self.model.eval()
        logits = []
        with torch.no_grad():
            for start in range(0, len(ids), 256):
                logits.append(self.model(input_ids=ids[start : start + 256].to(device),
                                         attention_mask=mask[start : start + 256].to(device)).logits.float().cpu()
                              .numpy())
        out = np.concatenate(logits) if logits else np.zeros((0, len(self.classes)), dtype=np.float32)
        return from_outputs("text-classification", out, np.array(labels), wanted)

    def save(self, directory: Path) -> dict[str, Path]:
        from transformers.utils import logging

        logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # our progress is the apply's; no tqdm in its log
        self.model.save_pretrained(directory, safe_serialization=True)
        self.tokenizer.save_pretrained(directory)
        return {path.name: path for path in sorted(directory.iterdir()) if path.is_file()}


def _pretrained(directory: Path, labels: int) -> tuple[Any, Any]:
    """A local transformers model directory: never the hub (local_files_only), a new head of `labels`."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if not directory.is_dir():
        raise TrainingFailed(f"architecture.pretrained `{directory}` is not a directory")
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(
            directory, num_labels=labels, local_files_only=True, ignore_mismatched_sizes=True)
    except (OSError, ValueError) as err:
        raise TrainingFailed(f"architecture.pretrained `{directory}` is not a transformers model: {err}") from None
    return tokenizer, model


def _settings(spec: Any) -> LoopSettings:
    h = spec.hyperparameters
    return LoopSettings(
        learning_rate=h.learning_rate, epochs=h.epochs, batch_size=h.batch_size, max_steps=h.max_steps,
        weight_decay=h.weight_decay, warmup_ratio=h.warmup_ratio, optimizer=h.optimizer, scheduler=h.scheduler,
        gradient_accumulation_steps=h.gradient_accumulation_steps, max_grad_norm=h.max_grad_norm,
        precision=spec.resources.precision, seed=spec.seed, checkpoint_every=spec.checkpoints.every_steps,
        keep_checkpoints=spec.checkpoints.keep, compile=spec.resources.compile,
    )
