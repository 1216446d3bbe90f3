"""Running one step from its serialised request alone: what a process pool or a cluster worker calls.

The worker loads the plugin of the request's kind from the entry points, as the coordinator did,
runs it with a runtime of its own (logs to stderr; a cancel reaches it as the pool's own shutdown),
and returns the result as JSON. It never touches state: the coordinating `mlspec apply` holds the
lock and alone commits.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from mlspec.discovery import Registry
from mlspec.sdk.step import Runtime, StepRequest


def run_request(request: Mapping[str, Any], prefer: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`prefer`: mlspec.yaml's `plugin_for`, so the worker picks the plugin the coordinator picked."""
    step = StepRequest.from_json(request)
    plugin = Registry(prefer=prefer).for_kind(step.resource.kind)
    result = plugin.apply(step, Runtime(log=lambda line: print(line, file=sys.stderr)))
    return result.to_json()
