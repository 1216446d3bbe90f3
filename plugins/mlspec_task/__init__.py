"""The built-in Task plugin: a command with deps and outs, the equivalent of a DVC stage.

Registered through the `mlspec.plugins` entry point like any third-party plugin. A task's command
is an argv list and never passes through a shell unless the spec says `shell: true`; spec values
are never interpolated into it. `${env:NAME}` in `env` is resolved here, at apply time only, and
the values never reach state or logs.

Run cache: when a task's fingerprint (its command, params, env names, deps' digests, upstreams)
was computed before, its outs are restored from .mlspec/cache/runs/<fingerprint>/ instead of
running the command again, as DVC's run cache does.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from mlspec.sdk import (
    API_VERSION,
    ENV_REF,
    Address,
    Capabilities,
    Diff,
    Estimate,
    FileDigests,
    Issue,
    Observation,
    PlanContext,
    Resource,
    ResourceState,
    Runtime,
    StepFailed,
    StepInterrupted,
    StepRequest,
    StepResult,
    TaskOutputs,
    listing_digest,
)

__version__ = "0.1.0"
ABSENT = "absent"  # a dep that does not exist (yet)
POLL_S = 0.1  # how often a running command checks for timeout and Ctrl-C


class TaskFailed(StepFailed):
    """The task's command failed; the message carries its exit code and the end of its output."""


class TaskPlugin:
    api_version: ClassVar[int] = API_VERSION
    name: ClassVar[str] = "task"
    version: ClassVar[str] = __version__
    settings_model: ClassVar[None] = None
    # It writes its `outs` in the repo (what others must not read at plan time); it publishes their digests.
    capabilities: ClassVar[Capabilities] = Capabilities(publishes=TaskOutputs, writes_paths=True)

    def writes(self, resource: Resource) -> list[str]:
        return list(resource.envelope.spec.outs)

    def validate(self, resource: Resource) -> Iterator[Issue]:
        spec = resource.envelope.spec
        if spec.cwd is not None and (spec.cwd.startswith("/") or ".." in spec.cwd.split("/")):
            yield Issue(("spec", "cwd"), f"`{spec.cwd}` leaves the spec repo", expected="a relative directory")

    def inputs(self, resource: Resource, context: PlanContext) -> Mapping[str, str]:
        """The deps' content digests (through the stat cache): a changed byte re-runs the task.

        A dep that an upstream task writes is not read: the upstream's fingerprint already stands
        for it (a Merkle DAG), and its bytes may be about to change in this very apply. A dep that
        does not exist is recorded as absent, so the fingerprint moves once it appears.
        """
        workdir, digests = context.workdir, context.digests
        produced = _produced(resource, context)
        out: dict[str, str] = {}
        for dep in resource.envelope.spec.deps:
            if not isinstance(dep, str):
                continue  # an upstream output: its fingerprint is already in ours
            if dep in produced:
                if produced[dep] not in context.upstream:
                    raise TaskFailed(
                        f"{resource.address} reads `{dep}`, which {produced[dep]} writes: add "
                        f"`depends_on: [{produced[dep]}]` so it runs after it"
                    )
                continue
            for rel, sha in _dep_digests(workdir, dep, digests):
                out[rel] = sha
        return out

    def refresh(self, resource: Resource, state: ResourceState, context: PlanContext) -> Observation:
        recorded: dict[str, str] = state.outputs.get("outs", {})
        problems, found = [], {}
        for rel, sha in sorted(recorded.items()):
            digest = _out_digest(os.path.join(context.workdir, rel), context.digests)
            if digest is None:
                problems.append(f"{rel} deleted")
                continue
            found[rel] = digest
            if digest != sha:
                problems.append(f"{rel} modified")
        return Observation(exists=not any(p.endswith("deleted") for p in problems),
                           drift=", ".join(problems) if problems else None,
                           details={**state.outputs, "outs": found})

    def diff(self, resource: Resource, before: Mapping[str, Any], after: Mapping[str, Any]) -> Diff:
        # Any change to what the command sees means running it again.
        return Diff.replacing(before, after)

    def apply(self, step: StepRequest, runtime: Runtime) -> StepResult:
        spec = step.resource.envelope.spec
        workdir = step.workdir
        # Nothing to restore without outs; `cache: false` opts out (a command with effects elsewhere).
        cached = _run_cache(workdir, step.fingerprint) if spec.cache and spec.outs else None
        if step.fingerprint and cached is not None and (cached / "outs").is_dir():
            restored = _restore(cached / "outs", workdir, spec.outs)
            if restored is not None:
                runtime.log(f"{step.resource.address}: restored {len(spec.outs)} out(s) from the run cache")
                return StepResult({"outs": restored, "seconds": 0.0, "cached": True})
        started = time.monotonic()
        _run(spec, workdir, step, runtime)
        seconds = time.monotonic() - started
        outs: dict[str, str] = {}
        with FileDigests(None) as digests:
            for out in spec.outs:
                digest = _out_digest(os.path.join(workdir, out), digests)
                if digest is None:
                    raise TaskFailed(f"{step.resource.address}: the command succeeded but did not write `{out}`")
                outs[out] = digest
        if step.fingerprint and cached is not None:
            _save(workdir, spec.outs, cached / "outs")
        return StepResult({"outs": outs, "seconds": round(seconds, 3), "cached": False})

    def destroy(self, step: StepRequest, runtime: Runtime) -> None:
        recorded = step.previous.outputs.get("outs", {}) if step.previous else {}
        for rel in recorded:
            path = step.workdir / rel
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def estimate(self, resource: Resource, previous: ResourceState | None) -> Estimate:
        if previous is not None and "seconds" in previous.outputs:
            return Estimate(seconds=float(previous.outputs["seconds"]), basis="the last run")
        return Estimate(basis="never run before")


def _run(spec: Any, workdir: Path, step: StepRequest, runtime: Runtime) -> None:
    env = dict(os.environ)
    secrets: list[str] = []
    for key, value in spec.env.items():
        env[key] = _resolve(value, step.resource.address, secrets)
    env.update({f"MLSPEC_PARAM_{_env_name(k)}": v if isinstance(v, str) else json.dumps(v)
                for k, v in spec.params.items()})
    env.update(_upstream_env(spec, step))
    redact = _redactor(secrets)
    cwd = workdir / spec.cwd if spec.cwd else workdir
    command: list[str] | str = spec.cmd
    if spec.shell and isinstance(spec.cmd, list):
        command = " ".join(spec.cmd)
    address = step.resource.address
    try:
        # Its own session: a Ctrl-C at the terminal reaches mlspec, which decides what the child gets.
        child = subprocess.Popen(command, cwd=cwd, env=env, shell=spec.shell, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
    except FileNotFoundError as err:
        raise TaskFailed(f"{address}: command not found: {err.filename}") from err
    except PermissionError as err:
        raise TaskFailed(f"{address}: cannot execute {err.filename}: permission denied") from err
    deadline = None if spec.timeout_s is None else time.monotonic() + spec.timeout_s
    while True:
        try:
            stdout, stderr = child.communicate(timeout=POLL_S)
            break
        except subprocess.TimeoutExpired:
            if runtime.cancelled.is_set():
                _stop(child)
                raise StepInterrupted(f"{address}: stopped by a second Ctrl-C") from None
            if deadline is not None and time.monotonic() > deadline:
                _stop(child)
                raise TaskFailed(f"{address}: timed out after {spec.timeout_s:g}s") from None
    for line in redact(stdout or "").splitlines()[-20:]:
        runtime.log(f"{address}: {line}")
    if child.returncode != 0:
        tail = "\n".join(redact(stderr or stdout or "").splitlines()[-10:])
        raise TaskFailed(f"{address}: exit code {child.returncode}" + (f"\n{tail}" if tail else ""))


def _env_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _upstream_env(spec: Any, step: StepRequest) -> dict[str, str]:
    """`deps: [{ref: Model/m, output: uri}]` reaches the command as MLSPEC_INPUT_M_URI (JSON unless a string)."""
    out: dict[str, str] = {}
    for dep in spec.deps:
        if isinstance(dep, str):
            continue
        address = next((a for a in step.upstream if a == dep.ref or Address(a).name == dep.ref), None)
        outputs = step.upstream.get(address or "", {})
        if dep.output not in outputs:
            known = ", ".join(sorted(outputs)) or "none"
            raise TaskFailed(f"{step.resource.address}: {address or dep.ref} has no output `{dep.output}` "
                             f"(its outputs: {known})")
        value = outputs[dep.output]
        upstream = Address.parse(address or dep.ref, default_kind="_")
        name = f"MLSPEC_INPUT_{_env_name(upstream.name)}_{_env_name(dep.output)}"
        out[name] = value if isinstance(value, str) else json.dumps(value)
    return out


def _redactor(secrets: list[str]) -> Callable[[str], str]:
    """Output of a command that saw secrets is shown with them masked: logs never carry a secret.

    Each substituted value is masked on its own (a password inside a composed URL is printed alone
    as often as the URL), and in the quoted forms a URL would carry it in.
    """
    from urllib.parse import quote, quote_plus

    forms = {form for secret in secrets for form in (secret, quote(secret, safe=""), quote_plus(secret))}
    shown = sorted((s for s in forms if len(s) >= 3), key=len, reverse=True)
    if not shown:
        return lambda text: text
    pattern = re.compile("|".join(re.escape(s) for s in shown))
    return lambda text: pattern.sub("(sensitive)", text)


def _stop(child: subprocess.Popen[str]) -> None:
    """SIGTERM to the command's process group, SIGKILL if it lingers; no zombie is left behind."""
    for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, None)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            break
        try:
            child.communicate(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
    child.wait()


def _resolve(value: str, address: str, secrets: list[str] | None = None) -> str:
    """Substitute `${env:NAME}`; each substituted value is appended to `secrets`, to be masked."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if secrets is not None and name in os.environ:
            secrets.append(os.environ[name])
        if name not in os.environ:
            raise TaskFailed(f"{address}: environment variable {name} is not set (needed by `${{env:{name}}}`)")
        return os.environ[name]

    return ENV_REF.sub(one, value)


def _dep_digests(workdir: Path, dep: str, digests: FileDigests) -> Iterator[tuple[str, str]]:
    """(path relative to the repo, sha256) of every file a dep names; one stat per plain file."""
    if not any(ch in dep for ch in "*?["):
        path = os.path.join(workdir, dep)
        try:
            st = os.stat(path)
        except OSError:
            yield dep, ABSENT
            return
        if stat.S_ISDIR(st.st_mode):
            yield from ((f"{dep.rstrip('/')}/{rel}", sha) for rel, sha in digests.tree(Path(path)).items())
        else:
            yield dep, digests.file(path)
        return
    matches = sorted(glob.glob(os.path.join(workdir, dep), recursive=True))
    if not matches:
        yield dep, ABSENT
    for match in matches:
        rel = Path(match).relative_to(workdir).as_posix()
        if os.path.isdir(match):
            yield from ((f"{rel}/{inner}", sha) for inner, sha in digests.tree(Path(match)).items())
        else:
            yield rel, digests.file(match)


def _out_digest(path: str, digests: FileDigests) -> str | None:
    """A file's sha256, or for a directory the sha256 of its (path, sha256) listing; None if absent."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return digests.file(path)
    return "tree:" + listing_digest(digests.tree(Path(path)).items())


def _produced(resource: Resource, context: PlanContext) -> dict[str, str]:
    """Paths this task reads that another task of the spec set writes: path -> that task's address."""
    deps = [d for d in resource.envelope.spec.deps if isinstance(d, str)]
    return {dep: context.written[dep] for dep in deps
            if dep in context.written and context.written[dep] != resource.address}


def _run_cache(workdir: Path, fingerprint: str) -> Path | None:
    return workdir / ".mlspec" / "cache" / "runs" / fingerprint if fingerprint else None


def _save(workdir: Path, outs: list[str], target: Path) -> None:
    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    for out in outs:
        source, dest = workdir / out, staging / out
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest)
        else:
            shutil.copy2(source, dest)
    staging.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)  # a cache entry is whole or absent


def _restore(source: Path, workdir: Path, outs: list[str]) -> dict[str, str] | None:
    if not all((source / out).exists() for out in outs):
        return None
    digests: dict[str, str] = {}
    for out in outs:
        dest = workdir / out
        dest.parent.mkdir(parents=True, exist_ok=True)
        if (source / out).is_dir():
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(source / out, dest)
        else:
            shutil.copy2(source / out, dest)
        with FileDigests(None) as fresh:
            digests[out] = _out_digest(str(dest), fresh) or ""
    return digests
