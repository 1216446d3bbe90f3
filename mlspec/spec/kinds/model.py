"""Model: what to train, on which data, on what hardware, and the gates it must pass."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, WithJsonSchema

from mlspec.spec.kinds.base import Envelope, FreeForm, Issue, Need, Ref, SpecBase, Strict

Metric = Literal["accuracy", "f1", "precision", "recall", "roc_auc", "rmse", "mae", "loss"]
METRICS: tuple[str, ...] = Metric.__args__  # type: ignore[attr-defined]
LOWER_IS_BETTER = frozenset(("rmse", "mae", "loss"))

GATE_RE = re.compile(
    r"^\s*(?P<metric>[a-z_][a-z0-9_]*)\s*(?P<op>>=|<=|>|<)\s*"
    r"(?:(?P<champion>champion)(?:\s*(?P<sign>[+-])\s*(?P<delta>\d+(?:\.\d+)?))?|(?P<value>-?\d+(?:\.\d+)?))\s*$"
)
# The same grammar for the JSON Schema (ECMA-262 regexes have no named groups).
GATE_PATTERN = r"^\s*[a-z_][a-z0-9_]*\s*(>=|<=|>|<)\s*(champion(\s*[+-]\s*\d+(\.\d+)?)?|-?\d+(\.\d+)?)\s*$"
GATE_SYNTAX = "`<metric> <op> <number>` or `<metric> <op> champion [+|- <delta>]`, op one of >= > <= <"


def _gate_syntax(gate: str) -> str:
    if not GATE_RE.match(gate):
        raise ValueError(f"gate `{gate}` is not {GATE_SYNTAX}")
    return gate


Gate = Annotated[
    str,
    AfterValidator(_gate_syntax),
    WithJsonSchema({"type": "string", "pattern": GATE_PATTERN, "description": GATE_SYNTAX}),
]


class Splits(Strict):
    train: str = "train"
    validation: str | None = "validation"
    test: str = "test"


class Architecture(Strict):
    """Exactly one of: a built-in `family` (with its `config`), a local `pretrained` directory, or an
    `entrypoint` (module:function in the spec repo) that trains the model itself."""

    family: Literal["bert", "distilbert", "roberta", "mlp"] | None = None
    config: FreeForm = Field(default_factory=dict, description="passed to the family's config class")
    pretrained: str | None = Field(None, description="local directory of a transformers model")
    entrypoint: str | None = Field(
        None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description="module:function in the spec repo"
    )

    def issues(self) -> Iterator[Issue]:
        chosen = [k for k in ("family", "pretrained", "entrypoint") if getattr(self, k) is not None]
        if len(chosen) != 1:
            yield Issue(
                (), "architecture needs exactly one of family, pretrained, entrypoint"
                + (f" (found {', '.join(chosen)})" if chosen else ""),
                expected="one of family, pretrained, entrypoint",
            )


class Hyperparameters(Strict):
    learning_rate: float = Field(5e-5, gt=0, le=10)
    batch_size: int = Field(32, gt=0, le=1 << 20)
    epochs: int = Field(1, gt=0, le=100_000)
    max_steps: int | None = Field(None, gt=0, description="stop after this many steps, whatever the epochs")
    weight_decay: float = Field(0.0, ge=0)
    warmup_ratio: float = Field(0.0, ge=0, le=1)
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    gradient_accumulation_steps: int = Field(1, gt=0)
    max_grad_norm: float | None = Field(1.0, gt=0)
    max_length: int | None = Field(None, gt=0, description="tokens per example (text tasks)")
    params: FreeForm = Field(default_factory=dict, description="free-form, for entrypoint models")


class Resources(Strict):
    accelerator: Literal["auto", "cpu", "cuda"] = "auto"
    gpus: int = Field(1, ge=0, description="more than 1 launches DDP through torchrun")
    launcher: Literal["auto", "torchrun"] = Field(
        "auto", description="auto: torchrun (DDP) when gpus > 1, else in-process; torchrun: always, on one GPU too")
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    compile: bool = Field(False, description="torch.compile the model")
    deterministic: bool = False


class Checkpoints(Strict):
    every_steps: int = Field(200, gt=0)
    keep: int = Field(2, gt=0)


class Evaluation(Strict):
    split: str | None = Field(None, description="dataset split to evaluate on; default: splits.test")
    metrics: list[Metric] = Field(default_factory=lambda: list[Metric](["accuracy"]), min_length=1)
    gates: list[Gate] = Field(default_factory=list, description=f"conditions to promote: {GATE_SYNTAX}")

    def issues(self) -> Iterator[Issue]:
        from mlspec.spec.suggest import did_you_mean

        for i, gate in enumerate(self.gates):
            match = GATE_RE.match(gate)
            metric = match["metric"] if match else None
            if metric is not None and metric not in self.metrics:
                yield Issue(
                    ("gates", i), f"gate on `{metric}`, which is not among evaluation.metrics",
                    expected=f"one of {', '.join(self.metrics)}",
                    hint=did_you_mean(metric, METRICS) or f"add `{metric}` to evaluation.metrics",
                )


class Registry(Strict):
    alias: str = Field("champion", pattern=r"^[a-z][a-z0-9-]*$", description="alias set when the gates pass")


class ModelSpec(SpecBase):
    task: Literal["text-classification", "tabular-classification", "tabular-regression", "custom"]
    dataset: Ref("Dataset")  # type: ignore[valid-type]
    splits: Splits = Field(default_factory=Splits)
    features: list[str] | None = Field(None, description="input columns; default: all but the label")
    label: str | None = Field(None, description="target column")
    architecture: Architecture
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    resources: Resources = Field(default_factory=Resources)
    seed: int = 0
    checkpoints: Checkpoints = Field(default_factory=Checkpoints)
    evaluation: Evaluation = Field(default_factory=Evaluation)
    registry: Registry = Field(default_factory=Registry)
    license: str | None = Field(None, description="the weights' license (an SPDX id), for the model card")

    def needs(self) -> Iterator[Need]:
        for role in ("train", "validation", "test"):
            split = getattr(self.splits, role)
            if split is not None:
                yield Need(("splits", role), self.dataset, "splits", split)
        if self.evaluation.split is not None:
            yield Need(("evaluation", "split"), self.dataset, "splits", self.evaluation.split)
        columns: list[tuple[tuple[str | int, ...], str]] = [
            (("features", i), c) for i, c in enumerate(self.features or ())
        ]
        if self.label is not None:
            columns.append((("label",), self.label))
        for loc, column in columns:
            yield Need(loc, self.dataset, "columns", column)
            yield Need(loc, self.dataset, "pii", column, forbidden=True)

    def issues(self) -> Iterator[Issue]:
        if self.task != "custom" and self.label is None:
            yield Issue((), f"a {self.task} model needs `label`", code="MLS100", expected="label: <column>")
        if self.label is not None and self.features and self.label in self.features:
            i = self.features.index(self.label)
            yield Issue(("features", i), f"label `{self.label}` is also listed as a feature")
        family = self.architecture.family
        if family == "mlp" and self.task == "text-classification":
            yield Issue(("architecture", "family"), "family `mlp` is for tabular tasks",
                        expected="bert, distilbert or roberta for text")
        if family in ("bert", "distilbert", "roberta") and self.task.startswith("tabular"):
            yield Issue(("architecture", "family"), f"family `{family}` is for text tasks", expected="mlp")
        if self.resources.accelerator == "cpu" and self.resources.precision == "fp16":
            yield Issue(("resources", "precision"), "fp16 needs a GPU; use bf16 or fp32 on cpu")


class Model(Envelope):
    kind_name: ClassVar[str] = "Model"
    kind: Literal["Model"]
    spec: ModelSpec
