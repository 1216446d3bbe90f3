"""The spec vocabulary a plugin may need beyond its resource's typed spec: the kinds' models and
the grammar of evaluation gates (shared by every kind that gates on metrics)."""

from __future__ import annotations

from mlspec.spec.kinds import KINDS
from mlspec.spec.kinds.model import GATE_RE, LOWER_IS_BETTER

__all__ = ["GATE_RE", "KINDS", "LOWER_IS_BETTER"]
