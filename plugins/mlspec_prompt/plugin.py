"""The Prompt plugin: what the engine calls for a Prompt spec (the contract is mlspec.sdk).

An apply renders every test case, sends it to the target, checks the assertions and judges the
suite; the version (the digest of template, variables and settings) is registered in the registry
with its results. When the gate passes, the spec's aliases move to it (`production`, ...), or, with a
`split`, the first alias is shared between it and the version it held (A/B by a caller's key). When
it fails, the version is registered as `candidate` and held: the aliases stay where they were, and
the failures are listed with the rendered prompt and the output.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from mlspec.sdk import (
    API_VERSION,
    CANDIDATE,
    CHAMPION,
    Capabilities,
    Diff,
    Estimate,
    FieldChange,
    Issue,
    Observation,
    PlanContext,
    PromptOutputs,
    Resource,
    ResourceState,
    Runtime,
    ServiceOutputs,
    StepFailed,
    StepRequest,
    StepResult,
    Version,
    resolve_env,
)

__version__ = "0.1.0"
SECONDS_PER_CALL = {"echo": 0.0001, "python": 0.001, "service": 0.02, "openai": 0.5}


def template_path(resource: Resource, spec: Any) -> Path:
    """A template file is read beside its spec."""
    return Path(resource.path or resource.file).parent / str(spec.template_file)


def template_text(resource: Resource, spec: Any, workdir: Path) -> str:
    if spec.template is not None:
        return str(spec.template)
    path = template_path(resource, spec)
    if not path.is_absolute():
        path = workdir / path
    return path.read_text(encoding="utf-8")


def target_kind(spec: Any) -> str:
    target = spec.target
    return next(n for n in ("service", "openai", "python", "echo") if getattr(target, n) not in (None, False))


def declared(spec: Any) -> dict[str, dict[str, Any]]:
    return {name: v.model_dump(mode="json", exclude_none=True) for name, v in spec.variables.items()}


def settings_of(spec: Any) -> dict[str, Any]:
    return dict(spec.settings.model_dump(mode="json", exclude_none=True))


class PromptPlugin:
    api_version: ClassVar[int] = API_VERSION
    name: ClassVar[str] = "prompt"
    version: ClassVar[str] = __version__
    settings_model: ClassVar[None] = None
    capabilities: ClassVar[Capabilities] = Capabilities(publishes=PromptOutputs, registers_versions=True)

    def validate(self, resource: Resource) -> Iterator[Issue]:
        from mlspec.sdk.prompts import template_issues

        spec = resource.envelope.spec
        if spec.template_file is not None:
            path = template_path(resource, spec)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as err:
                yield Issue(("spec", "template_file"), f"cannot read the template {spec.template_file}: "
                            f"{getattr(err, 'strerror', None) or err}", hint="the path is relative to this spec's "
                            "directory")
                return
            for issue in template_issues(text, spec.variables, ("spec", "template_file")):
                where = f"{spec.template_file}:{issue.at[0]}:{issue.at[1]}: " if issue.at else ""
                loc = issue.loc if issue.loc[:2] != ("variables",) else ("spec", *issue.loc)
                yield Issue(loc, where + issue.message, code=issue.code, expected=issue.expected, hint=issue.hint)

    def inputs(self, resource: Resource, context: PlanContext) -> Mapping[str, str]:
        """The files a version is made of or judged by: a template file, the python target and checks."""
        spec = resource.envelope.spec
        found: dict[str, str] = {}
        if spec.template_file is not None:
            path = template_path(resource, spec)
            full = path if path.is_absolute() else context.workdir / path
            if full.is_file():
                found[str(path)] = context.digests.file(full)
        refs = [spec.target.python] if spec.target.python else []
        refs += [str(a.value) for t in spec.tests for a in t.assert_ if a.type.removeprefix("not-") == "python"]
        for ref in dict.fromkeys(refs):
            relative = ref.rpartition(":")[0]
            if (context.workdir / relative).is_file():
                found[relative] = context.digests.file(context.workdir / relative)
        return found

    def refresh(self, resource: Resource, state: ResourceState, context: PlanContext) -> Observation:
        return Observation(exists=True)  # a version lives in state's registry: there is nothing outside to drift

    def diff(self, resource: Resource, before: Mapping[str, Any], after: Mapping[str, Any]) -> Diff:
        """What makes a new version (template, variables, settings) or judges it anew (tests, target, gate)
        is a replace; where the aliases go is an update."""
        in_place = {"aliases", "split"}
        return Diff(tuple(FieldChange(path, was, now, path.split(".")[1].split("[")[0] not in in_place)
                          for path, was, now in leaf_changes("spec", before, after)))

    def estimate(self, resource: Resource, previous: ResourceState | None) -> Estimate:
        spec = resource.envelope.spec
        kind = target_kind(spec)
        runs = sum(t.repeat for t in spec.tests)
        where = spec.target.service if kind == "service" else ("the echo target" if kind == "echo" else kind)
        last = (previous.outputs.get("tests") or {}) if previous is not None else {}
        per_run = (float(last["seconds"]) / max(1, int(last.get("runs") or 1))) if last.get("seconds") else None
        seconds = runs * (per_run if per_run is not None else SECONDS_PER_CALL[kind]) / max(1, spec.target.concurrency)
        moves = ", ".join(spec.aliases) or "no alias"
        if spec.split is not None and spec.aliases:
            share = spec.split.share
            moves = f"{spec.aliases[0]} split {1 - share:.0%}/{share:.0%} with the version it holds"
        basis = (f"{len(spec.tests)} test case(s), {runs} run(s) against {where}; moves {moves} when "
                 f"{spec.gate.min_pass_rate:.0%} of cases pass")
        return Estimate(seconds=round(seconds, 3), basis=basis)

    def apply(self, request: StepRequest, runtime: Runtime) -> StepResult:
        from mlspec.sdk.prompts import TemplateError, analyze, version_digest
        from mlspec_prompt import suite, targets

        spec, address = request.spec, str(request.address)
        try:
            text = template_text(request.resource, spec, request.workdir)
        except OSError as err:
            raise StepFailed(f"{address}: cannot read the template {spec.template_file}: {err}") from None
        problems = analyze(text).problems
        if problems:
            raise StepFailed(f"{address}: the template cannot run: line {problems[0].line}: {problems[0].message}")
        variables, settings = declared(spec), settings_of(spec)
        digest = version_digest(text, variables, settings)
        try:
            call = self._target(request, settings)
        except targets.BadTarget as err:
            raise StepFailed(f"{address}: {err}") from None
        tests = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in spec.tests]
        runtime.log(f"{address}: version {digest[:12]}: {len(tests)} test case(s) against {self._shown(spec)}")

        def python(ref: str) -> Any:
            try:
                return targets.function(request.workdir, ref)
            except targets.BadTarget as err:
                raise StepFailed(f"{address}: {err}") from None

        concurrency = 1 if target_kind(spec) == "echo" else spec.target.concurrency
        try:
            report = suite.run(tests, text, variables, call, spec.gate.case_pass_rate, concurrency, python,
                               meter=lambda done, total: runtime.meter(done, total, "test runs") if runtime.meter
                               else None)
        except (targets.BadTarget, TemplateError) as err:
            raise StepFailed(f"{address}: {err}") from None
        if tests and report.errors == len(report.cases):
            raise StepFailed(f"{address}: no test case could be run: {'; '.join(report.error_messages[:3])}")
        summary = self._summary(report, spec)
        runtime.log(f"{address}: {summary}")
        for failure in report.failures[:5]:
            runtime.log(f"{address}:   `{failure['test']}` run {failure['run']}: {'; '.join(failure['reasons'])}; "
                        f"output {failure['output'][:120]!r}")
        gates = self._gates(report, spec)
        outputs: dict[str, Any] = {
            "digest": digest, "template": text, "variables": variables, "settings": settings,
            "target": self._shown(spec), "tests": report.to_json(), "summary": summary,
            "seconds": round(report.seconds, 3),
        }
        record = {"digest": digest, "template": text, "variables": variables, "settings": settings,
                  "metrics": {"pass_rate": round(report.pass_rate, 6)}, "gates": gates,
                  "gates_passed": all(g["passed"] for g in gates), "target": self._shown(spec),
                  "tests": {k: v for k, v in report.to_json().items() if k != "per_case"}}
        failed = [g for g in gates if not g["passed"]]
        if failed:
            held = "; ".join(f"gate `{g['gate']}` failed ({g['why']})" for g in failed)
            return StepResult(outputs, Version(record, (CANDIDATE,)), held=held)
        aliases = [CHAMPION, *spec.aliases]
        if spec.split is not None and spec.aliases:
            shared = spec.aliases[0]
            holding = (request.registry or {}).get("aliases", {}).get(shared)
            if holding is not None:
                held_digest = next((v.get("digest") for v in (request.registry or {}).get("versions") or ()
                                    if v.get("version") == holding), None)
                if held_digest != digest:
                    outputs["split"] = {"alias": shared, "from": int(holding), "share": spec.split.share}
        return StepResult(outputs, Version(record, tuple(aliases)))

    def destroy(self, request: StepRequest, runtime: Runtime) -> None:
        """Nothing outside state: the versions stay in the registry, as a Model's do."""

    def _target(self, request: StepRequest, settings: Mapping[str, Any]) -> Any:
        from mlspec_prompt import targets

        target = request.spec.target
        kind = target_kind(request.spec)
        if kind == "echo":
            return targets.echo(settings)
        if kind == "python":
            return targets.python(request.workdir, target.python, settings)
        if kind == "service":
            address = next(a for a in request.upstream if a.startswith("Service/"))
            published = request.published(address, ServiceOutputs)
            return targets.service(published.url, published.schema_, address)
        openai = target.openai
        key = resolve_env(openai.api_key, f"{request.address}: spec.target.openai.api_key") if openai.api_key else None
        return targets.openai(openai.base_url, openai.model, key, settings, openai.timeout_s, openai.retries)

    @staticmethod
    def _shown(spec: Any) -> str:
        kind = target_kind(spec)
        if kind == "service":
            return str(spec.target.service)
        if kind == "openai":
            return f"{spec.target.openai.model} at {spec.target.openai.base_url}"
        if kind == "python":
            return str(spec.target.python)
        return "echo"

    @staticmethod
    def _summary(report: Any, spec: Any) -> str:
        text = f"{report.passed} of {len(report.cases)} case(s) passed ({report.pass_rate:.0%}"
        text += f", gate {spec.gate.min_pass_rate:.0%})"
        if report.failed:
            text += f", {report.failed} failed"
        if report.errors:
            text += f", {report.errors} could not be run"
        return text + f", {report.runs} run(s) in {report.seconds:.2f}s"

    @staticmethod
    def _gates(report: Any, spec: Any) -> list[dict[str, Any]]:
        need = spec.gate.min_pass_rate
        gates = [{"gate": f"min_pass_rate {need:g}", "passed": report.pass_rate >= need,
                  "why": f"{report.passed} of {len(report.cases)} cases passed ({report.pass_rate:.1%} < {need:.0%})"}]
        if report.errors:
            gates.append({"gate": "every case runs", "passed": False,
                          "why": f"{report.errors} case(s) could not be run: {'; '.join(report.error_messages[:2])}"})
        return gates


def leaf_changes(path: str, before: Any, after: Any) -> Iterator[tuple[str, Any, Any]]:
    """The changed leaves between two spec values (`spec.tests[1].vars.review`), so that a plan shows
    the one value a reviewer must look at, not two copies of a list of tests; lists of different
    lengths change whole."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in sorted(set(before) | set(after)):
            yield from leaf_changes(f"{path}.{key}", before.get(key), after.get(key))
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for i, (was, now) in enumerate(zip(before, after, strict=True)):
            yield from leaf_changes(f"{path}[{i}]", was, now)
    elif before != after:
        yield path, before, after

