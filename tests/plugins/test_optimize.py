"""The Optimization plugin through the command line: a trained MLP and a tiny BERT exported to ONNX,
optimized for ONNX Runtime or quantized to int8, proven the same model on their own validation and
test splits, benchmarked against torch; bad input named, never a traceback.

The Models train once per module (a copy of that repo per test): what each test changes is the
Optimization, or what it finds in the store.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from mlspec.cli import main
from tests.cli import Result
from tests.plugins.test_torch_training import DATASET, TABULAR, TEXT, customers, reviews

Mlspec = Callable[..., Result]
CONFIG = "specs: ['specs/**/*.yaml']\n"
CHURN = TABULAR.replace("{hidden_sizes: [16]}", "{hidden_sizes: [16, 8], dropout: 0.1}")
OPTIMIZE = """apiVersion: mlspec/v1
kind: Optimization
metadata: {{name: {name}}}
spec:
  model: {model}
  target: {target}
  benchmark: {{warmup: 2, iterations: 10, batch_sizes: [1, 16]}}
"""
# An entrypoint model the team wrote, with what an export needs beside its training function.
ENTRYPOINT = '''"""A linear model trained by hand; `eig: true` puts an op ONNX has no translation for in its forward."""
import json
import numpy as np
import torch


class Linear(torch.nn.Module):
    def __init__(self, eig=False):
        super().__init__()
        self.layer = torch.nn.Linear(2, 2)
        self.eig = eig

    def forward(self, features):
        out = self.layer(features)
        if self.eig:
            out = out + torch.linalg.eigvals(out.reshape(-1, 1, 2).expand(-1, 2, 2)).real.sum(-1, keepdim=True)
        return out


def encode(table):
    tenure = np.asarray(table.column("tenure").to_pylist(), dtype=np.float32) / 60
    spend = np.asarray(table.column("spend").to_pylist(), dtype=np.float32) / 50
    return {"features": np.stack([tenure, spend], axis=1)}


def fit(ctx):
    torch.manual_seed(0)
    model = Linear(bool(ctx.hyperparameters.get("eig")))
    inputs = torch.from_numpy(encode(ctx.splits["train"])["features"])
    labels = torch.tensor([int(v) for v in ctx.splits["train"].column("churned").to_pylist()])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for step in range(20):
        loss = torch.nn.functional.cross_entropy(model.layer(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ctx.log_metrics(step + 1, loss=float(loss.detach()))
    torch.save(model.state_dict(), ctx.output_dir / "weights.pt")
    (ctx.output_dir / "options.json").write_text(json.dumps({"eig": model.eig}))
    return {"accuracy": 0.5}


def load_model(directory):
    options = json.loads((directory / "options.json").read_text())
    model = Linear(options["eig"])
    model.load_state_dict(torch.load(directory / "weights.pt"))
    return model
'''
ENTRY_MODEL = """apiVersion: mlspec/v1
kind: Model
metadata: {{name: {name}}}
spec:
  task: tabular-classification
  dataset: customers
  splits: {{train: train, validation: null, test: test}}
  features: [tenure, spend]
  label: churned
  architecture: {{entrypoint: "train.linear:fit"}}
  hyperparameters: {{learning_rate: 0.5, batch_size: 32, epochs: 1, params: {{eig: {eig}}}}}
  evaluation: {{metrics: [accuracy]}}
"""


def _files() -> dict[str, str]:
    return {
        "specs/customers.yaml": DATASET.format(name="customers"), "data/customers.csv": customers(),
        "specs/reviews.yaml": DATASET.format(name="reviews"), "data/reviews.csv": reviews(),
        "specs/churn.yaml": CHURN, "specs/sentiment.yaml": TEXT, "train/__init__.py": "", "train/linear.py": ENTRYPOINT,
        "specs/linear.yaml": ENTRY_MODEL.format(name="linear", eig="false"),
        "specs/eig.yaml": ENTRY_MODEL.format(name="eig", eig="true"),
    }


def applied(root: Path, files: dict[str, str]) -> Path:
    """A repo of `files` with everything in it applied: what a module's tests copy and build on."""
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content)
    (root / "mlspec.yaml").write_text(CONFIG)
    assert main(["-C", str(root), "apply", "-y"]) == 0
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A repo whose Datasets and Models are applied: each test optimizes a copy of it."""
    yield applied(tmp_path_factory.mktemp("trained") / "repo", _files())


@pytest.fixture
def repo(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """A copy of the trained repo with the given Optimization specs added."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")

    def make(**specs: str) -> Path:
        root = tmp_path / "repo"
        shutil.copytree(trained, root, ignore=shutil.ignore_patterns("*.lock"))
        for name, text in specs.items():
            (root / "specs" / f"{name}.yaml").write_text(text)
        return root

    return make


def optimization(name: str, model: str, target: str = "onnxruntime", **replace: str) -> str:
    text = OPTIMIZE.format(name=name, model=model, target=target)
    for old, new in replace.items():
        text = text.replace(old, new)
    return text


def outputs(mlspec: Mlspec, root: Path, address: str) -> dict[str, Any]:
    return dict(mlspec(root, "state", "show", address, "--format", "json").json()["outputs"])


def test_onnx_runtime_serves_the_same_mlp_and_bert_and_says_how_much_faster(
    mlspec: Mlspec, repo: Callable[..., Path]
) -> None:
    root = repo(**{"churn-onnx": optimization("churn-onnx", "churn"),
                   "sentiment-onnx": optimization("sentiment-onnx", "sentiment")})
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    assert "Optimization/sentiment-onnx: parity: max abs diff" in applied.err
    assert "benchmark (p50, original / optimized): batch 1:" in applied.err
    for name, source in (("churn-onnx", "Model/churn"), ("sentiment-onnx", "Model/sentiment")):
        out = outputs(mlspec, root, f"Optimization/{name}")
        assert out["format"] == "onnx" and out["runtime"] == "onnxruntime" and out["provider"] == "CPUExecutionProvider"
        # The weights travel with the graph (ONNX Runtime keeps initializers under 1 KB inside it).
        assert set(out["files"]) == ({"model.onnx"} if name == "churn-onnx" else {"model.onnx", "model.onnx.data"})
        assert all((root / ref["uri"]).is_file() for ref in out["files"].values())
        parity = out["parity"]
        assert parity["passed"] and parity["max_abs_diff"] <= 1e-4 and parity["outside_tolerance"] == 0
        assert all(abs(m["delta"]) < 1e-9 for m in parity["metrics"].values()), parity
        assert set(out["benchmark"]) == {"1", "16"}
        figures = out["benchmark"]["16"]
        assert figures["original"]["p50_ms"] > 0 and figures["optimized"]["rows_per_second"] > 0
        assert out["source"]["address"] == source and out["source"]["version"] == 1
        assert [i["name"] for i in out["inputs"]] == (["features"] if name == "churn-onnx"
                                                     else ["input_ids", "attention_mask"])
    again = mlspec(root, "plan", "--detailed-exitcode")
    assert again.code == 0, again.output
    lineage = mlspec(root, "lineage", "Optimization/sentiment-onnx")
    assert lineage.code == 0 and "Model/sentiment" in lineage.out, lineage.output
    estimate = mlspec(root, "plan", "--replace", "Optimization/churn-onnx")
    assert "the last run (speedup batch 1 " in estimate.out, estimate.out


def test_int8_is_smaller_keeps_the_metrics_and_runs_right_after_quantizing(
    mlspec: Mlspec, repo: Callable[..., Path]
) -> None:
    root = repo(**{"sentiment-int8": optimization("sentiment-int8", "sentiment", "int8")})
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    out = outputs(mlspec, root, "Optimization/sentiment-int8")
    assert out["precision"] == "int8" and out["parity"]["atol"] is None  # int8 is held to its metrics
    assert out["sizes"]["optimized"] < out["sizes"]["original"], out["sizes"]
    assert all(abs(m["delta"]) <= 0.01 for m in out["parity"]["metrics"].values())


def test_a_tolerance_exceeded_fails_with_the_figures_and_stores_nothing(
    mlspec: Mlspec, repo: Callable[..., Path]
) -> None:
    strict = optimization("tight", "sentiment", "int8").replace("spec:\n", "spec:\n  tolerance: {atol: 0, rtol: 0}\n")
    root = repo(tight=strict)
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 1
    assert "Optimization/tight: the int8 model is not the same model as Model/sentiment:" in applied.err
    assert "outputs differ by more than atol 0 + rtol 0 x |original| (max abs diff" in applied.err
    shown = mlspec(root, "state", "show", "Optimization/tight", "--format", "json")
    assert shown.code == 1 or not shown.json().get("outputs", {}).get("files")


def test_an_optimization_that_does_not_pay_for_itself_fails_when_the_spec_asks(
    mlspec: Mlspec, repo: Callable[..., Path]
) -> None:
    root = repo(slow=optimization("slow", "churn", "onnx", **{"batch_sizes: [1, 16]}":
                                                              "batch_sizes: [1, 16], min_speedup: 1000}"}))
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 1
    assert "Optimization/slow: the optimized model does not pay for itself:" in applied.err
    assert "below min_speedup 1000x (p50 latency, original / optimized)" in applied.err


def test_a_corrupt_graph_in_the_store_is_drift_and_is_rebuilt(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    root = repo(**{"churn-onnx": optimization("churn-onnx", "churn")})
    assert mlspec(root, "apply", "-y").code == 0
    graph = root / outputs(mlspec, root, "Optimization/churn-onnx")["files"]["model.onnx"]["uri"]
    graph.chmod(0o644)
    graph.write_bytes(graph.read_bytes()[:-7] + b"garbage")
    plan = mlspec(root, "plan")
    assert "drift: model.onnx in the artifact store does not hold the bytes its digest names (corrupt): rebuild" in (
        plan.out), plan.out
    assert mlspec(root, "apply", "-y").code == 0
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0


def test_a_new_champion_replans_the_optimization(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    root = repo(**{"churn-onnx": optimization("churn-onnx", "churn")})
    assert mlspec(root, "apply", "-y").code == 0
    (root / "specs/churn.yaml").write_text(CHURN.replace("epochs: 8", "epochs: 9"))
    plan = mlspec(root, "plan")
    assert "Optimization/churn-onnx" in plan.out and "because Model/churn will be replaced" in plan.out, plan.out
    assert mlspec(root, "apply", "-y").code == 0
    assert outputs(mlspec, root, "Optimization/churn-onnx")["source"]["version"] == 2


def test_an_entrypoint_model_exports_through_its_own_loader(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    root = repo(**{"linear-onnx": optimization("linear-onnx", "linear")})
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    out = outputs(mlspec, root, "Optimization/linear-onnx")
    assert out["inputs"] == [{"name": "features", "dtype": "float32", "dims": ["batch", 2]}]
    assert out["parity"]["max_abs_diff"] <= 1e-5


def test_an_op_without_an_onnx_translation_is_named_with_the_line_that_made_it(
    mlspec: Mlspec, repo: Callable[..., Path]
) -> None:
    root = repo(**{"eig-onnx": optimization("eig-onnx", "eig")})
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 1
    assert "the op `aten.linalg_eig` has no ONNX translation (opset 18)" in applied.err, applied.err
    assert "linear.py:" in applied.err and "in forward" in applied.err, applied.err


def test_tensorrt_without_a_gpu_is_said_in_the_plan_and_fails_cleanly(
    mlspec: Mlspec, repo: Callable[..., Path]
) -> None:
    from mlspec_optimize.tensorrt import machine

    if machine().missing() is None:
        pytest.skip("this machine can build TensorRT engines")
    engine = optimization("engine", "churn", "tensorrt").replace(
        "spec:\n", "spec:\n  profiles: [{batch: {min: 1, opt: 8, max: 16}}]\n")
    root = repo(engine=engine)
    plan = mlspec(root, "plan")
    assert plan.code == 0, plan.output
    assert "needs an NVIDIA GPU and TensorRT, and " in plan.out and "apply will fail on this machine" in plan.out
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 1
    assert "Optimization/engine: a TensorRT engine is built on the GPU it will run on, and " in applied.err
    assert "(nothing was built)" in applied.err


@pytest.mark.parametrize(("edit", "message"), [
    ({"target: onnxruntime": "target: int8\n  accelerator: cuda"},
     "dynamic int8 runs on the CPU: on ONNX Runtime's CUDA provider"),
    ({"target: onnxruntime": "target: onnx\n  precision: fp16"}, "a plain ONNX export is fp32, not fp16"),
    ({"target: onnxruntime": "target: tensorrt\n  profiles: [{batch: {min: 1, opt: 4, max: 8}}]"},
     "batch size 16 is outside every profile (batch 1 to 8): the engine cannot run it"),
    ({"target: onnxruntime": "target: tensorrt\n  profiles: [{batch: {min: 8, opt: 1, max: 32}}]"},
     "min 8, opt 1, max 32 are out of order"),
])
def test_bad_specs_are_named_at_validate(mlspec: Mlspec, project: Callable[..., Path], edit: dict[str, str],
                                         message: str) -> None:
    files = {"specs/customers.yaml": DATASET.format(name="customers"), "specs/churn.yaml": CHURN,
             "specs/opt.yaml": optimization("opt", "churn", **edit)}
    checked = mlspec(project(files, config=CONFIG), "validate")
    assert checked.code == 1
    assert message in checked.out, checked.out
    assert "specs/opt.yaml:" in checked.out
