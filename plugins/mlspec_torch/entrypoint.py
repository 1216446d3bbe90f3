"""Entrypoint models: `architecture.entrypoint: module:function`, the team's own training code.

The function lives in the spec repo and is called with a `TrainContext` (below, the documented
contract): the splits as pyarrow tables, the hyperparameters, the device, a checkpoint directory
that survives an interrupted apply, a directory for the model's files and a metrics logger. It
returns its evaluation metrics on the test split; mlspec gates, stores and registers the rest as it
does for a built-in architecture.

    # train/churn_gbm.py
    def fit(ctx):
        ...                                  # train on ctx.splits["train"]
        ctx.log_metrics(step, loss=loss)     # -> metrics.jsonl, and the progress bar
        (ctx.output_dir / "model.safetensors").write_bytes(...)
        return {"accuracy": 0.91, "f1": 0.88}

When it raises, its traceback is the user's code: it is shown, framed, under the spec position of
`architecture.entrypoint`, with mlspec's own frames left out.
"""

from __future__ import annotations

import importlib
import json
import math
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlspec.sdk import StepInterrupted, did_you_mean
from mlspec_torch.inference import Input
from mlspec_torch.loop import LoopSettings, TrainingFailed, TrainResult


@dataclass
class TrainContext:
    """What an entrypoint function receives."""

    splits: Mapping[str, Any]  # role (train, validation, test) -> pyarrow.Table, PII already dropped
    features: list[str] | None
    label: str | None
    hyperparameters: Mapping[str, Any]  # spec.hyperparameters, `params` merged in at the top level
    device: Any  # torch.device
    seed: int
    checkpoint_dir: Path  # kept until the run succeeds: resume from what is here
    output_dir: Path  # write the model's files here; every file becomes an artifact
    log: Callable[[str], None] = print
    cancelled: threading.Event = field(default_factory=threading.Event)
    _sink: Any = None
    _meter: Any = None
    _started: float = field(default_factory=time.monotonic)
    steps: int = 0

    def log_metrics(self, step: int, **values: float) -> None:
        """One JSON line per call in the run's metrics log; a NaN stops the run, naming the step."""
        for name, value in values.items():
            if not math.isfinite(float(value)):
                raise TrainingFailed(f"{name} became {value} at step {step:,}")
        self.steps = max(self.steps, step)
        if self._sink is not None:
            self._sink.write(json.dumps({"step": step, **{k: float(v) for k, v in values.items()}}) + "\n")
        if self._meter is not None:
            total = int(self.hyperparameters.get("max_steps") or 0)
            shown = " · ".join(f"{k} {float(v):.4f}" for k, v in values.items())
            self._meter(step, max(total, step), shown)

    def check_cancelled(self) -> None:
        """Call between steps: raises when the apply is being stopped (the next apply resumes)."""
        if self.cancelled.is_set():
            raise StepInterrupted(f"stopped at step {self.steps:,}; the next apply resumes from checkpoint_dir")


class EntrypointJob:
    """Adapts an entrypoint to the shape training.run expects of a job."""

    library = "pytorch"
    base_model: str | None = None
    signature: list[Input] | None = None  # the module's own encode() says (inference.py)
    classes: list[Any] = []  # noqa: RUF012  # its outputs' meaning is the entrypoint's

    def __init__(self, spec: Any, splits: Mapping[str, Any], context: Any, device: Any, checkpoints: Path,
                 scratch: Path) -> None:
        self.spec, self.splits, self.context, self.device = spec, splits, context, device
        self.checkpoints, self.output = checkpoints, scratch / "model"
        self.function = load(spec.architecture.entrypoint, context.workdir, context.address, context.where)
        self.rows = splits["train"].num_rows
        self.found: Mapping[str, float] = {}

    def train(self, settings: LoopSettings, device: Any, checkpoints: Path, context: Any,
              metrics: Path) -> TrainResult:
        self.output.mkdir(parents=True, exist_ok=True)
        checkpoints.mkdir(parents=True, exist_ok=True)
        spec = self.spec
        started = time.monotonic()
        with open(metrics, "a") as sink:
            ctx = TrainContext(
                splits=self.splits, features=spec.features, label=spec.label,
                hyperparameters={**spec.hyperparameters.model_dump(exclude={"params"}),
                                 **spec.hyperparameters.params},
                device=device, seed=spec.seed, checkpoint_dir=checkpoints, output_dir=self.output,
                log=lambda line: context.log(f"{context.address}: {line}"),
                cancelled=context.cancelled or threading.Event(), _sink=sink, _meter=context.meter)
            found = call(self.function, ctx, spec.architecture.entrypoint, context.address, context.where,
                         context.workdir)
        self.found = _metrics(found, spec.architecture.entrypoint)
        seconds = time.monotonic() - started
        return TrainResult(ctx.steps, seconds, self.rows * spec.hyperparameters.epochs, float("nan"))

    def evaluate(self, device: Any, wanted: list[str]) -> dict[str, float]:
        return {name: self.found[name] for name in wanted if name in self.found} | {
            name: value for name, value in self.found.items() if name not in wanted}

    def save(self, directory: Path) -> dict[str, Path]:
        files = {p.relative_to(self.output).as_posix(): p for p in sorted(self.output.rglob("*")) if p.is_file()}
        if not files:
            raise TrainingFailed(f"{self.context.address}: the entrypoint wrote no files to ctx.output_dir")
        return files


def load(entrypoint: str, workdir: Path, address: str, where: str) -> Callable[[TrainContext], Any]:
    """Import `module:function` from the spec repo (its root first on sys.path)."""
    module_name, _, name = entrypoint.partition(":")
    with _IMPORTING:  # steps run in threads: one import (and purge) at a time
        root = str(workdir)
        if root not in sys.path:
            sys.path.insert(0, root)
        top = module_name.split(".")[0]
        seen = _signature(workdir, top)
        if _LOADED.get(top) != seen:  # another repo's, or edited since: this repo's code as it is now
            for loaded in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
                del sys.modules[loaded]
            importlib.invalidate_caches()
            _LOADED[top] = seen
        try:
            module = importlib.import_module(module_name)
        except Exception as err:
            _LOADED.pop(top, None)
            raise TrainingFailed(_framed(f"{address}: the entrypoint `{entrypoint}` does not import", err, where,
                                         workdir)) from None
    function = getattr(module, name, None)
    if not callable(function):
        found = sorted(n for n in vars(module) if callable(getattr(module, n)) and not n.startswith("_"))
        hint = did_you_mean(name, found)
        raise TrainingFailed(f"{address}: {where}: module `{module_name}` has no function `{name}`"
                             + (f"; {hint}" if hint else f" (its functions: {', '.join(found) or 'none'})"))
    return function  # type: ignore[no-any-return]


_IMPORTING = threading.Lock()
_LOADED: dict[str, tuple[tuple[str, int, int], ...]] = {}  # top-level package -> its files when imported


def _signature(workdir: Path, top: str) -> tuple[tuple[str, int, int], ...]:
    """Path, mtime and size of the package's (or module's) source files: what a re-import must see."""
    package, single = workdir / top, workdir / f"{top}.py"
    files = sorted(package.rglob("*.py")) if package.is_dir() else [single] if single.is_file() else []
    return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)


def call(function: Callable[[TrainContext], Any], ctx: TrainContext, entrypoint: str, address: str, where: str,
         workdir: Path) -> Any:
    try:
        return function(ctx)
    except (StepInterrupted, TrainingFailed):
        raise
    except Exception as err:
        raise TrainingFailed(_framed(f"{address}: the entrypoint `{entrypoint}` raised", err, where,
                                     workdir)) from None


def _metrics(found: Any, entrypoint: str) -> dict[str, float]:
    if found is None:
        return {}
    if not isinstance(found, Mapping):
        raise TrainingFailed(f"the entrypoint `{entrypoint}` returned {type(found).__name__}; it must return its "
                             "evaluation metrics as a dict ({'f1': 0.9, ...}) or None")
    out = {}
    for name, value in found.items():
        try:
            out[str(name)] = float(value)
        except (TypeError, ValueError):
            raise TrainingFailed(f"the entrypoint `{entrypoint}` returned metric `{name}` = {value!r}, not a "
                                 "number") from None
    return out


def _framed(head: str, err: BaseException, where: str, workdir: Path) -> str:
    """The user's traceback, boxed under the spec position; frames of mlspec and importlib left out."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if _theirs(f.filename, workdir)]
    lines = traceback.format_list(frames) + traceback.format_exception_only(type(err), err)
    body = "".join(lines).rstrip("\n").splitlines()
    shown = [f"  │ {line.replace(str(workdir) + '/', '')}" for line in body]
    return "\n".join([f"{head} ({where})" if where else head, "  ╭─ traceback (most recent call last)", *shown,
                      "  ╰─"])


def _theirs(filename: str, workdir: Path) -> bool:
    path = Path(filename)
    try:
        path.relative_to(workdir)
    except ValueError:
        return False
    return "site-packages" not in path.parts and ".venv" not in path.parts
