"""`mlspec monitor run [ADDR]`: each Monitor's plugin judges its current window against the reference it
stored when applied; the verdict is recorded in state (under the lock, audited).

The run itself happens outside the lock (reading a large request log takes seconds; an apply should
not wait for it); only the commit of each Monitor's new outputs takes the lock. A Monitor with
`on_drift: retrain` that found drift leaves a replace request in its outputs, which the next plan
turns into `replace Model/x because Monitor/y detected drift (...)` (engine/planner.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlspec.errors import MonitorError, StateError
from mlspec.state.model import ResourceState, now

MONITOR = "Monitor"


def run(address: str | None = None, *, root: Path | None = None, lock_timeout: float = 0.0,
        log: Callable[[str], None] = lambda _line: None) -> list[dict[str, Any]]:
    from mlspec.discovery import Registry
    from mlspec.engine.session import reading_state, record_edit, writing_state
    from mlspec.spec.specset import load_specs
    from mlspec.spec.suggest import did_you_mean

    specs = load_specs(root)
    monitors = sorted(a for a, r in specs.resources.items() if r.kind == MONITOR)
    if address is not None:
        wanted = address if "/" in address else f"{MONITOR}/{address}"
        if wanted not in monitors:
            hint = did_you_mean(wanted, monitors)
            raise MonitorError(f"{wanted} is not a Monitor of these specs" + (f"; {hint}" if hint else
                               f" (Monitors: {', '.join(monitors) or 'none'})"))
        monitors = [wanted]
    registry_of = Registry(prefer=specs.project.setting("plugin_for"))
    if monitors and not registry_of.has(MONITOR):
        raise MonitorError("no installed plugin manages kind Monitor")
    plugin = registry_of.for_kind(MONITOR) if monitors else None
    act = getattr(plugin, "monitor", None)
    if monitors and not callable(act):
        raise MonitorError(f"plugin {getattr(plugin, 'name', '?')} manages Monitors but cannot run them")
    artifacts = str(specs.project.setting("artifacts", "url"))
    reports = []
    for monitor in monitors:
        with reading_state(specs.project) as store:
            current = store.get(monitor)
            upstream = {u: dict(s.outputs) for u in specs.graph.upstream(monitor) - {monitor}
                        if (s := store.get(u)) is not None}
        if current is None or not current.outputs.get("profile"):
            raise MonitorError(f"{monitor} is not applied yet: `mlspec apply` builds its reference profile first")
        assert act is not None
        found = act(specs.resources[monitor], dict(current.outputs), specs.project.root, artifacts, upstream, log)
        with writing_state(specs.project) as store, store.lock("monitor run", timeout=lock_timeout):
            latest = store.get(monitor)
            if latest is None:
                raise StateError(f"{monitor} left the state while it ran")
            outputs = {**latest.outputs, **found["outputs"]}
            changed = ResourceState(latest.address, latest.fingerprint, latest.spec, outputs, latest.status,
                                    latest.created_at, now(), latest.commit)
            serial = store.commit(changed)
            report = found["report"]
            record_edit(store, specs.project.root, "monitor.run",
                        {"address": monitor, "verdict": report["verdict"], "rows": report["rows"], "serial": serial})
        reports.append(report)
    return reports
