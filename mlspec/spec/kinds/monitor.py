"""Monitor: compare live traffic of a Service with a Dataset's profile, alert, and retrain on drift."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Literal

from pydantic import Field

from mlspec.spec.kinds.base import Envelope, EnvStr, Issue, Need, Ref, SpecBase, Strict


class Reference(Strict):
    dataset: Ref("Dataset")  # type: ignore[valid-type]
    split: str | None = Field(None, description="profile of this split; default: the whole dataset")


class Drift(Strict):
    method: Literal["psi", "ks", "js"]
    threshold: float = Field(gt=0, description="psi and js: distance; ks: p-value below which it is drift")
    features: list[str] | None = Field(None, description="default: every monitored feature")


class Window(Strict):
    duration: str = Field("1h", pattern=r"^\d+[smhd]$", examples=["15m", "24h"])
    min_samples: int = Field(100, gt=0)


class Alert(Strict):
    type: Literal["log", "webhook", "slack", "email"]
    url: EnvStr | None = Field(None, description="webhook and slack; use ${env:NAME}, it is sensitive")
    to: list[str] = Field(default_factory=list, description="email recipients")

    def issues(self) -> Iterator[Issue]:
        if self.type in ("webhook", "slack") and self.url is None:
            yield Issue((), f"a {self.type} alert needs `url`", code="MLS100", expected="url: ${env:NAME}")
        if self.type == "email" and not self.to:
            yield Issue((), "an email alert needs `to`", code="MLS100", expected="to: [address]")


class OnDrift(Strict):
    action: Literal["alert", "retrain"] = "alert"
    model: Ref("Model") | None = Field(None, description="the Model to retrain")  # type: ignore[valid-type]

    def issues(self) -> Iterator[Issue]:
        if self.action == "retrain" and self.model is None:
            yield Issue((), "`action: retrain` needs the `model` to retrain", code="MLS100",
                        expected="model: <Model>")


class MonitorSpec(SpecBase):
    service: Ref("Service")  # type: ignore[valid-type]
    reference: Reference
    features: list[str] = Field(min_length=1)
    drift: list[Drift] = Field(min_length=1)
    window: Window = Field(default_factory=Window)
    alerts: list[Alert] = Field(default_factory=list)
    on_drift: OnDrift = Field(default_factory=OnDrift)

    def needs(self) -> Iterator[Need]:
        if self.reference.split is not None:
            yield Need(("reference", "split"), self.reference.dataset, "splits", self.reference.split)
        for i, feature in enumerate(self.features):
            yield Need(("features", i), self.reference.dataset, "columns", feature)

    def issues(self) -> Iterator[Issue]:
        for i, drift in enumerate(self.drift):
            for j, feature in enumerate(drift.features or ()):
                if feature not in self.features:
                    yield Issue(("drift", i, "features", j), f"`{feature}` is not a monitored feature",
                                expected=f"one of {', '.join(self.features)}")


class Monitor(Envelope):
    kind_name: ClassVar[str] = "Monitor"
    kind: Literal["Monitor"]
    spec: MonitorSpec
