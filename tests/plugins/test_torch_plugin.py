"""The Model plugin through the command line, as a team uses it: apply trains, gates and registers;
a failed gate holds what depends on the model; promote and rollback move it; an interrupted run
resumes; bad input is named with its position, never a traceback."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.cli import Result
from tests.plugins.test_torch_training import DATASET, TABULAR, TEXT, customers, reviews

Mlspec = Callable[..., Result]
CONFIG = "specs: ['specs/**/*.yaml']\n"
# A Task that stands for a Service: it runs when, and only when, what it serves changes.
SERVE = """apiVersion: mlspec/v1
kind: Task
metadata: {name: serve}
spec:
  cmd: [python, -c, "import os; open('served.txt', 'w').write(os.environ['MLSPEC_INPUT_CHURN_VERSION'])"]
  deps: [{ref: Model/churn, output: version}]
  outs: [served.txt]
"""


def served(root: Path) -> int:
    """The version the stand-in Service last took from the Model."""
    return int((root / "served.txt").read_text())


def churn(**fields: str) -> dict[str, str]:
    spec = TABULAR
    for old, new in fields.items():
        spec = spec.replace(old, new)
    return {"specs/customers.yaml": DATASET.format(name="customers"), "data/customers.csv": customers(),
            "specs/churn.yaml": spec}


def outputs(mlspec: Mlspec, root: Path, address: str) -> dict[str, Any]:
    return dict(mlspec(root, "state", "show", address, "--format", "json").json()["outputs"])


def registry(mlspec: Mlspec, root: Path, address: str = "Model/churn") -> dict[str, Any]:
    shown = mlspec(root, "models", "show", address, "--format", "json")
    assert shown.code == 0, shown.output
    return dict(shown.json())


@pytest.fixture(autouse=True)
def _python_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def test_apply_trains_registers_a_champion_and_a_second_plan_is_a_no_op(
    mlspec: Mlspec, project: Callable[..., Path]
) -> None:
    root = project(churn(), config=CONFIG)
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    assert re.search(r"gate `roc_auc >= 0.8` roc_auc 0\.\d+ >= 0.8000, by 0\.\d+", applied.err), applied.err
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0
    out = outputs(mlspec, root, "Model/churn")
    assert out["version"] == 1 and out["champion"]["version"] == 1 and out["gates_passed"]
    assert out["aliases"] == {"champion": 1} and out["device"].startswith("cpu")
    card = (root / out["files"]["README.md"]["uri"]).read_text()
    assert card.startswith("---\n") and "model-index:" in card and out["dataset"]["version"] in card
    assert "roc_auc" in card and "| spec fingerprint |" in card
    steps = [json.loads(line) for line in (root / out["metrics_log"]["uri"]).read_text().splitlines()]
    assert steps[0]["step"] == 1 and steps[-1]["step"] == out["steps"] and "loss" in steps[-1]
    listed = mlspec(root, "models", "list", "--format", "json").json()["models"]
    assert listed == [{"address": "Model/churn", "versions": 1, "aliases": {"champion": 1}, "champion": 1,
                       "champion_metrics": out["metrics"], "latest": 1, "latest_passed": True}]


def test_a_failed_gate_registers_a_candidate_and_holds_what_depends_on_the_model(
    mlspec: Mlspec, project: Callable[..., Path]
) -> None:
    root = project({**churn(), "specs/serve.yaml": SERVE}, config=CONFIG)
    assert mlspec(root, "apply", "-y").code == 0
    before = outputs(mlspec, root, "Task/serve")
    (root / "specs/churn.yaml").write_text(TABULAR.replace("roc_auc >= 0.8", "roc_auc >= 0.999"))

    plan = mlspec(root, "plan")
    assert "Task/serve  replace" in plan.out  # the plan cannot know the verdict: known after apply
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output  # a verdict, not a failure
    assert "held: Model/churn registered as a candidate" in applied.out
    assert "needs >= 0.9990: short by" in applied.out and "not touched: Task/serve" in applied.out
    assert outputs(mlspec, root, "Task/serve") == before and served(root) == 1  # not run again
    entry = registry(mlspec, root)
    assert entry["aliases"] == {"champion": 1, "candidate": 2}
    assert [v["gates_passed"] for v in entry["versions"]] == [True, False]
    again = mlspec(root, "plan", "--detailed-exitcode")
    assert again.code == 0, again.output  # the Task still builds on the champion: nothing to do

    finished = [json.loads(line) for line in (root / ".mlspec/audit/log.jsonl").read_text().splitlines()][-1]
    by_address = {s["address"]: s for s in finished["steps"]}
    assert by_address["Model/churn"]["outcome"] == "held" and "roc_auc >= 0.999" in by_address["Model/churn"]["why"]
    assert by_address["Task/serve"]["outcome"] == "withheld"


def test_promote_and_rollback_move_what_depends_on_the_model(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    root = project({**churn(), "specs/serve.yaml": SERVE}, config=CONFIG)
    assert mlspec(root, "apply", "-y").code == 0
    (root / "specs/churn.yaml").write_text(TABULAR.replace("roc_auc >= 0.8", "roc_auc >= 0.999"))
    assert mlspec(root, "apply", "-y").code == 0  # v2: a candidate

    assert served(root) == 1
    refused = mlspec(root, "promote", "churn", "2")  # v2 failed its gates: a person must say why it ships
    assert refused.code == 1 and "needs --force and a --reason" in refused.err
    promoted = mlspec(root, "promote", "churn", "v2", "--force", "--reason", "the gate was too strict")
    assert promoted.code == 0 and "Model/churn: champion v1 -> v2" in promoted.out
    plan = mlspec(root, "plan")
    assert "Task/serve  replace" in plan.out and "Model/churn's champion is now version 2" in plan.out
    assert mlspec(root, "apply", "-y").code == 0 and served(root) == 2
    rolled = mlspec(root, "rollback", "Model/churn", "--format", "json")
    assert rolled.json() == {"format_version": "1", "address": "Model/churn", "alias": "champion", "from": 2, "to": 1}
    assert "Model/churn's champion is now version 1" in mlspec(root, "plan").out
    assert mlspec(root, "apply", "-y").code == 0 and served(root) == 1
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0
    events = [json.loads(line)["event"] for line in (root / ".mlspec/audit/log.jsonl").read_text().splitlines()]
    assert "registry.promote" in events and "registry.rollback" in events


@pytest.mark.parametrize(("args", "message"), [
    (("promote", "Model/nope", "1"), "Model/nope has no registered versions"),
    (("promote", "churn", "7"), "no version 7 (versions: 1)"),
    (("promote", "churn", "1", "--alias", "Prod!"), "an alias is lowercase letters"),
    (("rollback", "churn"), "there is no earlier champion to roll back to"),
    (("models", "show", "Model/chrun"), "did you mean `Model/churn`?"),
])
def test_registry_commands_name_what_is_wrong(mlspec: Mlspec, project: Callable[..., Path], args: tuple[str, ...],
                                             message: str) -> None:
    root = project(churn(), config=CONFIG)
    assert mlspec(root, "apply", "-y").code == 0
    result = mlspec(root, *args)
    assert result.code == 1 and message in result.err, result.output


def test_a_run_killed_mid_training_resumes_from_its_checkpoint(project: Callable[..., Path]) -> None:
    """kill -9 during training: the plan says where the run will resume, and the next apply does."""
    long = churn(**{"epochs: 8": "epochs: 400", "batch_size: 32": "batch_size: 8"})
    long["specs/churn.yaml"] = long["specs/churn.yaml"].replace(
        "  evaluation:", "  checkpoints: {every_steps: 200, keep: 2}\n  evaluation:")
    root = project(long, config=CONFIG)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "mlspec", "-C", str(root), "apply", "-y"]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    checkpoints = root / ".mlspec/checkpoints/Model-churn"
    while not list(checkpoints.glob("*/step-*.pt")) and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    saved = sorted(checkpoints.glob("*/step-*.pt"))
    assert saved, "no checkpoint was written before the kill"

    plan = subprocess.run([sys.executable, "-m", "mlspec", "-C", str(root), "plan"], capture_output=True, text=True,
                          env=env)
    assert "interrupted: the last apply stopped during this step" in plan.stdout
    found = re.search(r"resume from step ([\d,]+) of ([\d,]+) \(an earlier apply's checkpoint\)", plan.stdout)
    assert found, plan.stdout
    total = int(found[2].replace(",", ""))
    again = [*command[:-1], "--target", "Model/churn", "-y"]
    # The killed apply's lock died with it: a plain apply takes it over, no force-unlock.
    resumed = subprocess.run(again, capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "The last holder of the state's lock is gone" in resumed.stderr
    assert "resuming from step " in resumed.stderr
    state = subprocess.run([sys.executable, "-m", "mlspec", "-C", str(root), "state", "show", "Model/churn",
                            "--format", "json"], capture_output=True, text=True, env=env)
    out = json.loads(state.stdout)["outputs"]
    assert out["resumed_from"] >= 200 and out["steps"] == total
    assert not list(checkpoints.glob("*/step-*.pt"))  # finished: nothing left to resume


def test_a_local_pretrained_model_is_fine_tuned_and_named_as_the_base(
    mlspec: Mlspec, project: Callable[..., Path]
) -> None:
    from mlspec_torch.architectures import text_classifier, train_tokenizer

    spec = TEXT.replace("    family: bert\n    config: {hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, "
                        "intermediate_size: 64, vocab_size: 300}\n", "    pretrained: models/base\n")
    assert "pretrained: models/base" in spec
    root = project({"specs/reviews.yaml": DATASET.format(name="reviews"), "data/reviews.csv": reviews(),
                    "specs/sentiment.yaml": spec}, config=CONFIG)
    tokenizer = train_tokenizer(["great product", "terrible refund"], 200, max_length=16)
    base = text_classifier("bert", {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                    "intermediate_size": 64}, len(tokenizer), 3, 16)
    base.save_pretrained(root / "models/base")
    tokenizer.save_pretrained(root / "models/base")

    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    out = outputs(mlspec, root, "Model/sentiment")
    card = (root / out["files"]["README.md"]["uri"]).read_text()
    assert "base_model: models/base" in card and "library_name: transformers" in card
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0
    (root / "models/base/config.json").write_text((root / "models/base/config.json").read_text() + "\n")
    assert "inputs changed: pretrained models/base changed" in mlspec(root, "plan").out


@pytest.mark.slow
def test_compile_true_trains_through_torch_compile(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    spec = TABULAR.replace("epochs: 8", "epochs: 2").replace(
        "  evaluation:", "  resources: {compile: true}\n  evaluation:")
    root = project({**churn(), "specs/churn.yaml": spec}, config=CONFIG)
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    assert outputs(mlspec, root, "Model/churn")["steps"] > 0


def test_the_plan_estimates_training_from_the_rows_and_then_from_the_last_run(
    mlspec: Mlspec, project: Callable[..., Path]
) -> None:
    root = project(churn(), config=CONFIG)
    assert "Model/churn  create\n" in mlspec(root, "plan").out  # no rows known yet: no guess shown
    assert mlspec(root, "apply", "-y", "--target", "Dataset/customers").code == 0
    first = mlspec(root, "plan", "--format", "json").json()
    step = next(s for s in first["steps"] if s["address"] == "Model/churn")
    assert re.fullmatch(r"8 x [\d,]+ rows at a first guess of 50,000 samples/s", step["estimate"]["basis"])
    assert mlspec(root, "apply", "-y").code == 0
    (root / "specs/churn.yaml").write_text(TABULAR.replace("epochs: 8", "epochs: 16"))
    again = mlspec(root, "plan")
    assert re.search(r"Model/churn  replace  \(~[\d.]+s, 16 x [\d,]+ rows at the last run's [\d,]+ samples/s\)",
                     again.out), again.out


def test_without_a_champion_dependents_wait_rather_than_build_on_a_failed_model(
    mlspec: Mlspec, project: Callable[..., Path]
) -> None:
    failing = TABULAR.replace("roc_auc >= 0.8", "roc_auc >= 0.999")
    root = project({**churn(), "specs/churn.yaml": failing, "specs/serve.yaml": SERVE}, config=CONFIG)
    assert mlspec(root, "apply", "-y").code == 0
    plan = mlspec(root, "plan", "--detailed-exitcode")
    assert plan.code == 0, plan.output  # nothing to do until there is a champion: no flapping
    assert "Task/serve" in plan.out and "waits for a champion of Model/churn" in plan.out
    assert mlspec(root, "promote", "churn", "1", "--force", "--reason", "good enough").code == 0  # a person decides
    plan = mlspec(root, "plan")
    assert "+ Task/serve  create" in plan.out
    assert mlspec(root, "apply", "-y").code == 0 and served(root) == 1


def test_a_version_registered_under_another_alias_waits_for_a_promote(
    mlspec: Mlspec, project: Callable[..., Path]
) -> None:
    staged = TABULAR + "  registry: {alias: staging}\n"
    root = project({**churn(), "specs/churn.yaml": staged, "specs/serve.yaml": SERVE}, config=CONFIG)
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0 and "registered as version 1 (staging), not as the champion" in applied.out
    assert registry(mlspec, root)["aliases"] == {"staging": 1}
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0
    assert mlspec(root, "promote", "Model/churn", "1").code == 0
    assert mlspec(root, "apply", "-y").code == 0 and served(root) == 1
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0
