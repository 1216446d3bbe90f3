"""Monitor: compare live traffic of a Service with a Dataset's profile, alert, and retrain on drift."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Literal

from pydantic import Field

from mlspec.spec import codes
from mlspec.spec.kinds.base import Envelope, EnvStr, Issue, Need, Ref, SpecBase, Strict


class Reference(Strict):
    dataset: Ref("Dataset")  # type: ignore[valid-type]
    split: str | None = Field(None, description="profile of this split; default: every split together")


# Evidently's methods and defaults (https://docs.evidentlyai.com/metrics/customize_data_drift): a p-value
# below the threshold is drift for the tests, a distance above it for the distances.
P_VALUE_METHODS = ("ks", "chi2", "z")
DEFAULT_THRESHOLDS = {"ks": 0.05, "chi2": 0.05, "z": 0.05, "wasserstein": 0.1, "js": 0.1, "psi": 0.25}


class Drift(Strict):
    """A method for some (default: all) monitored features, instead of the one chosen for their type and
    the reference's size."""

    method: Literal["ks", "wasserstein", "psi", "js", "chi2", "z"]
    threshold: float | None = Field(None, gt=0, description="tests (ks, chi2, z): the p-value below which it is "
                                    "drift (default 0.05); distances: the value above which it is (wasserstein "
                                    "and js 0.1, psi 0.25)")
    features: list[str] | None = Field(None, description="default: every monitored feature")

    def issues(self) -> Iterator[Issue]:
        if self.threshold is not None and self.method in P_VALUE_METHODS and self.threshold >= 1:
            yield Issue(("threshold",), f"`{self.method}` compares a p-value: the threshold must be below 1",
                        code=codes.OUT_OF_RANGE, expected="a p-value such as 0.05")
        if self.threshold is not None and self.method == "js" and self.threshold >= 1:
            yield Issue(("threshold",), "the Jensen-Shannon distance is at most 1 (natural log: 0.83)",
                        code=codes.OUT_OF_RANGE, expected="a distance such as 0.1")

    def limit(self) -> float:
        return self.threshold if self.threshold is not None else DEFAULT_THRESHOLDS[self.method]


class Window(Strict):
    """Which logged requests are the current data: the last `duration`, or the last `last` requests."""

    duration: str | None = Field("1h", pattern=r"^\d+[smhd]$", examples=["15m", "24h"])
    last: int | None = Field(None, gt=0, description="the last N requests, whatever their age")
    min_samples: int = Field(100, gt=0, description="fewer is `not enough data`, never an alarm")


class Current(Strict):
    """Where current data comes from instead of the Service's request log: a JSON-lines log in the
    request log's format (shipped from production), or a Dataset (a new batch)."""

    log: str | None = Field(None, description="a path in the spec repo, or a glob (rotated files)")
    dataset: Ref("Dataset") | None = None  # type: ignore[valid-type]
    split: str | None = None

    def issues(self) -> Iterator[Issue]:
        if (self.log is None) == (self.dataset is None):
            yield Issue((), "current data is one of log, dataset", expected="{log: logs/*.jsonl} or {dataset: x}")


class Alert(Strict):
    type: Literal["log", "file", "webhook", "slack"]
    url: EnvStr | None = Field(None, description="webhook and slack; use ${env:NAME}, it is sensitive")
    path: str | None = Field(None, description="file: JSON lines appended, one per run that found drift")
    timeout_s: float = Field(5, gt=0, le=120)
    retries: int = Field(3, ge=0, le=10)
    always: bool = Field(False, description="send every run's verdict, not only drift")

    def issues(self) -> Iterator[Issue]:
        if self.type in ("webhook", "slack") and self.url is None:
            yield Issue((), f"a {self.type} alert needs `url`", code="MLS100", expected="url: ${env:NAME}")
        if self.type == "file" and self.path is None:
            yield Issue((), "a file alert needs `path`", code="MLS100", expected="path: .mlspec/alerts.jsonl")


class OnDrift(Strict):
    action: Literal["alert", "retrain"] = "alert"
    model: Ref("Model") | None = Field(None, description="the Model to retrain")  # type: ignore[valid-type]

    def issues(self) -> Iterator[Issue]:
        if self.action == "retrain" and self.model is None:
            yield Issue((), "`action: retrain` needs the `model` to retrain", code="MLS100",
                        expected="model: <Model>")


class MonitorSpec(SpecBase):
    service: Ref("Service") | None = Field(None, description="whose request log is the current data")  # type: ignore[valid-type]
    reference: Reference
    features: list[str] = Field(min_length=1)
    drift: list[Drift] = Field(default_factory=list, description="methods by feature; default: Evidently's choice "
                               "by type and reference size")
    drift_share: float = Field(0.5, gt=0, le=1, description="dataset drift when this share of features drifted")
    predictions: bool = Field(True, description="also compare the served labels with the reference's labels")
    window: Window = Field(default_factory=Window)
    current: Current | None = None
    alerts: list[Alert] = Field(default_factory=list)
    on_drift: OnDrift = Field(default_factory=OnDrift)

    def needs(self) -> Iterator[Need]:
        if self.reference.split is not None:
            yield Need(("reference", "split"), self.reference.dataset, "splits", self.reference.split)
        for i, feature in enumerate(self.features):
            yield Need(("features", i), self.reference.dataset, "columns", feature)

    def issues(self) -> Iterator[Issue]:
        if self.service is None and self.current is None:
            yield Issue((), "a Monitor watches a Service's request log or another `current` source",
                        code="MLS100", expected="service: <Service> or current: {log: ...}")
        for i, drift in enumerate(self.drift):
            for j, feature in enumerate(drift.features or ()):
                if feature not in self.features:
                    yield Issue(("drift", i, "features", j), f"`{feature}` is not a monitored feature",
                                expected=f"one of {', '.join(self.features)}")


class Monitor(Envelope):
    kind_name: ClassVar[str] = "Monitor"
    kind: Literal["Monitor"]
    spec: MonitorSpec
