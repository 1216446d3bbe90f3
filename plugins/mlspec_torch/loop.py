"""The training loop every built-in architecture shares: optimiser, schedule, accumulation,
clipping, mixed precision, checkpoints that make an interrupted run resume, and a stop on NaN.

Resuming is exact: a checkpoint holds the model, optimiser, scheduler and RNG states and the
position in the data (epoch, batch), and the data order of an epoch is a function of the seed and
the epoch, so a run stopped at step 1,200 and resumed ends with the same weights as one that never
stopped. Checkpoints are written to a temporary file and renamed: a kill during a save leaves the
previous checkpoint whole.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn, cast

from mlspec.sdk import StepFailed, StepInterrupted

if TYPE_CHECKING:
    import torch


class TrainingFailed(StepFailed):
    """Training cannot go on (NaN loss, a broken batch): the message says where."""


@dataclass
class LoopSettings:
    learning_rate: float
    epochs: int
    batch_size: int
    max_steps: int | None = None
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    optimizer: str = "adamw"
    scheduler: str = "linear"
    gradient_accumulation_steps: int = 1
    max_grad_norm: float | None = 1.0
    precision: str = "fp32"  # fp32 | bf16 | fp16
    seed: int = 0
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    compile: bool = False  # torch.compile the forward pass (the saved weights are the plain module's)


@dataclass
class TrainResult:
    steps: int
    seconds: float
    samples: int
    loss: float
    resumed_from: int | None = None
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0


SETTLE_EVERY = 32  # steps between reads of the loss on a GPU
Batches = Callable[[int], Iterator[tuple[Any, ...]]]  # epoch -> batches (deterministic per epoch)
LossOf = Callable[["torch.nn.Module", tuple[Any, ...]], "torch.Tensor"]
Meter = Callable[[int, int, str], None]  # (steps done, steps in all, "loss 0.41 · 1,234 samples/s")


def rank() -> tuple[int, int]:
    """(this process's rank, the world size): (0, 1) unless torchrun launched us into a process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def total_steps(settings: LoopSettings, batches_per_epoch: int) -> int:
    per_epoch = math.ceil(batches_per_epoch / settings.gradient_accumulation_steps)
    steps = per_epoch * settings.epochs
    return min(steps, settings.max_steps) if settings.max_steps else steps


def train(
    model: torch.nn.Module,
    batches: Batches,
    batches_per_epoch: int,
    loss_of: LossOf,
    settings: LoopSettings,
    device: torch.device,
    checkpoints: Path,
    *,
    log: Callable[[str], None] = print,
    metrics: Path | None = None,
    cancelled: threading.Event | None = None,
    meter: Meter | None = None,
) -> TrainResult:
    """Under torchrun (a process group), each rank trains on every world-th batch of an epoch through
    DistributedDataParallel, and only rank 0 writes checkpoints and metrics: `batches_per_epoch` is
    then the whole epoch's count, and a rank's share is that count divided by the world size."""
    cancelled = cancelled or threading.Event()
    me, world = rank()
    model.to(device)
    runner: Any = model
    if world > 1:
        runner, batches, batches_per_epoch = _distributed(model, batches, batches_per_epoch, device, me, world)
    if settings.compile:
        runner = _compiled(runner)
    run = _Run(model, runner, batches_per_epoch, loss_of, settings, device, checkpoints, me, world, log, meter)
    run.resume(_latest(checkpoints))
    run.started = run.metered = time.monotonic()
    with ExitStack() as closing:  # the metrics log is closed however training ends
        if metrics is not None and me == 0:
            run.sink = closing.enter_context(open(metrics, "a"))
        run.run(batches, cancelled)
    return TrainResult(run.step, time.monotonic() - run.started, run.samples, run.loss_value, run.resumed,
                       run.history)


def _distributed(model: torch.nn.Module, batches: Batches, batches_per_epoch: int, device: torch.device, me: int,
                 world: int) -> tuple[Any, Batches, int]:
    """The DDP wrapper, this rank's share of each epoch and that share's size: apart from `train`,
    since a single-process run (nearly every run) never reaches it."""
    from torch.nn.parallel import DistributedDataParallel

    runner = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    batches_per_epoch //= world
    if batches_per_epoch == 0:
        raise TrainingFailed(f"{world} ranks and fewer batches than ranks in an epoch: lower the batch size "
                             "or the number of GPUs")
    return runner, _shard(batches, me, world), batches_per_epoch


def _compiled(runner: Any) -> Any:
    """`torch.compile`d, or a failure that says how to turn it off: a run asked to compile is never
    trained uncompiled behind the user's back."""
    import torch

    try:
        return torch.compile(runner)
    except Exception as err:  # an unsupported platform or backend: say so, do not train uncompiled
        raise TrainingFailed(f"torch.compile failed: {type(err).__name__}: {err}; set resources.compile: "
                             "false") from None


class _Run:
    """One call of `train`: what every step uses (model, optimiser, scheduler, scaler) and what a step
    changes (the step, the position in the data, samples seen, losses not yet read), held in one
    place so that the loop can be split into a step, a window, a checkpoint, a read of the losses
    and a report, each small enough to check on its own, without passing a dozen values around.

    The per-batch methods (`_accumulate`, `_update`) are the hot path: they read what they need
    from slots (no dict look-ups) and allocate nothing beyond the hand-written loop's own, bar the
    one metrics row a step has always made."""

    __slots__ = ("accumulation", "autocast", "autocast_dtype", "autocast_enabled", "batch_index", "batches_per_epoch",
                 "checkpoints", "clip", "deferred", "device", "epoch", "history", "log", "loss_of", "loss_value", "me",
                 "meter", "metered", "model", "optimizer", "pending", "resumed", "runner", "samples", "scaler",
                 "scheduler", "settings", "sink", "started", "step", "steps", "world")

    def __init__(self, model: torch.nn.Module, runner: Any, batches_per_epoch: int, loss_of: LossOf,
                 settings: LoopSettings, device: torch.device, checkpoints: Path, me: int, world: int,
                 log: Callable[[str], None], meter: Meter | None) -> None:
        import torch

        self.model, self.runner, self.loss_of, self.settings = model, runner, loss_of, settings
        self.device, self.checkpoints, self.me, self.world = device, checkpoints, me, world
        self.log, self.meter = log, meter
        self.batches_per_epoch = batches_per_epoch
        self.accumulation = settings.gradient_accumulation_steps
        self.optimizer = _optimizer(model, settings)
        self.steps = total_steps(settings, batches_per_epoch)
        self.scheduler = _scheduler(self.optimizer, settings, self.steps)
        self.scaler = torch.amp.GradScaler(device.type, enabled=settings.precision == "fp16" and device.type == "cuda")
        autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(settings.precision)
        # Looked up once here rather than through `torch` on every batch (a `partial` would cost more).
        self.autocast, self.autocast_dtype = torch.autocast, autocast_dtype or torch.float32
        self.autocast_enabled = autocast_dtype is not None
        self.clip = torch.nn.utils.clip_grad_norm_
        self.step, self.epoch, self.batch_index = 0, 0, 0
        self.resumed: int | None = None
        self.started = self.metered = 0.0
        self.samples, self.loss_value = 0, float("nan")
        self.history: list[dict[str, float]] = []
        self.sink: IO[str] | None = None
        # On a GPU, reading the loss each step would make it wait for the CPU every step: losses are kept
        # on the device and read (and checked for NaN) every SETTLE_EVERY steps, and always before a
        # checkpoint is written, so a checkpoint never holds weights trained past a NaN.
        self.deferred = not reads_loss_each_step(device)
        self.pending: list[tuple[dict[str, Any], Any]] = []

    def resume(self, latest: Path | None) -> None:
        """Restore everything the next step depends on from the newest checkpoint (weights, optimiser,
        schedule, scaler, CPU and GPU RNG states, position in the data), so that a resumed run ends
        with the weights of one that never stopped; without one, seed the run."""
        import torch

        if latest is None:
            torch.manual_seed(self.settings.seed)
            return
        state = torch.load(latest, map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])  # dropout on the GPU draws from these
        self.step, self.epoch, self.batch_index = state["step"], state["epoch"], state["batch"]
        self.resumed = state["step"]
        if self.me == 0:
            self.log(f"resuming from step {self.step:,} of {self.steps:,}")

    def run(self, batches: Batches, cancelled: threading.Event) -> None:
        """Epoch after epoch until the steps are done, then read the losses still pending."""
        self.model.train()
        while self.step < self.steps and self.epoch < self.settings.epochs:
            if self._epoch(batches(self.epoch), cancelled):
                break
            self.epoch, self.batch_index = self.epoch + 1, 0
        self._settle()

    def _epoch(self, epoch_batches: Iterator[tuple[Any, ...]], cancelled: threading.Event) -> bool:
        """One epoch's batches from where the run stands in it; True when the last step is done. A
        window's last batch (or the epoch's) takes the optimiser step."""
        accumulation, per_epoch, skip = self.accumulation, self.batches_per_epoch, self.batch_index
        for index, batch in enumerate(epoch_batches):
            if index < skip:
                continue  # already trained on before the checkpoint
            if cancelled.is_set() and index % accumulation == 0:
                self._interrupt(index)
            value = self._accumulate(batch, index)
            if (index + 1) % accumulation and index + 1 < per_epoch:
                continue
            if self._update(index, value):
                return True
        return False

    def _interrupt(self, index: int) -> NoReturn:
        """Stop on cancel, at a window's start, so no half-accumulated gradient is lost: the checkpoint
        written here resumes exactly."""
        self._settle()
        if self.me == 0:
            self._checkpoint(index)
        raise StepInterrupted(f"stopped at step {self.step:,} of {self.steps:,}; the next apply resumes there")

    def _accumulate(self, batch: tuple[Any, ...], index: int) -> Any:
        """Forward and backward of one batch, its gradient added to the window's; returns its loss (a
        device tensor when reads are deferred, else the float, checked for NaN at once)."""
        device, accumulation = self.device, self.accumulation
        batch = tuple(t.to(device) if hasattr(t, "to") else t for t in batch)
        with self.autocast(device.type, dtype=self.autocast_dtype, enabled=self.autocast_enabled):
            loss = self.loss_of(self.runner, batch) / accumulation
        value: Any = loss.detach()
        if not self.deferred:  # on the CPU a read costs nothing: stop before the NaN reaches the weights
            value = float(value) * accumulation
            if not math.isfinite(value):
                raise TrainingFailed(f"the loss became {value} at step {self.step + 1:,} (epoch {self.epoch + 1}, "
                                     f"batch {index + 1}): lower the learning rate, or check the data")
        cast(Any, self.scaler.scale(loss)).backward()  # torch leaves backward untyped
        self.samples += len(batch[0]) * self.world
        return value

    def _update(self, index: int, value: Any) -> bool:
        """The optimiser step that ends a window, then its bookkeeping: the metrics row, the read of
        the losses when one is due, a checkpoint, the report. True when it was the last step."""
        settings, scaler, optimizer = self.settings, self.scaler, self.optimizer
        if settings.max_grad_norm:
            scaler.unscale_(optimizer)
            self.clip(self.model.parameters(), settings.max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step = step = self.step + 1
        steps = self.steps
        self.pending.append(({"step": step, "epoch": self.epoch + 1, "batch": index + 1,
                              "lr": self.scheduler.get_last_lr()[0]}, value))
        checkpoint = step % settings.checkpoint_every == 0
        tenth = step % max(1, steps // 10) == 0 or step == steps
        shown = self.me == 0 and (tenth or (self.meter is not None and time.monotonic() - self.metered > 0.1))
        if not self.deferred or checkpoint or shown or step % SETTLE_EVERY == 0 or step >= steps:
            self._settle()
        if checkpoint and self.me == 0:
            self._checkpoint(index + 1)
        if shown:
            self._report(tenth)
        return step >= steps

    def _settle(self) -> None:
        """Read the pending losses (one device sync for them all when deferred), stop on the first
        that is not finite, naming its step, and log the rest to the history and the metrics file."""
        pending = self.pending
        if not pending:
            return
        accumulation = self.accumulation
        if self.deferred:  # device tensors: one sync for them all
            import torch

            values = [v * accumulation for v in torch.stack([loss.float() for _, loss in pending]).cpu().tolist()]
        else:  # read already, as each step ran
            values = [float(loss) for _, loss in pending]
        for (row, _), value in zip(pending, values, strict=True):
            if not math.isfinite(value):
                pending.clear()
                raise TrainingFailed(f"the loss became {value} at step {row['step']:,} (epoch {row['epoch']}, "
                                     f"batch {row['batch']}): lower the learning rate, or check the data")
            row["loss"] = self.loss_value = value
            self.history.append(row)
            if self.sink is not None:
                self.sink.write(json.dumps(row) + "\n")
        pending.clear()

    def _checkpoint(self, batch: int) -> None:
        """A checkpoint that resumes before batch `batch` of the current epoch."""
        _save(self.checkpoints, self.model, self.optimizer, self.scheduler, self.scaler, self.step, self.epoch,
              batch, self.settings)

    def _report(self, tenth: bool) -> None:
        """Redraw the progress meter (at most 10 times a second), and log a line at every tenth of the run."""
        self.metered = metered = time.monotonic()
        elapsed = max(1e-9, metered - self.started)
        rate = self.samples / elapsed
        detail = f"loss {self.loss_value:.4f} · {rate:,.0f} samples/s"
        if self.meter is not None:
            self.meter(self.step, self.steps, detail)
        if tenth:
            eta = elapsed / max(1, self.step - (self.resumed or 0)) * (self.steps - self.step)
            self.log(f"step {self.step:,}/{self.steps:,}  {detail}  ETA {eta:,.0f}s")


def reads_loss_each_step(device: torch.device) -> bool:
    return device.type == "cpu"


def _shard(batches: Batches, me: int, world: int) -> Batches:
    """Rank `me`'s share of each epoch: every world-th batch. A remainder the ranks cannot share
    evenly is dropped, since DDP needs every rank to take the same number of steps."""

    def shard(epoch: int) -> Iterator[tuple[Any, ...]]:
        chunk: list[tuple[Any, ...]] = []
        for batch in batches(epoch):
            chunk.append(batch)
            if len(chunk) == world:
                yield chunk[me]
                chunk = []

    return shard


def _optimizer(model: torch.nn.Module, settings: LoopSettings) -> torch.optim.Optimizer:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if settings.optimizer == "sgd":
        return torch.optim.SGD(params, lr=settings.learning_rate, weight_decay=settings.weight_decay, momentum=0.9)
    if settings.optimizer == "adam":
        return torch.optim.Adam(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    return torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)


def _scheduler(optimizer: torch.optim.Optimizer, settings: LoopSettings, steps: int) -> Any:
    import torch

    warmup = int(steps * settings.warmup_ratio)

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if settings.scheduler == "constant":
            return 1.0
        progress = (step - warmup) / max(1, steps - warmup)
        if settings.scheduler == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return max(0.0, 1 - progress)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _save(directory: Path, model: Any, optimizer: Any, scheduler: Any, scaler: Any, step: int, epoch: int,
          batch: int, settings: LoopSettings) -> None:
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"step-{step:09d}.pt"
    tmp = target.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "step": step, "epoch": epoch, "batch": batch}, tmp)
    os.replace(tmp, target)
    for old in sorted(directory.glob("step-*.pt"))[: -settings.keep_checkpoints]:
        old.unlink(missing_ok=True)


def _latest(directory: Path) -> Path | None:
    found = sorted(directory.glob("step-*.pt")) if directory.is_dir() else []
    return found[-1] if found else None
