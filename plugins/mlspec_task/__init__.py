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

import functools
import glob
import json
import os
import re
import select
import shlex
import stat
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from mlspec.sdk import (
    API_VERSION,
    ENV_REF,
    Address,
    ArtifactStore,
    Capabilities,
    Diff,
    Estimate,
    FileDigests,
    Issue,
    Mask,
    MlspecError,
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
    paths,
    processes,
)

__version__ = "0.1.0"
ABSENT = "absent"  # a dep that does not exist (yet)
POLL_S = 0.1  # how often a running command checks for timeout and Ctrl-C
# What a command inherits of mlspec's environment, as CI systems do it: what a program needs to run
# (paths, locale, proxies, certificates, the GPU it may use), never the whole environment, where
# another step's credentials live. A Task gets more by naming it: `env: {TOKEN: ${env:TOKEN}}` in the
# spec (a secret: masked everywhere, and the plan says so), or `plugins.task.inherit_env` in mlspec.yaml.
INHERITED = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "LC_*", "TZ", "TERM", "TMPDIR", "TEMP", "TMP",
    "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH", "PYTHONHASHSEED", "CUDA_VISIBLE_DEVICES", "CUDA_HOME",
    "HF_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "CI",
)


class TaskSettings(BaseModel):
    """`plugins.task` in mlspec.yaml."""

    model_config = ConfigDict(extra="forbid")

    inherit_env: list[str] = Field(
        default_factory=list, description="more variables (names or globs: `AWS_*`) that every Task's command "
        "inherits from mlspec's environment, beside PATH, HOME, locale, proxies and the like")


class TaskFailed(StepFailed):
    """The task's command failed; the message carries its exit code and the end of its output."""


class TaskPlugin:
    api_version: ClassVar[int] = API_VERSION
    name: ClassVar[str] = "task"
    version: ClassVar[str] = __version__
    settings_model: ClassVar[type[TaskSettings]] = TaskSettings
    # It writes its `outs` in the repo (what others must not read at plan time); it publishes their digests.
    capabilities: ClassVar[Capabilities] = Capabilities(publishes=TaskOutputs, writes_paths=True)

    def writes(self, resource: Resource) -> list[str]:
        return list(resource.envelope.spec.outs)

    def notices(self, resource: Resource, context: PlanContext) -> list[str]:
        """What a reviewer must know of this Task beyond its changes: the secrets its command receives,
        and what it reads from outside the repo."""
        spec = resource.envelope.spec
        names = sorted({m.group(1) for v in spec.env.values() for m in ENV_REF.finditer(v)})
        found = []
        if names:
            found.append(f"its command gets the secret{'s' if len(names) > 1 else ''} {', '.join(names)} in its "
                         "environment (masked in everything mlspec writes and prints)")
        outside = sorted({d for dep in spec.deps if isinstance(dep, str)
                          if (d := paths.outside_of(context.workdir, dep, context.outside))})
        found += [f"reads {d}, outside the repo (mlspec.yaml `paths.outside` allows it)" for d in outside]
        return found

    def validate(self, resource: Resource, context: PlanContext | None = None) -> Iterator[Issue]:
        spec = resource.envelope.spec
        root, outside = (context.workdir, context.outside) if context is not None else (None, ())
        if spec.cwd is not None and paths.leaves(None, spec.cwd):  # a cwd outside is never allowed
            yield Issue(("spec", "cwd"), f"`{spec.cwd}` leaves the spec repo", expected="a relative directory")
        for i, dep in enumerate(spec.deps):
            if isinstance(dep, str) and paths.leaves(root, dep, outside):
                yield Issue(("spec", "deps", i), f"dep `{dep}` leaves the spec repo",
                            expected="a path inside the spec repo", hint="copy it into the repo, or list its "
                            "directory in mlspec.yaml's `paths.outside`")

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
            for rel, sha in _dep_digests(workdir, dep, digests, f"{resource.address}: dep", context.outside):
                out[rel] = sha
        return out

    def refresh(self, resource: Resource, state: ResourceState, context: PlanContext) -> Observation:
        """An out that is here with other bytes is drift; one that is absent but held by the artifact
        store is not (a fresh clone: `mlspec pull`, or any step that reads it, writes it back)."""
        from mlspec_task import stored as kept

        recorded: dict[str, str] = state.outputs.get("outs", {})
        held = state.outputs.get("stored") or {}
        problems, found, absent = [], {}, []
        for rel, sha in sorted(recorded.items()):
            digest = _out_digest(str(paths.inside(context.workdir, rel, "out")), context.digests)
            if digest is None:
                absent.append(rel)
                continue
            found[rel] = digest
            if digest != sha:
                problems.append(f"{rel} modified")
        if absent:
            gone = set(kept.missing(kept.store_of(context.artifacts, context.workdir),
                                    {rel: held[rel] for rel in absent if rel in held}))
            for rel in absent:
                if rel in held and rel not in gone:
                    found[rel] = recorded[rel]  # not materialised here, but nothing is lost
                else:
                    problems.append(f"{rel} deleted")
        return Observation(exists=not any(p.endswith("deleted") for p in problems),
                           drift=", ".join(problems) if problems else None,
                           details={**state.outputs, "outs": found})

    def diff(self, resource: Resource, before: Mapping[str, Any], after: Mapping[str, Any]) -> Diff:
        # Any change to what the command sees means running it again.
        return Diff.replacing(before, after)

    def apply(self, step: StepRequest, runtime: Runtime) -> StepResult:
        from mlspec_task import stored as kept

        spec = step.resource.envelope.spec
        workdir = step.workdir
        store = kept.store_of(step.artifacts, workdir)
        # The run cache: the same fingerprint ran before, here or on another runner sharing the store.
        # Nothing to restore without outs; `cache: false` opts out (a command with effects elsewhere).
        if spec.cache and spec.outs and step.fingerprint:
            restored = _from_run_cache(store, workdir, step.fingerprint, spec.outs)
            if restored is not None:
                runtime.log(f"{step.resource.address}: restored {len(spec.outs)} out(s) from the run cache")
                return StepResult({**restored, "seconds": 0.0, "cached": True})
        for out in spec.outs:  # a real run starts from nothing: a stale file in a directory out is not kept
            paths.remove(workdir, out, "out")
        started = time.monotonic()
        _run(spec, workdir, step, runtime)
        seconds = time.monotonic() - started
        outs: dict[str, str] = {}
        with FileDigests(None) as digests:
            for out in spec.outs:
                digest = _out_digest(str(paths.inside(workdir, out, "out")), digests)
                if digest is None:
                    raise TaskFailed(f"{step.resource.address}: the command succeeded but did not write `{out}`")
                outs[out] = digest
        saved = kept.save(store, workdir, spec.outs) if spec.outs else {}
        if spec.cache and spec.outs and step.fingerprint:
            store.set_named(kept.index_name(step.fingerprint), json.dumps({"outs": outs, "stored": saved}).encode())
        return StepResult({"outs": outs, "stored": saved, "seconds": round(seconds, 3), "cached": False})

    def materialize(self, outputs: Mapping[str, Any], workdir: Path, artifacts: str) -> list[str]:
        """Write back the outs that are missing here (a fresh clone) from the store: for a step that
        runs and reads them, and for `mlspec pull`."""
        from mlspec_task import stored as kept

        recorded = outputs.get("stored") or {}
        if not recorded:
            return []
        return kept.restore(kept.store_of(artifacts, workdir), workdir, recorded, only_missing=True)

    def destroy(self, step: StepRequest, runtime: Runtime) -> None:
        recorded = step.previous.outputs.get("outs", {}) if step.previous else {}
        for rel in recorded:
            paths.remove(step.workdir, rel, "out")  # resolved now: a symlink swapped in since cannot redirect it

    def estimate(self, resource: Resource, previous: ResourceState | None) -> Estimate:
        if previous is not None and "seconds" in previous.outputs:
            return Estimate(seconds=float(previous.outputs["seconds"]), basis="the last run")
        return Estimate(basis="never run before")


def _environment(step: StepRequest) -> dict[str, str]:
    """What the command inherits of mlspec's environment: INHERITED and what mlspec.yaml adds."""
    inherited = _inherited(tuple((step.settings or {}).get("inherit_env") or ()))
    return {k: v for k, v in os.environ.items() if inherited.fullmatch(k)}


@functools.lru_cache(maxsize=8)
def _inherited(extra: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern for every inherited name (globs allowed): a dict filter per step, not 40 fnmatch calls
    for each of 40 variables."""
    import fnmatch

    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in (*INHERITED, *extra)))


def _run(spec: Any, workdir: Path, step: StepRequest, runtime: Runtime) -> None:
    env = _environment(step)
    secrets: list[str] = []
    for key, value in spec.env.items():
        env[key] = _resolve(value, step.resource.address, secrets)
    env.update({f"MLSPEC_PARAM_{_env_name(k)}": v if isinstance(v, str) else json.dumps(v)
                for k, v in spec.params.items()})
    env.update(_upstream_env(spec, step))
    redact = _redactor(secrets)
    address = step.resource.address
    cwd = paths.inside(workdir, spec.cwd or ".", "cwd")
    if not cwd.is_dir():
        raise TaskFailed(f"{address}: cwd `{spec.cwd}` is not a directory of the spec repo")
    command: list[str] | str = spec.cmd
    if spec.shell and isinstance(spec.cmd, list):
        command = shlex.join(spec.cmd)  # each item one word, as written: never split or expanded again
    token = f"{step.run}/{address}" if step.run else f"{os.getpid()}/{address}"
    env.update(processes.marks(step.run, token))
    logs = _logs(workdir, address)
    with open(logs / "stdout.log", "wb") as stdout, open(logs / "stderr.log", "wb") as stderr:
        try:
            # Its own session: a Ctrl-C at the terminal reaches mlspec, which decides what the child gets.
            # Output to files, not pipes: nothing is ever waited on after a kill, and 300 MB of output
            # costs disk, not memory.
            child = subprocess.Popen(command, cwd=cwd, env=env, shell=spec.shell, stdin=subprocess.DEVNULL,
                                     stdout=stdout, stderr=stderr, start_new_session=True)
        except FileNotFoundError as err:
            raise TaskFailed(f"{address}: command not found: {err.filename}") from err
        except PermissionError as err:
            raise TaskFailed(f"{address}: cannot execute {err.filename}: permission denied") from err
    try:
        code = _wait(child, spec, runtime, address, token)
    finally:
        if secrets:  # the logs are mlspec's files too: no secret stays in them
            for log in ("stdout.log", "stderr.log"):
                _mask_file(logs / log, redact)
    for line in redact(_tail(logs / "stdout.log")).splitlines()[-20:]:
        runtime.log(f"{address}: {line}")
    if code != 0:
        tail = "\n".join(redact(_tail(logs / "stderr.log") or _tail(logs / "stdout.log")).splitlines()[-10:])
        raise TaskFailed(f"{address}: exit code {code}" + (f"\n{tail}" if tail else "")
                         + f"\n(the whole output: {logs.relative_to(workdir)}/)")


def _wait(child: subprocess.Popen[bytes], spec: Any, runtime: Runtime, address: str, token: str) -> int:
    """The command's exit code; on a timeout or a second Ctrl-C, its whole process tree is stopped.

    Woken by the kernel the moment the command exits (a pidfd, where Linux has one), not by polling:
    a step of 2 ms must not cost 4 waiting for it, 10,000 times."""
    deadline = None if spec.timeout_s is None else time.monotonic() + spec.timeout_s
    exited = _exit_notice(child.pid)
    try:
        while True:
            if exited is not None:
                select.select([exited], [], [], POLL_S)
                code = child.poll()
            else:
                try:
                    code = child.wait(timeout=POLL_S)
                except subprocess.TimeoutExpired:
                    code = None
            if code is not None:
                return code
            if runtime.cancelled.is_set():
                processes.stop_step(child.pid, token)
                child.wait()
                raise StepInterrupted(f"{address}: stopped by a second Ctrl-C") from None
            if deadline is not None and time.monotonic() > deadline:
                processes.stop_step(child.pid, token)
                child.wait()
                raise TaskFailed(f"{address}: timed out after {spec.timeout_s:g}s") from None
    finally:
        if exited is not None:
            os.close(exited)


def _exit_notice(pid: int) -> int | None:
    """A file descriptor that becomes readable when `pid` exits (Linux pidfd), or None."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return int(opener(pid))
    except OSError:
        return None


def _logs(workdir: Path, address: str) -> Path:
    """`.mlspec/logs/Task/name/`: the last run's whole output, kept for the user to read."""
    where = workdir / ".mlspec" / "logs" / Address(address).kind / Address(address).name
    where.mkdir(parents=True, exist_ok=True)
    return where


def _tail(path: Path, size: int = 64 * 1024) -> str:
    """The end of a log, whatever its length: only the tail is ever read back (an empty one, the
    usual case of a quiet command, costs a stat)."""
    try:
        if os.stat(path).st_size == 0:
            return ""
        with open(path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - size))
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


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
    as often as the URL), in its plain, URL-encoded and base64 forms (mlspec.sdk.Mask).
    """
    return Mask(secrets).text


def _mask_file(path: Path, redact: Callable[[str], str]) -> None:
    """Rewrite a log with the secrets masked, a line at a time (a log may be larger than memory)."""
    tmp = path.with_name(path.name + ".masking")
    with open(path, encoding="utf-8", errors="replace") as src, open(tmp, "w", encoding="utf-8") as dst:
        for line in src:
            dst.write(redact(line))
    os.replace(tmp, path)


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


def _dep_digests(workdir: Path, dep: str, digests: FileDigests, what: str,
                 outside: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """(path relative to the repo, sha256) of every file a dep names; one stat per plain file. Each
    path is resolved as it is read: one that a symlink takes out of the repo is refused."""
    if not any(ch in dep for ch in "*?["):
        path = str(paths.inside(workdir, dep, what, outside))
        try:
            st = os.stat(path)
        except OSError:
            yield dep, ABSENT
            return
        if stat.S_ISDIR(st.st_mode):
            yield from ((f"{dep}/{rel}", sha) for rel, sha in digests.tree(Path(path)).items())
        else:
            yield dep, digests.file(path)
        return
    matches = sorted(glob.glob(os.path.join(workdir, dep), recursive=True))
    if not matches:
        yield dep, ABSENT
    for match in matches:
        rel = Path(match).relative_to(workdir).as_posix() if Path(match).is_relative_to(workdir) else match
        real = str(paths.inside(workdir, rel, what, outside))
        if os.path.isdir(real):
            yield from ((f"{rel}/{inner}", sha) for inner, sha in digests.tree(Path(real)).items())
        else:
            yield rel, digests.file(real)


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


def _from_run_cache(store: ArtifactStore, workdir: Path, fingerprint: str,
                    outs: list[str]) -> dict[str, Any] | None:
    """The outs of an earlier run of this fingerprint, written back from the store, or None."""
    from mlspec_task import stored as kept

    raw = store.named(kept.index_name(fingerprint))
    if raw is None:
        return None
    try:
        index = json.loads(raw)
        saved = {out: index["stored"][out] for out in outs}
        kept.restore(store, workdir, saved)
    except (ValueError, KeyError, TypeError, MlspecError):
        return None  # an index that does not fit, or an artifact gone or damaged: run the command instead
    return {"outs": {out: index["outs"][out] for out in outs}, "stored": saved}
