"""One step as data: the request a plugin's `apply`/`destroy` receives, the result it returns, and the
runtime handle passed beside them.

The request and the result are plain, serialisable values (`to_json`/`from_json`), so a step can run
in another process or on another machine from its request alone; the runtime (cancellation, logs, a
progress meter) is whatever the process running the step provides. Terraform's provider protocol
draws the same line: the plan's data crosses the boundary, the callbacks do not.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mlspec.address import Address
from mlspec.errors import PluginError, StepInterrupted

if TYPE_CHECKING:
    from mlspec.sdk.outputs import Published
    from mlspec.spec.specset import Resource
    from mlspec.state.model import ResourceState

P = TypeVar("P", bound="Published")
Outputs = dict[str, Any]  # JSON values: artifact URIs, digests, metrics, endpoints


@dataclass(frozen=True)
class Version:
    """A version for the registry to record (a plugin with `registers_versions`): what to keep of it,
    and the aliases to point at it (`champion` when its gates passed, `candidate` when not)."""

    record: Mapping[str, Any]
    aliases: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"record": dict(self.record), "aliases": list(self.aliases)}


@dataclass(frozen=True)
class StepResult:
    """What a step made: its outputs (JSON values; what the plugin `publishes` is validated against
    its model), a version to register, and, when its dependents must not take this result, why."""

    outputs: Mapping[str, Any] = field(default_factory=dict)
    version: Version | None = None
    held: str | None = None  # "gate `f1 >= 0.9` failed (short by 0.02)": dependents are withheld

    def to_json(self) -> dict[str, Any]:
        return {"outputs": dict(self.outputs), "version": self.version.to_json() if self.version else None,
                "held": self.held}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StepResult:
        version = data.get("version")
        return cls(dict(data.get("outputs") or {}),
                   Version(version["record"], tuple(version["aliases"])) if version else None, data.get("held"))


@dataclass(frozen=True)
class StepRequest:
    """Everything a step may use, as data. `upstream`: address -> what that resource publishes to
    its dependents (for a resource that registers versions: its champion's)."""

    resource: Resource
    upstream: Mapping[str, Mapping[str, Any]]
    previous: ResourceState | None  # what state recorded last time (None on create)
    workdir: Path  # the spec repo
    artifacts: str  # the artifact store: a local path or an fsspec URL
    fingerprint: str = ""  # the step's data fingerprint: the key of run caches and checkpoints
    settings: Mapping[str, Any] | None = None  # this plugin's validated settings from mlspec.yaml, as JSON
    registry: Mapping[str, Any] | None = None  # this address's registry entry as the apply began
    run: str = ""  # the apply's id (its lock's): every process the step starts carries it (sdk.processes)
    outside: tuple[str, ...] = ()  # mlspec.yaml's `paths.outside`: directories it may read from, never write

    @property
    def address(self) -> Address:
        return Address(self.resource.address)

    @cached_property
    def spec(self) -> Any:
        """The resource's typed spec (the kind's pydantic model)."""
        return self.resource.envelope.spec

    def published(self, address: str, model: type[P]) -> P:
        """An upstream's outputs as its kind's typed model: fields, not dict keys."""
        from pydantic import ValidationError

        if address not in self.upstream:
            raise PluginError(f"{self.address}: {address} is not among its upstreams "
                              f"({', '.join(sorted(self.upstream)) or 'none'})")
        try:
            return model.model_validate(self.upstream[address])
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()[:3])
            raise PluginError(f"{self.address}: {address} has not published a {model.__name__} "
                              f"({problems}); apply it first") from None

    def to_json(self) -> dict[str, Any]:
        resource = self.resource
        return {
            "resource": {"address": resource.address, "file": resource.file, "doc": resource.doc,
                         "path": resource.path,
                         "envelope": resource.envelope.model_dump(mode="json", by_alias=True)},
            "upstream": {k: dict(v) for k, v in self.upstream.items()},
            "previous": self.previous.to_json() if self.previous is not None else None,
            "workdir": str(self.workdir), "artifacts": self.artifacts, "fingerprint": self.fingerprint,
            "settings": dict(self.settings) if self.settings is not None else None,
            "registry": dict(self.registry) if self.registry is not None else None,
            "run": self.run, "outside": list(self.outside),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StepRequest:
        from mlspec.spec.kinds import KINDS
        from mlspec.spec.specset import Resource
        from mlspec.state.model import ResourceState, Status

        raw = data["resource"]
        envelope = KINDS[raw["envelope"]["kind"]].model_validate(raw["envelope"], strict=False)
        previous = data.get("previous")
        return cls(
            Resource(raw["address"], envelope, raw["file"], int(raw["doc"]), raw.get("path", "")),
            data.get("upstream") or {},
            ResourceState(**{**previous, "status": Status(previous["status"])}) if previous else None,
            Path(data["workdir"]), data["artifacts"], data.get("fingerprint", ""), data.get("settings"),
            data.get("registry"), data.get("run", ""), tuple(data.get("outside") or ()),
        )


@dataclass
class Runtime:
    """The handle beside a request: how a step reports, and learns that it must stop.

    `cancelled` is set on the second Ctrl-C (or SIGTERM): stop now (kill child processes), leave
    nothing half-written, and raise StepInterrupted (`runtime.check()` does). The first Ctrl-C only
    stops new steps from starting; steps in flight finish. `meter(done, total, note)` draws a bar
    with an ETA on a terminal; calls more often than 10 a second are wasted.
    """

    cancelled: threading.Event = field(default_factory=threading.Event)
    log: Callable[[str], None] = print
    meter: Callable[[int, int, str], None] | None = None

    def check(self, address: str) -> None:
        """Raise StepInterrupted when the step was cancelled: call it between units of work."""
        if self.cancelled.is_set():
            raise StepInterrupted(f"{address}: stopped by a second Ctrl-C")
