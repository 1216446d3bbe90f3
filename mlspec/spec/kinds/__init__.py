"""The seven kinds. `KINDS` maps a `kind:` value to its envelope model."""

from __future__ import annotations

from mlspec.spec.kinds.base import API_VERSION, KIND_NAMES, Envelope
from mlspec.spec.kinds.dataset import Dataset
from mlspec.spec.kinds.model import Model
from mlspec.spec.kinds.monitor import Monitor
from mlspec.spec.kinds.optimization import Optimization
from mlspec.spec.kinds.prompt import Prompt
from mlspec.spec.kinds.service import Service
from mlspec.spec.kinds.task import Task

KINDS: dict[str, type[Envelope]] = {
    cls.kind_name: cls for cls in (Dataset, Model, Optimization, Service, Prompt, Monitor, Task)
}
assert tuple(KINDS) == KIND_NAMES

__all__ = [
    "API_VERSION",
    "KINDS",
    "KIND_NAMES",
    "Dataset",
    "Envelope",
    "Model",
    "Monitor",
    "Optimization",
    "Prompt",
    "Service",
    "Task",
]
