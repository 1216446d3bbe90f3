"""Bad input to a Model, and the team's own training code: every problem named where it is (file,
line, column, field) or at the step that broke, the step tainted, never a traceback of mlspec's."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.cli import Result  # noqa: E402
from tests.plugins.test_torch_plugin import CONFIG, churn, outputs  # noqa: E402
from tests.plugins.test_torch_training import TABULAR  # noqa: E402

Mlspec = Callable[..., Result]

CUSTOM = """apiVersion: mlspec/v1
kind: Model
metadata: {name: custom}
spec:
  task: tabular-classification
  dataset: customers
  splits: {train: train, validation: null, test: test}
  label: churned
  architecture:
    entrypoint: train.custom:fit
  hyperparameters: {params: {rule_tenure: 12}}
  evaluation: {metrics: [accuracy, f1], gates: ["accuracy >= 0.5"]}
"""
FIT = '''"""A team's own training code: a threshold rule, "trained" by counting."""
import json


def fit(ctx):
    train = ctx.splits["train"].to_pydict()
    threshold = ctx.hyperparameters["rule_tenure"]
    for step in range(1, 4):
        ctx.check_cancelled()
        ctx.log_metrics(step, loss=1.0 / step)
    (ctx.output_dir / "rule.json").write_text(json.dumps({"tenure_below": threshold}))
    (ctx.checkpoint_dir / "note.txt").write_text("resumable")
    test = ctx.splits["test"].to_pydict()
    guesses = [t < threshold for t in test["tenure"]]
    right = sum(g == bool(y) for g, y in zip(guesses, test["churned"]))
    return {"accuracy": right / len(guesses), "f1": 0.5, "rows_seen": len(train["tenure"])}
'''


def custom(fit: str = FIT, spec: str = CUSTOM) -> dict[str, str]:
    files = churn()
    del files["specs/churn.yaml"]
    return {**files, "specs/custom.yaml": spec, "train/__init__.py": "", "train/custom.py": fit}


@pytest.fixture(autouse=True)
def _python_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.mark.parametrize(("old", "new", "message"), [
    ("learning_rate: 0.01", "learning_rate: -0.01", "specs/churn.yaml:11:36: error[MLS104]"),
    ("batch_size: 32", "batch_size: 0", "spec.hyperparameters.batch_size"),
    ("splits: {train: train,", "splits: {train: training,", "did you mean `train`?"),
])
def test_out_of_range_and_unknown_fields_are_refused_at_plan_time_with_their_position(
    mlspec: Mlspec, project: Callable[..., Path], old: str, new: str, message: str
) -> None:
    files = churn()
    files["specs/customers.yaml"] += "  schema:\n    columns:\n      tenure: {type: int}\n      churned: {type: bool}\n"
    root = project({**files, "specs/churn.yaml": TABULAR.replace(old, new)}, config=CONFIG)
    plan = mlspec(root, "plan")
    assert plan.code == 1 and message in plan.err, plan.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_on_a_machine_without_a_gpu_is_a_plan_time_error_at_the_field(
    mlspec: Mlspec, project: Callable[..., Path]
) -> None:
    spec = TABULAR.replace("  evaluation:", "  resources: {accelerator: cuda}\n  evaluation:")
    root = project({**churn(), "specs/churn.yaml": spec}, config=CONFIG)
    plan = mlspec(root, "plan")
    assert plan.code == 1
    assert "specs/churn.yaml:12:28" in plan.err and "`cuda` is asked for, but no CUDA GPU is visible" in plan.err
    assert "accelerator: auto" in plan.err
    assert not (root / ".mlspec/state.db").exists() or mlspec(root, "state", "list").out == ""


@pytest.mark.parametrize(("old", "new", "message"), [
    ("label: churned", "label: left", "Dataset/customers's split `train` has no column left"),
    ("features: [tenure, spend, plan]", "features: [tenure, spend, plna]", "did you mean `plan`?"),
])
def test_a_column_the_data_lacks_taints_the_model_and_names_it(
    mlspec: Mlspec, project: Callable[..., Path], old: str, new: str, message: str
) -> None:
    root = project({**churn(), "specs/churn.yaml": TABULAR.replace(old, new)}, config=CONFIG)
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 1 and message in applied.output, applied.output
    assert json.loads(mlspec(root, "state", "list", "--format", "json").out)["resources"][1]["status"] == "tainted"


def test_a_label_with_one_class_is_named(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    files = churn()
    files["data/customers.csv"] = files["data/customers.csv"].replace(",true\n", ",false\n")
    root = project(files, config=CONFIG)
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 1 and "label `churned` has 1 class in the train split" in applied.output


def test_an_entrypoint_model_trains_with_the_documented_context(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    root = project(custom(), config=CONFIG)
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    out = outputs(mlspec, root, "Model/custom")
    assert out["gates_passed"] and out["metrics"]["accuracy"] > 0.5 and out["metrics"]["rows_seen"] > 200
    assert set(out["files"]) == {"rule.json", "mlspec-model.json", "README.md"} and out["steps"] == 3
    assert json.loads((root / out["files"]["rule.json"]["uri"]).read_text()) == {"tenure_below": 12}
    logged = (root / out["metrics_log"]["uri"]).read_text().splitlines()
    assert [json.loads(line)["step"] for line in logged] == [1, 2, 3]
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0
    (root / "train/custom.py").write_text(FIT.replace("1.0 / step", "2.0 / step"))  # the code is an input
    plan = mlspec(root, "plan")
    assert "Model/custom  replace" in plan.out and "inputs changed: train/custom.py changed" in plan.out


def test_an_entrypoint_that_raises_shows_its_traceback_framed_at_the_spec(
    mlspec: Mlspec, project: Callable[..., Path]
) -> None:
    broken = FIT.replace('    threshold = ctx.hyperparameters["rule_tenure"]',
                         '    threshold = ctx.hyperparameters["rule_tenur"]')
    root = project(custom(broken), config=CONFIG)
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 1
    text = applied.output
    assert "Model/custom: the entrypoint `train.custom:fit` raised (specs/custom.yaml:10:17 " \
           "spec.architecture.entrypoint)" in text, text
    assert 'File "train/custom.py", line 7, in fit' in text and "KeyError: 'rule_tenur'" in text
    assert "mlspec_torch" not in text.split("raised")[1]  # only the user's frames


@pytest.mark.parametrize(("fit", "message"), [
    ("import nonexistent_package\n", "the entrypoint `train.custom:fit` does not import"),
    ("def fitt(ctx):\n    return {}\n", "module `train.custom` has no function `fit`; did you mean `fitt`?"),
    (FIT.replace("loss=1.0 / step", "loss=float('nan')"), "loss became nan at step 1"),
    (FIT.replace('return {"accuracy": right', 'return ["accuracy", right]  # {"accuracy": right'),
     "returned list; it must return its evaluation metrics as a dict"),
])
def test_a_broken_entrypoint_is_named(mlspec: Mlspec, project: Callable[..., Path], fit: str, message: str) -> None:
    root = project(custom(fit), config=CONFIG)
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 1 and message in applied.output, applied.output


@pytest.mark.slow
def test_gpus_above_one_trains_with_ddp_through_torchrun(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    """On a CPU, `gpus: 2` with `accelerator: cpu` runs two gloo ranks: the torchrun path, end to end."""
    spec = TABULAR.replace("  evaluation:", "  resources: {accelerator: cpu, gpus: 2}\n  evaluation:")
    root = project({**churn(), "specs/churn.yaml": spec}, config=CONFIG)
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    out: dict[str, Any] = outputs(mlspec, root, "Model/churn")
    assert out["device"].endswith(" x2") and out["gates_passed"], out
    single = outputs_of_single(mlspec, project, root)
    assert out["steps"] * 2 <= single["steps"] + 2  # each rank took half the batches of an epoch


def outputs_of_single(mlspec: Mlspec, project: Callable[..., Path], root: Path) -> dict[str, Any]:
    (root / "specs/churn.yaml").write_text(TABULAR)
    assert mlspec(root, "apply", "-y").code == 0
    return outputs(mlspec, root, "Model/churn")


@pytest.mark.slow
def test_a_failure_on_a_rank_other_than_0_is_reported_with_its_reason(
    mlspec: Mlspec, project: Callable[..., Path]
) -> None:
    fit = FIT.replace('    train = ctx.splits["train"].to_pydict()', '''    import os
    if os.environ["RANK"] == "1":
        raise ValueError("rank 1 found a broken shard")
    train = ctx.splits["train"].to_pydict()''')
    spec = CUSTOM.replace("  hyperparameters:", "  resources: {accelerator: cpu, gpus: 2}\n  hyperparameters:")
    root = project(custom(fit, spec), config=CONFIG)
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 1
    assert "ValueError: rank 1 found a broken shard" in applied.output and "(rank 1 of 2)" in applied.output
