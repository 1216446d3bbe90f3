"""A Model's training run on the data its Dataset produced: a tabular MLP and a tiny BERT, on CPU."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from mlspec_torch.loop import TrainingFailed  # noqa: E402
from mlspec_torch.training import RunContext, run  # noqa: E402

from mlspec.sdk import StepRequest  # noqa: E402
from mlspec.spec.specset import load_specs  # noqa: E402
from tests.cli import Result  # noqa: E402

Mlspec = Callable[..., Result]
CONFIG = "specs: ['specs/**/*.yaml']\n"


def customers(rows: int = 400) -> str:
    rng = random.Random(3)
    lines = ["tenure,spend,plan,churned"]
    for _ in range(rows):
        tenure, plan = rng.randrange(0, 60), rng.choice(["basic", "pro"])
        churned = (tenure < 12 and plan == "basic") or rng.random() < 0.05
        lines.append(f"{tenure},{rng.uniform(5, 50):.2f},{plan},{str(churned).lower()}")
    return "\n".join(lines) + "\n"


def reviews(rows: int = 200) -> str:
    rng = random.Random(4)
    good, bad = ["great", "love", "perfect", "excellent"], ["broke", "terrible", "refund", "awful"]
    lines = ["text,label"]
    for _ in range(rows):
        positive = rng.random() < 0.5
        words = [*rng.sample(good if positive else bad, 2), "the", "product"]
        rng.shuffle(words)
        lines.append(f"{' '.join(words)},{'positive' if positive else 'negative'}")
    return "\n".join(lines) + "\n"


DATASET = """apiVersion: mlspec/v1
kind: Dataset
metadata: {{name: {name}}}
spec:
  source: {{path: data/{name}.csv, format: csv}}
  splits: {{ratios: {{train: 0.8, test: 0.2}}, seed: 1}}
"""
TABULAR = """apiVersion: mlspec/v1
kind: Model
metadata: {name: churn}
spec:
  task: tabular-classification
  dataset: customers
  splits: {train: train, validation: null, test: test}
  features: [tenure, spend, plan]
  label: churned
  architecture: {family: mlp, config: {hidden_sizes: [16]}}
  hyperparameters: {learning_rate: 0.01, batch_size: 32, epochs: 8}
  evaluation: {metrics: [accuracy, f1, roc_auc], gates: ["roc_auc >= 0.8", "f1 >= champion"]}
"""
TEXT = """apiVersion: mlspec/v1
kind: Model
metadata: {name: sentiment}
spec:
  task: text-classification
  dataset: reviews
  splits: {train: train, validation: null, test: test}
  features: [text]
  label: label
  architecture:
    family: bert
    config: {hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 64, vocab_size: 300}
  hyperparameters: {learning_rate: 0.003, batch_size: 16, epochs: 4, max_length: 16}
  evaluation: {metrics: [accuracy, f1], gates: ["accuracy >= 0.9"]}
"""


def prepared(mlspec: Mlspec, project: Callable[..., Path], files: dict[str, str]) -> tuple[Path, Any, dict[str, Any]]:
    root = project(files, config=CONFIG)
    specs = load_specs(root)
    model = next(r for r in specs if r.kind == "Model")
    dataset = next(r.address for r in specs if r.kind == "Dataset")
    assert mlspec(root, "apply", "-y", "--target", dataset).code == 0  # the data only: these tests train
    upstream = {dataset: mlspec(root, "state", "show", dataset, "--format", "json").json()["outputs"]}
    return root, model, upstream


def context(root: Path, model: Any, upstream: dict[str, Any], **extra: Any) -> RunContext:
    return RunContext(StepRequest(model, upstream, None, root, ".mlspec/artifacts", "f" * 64), log=lambda _: None,
                      **extra)


def test_a_tabular_model_trains_evaluates_and_is_gated(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    root, model, upstream = prepared(mlspec, project, {
        "specs/customers.yaml": DATASET.format(name="customers"), "data/customers.csv": customers(),
        "specs/churn.yaml": TABULAR})
    out = run(context(root, model, upstream))
    assert out["metrics"]["roc_auc"] > 0.8 and out["gates_passed"], out["gates"]
    assert out["gates"][1]["why"] == "no champion yet: nothing to beat"
    assert set(out["files"]) == {"encoder.json", "model.safetensors", "mlspec-model.json", "README.md"}
    assert all((root / f["uri"]).is_file() for f in out["files"].values())
    assert out["dataset"]["version"] == upstream["Dataset/customers"]["version"] and out["device"].startswith("cpu")
    beaten = run(context(root, model, upstream, champion={"f1": 0.999}))
    assert not beaten["gates_passed"] and "short by" in beaten["gates"][1]["why"]


def test_a_tiny_bert_learns_the_reviews(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    root, model, upstream = prepared(mlspec, project, {
        "specs/reviews.yaml": DATASET.format(name="reviews"), "data/reviews.csv": reviews(),
        "specs/sentiment.yaml": TEXT})
    out = run(context(root, model, upstream))
    assert out["metrics"]["accuracy"] >= 0.9 and out["gates_passed"]
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(out["files"])


def test_a_missing_label_column_is_named(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    root, model, upstream = prepared(mlspec, project, {
        "specs/customers.yaml": DATASET.format(name="customers"), "data/customers.csv": customers(),
        "specs/churn.yaml": TABULAR})
    spec = model.envelope.spec.model_copy(update={"label": "left"})
    relabelled = dataclasses.replace(model, envelope=model.envelope.model_copy(update={"spec": spec}))
    with pytest.raises(Exception, match="has no column left"):
        run(context(root, relabelled, upstream))


def test_cuda_asked_on_a_machine_without_one_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    from mlspec_torch.training import device_for

    with pytest.raises(TrainingFailed, match="no CUDA GPU is visible"):
        device_for("cuda")

