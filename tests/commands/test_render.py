"""`mlspec render k8s`: each Service's manifests, valid against the Kubernetes schemas (no cluster), with the
spec's resources, GPU requests, probes and canary steps; what state recorded (the bento) in the image."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

kubernetes_validate = pytest.importorskip("kubernetes_validate")

from ruamel.yaml import YAML  # noqa: E402

from tests.cli import Result  # noqa: E402

Mlspec = Callable[..., Result]
CONFIG = "specs: ['specs/**/*.yaml']\n"
MODEL = """apiVersion: mlspec/v1
kind: Model
metadata: {name: churn}
spec:
  task: tabular-classification
  dataset: customers
  splits: {train: train, validation: null, test: test}
  features: [tenure]
  label: churned
  architecture: {family: mlp}
  hyperparameters: {learning_rate: 0.01, batch_size: 32, epochs: 1}
  evaluation: {metrics: [accuracy]}
"""
DATASET = """apiVersion: mlspec/v1
kind: Dataset
metadata: {name: customers}
spec:
  source: {path: data/customers.csv, format: csv}
  splits: {ratios: {train: 0.8, test: 0.2}}
"""
SERVICE = """apiVersion: mlspec/v1
kind: Service
metadata: {name: churn-api}
spec:
  model: churn
  port: 3400
  replicas: 2
  resources: {cpu: 0.5, memory: 1Gi, gpus: 1}
"""
CANARY = """  rollout:
    strategy: canary
    canary: {traffic: 0.2, duration_s: 60}
"""


def rendered(mlspec: Mlspec, project: Callable[..., Path], service: str, *args: str) -> list[dict[str, Any]]:
    root = project({"specs/customers.yaml": DATASET, "specs/churn.yaml": MODEL, "specs/api.yaml": service,
                    "data/customers.csv": "tenure,churned\n1,true\n"}, config=CONFIG)
    done = mlspec(root, "render", "k8s", "--out", root / "k8s", *args)
    assert done.code == 0, done.output
    return [d for d in YAML(typ="safe").load_all((root / "k8s" / "service-churn-api.yaml").read_text()) if d]


def test_a_service_renders_a_deployment_a_service_and_an_autoscaler_that_kubernetes_accepts(
    mlspec: Mlspec, project: Callable[..., Path]
) -> None:
    deployment, service, autoscaler = rendered(mlspec, project, SERVICE, "--image", "registry.example/churn:v1")
    for manifest in (deployment, service, autoscaler):
        kubernetes_validate.validate(manifest, "1.30", strict=True)  # raises on any schema error
    assert deployment["kind"] == "Deployment" and deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/churn:v1"
    assert container["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"},
                                      "limits": {"memory": "1Gi", "nvidia.com/gpu": 1}}
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert service["spec"]["ports"][0]["targetPort"] == 3000
    assert autoscaler["spec"]["scaleTargetRef"]["kind"] == "Deployment" and autoscaler["spec"]["maxReplicas"] == 8


def test_a_canary_rollout_renders_an_argo_rollout_with_its_steps(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    rollout, service, autoscaler = rendered(mlspec, project, SERVICE + CANARY)
    kubernetes_validate.validate(service, "1.30", strict=True)
    assert rollout["apiVersion"] == "argoproj.io/v1alpha1" and rollout["kind"] == "Rollout"
    assert rollout["spec"]["strategy"]["canary"]["steps"] == [{"setWeight": 20}, {"pause": {"duration": "60s"}},
                                                              {"setWeight": 100}]
    # A Rollout's pod template is a Deployment's: held to the same schema.
    as_deployment = {**rollout, "apiVersion": "apps/v1", "kind": "Deployment",
                     "spec": {k: v for k, v in rollout["spec"].items() if k != "strategy"}}
    kubernetes_validate.validate(as_deployment, "1.30", strict=True)
    kubernetes_validate.validate(autoscaler, "1.30", strict=True)
    assert autoscaler["spec"]["scaleTargetRef"] == {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                                                     "name": "churn-api"}
    assert rollout["spec"]["template"]["spec"]["containers"][0]["image"] == "churn-api:latest"  # never applied


def test_canary_steps_render_as_argo_steps(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    steps = SERVICE + """  rollout:
    strategy: canary
    canary:
      steps: [{set_weight: 10}, {pause_s: 30}, {set_weight: 50}, {pause_s: 60}]
"""
    rollout = rendered(mlspec, project, steps)[0]
    assert rollout["spec"]["strategy"]["canary"]["steps"] == [
        {"setWeight": 10}, {"pause": {"duration": "30s"}}, {"setWeight": 50}, {"pause": {"duration": "60s"}},
        {"setWeight": 100}]


def test_rendering_a_resource_no_plugin_renders_says_so(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    root = project({"specs/customers.yaml": DATASET, "data/customers.csv": "tenure,churned\n1,true\n"}, config=CONFIG)
    done = mlspec(root, "render", "k8s", "Dataset/customers")
    assert done.code == 1 and "Dataset/customers's plugin renders no Kubernetes manifests" in done.err


def test_a_canary_step_is_a_weight_or_a_pause(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    bad = SERVICE + """  rollout:
    strategy: canary
    canary:
      steps: [{set_weight: 10, pause_s: 30}]
"""
    root = project({"specs/customers.yaml": DATASET, "specs/churn.yaml": MODEL, "specs/api.yaml": bad,
                    "data/customers.csv": "tenure,churned\n1,true\n"}, config=CONFIG)
    checked = mlspec(root, "validate")
    assert checked.code == 1
    assert "a canary step is either `set_weight` or `pause_s`" in checked.out, checked.out
    assert "spec.rollout.canary.steps[0]" in checked.out or "spec.rollout.canary.steps.0" in checked.out
