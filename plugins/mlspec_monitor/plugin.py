"""The Monitor plugin: what the engine calls for a Monitor spec (the contract is mlspec.sdk).

`apply` builds the reference profile once, from the Dataset's stored split (and the Model's tokenizer
and label for text and prediction drift), and stores it as an artifact: monitoring never needs the raw
reference. `monitor` (called by `mlspec monitor run`) reads the current window, judges drift, writes
the report (JSON, HTML, Prometheus gauges), sends the alerts, and returns the outputs state records:
the verdict, and with `on_drift: retrain` a request that the next plan replace the Model.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from mlspec.sdk import (
    API_VERSION,
    ArtifactStore,
    Capabilities,
    DatasetOutputs,
    Diff,
    Estimate,
    Issue,
    ModelOutputs,
    Observation,
    PlanContext,
    Resource,
    ResourceState,
    Runtime,
    StepFailed,
    StepRequest,
    StepResult,
)

__version__ = "0.1.0"


class MonitorPlugin:
    api_version: ClassVar[int] = API_VERSION
    name: ClassVar[str] = "monitor"
    version: ClassVar[str] = __version__
    settings_model: ClassVar[None] = None
    capabilities: ClassVar[Capabilities] = Capabilities()

    def validate(self, resource: Resource) -> Iterator[Issue]:
        return iter(())

    def inputs(self, resource: Resource, context: PlanContext) -> Mapping[str, str]:
        return {}  # the Dataset (and the Model) reach the fingerprint as upstreams

    def refresh(self, resource: Resource, state: ResourceState, context: PlanContext) -> Observation:
        return Observation(exists=True)

    def diff(self, resource: Resource, before: Mapping[str, Any], after: Mapping[str, Any]) -> Diff:
        return Diff.replacing(before, after)

    def estimate(self, resource: Resource, previous: ResourceState | None) -> Estimate:
        return Estimate(seconds=2.0, basis="profiles the reference split once")

    def apply(self, request: StepRequest, runtime: Runtime) -> StepResult:
        import pyarrow.parquet as pq

        from mlspec_monitor import window
        from mlspec_monitor.profile import kind_of

        spec, address = request.spec, str(request.address)
        dataset_address = _address(spec.reference.dataset, "Dataset")
        data = request.published(dataset_address, DatasetOutputs)
        splits = [spec.reference.split] if spec.reference.split else sorted(data.splits)
        missing = [s for s in splits if s not in data.splits]
        if missing or not splits:
            raise StepFailed(f"{address}: {dataset_address} has no split {', '.join(missing) or '(none)'}: apply it "
                             f"first, or name one of {', '.join(sorted(data.splits)) or 'its splits'}")
        store = ArtifactStore(request.artifacts, request.workdir)
        vocabulary, label = self._model_facts(request, store)
        with tempfile.TemporaryDirectory(dir=request.workdir / ".mlspec") as scratch:
            files = [store.local(data.splits[s].model_dump(), Path(scratch)) for s in splits]
            head = next(pq.ParquetFile(files[0]).iter_batches(batch_size=2000), None)  # enough to tell text
            kinds = {}
            for name in spec.features:
                column_type = data.columns.get(name, "string")
                values = head.column(name).to_pylist() if head is not None and name in head.schema.names else []
                kinds[name] = kind_of(column_type, values)
            found = window.from_table_batches(_batches(files), kinds, vocabulary, label)
        profile = {"format": 1, "dataset": dataset_address, "version": data.version, "splits": splits,
                   "rows": found.rows, "features": {n: s.to_json() for n, s in found.samples.items()},
                   "labels": dict(found.predictions), "vocabulary": sorted(vocabulary) if vocabulary else None}
        fd, name = tempfile.mkstemp(prefix=".profile-", suffix=".json", dir=request.workdir / ".mlspec")
        with os.fdopen(fd, "w") as sink:
            json.dump(profile, sink)
        stored = store.put(Path(name), ".json")
        summary = (f"reference: {found.rows:,} rows of {dataset_address} {'+'.join(splits)}; "
                   + ", ".join(f"{n} ({k})" for n, k in kinds.items()))
        runtime.log(f"{address}: {summary}")
        return StepResult({"profile": stored.to_json(), "features": kinds, "label": label,
                           "request_log": self._request_log(request), "summary": summary, "status": None})

    def destroy(self, request: StepRequest, runtime: Runtime) -> None:
        """The reports stay under .mlspec/monitoring/ for the record; the profile until `artifacts gc`."""

    # -- `mlspec monitor run` --------------------------------------------------------------------

    def monitor(self, resource: Resource, outputs: Mapping[str, Any], workdir: Path, artifacts: str,
                upstream: Mapping[str, Mapping[str, Any]], log: Callable[[str], None]) -> dict[str, Any]:
        """One run: the report, written and sent; returns the outputs' `status` (and, on drift with
        `on_drift: retrain`, the replace request for the Model)."""
        from mlspec.sdk.monitoring import REPLACE_REQUESTS
        from mlspec_monitor import alerts, report, window

        spec = resource.envelope.spec
        address = str(resource.address)
        store = ArtifactStore(artifacts, workdir)
        with tempfile.TemporaryDirectory(dir=workdir / ".mlspec") as scratch:
            profile = json.loads(store.local(dict(outputs["profile"]), Path(scratch)).read_text())
        vocabulary = frozenset(profile["vocabulary"]) if profile.get("vocabulary") else None
        kinds = dict(outputs.get("features") or {})
        current = spec.current
        if current is not None and current.dataset is not None:
            found = self._dataset_window(current, upstream, workdir, store, kinds, vocabulary, outputs.get("label"))
        else:
            paths = self._log_paths(spec, outputs, workdir)
            found = window.from_logs(paths, kinds, vocabulary, window.window_start(spec.window.duration)
                                     if spec.window.last is None else None, spec.window.last)
        made = report.judged(address, spec, profile, found)
        place = workdir / ".mlspec" / "monitoring" / resource.envelope.metadata.name
        made["files"] = report.write(made, place)
        made["alerts"] = alerts.send(spec.alerts, made, workdir, log)
        status = {k: made[k] for k in ("verdict", "summary", "rows", "at", "share", "files", "alerts", "skipped")}
        found_outputs: dict[str, Any] = {"status": status}
        if made["verdict"] == report.DRIFT and spec.on_drift.action == "retrain" and spec.on_drift.model:
            from datetime import UTC, datetime

            model = _address(spec.on_drift.model, "Model")
            at = datetime.fromtimestamp(float(made["at"]), UTC).isoformat(timespec="milliseconds")
            found_outputs[REPLACE_REQUESTS] = [{"address": model, "at": at,
                                                "because": f"{address} detected drift ({made['summary']})"}]
        return {"report": made, "outputs": found_outputs}

    def prometheus_rules(self, resource: Resource) -> list[dict[str, Any]]:
        """Alerts on the gauges each run writes (report.gauges): drift, and a Monitor that stopped running
        (no run for two windows, or a day without a duration)."""
        from mlspec_monitor.window import window_start

        address, spec = str(resource.address), resource.envelope.spec
        selector = f'{{monitor="{address}"}}'
        span = 0.0 - (window_start(spec.window.duration, now=0.0) or -86400.0)
        name = resource.envelope.metadata.name
        return [{"name": f"mlspec-monitor-{name}", "rules": [
            {"alert": "MlspecDataDrift", "expr": f"mlspec_drift_detected{selector} == 1",
             "labels": {"severity": "warning", "monitor": address},
             "annotations": {"summary": f"{address} detected drift",
                             "description": "{{ $value }}: see the Monitor's report.html (mlspec monitor run)"}},
            {"alert": "MlspecMonitorStale",
             "expr": f"time() - mlspec_monitor_last_run_timestamp_seconds{selector} > {int(2 * span)}",
             "labels": {"severity": "info", "monitor": address},
             "annotations": {"summary": f"{address} has not run for two windows"}},
        ]}]

    # -- helpers ----------------------------------------------------------------------------------

    @staticmethod
    def _model_facts(request: StepRequest, store: ArtifactStore) -> tuple[frozenset[str] | None, str | None]:
        """The Model's tokenizer vocabulary (for out-of-vocabulary rates) and its label column (for
        prediction drift), when the Monitor names one."""
        model = request.spec.on_drift.model
        if not model:
            return None, None
        address = _address(model, "Model")
        if address not in request.upstream:
            return None, None
        files = request.published(address, ModelOutputs).files
        vocabulary, label = None, None
        with tempfile.TemporaryDirectory(dir=request.workdir / ".mlspec") as scratch:
            for name in ("mlspec-model.json", "tokenizer.json"):
                if name in files:
                    data = json.loads(store.local(files[name].model_dump(), Path(scratch)).read_text())
                    if name == "tokenizer.json":
                        from mlspec_monitor.profile import vocabulary_of

                        vocabulary = vocabulary_of(data)
                    else:
                        label = data.get("label")
        return vocabulary, label

    @staticmethod
    def _request_log(request: StepRequest) -> str:
        service = request.spec.service
        if not service:
            return ""
        address = _address(service, "Service")
        return str((request.upstream.get(address) or {}).get("request_log") or "")

    @staticmethod
    def _log_paths(spec: Any, outputs: Mapping[str, Any], workdir: Path) -> list[Path]:
        from mlspec_monitor.window import log_files

        if spec.current is not None and spec.current.log:
            pattern = spec.current.log
            found = sorted(workdir.glob(pattern)) if any(c in pattern for c in "*?[") else [workdir / pattern]
            return [p for p in found if p.is_file()]
        base = str(outputs.get("request_log") or "")
        if not base:
            raise StepFailed(f"{spec.service}: it keeps no request log (request_log.enabled is false), so there is "
                             "nothing to monitor; enable it, or give the Monitor `current: {log: ...}`")
        return log_files(Path(base))

    @staticmethod
    def _dataset_window(current: Any, upstream: Mapping[str, Mapping[str, Any]], workdir: Path, store: ArtifactStore,
                        kinds: Mapping[str, str], vocabulary: frozenset[str] | None, label: Any) -> Any:
        from mlspec_monitor.window import from_table_batches

        address = _address(current.dataset, "Dataset")
        data = DatasetOutputs.model_validate(upstream.get(address) or {})
        splits = [current.split] if current.split else sorted(data.splits)
        with tempfile.TemporaryDirectory(dir=workdir / ".mlspec") as scratch:
            files = [store.local(data.splits[s].model_dump(), Path(scratch)) for s in splits if s in data.splits]
            return from_table_batches(_batches(files), kinds, vocabulary, str(label) if label else None)


def _batches(files: list[Path]) -> Iterator[Any]:
    """A split's parquet files as record batches, in order."""
    import pyarrow.parquet as pq

    return (batch for path in files for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536))


def _address(ref: str, kind: str) -> str:
    return ref if "/" in ref else f"{kind}/{ref}"
