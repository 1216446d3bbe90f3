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
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from mlspec.digests import sha256_file
from mlspec.errors import MlspecError
from mlspec.plugin import (
    API_VERSION,
    Diff,
    Estimate,
    FieldChange,
    Observation,
    PlanContext,
    StepContext,
    StepInterrupted,
)
from mlspec.spec.kinds.base import Issue
from mlspec.spec.loader import ENV_REF
from mlspec.spec.specset import Resource
from mlspec.state.model import ResourceState

__version__ = "0.1.0"
ABSENT = "absent"  # a dep that does not exist (yet)
POLL_S = 0.1  # how often a running command checks for timeout and Ctrl-C


class TaskFailed(MlspecError):
    """The task's command failed; the message carries its exit code and the end of its output."""


class TaskPlugin:
    api_version: ClassVar[int] = API_VERSION
    name: ClassVar[str] = "task"
    version: ClassVar[str] = __version__
    settings_model: ClassVar[None] = None

    def validate(self, resource: Resource) -> Iterator[Issue]:
        spec = resource.envelope.spec
        if spec.cwd is not None and (spec.cwd.startswith("/") or ".." in spec.cwd.split("/")):
            yield Issue(("spec", "cwd"), f"`{spec.cwd}` leaves the spec repo", expected="a relative directory")

    def inputs(self, resource: Resource, context: PlanContext) -> Mapping[str, str]:
        """The deps' content digests (through the stat cache): a changed byte re-runs the task.

        A dep that does not exist yet (an upstream task writes it) is recorded as absent, so the
        fingerprint moves once it appears.
        """
        workdir, digests = context.workdir, context.digests
        out: dict[str, str] = {}
        for dep in resource.envelope.spec.deps:
            if not isinstance(dep, str):
                continue  # an upstream output: its fingerprint is already in ours
            paths = _expand(workdir, dep)
            if not paths:
                out[dep] = ABSENT
            for path in paths:
                if path.is_dir():
                    for rel, sha in digests.tree(path).items():
                        out[f"{path.relative_to(workdir).as_posix()}/{rel}"] = sha
                elif path.is_file():
                    out[path.relative_to(workdir).as_posix()] = digests.file(path)
                else:
                    out[dep] = ABSENT
        return out

    def refresh(self, resource: Resource, state: ResourceState, context: PlanContext) -> Observation:
        recorded: dict[str, str] = state.outputs.get("outs", {})
        problems, found = [], {}
        for rel, sha in sorted(recorded.items()):
            path = context.workdir / rel
            if not path.exists():
                problems.append(f"{rel} deleted")
                continue
            found[rel] = context.digests.file(path) if path.is_file() else "dir"
            if found[rel] != sha:
                problems.append(f"{rel} modified")
        return Observation(exists=not any(p.endswith("deleted") for p in problems),
                           drift=", ".join(problems) if problems else None,
                           details={**state.outputs, "outs": found})

    def diff(self, resource: Resource, before: Mapping[str, Any], after: Mapping[str, Any]) -> Diff:
        # Any change to what the command sees means running it again.
        keys = sorted(set(before) | set(after))
        return Diff(tuple(FieldChange(f"spec.{k}", before.get(k), after.get(k), True)
                          for k in keys if before.get(k) != after.get(k)))

    def apply(self, step: StepContext) -> dict[str, Any]:
        spec = step.resource.envelope.spec
        workdir = step.workdir
        cached = _run_cache(workdir, step.fingerprint)
        if step.fingerprint and cached is not None and (cached / "outs").is_dir():
            restored = _restore(cached / "outs", workdir, spec.outs)
            if restored is not None:
                step.log(f"{step.resource.address}: restored {len(spec.outs)} out(s) from the run cache")
                return {"outs": restored, "seconds": 0.0, "cached": True}
        started = time.monotonic()
        _run(spec, workdir, step)
        seconds = time.monotonic() - started
        outs: dict[str, str] = {}
        for out in spec.outs:
            path = workdir / out
            if not path.exists():
                raise TaskFailed(f"{step.resource.address}: the command succeeded but did not write `{out}`")
            outs[out] = sha256_file(path) if path.is_file() else "dir"
        if step.fingerprint and cached is not None:
            _save(workdir, spec.outs, cached / "outs")
        return {"outs": outs, "seconds": round(seconds, 3), "cached": False}

    def destroy(self, step: StepContext) -> None:
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


def _run(spec: Any, workdir: Path, step: StepContext) -> None:
    env = dict(os.environ)
    for key, value in spec.env.items():
        env[key] = _resolve(value, step.resource.address)
    env.update({f"MLSPEC_PARAM_{k.upper()}": str(v) for k, v in spec.params.items() if not isinstance(v, dict | list)})
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
            if step.cancelled.is_set():
                _stop(child)
                raise StepInterrupted(f"{address}: stopped by a second Ctrl-C") from None
            if deadline is not None and time.monotonic() > deadline:
                _stop(child)
                raise TaskFailed(f"{address}: timed out after {spec.timeout_s:g}s") from None
    for line in (stdout or "").splitlines()[-20:]:
        step.log(f"{address}: {line}")
    if child.returncode != 0:
        tail = "\n".join((stderr or stdout or "").splitlines()[-10:])
        raise TaskFailed(f"{address}: exit code {child.returncode}" + (f"\n{tail}" if tail else ""))


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


def _resolve(value: str, address: str) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise TaskFailed(f"{address}: environment variable {name} is not set (needed by `${{env:{name}}}`)")
        return os.environ[name]

    return ENV_REF.sub(one, value)


def _expand(workdir: Path, pattern: str) -> list[Path]:
    if any(ch in pattern for ch in "*?["):
        return sorted(Path(p) for p in glob.glob(str(workdir / pattern), recursive=True))
    return [workdir / pattern]


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
            digests[out] = "dir"
        else:
            shutil.copy2(source / out, dest)
            digests[out] = sha256_file(dest)
    return digests
