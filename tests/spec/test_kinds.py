"""The seven kinds: valid examples, their semantic rules, and checks across resources (MLS205)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlspec.spec import codes
from mlspec.spec.check import check_document
from mlspec.spec.diagnostics import Diagnostic
from mlspec.spec.kinds import KIND_NAMES
from mlspec.spec.loader import load_text
from mlspec.validation import validate

Project = Callable[..., Path]

# One valid example of each kind; together they form a linked project (imported by test_properties).
VALID: dict[str, str] = {
    "Dataset": """\
apiVersion: mlspec/v1
kind: Dataset
metadata:
  name: reviews
  owner: team-nlp
  labels: {tier: gold}
spec:
  description: Short product reviews with a sentiment label.
  depends_on: [Task/make-data]
  source:
    path: data/reviews.csv
    format: csv
  schema:
    columns:
      review_id: {type: int, nullable: false, unique: true}
      text: {type: string, nullable: false}
      email: {type: string}
      phone: {type: string}
      stars: {type: int, range: {min: 1, max: 5}}
      label: {type: category, nullable: false, allowed: [negative, positive]}
  checks:
    min_rows: 1000
    max_null_fraction: {text: 0.0, stars: 0.05}
    max_duplicate_fraction: 0.02
  splits:
    ratios: {train: 0.8, validation: 0.1, test: 0.1}
    seed: 13
    stratify_by: label
  pii:
    columns: {email: hash, phone: drop}
    salt: ${env:MLSPEC_PII_SALT}
""",
    "Model": """\
apiVersion: mlspec/v1
kind: Model
metadata:
  name: sentiment
spec:
  task: text-classification
  dataset: reviews
  splits: {train: train, validation: validation, test: test}
  features: [text]
  label: label
  architecture:
    family: bert
    config: {hidden_size: 64, num_hidden_layers: 2}
  hyperparameters:
    learning_rate: 0.0005
    batch_size: 32
    epochs: 2
    warmup_ratio: 0.1
  resources: {accelerator: auto, precision: fp32}
  seed: 13
  evaluation:
    metrics: [accuracy, f1]
    gates:
      - "f1 >= 0.75"
      - "f1 >= champion"
      - "accuracy > champion - 0.01"
  registry: {alias: champion}
""",
    "Optimization": """\
apiVersion: mlspec/v1
kind: Optimization
metadata:
  name: sentiment-onnx
spec:
  model: sentiment
  target: onnxruntime
  precision: fp32
  profiles:
    - batch: {min: 1, opt: 8, max: 32}
      sequence: {min: 8, opt: 64, max: 64}
  tolerance: {atol: 0.001, rtol: 0.001}
  benchmark: {warmup: 5, iterations: 50, batch_sizes: [1, 8, 32]}
  calibration: {dataset: reviews, split: train, samples: 128}
""",
    "Service": """\
apiVersion: mlspec/v1
kind: Service
metadata:
  name: sentiment-api
spec:
  model: Optimization/sentiment-onnx
  port: 3311
  batching: {max_batch_size: 32, max_latency_ms: 20}
  resources: {cpu: 1, memory: 1Gi}
  health: {path: /readyz, timeout_s: 60}
  rollout:
    strategy: canary
    canary: {traffic: 0.1, duration_s: 120}
  env: {API_TOKEN: "${env:API_TOKEN}"}
  lifecycle: {prevent_destroy: true}
""",
    "Prompt": """\
apiVersion: mlspec/v1
kind: Prompt
metadata:
  name: review-triage
spec:
  template: |
    Classify the sentiment of this review for the {{ team }} team:
    {{review}}
  variables:
    review: {type: string}
    team: {type: string, required: false, default: support}
  target: {service: Service/sentiment-api}
  tests:
    - name: clearly-positive
      vars: {review: "Great product, works perfectly."}
      assert: [{type: equals, value: positive}]
  aliases: [production]
""",
    "Monitor": """\
apiVersion: mlspec/v1
kind: Monitor
metadata:
  name: sentiment-drift
spec:
  service: sentiment-api
  reference: {dataset: reviews, split: train}
  features: [text, stars]
  drift:
    - {method: psi, threshold: 0.2, features: [stars]}
    - {method: js, threshold: 0.1}
  window: {duration: 1h, min_samples: 200}
  alerts:
    - {type: log}
    - {type: webhook, url: "${env:ALERT_WEBHOOK}"}
  on_drift: {action: retrain, model: Model/sentiment}
""",
    "Task": """\
apiVersion: mlspec/v1
kind: Task
metadata:
  name: make-data
spec:
  cmd: [python, scripts/make_data.py, --rows, "4000"]
  deps: [scripts/make_data.py]
  outs: [data/reviews.csv]
  params: {rows: 4000, seed: 13}
  env: {HF_HUB_OFFLINE: "1"}
  timeout_s: 600
""",
}


def check(text: str) -> list[Diagnostic]:
    """Load and check every document of `text`, as one file (no linking)."""
    loaded = load_text(text, "spec.yaml")
    out = list(loaded.diagnostics)
    for doc in loaded.documents:
        out.extend(check_document(doc, "spec.yaml").diagnostics)
    return out


def one(text: str) -> Diagnostic:
    found = check(text)
    assert len(found) == 1, found
    return found[0]


def project_of(project: Project, **override: str) -> Path:
    """The VALID project, with some kinds' files replaced (or removed with "")."""
    texts = {**VALID, **override}
    return project({f"specs/{kind.lower()}.yaml": text for kind, text in texts.items() if text})


# --- valid examples -----------------------------------------------------------------------------


def test_there_is_an_example_of_every_kind() -> None:
    assert set(VALID) == set(KIND_NAMES)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_valid_example_checks_clean(kind: str) -> None:
    [doc] = load_text(VALID[kind], "spec.yaml").documents
    checked = check_document(doc, "spec.yaml")
    assert checked.diagnostics == []
    assert checked.resource is not None
    assert checked.resource.kind_name == kind


def test_valid_examples_validate_together(project: Project) -> None:
    report = validate(project_of(project), use_cache=False)
    assert report.diagnostics == []
    assert report.ok
    assert sorted(report.graph.nodes) == [
        "Dataset/reviews", "Model/sentiment", "Monitor/sentiment-drift", "Optimization/sentiment-onnx",
        "Prompt/review-triage", "Service/sentiment-api", "Task/make-data",
    ]  # fmt: skip


def test_valid_examples_in_one_multi_document_file(project: Project) -> None:
    report = validate(project({"specs/all.yaml": "---\n".join(VALID.values())}), use_cache=False)
    assert report.diagnostics == []
    assert report.resource_count == 7


def test_defaults_make_a_minimal_spec_valid() -> None:
    assert check("apiVersion: mlspec/v1\nkind: Task\nmetadata: {name: t}\nspec:\n  cmd: [make]\n") == []


def test_unquoted_true_in_an_argv_list_is_a_wrong_type() -> None:
    d = one("apiVersion: mlspec/v1\nkind: Task\nmetadata: {name: t}\nspec:\n  cmd: [true]\n")
    assert (d.code, d.line, d.col, d.field) == (codes.WRONG_TYPE, 5, 9, "spec.cmd[0]")
    assert d.message == "expected a string, got `true`"


def test_yes_is_a_string_so_a_boolean_field_rejects_it() -> None:
    d = one("apiVersion: mlspec/v1\nkind: Task\nmetadata: {name: t}\nspec:\n  cmd: [a]\n  cache: yes\n")
    assert (d.code, d.line, d.col, d.field) == (codes.WRONG_TYPE, 6, 10, "spec.cache")
    assert "`yes`" in d.message


# --- semantic rules, one kind at a time -----------------------------------------------------------


def test_split_ratios_must_sum_to_one() -> None:
    d = one(VALID["Dataset"].replace("test: 0.1}", "test: 0.2}"))
    assert (d.code, d.line, d.col, d.field) == (codes.INVALID_VALUE, 26, 13, "spec.splits.ratios")
    assert d.message == "split ratios sum to 1.1, not 1"
    assert d.hint == "scale them, e.g. divide each by 1.1"


def test_split_ratios_close_to_one_are_accepted() -> None:
    thirds = "{a: 0.3333333, b: 0.3333333, c: 0.3333334}"
    assert check(VALID["Dataset"].replace("{train: 0.8, validation: 0.1, test: 0.1}", thirds)) == []


def test_a_split_share_must_be_a_fraction() -> None:
    found = check(
        VALID["Dataset"].replace("{train: 0.8, validation: 0.1, test: 0.1}", "{train: 1.2, test: -0.2}")
    )
    assert sorted((d.code, d.line, d.col, d.field) for d in found) == [  # they sum to 1: only the shares
        (codes.INVALID_VALUE, 26, 21, "spec.splits.ratios.train"),
        (codes.INVALID_VALUE, 26, 32, "spec.splits.ratios.test"),
    ]


def test_stratify_by_an_unknown_column_with_did_you_mean() -> None:
    d = one(VALID["Dataset"].replace("stratify_by: label", "stratify_by: lable"))
    assert (d.code, d.line, d.col, d.field) == (codes.INVALID_VALUE, 28, 18, "spec.splits.stratify_by")
    assert d.hint == "did you mean `label`?"


def test_pii_column_must_be_in_the_schema() -> None:
    d = one(VALID["Dataset"].replace("{email: hash, phone: drop}", "{email: hash, phnoe: drop}"))
    assert (d.code, d.field) == (codes.INVALID_VALUE, "spec.pii.columns.phnoe")
    assert d.hint == "did you mean `phone`?"


def test_range_min_above_max() -> None:
    d = one(VALID["Dataset"].replace("{min: 1, max: 5}", "{min: 5, max: 1}"))
    assert (d.code, d.line, d.field) == (codes.INVALID_VALUE, 19, "spec.schema.columns.stars.range.min")


@pytest.mark.parametrize(
    "gate",
    ["f1 => 0.75", "f1 >= high", "f1 >= champion * 2", ">= 0.5", "f1 = 0.9", "f1 >= 0.75 and accuracy > 0.5"],
)
def test_gate_syntax(gate: str) -> None:
    d = one(VALID["Model"].replace('"f1 >= 0.75"', f'"{gate}"'))
    assert (d.code, d.line, d.col, d.field) == (codes.INVALID_VALUE, 24, 9, "spec.evaluation.gates[0]")
    assert f"gate `{gate}`" in d.message
    assert "<metric> <op> <number>" in d.message


def test_gate_on_a_metric_not_in_evaluation_metrics() -> None:
    d = one(VALID["Model"].replace('"f1 >= 0.75"', '"roc_auc >= 0.75"'))
    assert (d.code, d.line, d.col, d.field) == (codes.INVALID_VALUE, 24, 9, "spec.evaluation.gates[0]")
    assert "`roc_auc`" in d.message
    assert d.expected == "one of accuracy, f1"
    assert d.hint == "add `roc_auc` to evaluation.metrics"


def test_gate_on_a_misspelt_metric_with_did_you_mean() -> None:
    d = one(VALID["Model"].replace('"accuracy > champion - 0.01"', '"acuracy > champion - 0.01"'))
    assert (d.code, d.line, d.field) == (codes.INVALID_VALUE, 26, "spec.evaluation.gates[2]")
    assert d.hint == "did you mean `accuracy`?"


@pytest.mark.parametrize(
    ("architecture", "found"),
    [
        ("{config: {hidden_size: 8}}", ""),
        ("{family: bert, pretrained: models/bert-tiny}", " (found family, pretrained)"),
        ("{pretrained: models/x, entrypoint: 'train:main'}", " (found pretrained, entrypoint)"),
    ],
)
def test_architecture_needs_exactly_one_of_family_pretrained_entrypoint(
    architecture: str, found: str
) -> None:
    text = VALID["Model"].replace(
        "  architecture:\n    family: bert\n    config: {hidden_size: 64, num_hidden_layers: 2}\n",
        f"  architecture: {architecture}\n",
    )
    d = one(text)
    assert (d.code, d.line, d.col, d.field) == (codes.INVALID_VALUE, 11, 17, "spec.architecture")
    assert d.message == "architecture needs exactly one of family, pretrained, entrypoint" + found


@pytest.mark.parametrize("architecture", ["{pretrained: models/bert-tiny}", "{entrypoint: 'pkg.train:main'}"])
def test_architecture_without_family(architecture: str) -> None:
    text = VALID["Model"].replace(
        "  architecture:\n    family: bert\n    config: {hidden_size: 64, num_hidden_layers: 2}\n",
        f"  architecture: {architecture}\n",
    )
    assert check(text) == []


def test_model_family_must_fit_the_task() -> None:
    d = one(VALID["Model"].replace("family: bert", "family: mlp"))
    assert (d.code, d.line, d.col, d.field) == (codes.INVALID_VALUE, 12, 13, "spec.architecture.family")


def test_task_string_cmd_without_shell() -> None:
    d = one(
        VALID["Task"].replace(
            'cmd: [python, scripts/make_data.py, --rows, "4000"]', "cmd: python make.py --rows 10"
        )
    )
    assert (d.code, d.line, d.col, d.field) == (codes.INVALID_VALUE, 6, 8, "spec.cmd")
    assert d.message == "a string command needs `shell: true`"
    assert d.hint is not None and "shell: true" in d.hint


def test_task_string_cmd_with_shell() -> None:
    text = VALID["Task"].replace(
        'cmd: [python, scripts/make_data.py, --rows, "4000"]', "cmd: make data\n  shell: true"
    )
    assert check(text) == []


def test_task_output_outside_the_repo() -> None:
    d = one(VALID["Task"].replace("outs: [data/reviews.csv]", "outs: [data/ok.csv, ../escape.csv]"))
    assert (d.code, d.line, d.col, d.field) == (codes.INVALID_VALUE, 8, 23, "spec.outs[1]")


def test_canary_strategy_without_canary_block() -> None:
    d = one(VALID["Service"].replace("    canary: {traffic: 0.1, duration_s: 120}\n", ""))
    assert (d.code, d.line, d.col, d.field) == (codes.MISSING_FIELD, 12, 5, "spec.rollout")
    assert d.message == "strategy `canary` needs a `canary` block"


def test_canary_block_without_canary_strategy() -> None:
    d = one(VALID["Service"].replace("strategy: canary", "strategy: recreate"))
    assert (d.code, d.line, d.field) == (codes.INVALID_VALUE, 13, "spec.rollout.canary")
    assert d.hint == "set strategy: canary"


def test_canary_traffic_must_be_a_share() -> None:
    d = one(VALID["Service"].replace("traffic: 0.1", "traffic: 1"))
    assert (d.code, d.line, d.col, d.field) == (codes.OUT_OF_RANGE, 13, 23, "spec.rollout.canary.traffic")


def test_prompt_template_with_an_undeclared_variable_and_did_you_mean() -> None:
    used, unused = check(VALID["Prompt"].replace("{{review}}", "{{ reveiw }}"))
    assert (used.code, used.line, used.col, used.field) == (codes.TEMPLATE_UNDECLARED, 8, 8, "spec.template")
    assert used.message == "the template uses `reveiw`, which is not declared"
    assert used.hint == "did you mean `review`?"
    assert (unused.code, unused.field, unused.hint) == (codes.TEMPLATE_UNUSED, "spec.variables.review",
                                                        "did you mean `reveiw`?")


def test_prompt_template_with_an_unrelated_undeclared_variable() -> None:
    found = check(VALID["Prompt"].replace("{{ team }}", "{{ language }}"))
    assert [(d.code, d.hint) for d in found] == [(codes.TEMPLATE_UNDECLARED, "declare `language` under variables"),
                                                 (codes.TEMPLATE_UNUSED, "remove it")]


def test_prompt_template_syntax_and_sandbox_errors_are_at_the_template_line() -> None:
    found = check(VALID["Prompt"].replace("{{review}}", "{{ review.__class__ }} {% if %}"))
    assert [(d.code, d.line, d.col) for d in found] == [(codes.TEMPLATE_SYNTAX, 8, 5)]
    found = check(VALID["Prompt"].replace("{{review}}", "{{ review.__class__.__mro__ }}"))
    assert [(d.code, d.line, d.col, d.message.split(",")[0]) for d in found] == [
        (codes.TEMPLATE_UNSAFE, 8, 15, "the template reaches for `__class__`"),
        (codes.TEMPLATE_UNSAFE, 8, 25, "the template reaches for `__mro__`")]


def test_prompt_test_with_an_undeclared_variable() -> None:
    undeclared, missing = check(VALID["Prompt"].replace("vars: {review:", "vars: {reviw:"))
    assert (undeclared.code, undeclared.field) == (codes.INVALID_VALUE, "spec.tests[0].vars.reviw")
    assert undeclared.hint == "did you mean `review`?"
    assert (missing.code, missing.message) == (codes.MISSING_FIELD,
                                               "test `clearly-positive` does not set the required variable `review`")


def test_prompt_needs_exactly_one_template() -> None:
    d = one(VALID["Prompt"].replace("  template: |", "  template_file: prompts/triage.txt\n  template: |"))
    assert (d.code, d.line, d.col, d.field) == (codes.INVALID_VALUE, 6, 3, "spec")
    assert d.message == "a prompt needs exactly one of template, template_file"


def test_monitor_retrain_without_model() -> None:
    d = one(
        VALID["Monitor"].replace(
            "on_drift: {action: retrain, model: Model/sentiment}", "on_drift: {action: retrain}"
        )
    )
    assert (d.code, d.line, d.col, d.field) == (codes.MISSING_FIELD, 16, 13, "spec.on_drift")
    assert d.message == "`action: retrain` needs the `model` to retrain"


def test_monitor_webhook_alert_without_url() -> None:
    d = one(VALID["Monitor"].replace('{type: webhook, url: "${env:ALERT_WEBHOOK}"}', "{type: webhook}"))
    assert (d.code, d.line, d.col, d.field) == (codes.MISSING_FIELD, 15, 7, "spec.alerts[1]")


def test_monitor_drift_on_a_feature_it_does_not_monitor() -> None:
    d = one(VALID["Monitor"].replace("features: [stars]}", "features: [stars, label]}"))
    assert (d.code, d.field) == (codes.INVALID_VALUE, "spec.drift[0].features[1]")


def test_optimization_profile_out_of_order() -> None:
    d = one(VALID["Optimization"].replace("{min: 1, opt: 8, max: 32}", "{min: 8, opt: 1, max: 32}"))
    assert (d.code, d.line, d.col, d.field) == (codes.INVALID_VALUE, 10, 14, "spec.profiles[0].batch")


def test_semantic_errors_of_one_document_are_reported_together() -> None:
    text = VALID["Model"].replace("family: bert", "family: mlp").replace('"f1 >= 0.75"', '"rmse < 0.5"')
    text = text.replace(
        "resources: {accelerator: auto, precision: fp32}", "resources: {accelerator: cpu, precision: fp16}"
    )
    found = check(text)
    assert sorted((d.line, d.col, d.code, d.field) for d in found) == [
        (12, 13, codes.INVALID_VALUE, "spec.architecture.family"),
        (19, 44, codes.INVALID_VALUE, "spec.resources.precision"),
        (24, 9, codes.INVALID_VALUE, "spec.evaluation.gates[0]"),
    ]


# --- across resources (MLS205) ------------------------------------------------------------------


def cross(project: Project, **override: str) -> list[Diagnostic]:
    return validate(project_of(project, **override), use_cache=False).diagnostics


def test_model_naming_a_split_its_dataset_lacks(project: Project) -> None:
    [d] = cross(project, Model=VALID["Model"].replace("test: test}", "test: holdout}"))
    assert (d.code, d.file, d.line, d.col, d.field) == (
        codes.BAD_CROSS_REFERENCE, "specs/model.yaml", 8, 56, "spec.splits.test",
    )  # fmt: skip
    assert d.message == "Dataset/reviews has no split `holdout`"
    assert d.expected == "one of train, validation, test"


def test_model_naming_a_misspelt_split_gets_did_you_mean(project: Project) -> None:
    [d] = cross(project, Model=VALID["Model"].replace("validation: validation", "validation: validaton"))
    assert (d.code, d.line, d.field) == (codes.BAD_CROSS_REFERENCE, 8, "spec.splits.validation")
    assert d.hint == "did you mean `validation`?"


def test_model_naming_a_column_its_dataset_lacks(project: Project) -> None:
    [d] = cross(project, Model=VALID["Model"].replace("features: [text]", "features: [text, txet]"))
    assert (d.code, d.line, d.col, d.field) == (codes.BAD_CROSS_REFERENCE, 9, 20, "spec.features[1]")
    assert d.message == "Dataset/reviews has no column `txet`"
    assert d.hint == "did you mean `text`?"


def test_model_label_its_dataset_lacks(project: Project) -> None:
    [d] = cross(project, Model=VALID["Model"].replace("label: label", "label: sentiment"))
    assert (d.code, d.line, d.col, d.field) == (codes.BAD_CROSS_REFERENCE, 10, 10, "spec.label")


@pytest.mark.parametrize("column", ["phone", "email"])  # dropped, and hashed: a model may use neither
def test_model_using_a_pii_column_as_a_feature(project: Project, column: str) -> None:
    [d] = cross(project, Model=VALID["Model"].replace("features: [text]", f"features: [text, {column}]"))
    assert (d.code, d.line, d.col, d.field) == (codes.BAD_CROSS_REFERENCE, 9, 20, "spec.features[1]")
    assert d.message == f"`{column}` is a PII column of Dataset/reviews: no model may use it as a feature"


def test_dataset_without_a_schema_cannot_be_checked_and_is_not_blamed(project: Project) -> None:
    no_schema = VALID["Dataset"].split("  schema:")[0]
    assert (
        cross(
            project,
            Dataset=no_schema,
            Model=VALID["Model"].replace("features: [text]", "features: [anything]"),
        )
        == []
    )


def test_monitor_feature_its_dataset_lacks(project: Project) -> None:
    [d] = cross(
        project, Monitor=VALID["Monitor"].replace("features: [text, stars]", "features: [text, stars, labl]")
    )
    assert (d.code, d.file, d.line, d.col, d.field) == (
        codes.BAD_CROSS_REFERENCE, "specs/monitor.yaml", 8, 27, "spec.features[2]",
    )  # fmt: skip
    assert d.hint == "did you mean `label`?"


def test_optimization_calibration_split_its_dataset_lacks(project: Project) -> None:
    [d] = cross(project, Optimization=VALID["Optimization"].replace("split: train", "split: calib"))
    assert (d.code, d.line, d.field) == (codes.BAD_CROSS_REFERENCE, 14, "spec.calibration.split")
