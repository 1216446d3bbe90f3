"""Task: a generic pipeline step (a command with deps and outs), the equivalent of a DVC stage."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from mlspec.spec.kinds.base import Envelope, EnvStr, FreeForm, Issue, Ref, SpecBase, Strict


class OutputDep(Strict):
    """An upstream resource's output, e.g. `{ref: Task/prepare, output: data}`."""

    ref: Ref()  # type: ignore[valid-type]
    output: str


class TaskSpec(SpecBase):
    cmd: list[str] | str = Field(description="argv list; a string only with shell: true")
    shell: bool = Field(False, description="run `cmd` through /bin/sh; spec values are never interpolated")
    cwd: str | None = None
    deps: list[str | OutputDep] = Field(default_factory=list, description="files, globs or upstream outputs")
    outs: list[str] = Field(default_factory=list)
    params: FreeForm = Field(default_factory=dict)
    env: dict[str, EnvStr] = Field(default_factory=dict)
    cache: bool = Field(True, description="restore outs from the run cache when the fingerprint was seen")
    timeout_s: float | None = Field(None, gt=0)

    @field_validator("outs", "deps", "cwd", mode="after")
    @classmethod
    def _normal(cls, value: object) -> object:
        """`./data/x/`, `data//x` and `data/x` are one path: written once, compared once (a dep that
        another Task writes must be seen as the same path, or the two run out of order)."""
        if isinstance(value, list):
            return [_normal_path(v) if isinstance(v, str) else v for v in value]
        return _normal_path(value) if isinstance(value, str) else value

    def issues(self) -> Iterator[Issue]:
        if isinstance(self.cmd, str) and not self.shell:
            yield Issue(("cmd",), "a string command needs `shell: true`", expected="an argv list",
                        hint=f"write cmd: [{', '.join(self.cmd.split())}], or set shell: true")
        if isinstance(self.cmd, list) and not self.cmd:
            yield Issue(("cmd",), "empty command", expected="an argv list such as [python, train.py]")
        for i, out in enumerate(self.outs):
            if out.startswith("/") or ".." in out.split("/"):
                yield Issue(("outs", i), f"output `{out}` leaves the spec repo", expected="a relative path")
            elif out == ".":
                yield Issue(("outs", i), "the whole repo cannot be an output", expected="a file or directory in it")
        for i, arg in enumerate(self.cmd if isinstance(self.cmd, list) else [self.cmd]):
            if "\0" in arg:
                yield Issue(("cmd", i) if isinstance(self.cmd, list) else ("cmd",), "a NUL byte cannot be passed to "
                            "a command", expected="text without \\0")
        for key, value in self.env.items():
            if not _ENV_NAME.fullmatch(key):
                yield Issue(("env", key), f"`{key}` is not an environment variable name",
                            expected="letters, digits and _, not starting with a digit")
            if "\0" in value:
                yield Issue(("env", key), "a NUL byte cannot be in an environment variable", expected="text")
        seen: dict[str, str] = {}
        for name in self.params:
            variable = "MLSPEC_PARAM_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()
            if variable in seen:
                yield Issue(("params", name), f"params `{seen[variable]}` and `{name}` both reach the command as "
                            f"{variable}", expected="names that differ in more than case and punctuation",
                            hint=f"rename `{name}`")
            seen[variable] = name


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _normal_path(path: str) -> str:
    if not path or any(ch in path for ch in "*?["):
        return path.rstrip("/") or path
    return posixpath.normpath(path)


class Task(Envelope):
    kind_name: ClassVar[str] = "Task"
    kind: Literal["Task"]
    spec: TaskSpec


