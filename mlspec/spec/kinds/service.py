"""Service: serve a Model or an Optimization with BentoML, with batching and a safe rollout."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import ClassVar, Literal

from pydantic import Field

from mlspec.spec.kinds.base import Envelope, EnvStr, Issue, Ref, SpecBase, Strict


class Batching(Strict):
    enabled: bool = True
    max_batch_size: int = Field(32, gt=0)
    max_latency_ms: int = Field(50, gt=0)


class ServiceResources(Strict):
    cpu: float | None = Field(None, gt=0, description="cores")
    memory: str | None = Field(None, pattern=r"^\d+(?:\.\d+)?(?:Ki|Mi|Gi|Ti|K|M|G|T)?$", examples=["2Gi"])
    gpus: int = Field(0, ge=0)


class Health(Strict):
    path: str = Field("/readyz", pattern=r"^/")
    timeout_s: float = Field(30, gt=0)
    interval_s: float = Field(2, gt=0)


class CanaryStep(Strict):
    """One step of a canary, as Argo Rollouts writes them: move traffic, or hold it while watching."""

    set_weight: int | None = Field(None, ge=1, le=99, description="percent of requests on the new version")
    pause_s: int | None = Field(None, gt=0, description="hold, checking health, error rate and p99")

    def issues(self) -> Iterator[Issue]:
        if (self.set_weight is None) == (self.pause_s is None):
            yield Issue((), "a canary step is either `set_weight` or `pause_s`", code="MLS100",
                        expected="{set_weight: 20} or {pause_s: 60}")


class Canary(Strict):
    traffic: float = Field(0.1, gt=0, lt=1, description="share of requests the new version receives")
    duration_s: int = Field(300, gt=0, description="how long the canary runs before full rollout")
    steps: list[CanaryStep] | None = Field(None, min_length=1, description="Argo Rollouts-style steps; without "
                                           "them: set_weight `traffic`, pause `duration_s`")
    max_error_rate: float = Field(0.01, ge=0, le=1, description="roll back when more of the canary's requests fail")
    max_p99_ms: float | None = Field(None, gt=0, description="roll back when the canary's p99 latency is higher")

    def plan(self) -> list[tuple[str, float]]:
        """The steps as ("weight", share) and ("pause", seconds), ending before the move to 100%."""
        if self.steps is None:
            return [("weight", self.traffic), ("pause", float(self.duration_s))]
        return [("weight", s.set_weight / 100) if s.set_weight is not None else ("pause", float(s.pause_s or 0))
                for s in self.steps]


class Rollout(Strict):
    strategy: Literal["recreate", "canary"] = "recreate"
    canary: Canary | None = None
    rollback_on_failure: bool = Field(True, description="restore the previous version when health fails")

    def issues(self) -> Iterator[Issue]:
        if self.strategy == "canary" and self.canary is None:
            yield Issue((), "strategy `canary` needs a `canary` block", code="MLS100",
                        expected="canary: {traffic: 0.1}")
        if self.strategy != "canary" and self.canary is not None:
            yield Issue(("canary",), f"`canary` has no effect with strategy `{self.strategy}`",
                        hint="set strategy: canary")


class RequestLog(Strict):
    """Sampled requests and predictions, as JSON lines under .mlspec/serving/<name>/: what Monitors read."""

    enabled: bool = True
    sample: float = Field(1.0, gt=0, le=1, description="share of requests written")
    max_mb: int = Field(64, gt=0, description="rotate the log beyond this size")
    keep: int = Field(3, ge=1, le=100, description="rotated files kept (requests.jsonl.1, .2, ...)")


class ServiceSpec(SpecBase):
    model: Ref("Model", "Optimization")  # type: ignore[valid-type]
    runtime: Literal["bentoml"] = "bentoml"
    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    replicas: int = Field(1, ge=1)
    workers: int | None = Field(None, ge=1, le=64, description="BentoML worker processes per server, each with "
                                "its own copy of the model and its own batches; default: resources.cpu rounded "
                                "up, else 1")
    timeout_s: float = Field(60, gt=0, le=3600, description="how long one request may take before the server "
                             "answers 504 (a slow model is reported, not waited on forever)")
    batching: Batching = Field(default_factory=Batching)
    resources: ServiceResources = Field(default_factory=ServiceResources)
    health: Health = Field(default_factory=Health)
    rollout: Rollout = Field(default_factory=Rollout)
    env: dict[str, EnvStr] = Field(default_factory=dict)
    request_log: RequestLog = Field(default_factory=RequestLog)
    allow_ungated: bool = Field(False, description="with policy gated_serving: may serve a Model that has no "
                                "evaluation gates")


    def worker_count(self) -> int:
        return self.workers or max(1, math.ceil(self.resources.cpu or 1))


class Service(Envelope):
    kind_name: ClassVar[str] = "Service"
    kind: Literal["Service"]
    spec: ServiceSpec
