"""Task: a generic pipeline step (a command with deps and outs), the equivalent of a DVC stage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Literal

from pydantic import Field

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

    def issues(self) -> Iterator[Issue]:
        if isinstance(self.cmd, str) and not self.shell:
            yield Issue(("cmd",), "a string command needs `shell: true`", expected="an argv list",
                        hint=f"write cmd: [{', '.join(self.cmd.split())}], or set shell: true")
        if isinstance(self.cmd, list) and not self.cmd:
            yield Issue(("cmd",), "empty command", expected="an argv list such as [python, train.py]")
        for i, out in enumerate(self.outs):
            if out.startswith("/") or ".." in out.split("/"):
                yield Issue(("outs", i), f"output `{out}` leaves the spec repo", expected="a relative path")


class Task(Envelope):
    kind_name: ClassVar[str] = "Task"
    kind: Literal["Task"]
    spec: TaskSpec


