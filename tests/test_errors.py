"""Every user-facing error class, in its one module, against the exit-code table (130 included)."""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable
from pathlib import Path

import pytest

import mlspec.errors
from tests.cli import Result, invoke

CODES = {"MlspecError": 1, "Interrupted": 130}  # every other class: 1, the code of its base


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    return lambda *args: invoke(capsys, *args)


def _error_classes() -> list[type[mlspec.errors.MlspecError]]:
    return [
        cls
        for _, cls in inspect.getmembers(mlspec.errors, inspect.isclass)
        if issubclass(cls, mlspec.errors.MlspecError) and cls.__module__ == "mlspec.errors"
    ]


def _instance(cls: type[mlspec.errors.MlspecError]) -> mlspec.errors.MlspecError:
    if issubclass(cls, mlspec.errors.SpecError):
        return cls([])
    return cls("something is wrong with the-input")


def test_error_classes_found() -> None:
    names = {cls.__name__ for cls in _error_classes()}
    assert {"MlspecError", "SpecError", "ProjectError", "PluginError", "StepFailed", "Interrupted"} <= names


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_every_error_class_is_one_line_with_its_exit_code(
    run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, cls: type[mlspec.errors.MlspecError]
) -> None:
    error = _instance(cls)

    def fail(*_: object, **__: object) -> int:
        raise error

    monkeypatch.setattr("mlspec.commands.version.run", fail)
    result = run("version")
    assert cls.exit_code == CODES.get(cls.__name__, 1)
    assert result.code == cls.exit_code
    assert result.out == ""
    assert result.err == f"error: {error}\n"


def test_error_table_in_the_errors_docstring_matches_the_classes() -> None:
    """mlspec/errors.py draws the exception tree with each class's exit code: keep it true."""
    table = dict(re.findall(r"^\s*(?:[│ ]*[├└]── )?(\w+)\s+exit (\d+)", mlspec.errors.__doc__ or "", re.M))
    assert {name: int(code) for name, code in table.items()} == {
        cls.__name__: cls.exit_code for cls in _error_classes()
    }


def test_no_user_facing_error_class_is_defined_outside_the_errors_module() -> None:
    """The core's errors live in one module; plugins define theirs on the SDK's StepFailed."""
    core = Path(mlspec.errors.__file__).parent
    found = []
    for path in sorted(core.rglob("*.py")):
        if path.name == "errors.py" and path.parent == core:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(b, ast.Name) and (b.id.endswith("Error") or b.id in ("StepFailed", "Interrupted"))
                for b in node.bases
            ):
                found.append(f"{path.relative_to(core)}:{node.lineno} {node.name}")
    assert found == []
