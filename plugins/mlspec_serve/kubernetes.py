"""A Service as Kubernetes manifests, for teams that deploy the bento's image to a cluster.

Pure: the spec, what state recorded (the bento tag) and an image name in; manifests (dicts) out. A
Deployment (or, with a canary rollout, an Argo Rollouts `Rollout` with the spec's `setWeight`/`pause`
steps), a ClusterIP Service and a HorizontalPodAutoscaler; resources from the spec, `nvidia.com/gpu`
when it asks for GPUs; probes on BentoML's `/livez` and `/readyz`. BentoML serves on 3000 in its image.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CONTAINER_PORT = 3000
MAX_REPLICAS_FACTOR = 4
CPU_TARGET = 70  # percent of the requested CPU, the autoscaler's target


def manifests(resource: Any, outputs: Mapping[str, Any], image: str | None = None) -> list[dict[str, Any]]:
    spec, name = resource.envelope.spec, resource.envelope.metadata.name
    bento = str(outputs.get("bento") or f"{name}:latest")
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "mlspec"}
    annotations = {"mlspec.dev/address": resource.address, "mlspec.dev/bento": bento,
                   **({"mlspec.dev/serves": str(outputs["version"])} if outputs.get("version") else {})}
    template = {
        "metadata": {"labels": labels, "annotations": annotations},
        "spec": {"containers": [_container(spec, name, image or bento)]},  # `bentoml containerize` tags it so
    }
    workload: dict[str, Any] = {
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {"replicas": spec.replicas, "selector": {"matchLabels": labels}, "template": template},
    }
    canary = spec.rollout.canary if spec.rollout.strategy == "canary" else None
    if canary is not None:
        workload = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", **workload}
        steps = [{"setWeight": round(value * 100)} if kind == "weight" else {"pause": {"duration": f"{value:g}s"}}
                 for kind, value in canary.plan()]
        workload["spec"]["strategy"] = {"canary": {"steps": [*steps, {"setWeight": 100}]}}
        target = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": name}
    else:
        workload = {"apiVersion": "apps/v1", "kind": "Deployment", **workload}
        workload["spec"]["strategy"] = {"type": "RollingUpdate",
                                        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}  # create before destroy
        target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels},
               "spec": {"type": "ClusterIP", "selector": labels,
                        "ports": [{"name": "http", "port": 80, "targetPort": CONTAINER_PORT, "protocol": "TCP"}]}}
    autoscaler = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                  "metadata": {"name": name, "labels": labels},
                  "spec": {"scaleTargetRef": target, "minReplicas": spec.replicas,
                           "maxReplicas": spec.replicas * MAX_REPLICAS_FACTOR,
                           "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                               "type": "Utilization", "averageUtilization": CPU_TARGET}}}]}}
    return [workload, service, autoscaler]


def _container(spec: Any, name: str, image: str) -> dict[str, Any]:
    resources: dict[str, dict[str, Any]] = {"requests": {}, "limits": {}}
    if spec.resources.cpu is not None:
        resources["requests"]["cpu"] = _cpu(spec.resources.cpu)
    if spec.resources.memory is not None:
        resources["requests"]["memory"] = resources["limits"]["memory"] = spec.resources.memory
    if spec.resources.gpus:
        resources["limits"]["nvidia.com/gpu"] = spec.resources.gpus  # GPUs are requested as limits
    probe = {"periodSeconds": max(1, int(spec.health.interval_s)), "timeoutSeconds": 5, "failureThreshold": 3}
    return {
        "name": name, "image": image, "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "env": [{"name": "BENTOML_DO_NOT_TRACK", "value": "true"}],
        "resources": {k: v for k, v in resources.items() if v},
        "livenessProbe": {"httpGet": {"path": "/livez", "port": "http"}, **probe},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, **probe},
        "startupProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 2, "timeoutSeconds": 5,
                         "failureThreshold": max(1, int(spec.health.timeout_s / 2))},
    }


def _cpu(cores: float) -> str:
    return f"{int(cores)}" if float(cores).is_integer() else f"{int(cores * 1000)}m"
