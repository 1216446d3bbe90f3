"""The model card written beside the weights: Hugging Face model-card metadata and the lineage.

Written from facts the apply recorded (digests, metrics, gates, hardware), never from a template
of guesses: a field with no fact behind it is left out, not filled with a placeholder.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlspec.sdk import Address


@dataclass
class CardFacts:
    address: str
    task: str
    dataset: str  # address
    dataset_version: str
    split_digests: Mapping[str, str]
    metrics: Mapping[str, float]
    gates: Sequence[tuple[str, bool, str]]  # (gate, passed, why)
    fingerprint: str
    hyperparameters: Mapping[str, Any]
    hardware: str  # "NVIDIA H100 80GB HBM3", "cpu (16 threads)"
    seconds: float
    library: str = "pytorch"  # or "transformers"
    base_model: str | None = None
    license: str | None = None
    commit: str | None = None
    description: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def render(facts: CardFacts) -> str:
    from ruamel.yaml import YAML

    name = Address(facts.address).name
    metadata: dict[str, Any] = {"library_name": facts.library, "tags": ["mlspec", facts.task],
                                "datasets": [facts.dataset]}
    if facts.license:
        metadata["license"] = facts.license
    if facts.base_model:
        metadata["base_model"] = facts.base_model
    metadata["model-index"] = [{
        "name": name,
        "results": [{
            "task": {"type": facts.task},
            "dataset": {"name": facts.dataset, "type": "mlspec-dataset", "revision": facts.dataset_version},
            "metrics": [{"type": key, "name": key, "value": round(float(value), 6)}
                        for key, value in sorted(facts.metrics.items())],
        }],
    }]
    front = io.StringIO()
    writer = YAML(typ="safe")
    writer.default_flow_style = False
    writer.dump(metadata, front)
    lines = ["---", front.getvalue().rstrip(), "---", "", f"# {facts.address}", ""]
    if facts.description:
        lines += [facts.description, ""]
    lines += ["## Evaluation", "", "| metric | value |", "|---|---:|"]
    lines += [f"| {key} | {value:.4f} |" for key, value in sorted(facts.metrics.items())]
    if facts.gates:
        lines += ["", "| gate | verdict |", "|---|---|"]
        lines += [f"| `{gate}` | {'passed' if passed else '**failed**'}: {why} |" for gate, passed, why in facts.gates]
    lines += ["", "## Lineage", "", "| | |", "|---|---|",
              f"| spec fingerprint | `{facts.fingerprint}` |"]
    if facts.commit:
        lines.append(f"| git commit | `{facts.commit}` |")
    lines.append(f"| dataset | {facts.dataset}, version `{facts.dataset_version}` |")
    lines += [f"| split `{name}` | sha256 `{digest}` |" for name, digest in sorted(facts.split_digests.items())]
    lines += [f"| hardware | {facts.hardware} |", f"| training time | {facts.seconds:.1f} s |"]
    lines += ["", "## Hyperparameters", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in sorted(facts.hyperparameters.items()) if value is not None]
    return "\n".join(lines) + "\n"
