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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

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
    import torch

    cancelled = cancelled or threading.Event()
    me, world = rank()
    model.to(device)
    runner: Any = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        runner = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        batches = _shard(batches, me, world)
        batches_per_epoch //= world
        if batches_per_epoch == 0:
            raise TrainingFailed(f"{world} ranks and fewer batches than ranks in an epoch: lower the batch size "
                                 "or the number of GPUs")
    if settings.compile:
        try:
            runner = torch.compile(runner)
        except Exception as err:  # an unsupported platform or backend: say so, do not train uncompiled
            raise TrainingFailed(f"torch.compile failed: {type(err).__name__}: {err}; set resources.compile: "
                                 "false") from None
    optimizer = _optimizer(model, settings)
    steps = total_steps(settings, batches_per_epoch)
    scheduler = _scheduler(optimizer, settings, steps)
    scaler = torch.amp.GradScaler(device.type, enabled=settings.precision == "fp16" and device.type == "cuda")
    autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(settings.precision)

    step, epoch, batch_index, resumed = 0, 0, 0, None
    latest = _latest(checkpoints)
    if latest is not None:
        state = torch.load(latest, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])  # dropout on the GPU draws from these
        step, epoch, batch_index, resumed = state["step"], state["epoch"], state["batch"], state["step"]
        if me == 0:
            log(f"resuming from step {step:,} of {steps:,}")
    else:
        torch.manual_seed(settings.seed)

    started, samples, loss_value = time.monotonic(), 0, float("nan")
    metered = started
    history: list[dict[str, float]] = []
    sink = open(metrics, "a") if metrics is not None and me == 0 else None  # noqa: SIM115 (closed in finally)
    # On a GPU, reading the loss each step would make it wait for the CPU every step: losses are kept
    # on the device and read (and checked for NaN) every SETTLE_EVERY steps, and always before a
    # checkpoint is written, so a checkpoint never holds weights trained past a NaN.
    deferred = not reads_loss_each_step(device)
    pending: list[tuple[dict[str, Any], Any]] = []

    def settle() -> None:
        nonlocal loss_value
        if not pending:
            return
        if deferred:  # device tensors: one sync for them all
            values = [v * settings.gradient_accumulation_steps
                      for v in torch.stack([loss.float() for _, loss in pending]).cpu().tolist()]
        else:  # read already, as each step ran
            values = [float(loss) for _, loss in pending]
        for (row, _), value in zip(pending, values, strict=True):
            if not math.isfinite(value):
                pending.clear()
                raise TrainingFailed(f"the loss became {value} at step {row['step']:,} (epoch {row['epoch']}, "
                                     f"batch {row['batch']}): lower the learning rate, or check the data")
            row["loss"] = loss_value = value
            history.append(row)
            if sink is not None:
                sink.write(json.dumps(row) + "\n")
        pending.clear()

    try:
        model.train()
        while step < steps and epoch < settings.epochs:
            for index, batch in enumerate(batches(epoch)):
                if index < batch_index:
                    continue  # already trained on before the checkpoint
                if cancelled.is_set() and index % settings.gradient_accumulation_steps == 0:
                    # At a window's start, so no half-accumulated gradient is lost: resume is exact.
                    settle()
                    if me == 0:
                        _save(checkpoints, model, optimizer, scheduler, scaler, step, epoch, index, settings)
                    raise StepInterrupted(f"stopped at step {step:,} of {steps:,}; the next apply resumes there")
                batch = tuple(t.to(device) if hasattr(t, "to") else t for t in batch)
                with torch.autocast(device.type, dtype=autocast_dtype or torch.float32,
                                    enabled=autocast_dtype is not None):
                    loss = loss_of(runner, batch) / settings.gradient_accumulation_steps
                value: Any = loss.detach()
                if not deferred:  # on the CPU a read costs nothing: stop before the NaN reaches the weights
                    value = float(value) * settings.gradient_accumulation_steps
                    if not math.isfinite(value):
                        raise TrainingFailed(f"the loss became {value} at step {step + 1:,} (epoch {epoch + 1}, "
                                             f"batch {index + 1}): lower the learning rate, or check the data")
                cast(Any, scaler.scale(loss)).backward()  # torch leaves backward untyped
                samples += len(batch[0]) * world
                if (index + 1) % settings.gradient_accumulation_steps and index + 1 < batches_per_epoch:
                    continue
                if settings.max_grad_norm:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()
                step += 1
                pending.append(({"step": step, "epoch": epoch + 1, "batch": index + 1,
                                 "lr": scheduler.get_last_lr()[0]}, value))
                checkpoint = step % settings.checkpoint_every == 0
                tenth = step % max(1, steps // 10) == 0 or step == steps
                shown = me == 0 and (tenth or (meter is not None and time.monotonic() - metered > 0.1))
                if not deferred or checkpoint or shown or step % SETTLE_EVERY == 0 or step >= steps:
                    settle()
                if checkpoint and me == 0:
                    _save(checkpoints, model, optimizer, scheduler, scaler, step, epoch, index + 1, settings)
                if shown:
                    metered = time.monotonic()  # the bar is redrawn at most 10 times a second
                    elapsed = max(1e-9, metered - started)
                    rate = samples / elapsed
                    detail = f"loss {loss_value:.4f} · {rate:,.0f} samples/s"
                    if meter is not None:
                        meter(step, steps, detail)
                    if tenth:
                        eta = elapsed / max(1, step - (resumed or 0)) * (steps - step)
                        log(f"step {step:,}/{steps:,}  {detail}  ETA {eta:,.0f}s")
                if step >= steps:
                    break
            else:
                epoch, batch_index = epoch + 1, 0
                continue
            break
        settle()
    finally:
        if sink is not None:
            sink.close()
    return TrainResult(step, time.monotonic() - started, samples, loss_value, resumed, history)


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
