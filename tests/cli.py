"""Running the command line in-process, as tests see it: exit code, stdout and stderr apart."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlspec.cli import main


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err

    def json(self) -> Any:
        return json.loads(self.out)


def invoke(
    capsys: pytest.CaptureFixture[str], *args: str | os.PathLike[str], root: Path | None = None, crash_ok: bool = False
) -> Result:
    """main() in this process (in `root` with -C when given); a traceback is never an acceptable answer."""
    capsys.readouterr()  # drop anything printed before
    code = main([*(["-C", str(root)] if root is not None else []), *(str(a) for a in args)])
    out, err = capsys.readouterr()
    if not crash_ok:
        assert "Traceback" not in out + err and "internal error" not in out + err, out + err
    return Result(code, out, err)
