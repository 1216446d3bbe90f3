"""The Model plugin's training throughput against a plain hand-written torch loop (issue 7).

The same run both ways, in the same process, interleaved: the same model (initialised from the
same seed), the same data and order, AdamW with a linear schedule, gradient clipping at 1.0 (what
the spec says; a hand-written loop for it does the same). The plugin's loop adds what a user gets
for free: checkpoint bookkeeping, a NaN check per step, the metrics log, the progress meter,
mixed-precision plumbing. Goal: >= 0.9x the hand-written loop's samples/s.

Two shapes: a small MLP on small batches (per-step overhead is the whole cost: the worst case for
a framework's loop) and a tiny BERT (the bundled sentiment model's shape). On a machine with CUDA,
`--device cuda --precision bf16` measures the same on the GPU.

    python benchmarks/training.py [--repeat 5] [--device cpu|cuda] [--precision fp32|bf16]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from mlspec_torch.architectures import mlp, text_classifier
from mlspec_torch.loop import LoopSettings, train


def tabular(rows: int = 20_000, features: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(rows, features, generator=g)
    y = (x[:, :4].sum(dim=1) > 0).long()
    return x, y


def tokens(rows: int = 2_000, length: int = 64, vocab: int = 2_000) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab, (rows, length), generator=g)
    return ids, (ids[:, 0] % 2).long()


def order(rows: int, epoch: int) -> torch.Tensor:
    return torch.randperm(rows, generator=torch.Generator().manual_seed(1_000_003 + epoch))


def by_hand(model: torch.nn.Module, batches: Callable[[int], Iterator[tuple[torch.Tensor, ...]]], steps_per_epoch: int,
            loss_of: Callable[[Any, tuple[torch.Tensor, ...]], torch.Tensor], epochs: int, device: torch.device,
            dtype: torch.dtype | None) -> tuple[int, float]:
    """What a careful engineer writes for this spec, and nothing more."""
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    total = steps_per_epoch * epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / total))
    samples, started = 0, time.perf_counter()
    for epoch in range(epochs):
        for batch in batches(epoch):
            batch = tuple(t.to(device) for t in batch)
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = loss_of(model, batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            samples += len(batch[0])
    if device.type == "cuda":
        torch.cuda.synchronize()
    return samples, time.perf_counter() - started


def with_plugin(model: torch.nn.Module, batches: Callable[[int], Iterator[tuple[torch.Tensor, ...]]],
                steps_per_epoch: int, loss_of: Callable[[Any, tuple[torch.Tensor, ...]], torch.Tensor], epochs: int,
                device: torch.device, precision: str) -> tuple[int, float]:
    settings = LoopSettings(learning_rate=1e-3, epochs=epochs, batch_size=0, max_grad_norm=1.0, precision=precision,
                            checkpoint_every=10**9)
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        result = train(model, batches, steps_per_epoch, loss_of, settings, device, Path(scratch) / "checkpoints",
                       log=lambda _: None, metrics=Path(scratch) / "metrics.jsonl", meter=lambda *_: None)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return result.samples, time.perf_counter() - started


def case(name: str, repeat: int, device: torch.device, precision: str) -> dict[str, Any]:
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if name == "mlp":
        x, y = tabular()
        batch_size, epochs = 64, 2

        def make() -> torch.nn.Module:
            torch.manual_seed(0)
            return mlp(x.shape[1], 2, (64, 32))

        def loss_of(model: Any, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
            return torch.nn.functional.cross_entropy(model(batch[0]), batch[1])
    else:
        x, y = tokens()
        batch_size, epochs = 32, 1

        def make() -> torch.nn.Module:
            torch.manual_seed(0)
            config = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}
            return text_classifier("bert", config, 2_000, 2, 64)  # type: ignore[no-any-return]

        def loss_of(model: Any, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
            return model(input_ids=batch[0], labels=batch[1]).loss  # type: ignore[no-any-return]

    def batches(epoch: int) -> Iterator[tuple[torch.Tensor, ...]]:
        index = order(len(x), epoch)
        for start in range(0, len(index), batch_size):
            chosen = index[start : start + batch_size]
            yield x[chosen], y[chosen]

    steps = math.ceil(len(x) / batch_size)
    hand, plugin = [], []
    with_plugin(make(), batches, steps, loss_of, 1, device, precision)  # warm up allocators and kernels
    for _ in range(repeat):  # interleaved: the machine's drift hits both alike
        n, s = by_hand(make(), batches, steps, loss_of, epochs, device, dtype)
        hand.append(n / s)
        n, s = with_plugin(make(), batches, steps, loss_of, epochs, device, precision)
        plugin.append(n / s)
    ratios = [p / h for p, h in zip(plugin, hand, strict=True)]
    return {"case": name, "hand": statistics.median(hand), "plugin": statistics.median(plugin),
            "ratio": statistics.median(ratios), "spread": (min(ratios), max(ratios))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--cases", default="mlp,bert")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}), "
          f"precision {args.precision}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| model | hand-written loop (samples/s) | plugin loop (samples/s) | plugin / hand (median, range) |")
    print("|---|---:|---:|---:|")
    for name in args.cases.split(","):
        found = case(name, args.repeat, device, args.precision)
        low, high = found["spread"]
        print(f"| {name} | {found['hand']:,.0f} | {found['plugin']:,.0f} | {found['ratio']:.3f}x "
              f"({low:.3f}-{high:.3f}) |", flush=True)


if __name__ == "__main__":
    main()
