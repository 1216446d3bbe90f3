"""The Optimization plugin's figures (issue 15): what ONNX Runtime and int8 buy, and what a step costs.

Three parts, each against a peer in the same process, in rounds (a block of calls of one, then of the
other; the median of `--repeat` rounds), so the machine's drift lands on both:

1. ONNX Runtime CPU fp32 against torch eager, the same weights, batch 1 and 32: the bundled
   BERT-style model's shape (2 layers, hidden 64, 64 tokens) and the bundled churn MLP's. Goal:
   <= 0.7x torch's latency, max abs diff <= 1e-4.
2. Dynamic int8 against ONNX Runtime fp32: the bundled BERT shape, and a BERT-base-sized model (12
   layers, hidden 768, 128 tokens) built from a config with random weights (speed only). Goal: >= 1.3x
   on the BERT-base-sized one. Sizes of both graphs.
3. The bundled specs applied in a scratch copy with an int8 Optimization beside the bundled fp32 one:
   the step's time for export, parity and benchmark (goal <= 30 s) and int8's change in accuracy on the
   test split (goal <= 1 point).

The graphs are made by the plugin's own code (export, fusions, graph optimization, quantization).

    python benchmarks/optimize.py [--repeat 5] [--skip-base] [--skip-bundled]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mlspec_optimize import ort
from mlspec_optimize.export import export
from mlspec_torch.architectures import mlp, text_classifier
from mlspec_torch.inference import BATCH, SEQUENCE, Input, Stored, features_of, logits_of

REPO = Path(__file__).resolve().parent.parent


def bert(config: dict[str, int], length: int, vocab: int) -> Stored:
    torch.manual_seed(0)
    model = text_classifier("bert", config, vocab, 2, length).eval()
    inputs = [Input(name, "int64", (BATCH, SEQUENCE)) for name in ("input_ids", "attention_mask")]
    data = {"task": "text-classification", "max_length": length, "architecture": {"family": "bert"}}
    return Stored(Path("."), data, logits_of(model).eval(), inputs, None)


def churn_mlp() -> Stored:
    torch.manual_seed(0)
    model = mlp(8, 2, (32, 16), 0.1).eval()
    data = {"task": "tabular-classification", "architecture": {"family": "mlp"}}
    return Stored(Path("."), data, features_of(model).eval(), [Input("features", "float32", (BATCH, 8))], None)


def feeds(stored: Stored, batch: int, vocab: int = 4000) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    if stored.inputs[0].name == "features":
        return {"features": rng.standard_normal((batch, 8)).astype(np.float32)}
    length = int(stored.data["max_length"])
    return {"input_ids": rng.integers(5, vocab, (batch, length)).astype(np.int64),
            "attention_mask": np.ones((batch, length), dtype=np.int64)}


def block(run: Callable[[], Any], calls: int) -> float:
    """The median latency of `calls` calls, in ms."""
    run()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def rounds(runners: dict[str, Callable[[], Any]], repeat: int, calls: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeat):
        for name, run in runners.items():
            out[name].append(block(run, calls))
            time.sleep(0.02)  # let the other runtime's threads go idle
    return out


def graphs(stored: Stored, scratch: Path) -> dict[str, Path]:
    """The plugin's fp32 (fused, optimized) and dynamic int8 graphs for `stored`."""
    exported = export(stored, scratch / "export", opset=18).graph
    fused = ort.fuse_transformer(exported, scratch / "fused.onnx") if stored.inputs[0].name != "features" else exported
    (scratch / "fp32").mkdir()
    (scratch / "int8").mkdir()
    return {"fp32": ort.optimize(fused, scratch / "fp32" / "model.onnx", [ort.CPU]),
            "int8": ort.quantize_dynamic(fused, scratch / "int8" / "model.onnx", scratch)}


def size(graph: Path) -> int:
    return sum(p.stat().st_size for p in graph.parent.iterdir() if p.name.startswith(graph.name))


def fp32_against_torch(repeat: int) -> None:
    print("\n## ONNX Runtime CPU fp32 against torch eager (p50 latency, ms; ratio = ORT / torch)\n")
    print("| model | batch | torch | ONNX Runtime | ratio (median, range) | max abs diff |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, stored in (("bundled BERT shape", bert({"hidden_size": 64, "num_hidden_layers": 2,
                                                       "num_attention_heads": 2, "intermediate_size": 128}, 64, 4000)),
                         ("churn MLP", churn_mlp())):
        with tempfile.TemporaryDirectory() as scratch:
            session = ort.Session(graphs(stored, Path(scratch))["fp32"], [ort.CPU])
            for batch in (1, 32):
                x = feeds(stored, batch)
                diff = float(np.abs(session.run(x) - stored.run(x)).max())
                found = rounds({"torch": partial(stored.run, x), "ort": partial(session.run, x)}, repeat, 30)
                ratios = [o / t for o, t in zip(found["ort"], found["torch"], strict=True)]
                print(f"| {name} | {batch} | {statistics.median(found['torch']):.3f} | "
                      f"{statistics.median(found['ort']):.3f} | {statistics.median(ratios):.2f}x "
                      f"({min(ratios):.2f}-{max(ratios):.2f}) | {diff:.1e} |")


def int8_against_fp32(repeat: int, skip_base: bool) -> None:
    print("\n## Dynamic int8 against ONNX Runtime fp32 (p50 latency, ms; speedup = fp32 / int8)\n")
    print("| model | batch | fp32 | int8 | speedup (median, range) | fp32 size | int8 size |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    cases: list[tuple[str, Stored, tuple[int, ...], int]] = [
        ("bundled BERT shape", bert({"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                                     "intermediate_size": 128}, 64, 4000), (1, 32), 30)]
    if not skip_base:
        cases.append(("BERT-base size (random weights)", bert({"hidden_size": 768, "num_hidden_layers": 12,
                                                                "num_attention_heads": 12, "intermediate_size": 3072},
                                                               128, 30522), (1, 8), 5))
    for name, stored, batches, calls in cases:
        with tempfile.TemporaryDirectory() as scratch:
            made = graphs(stored, Path(scratch))
            sessions = {precision: ort.Session(path, [ort.CPU]) for precision, path in made.items()}
            for batch in batches:
                x = feeds(stored, batch, 30522 if "base" in name else 4000)
                found = rounds({k: (lambda s=s, x=x: s.run(x)) for k, s in sessions.items()}, repeat, calls)
                ratios = [f / i for f, i in zip(found["fp32"], found["int8"], strict=True)]
                print(f"| {name} | {batch} | {statistics.median(found['fp32']):.2f} | "
                      f"{statistics.median(found['int8']):.2f} | {statistics.median(ratios):.2f}x "
                      f"({min(ratios):.2f}-{max(ratios):.2f}) | {size(made['fp32']) / 1e6:.1f} MB | "
                      f"{size(made['int8']) / 1e6:.1f} MB |")


INT8 = """apiVersion: mlspec/v1
kind: Optimization
metadata: {name: sentiment-int8}
spec:
  model: sentiment
  target: int8
  benchmark: {warmup: 5, iterations: 50, batch_sizes: [1, 8, 32]}
"""


def bundled() -> None:
    print("\n## The bundled specs, applied (a scratch copy)\n")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "repo"
        for part in ("specs", "scripts"):
            shutil.copytree(REPO / part, root / part)
        shutil.copy(REPO / "mlspec.yaml", root / "mlspec.yaml")
        (root / "specs" / "serving" / "sentiment-int8.yaml").write_text(INT8)
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        mlspec = [sys.executable, "-m", "mlspec"]
        subprocess.run([*mlspec, "apply", "-y", "--parallelism", "1"], cwd=root, env=env, check=True,
                       capture_output=True)
        print("| Optimization | step (export, parity, benchmark) | max abs diff | accuracy change | f1 change | "
              "size (safetensors -> optimized) | p50 speedup over torch (batch 1 / 8 / 32) |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name in ("sentiment-onnx", "sentiment-int8"):
            shown = subprocess.run([*mlspec, "state", "show", f"Optimization/{name}", "--format", "json"], cwd=root,
                                   env=env, check=True, capture_output=True, text=True).stdout
            out = json.loads(shown)["outputs"]
            metrics = out["parity"]["metrics"]
            speed = " / ".join(f"{out['benchmark'][b]['speedup']:.2f}x" for b in ("1", "8", "32"))
            print(f"| {name} | {out['seconds']:.1f} s | {out['parity']['max_abs_diff']:.1e} | "
                  f"{metrics['accuracy']['delta'] * 100:+.2f} pt | {metrics['f1']['delta'] * 100:+.2f} pt | "
                  f"{out['sizes']['original'] / 1e3:.0f} KB -> {out['sizes']['optimized'] / 1e3:.0f} KB | {speed} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-base", action="store_true", help="leave out the BERT-base-sized model (~2 min)")
    parser.add_argument("--skip-bundled", action="store_true", help="leave out applying the bundled specs")
    args = parser.parse_args()
    import onnxruntime

    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {onnxruntime.__version__}, "
          f"{os.cpu_count()} CPUs")
    fp32_against_torch(args.repeat)
    int8_against_fp32(args.repeat, args.skip_base)
    if not args.skip_bundled:
        bundled()


if __name__ == "__main__":
    main()
