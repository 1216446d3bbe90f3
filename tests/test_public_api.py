"""The public API: what `mlspec.__all__` promises resolves, lazily, and nothing else pretends to."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types

import pytest

import mlspec


def test_all_is_sorted_and_unique() -> None:
    names = [n for n in mlspec.__all__ if n != "__version__"]
    assert names == sorted(set(names))
    assert "__version__" in mlspec.__all__


@pytest.mark.parametrize("name", mlspec.__all__)
def test_every_exported_name_resolves_to_the_same_object_every_time(name: str) -> None:
    first = getattr(mlspec, name)
    second = getattr(mlspec, name)
    assert first is second
    assert not isinstance(first, types.ModuleType), f"mlspec.{name} is a module"
    if name != "__version__":
        # The object is the library's own, not a copy: `mlspec.X is <defining module>.X`.
        assert getattr(importlib.import_module(first.__module__), name) is first


def test_star_import_gives_every_name() -> None:
    namespace: dict[str, object] = {}
    exec("from mlspec import *", namespace)
    assert set(mlspec.__all__) <= set(namespace)


def test_the_exports_are_the_kinds_of_thing_they_claim() -> None:
    assert issubclass(mlspec.SpecError, mlspec.MlspecError)
    assert issubclass(mlspec.MlspecError, Exception)
    assert callable(mlspec.load_project)
    assert {s.value for s in mlspec.Severity} == {"error", "warning"}
    diagnostic = mlspec.Diagnostic("MLS101", "unknown field `x`", "specs/a.yaml", 3, 5)
    assert diagnostic.is_error


@pytest.mark.parametrize("name", ["nope", "Validate", "_EXPORTS_MISSING", "spec_error", "__path_hook__"])
def test_unknown_names_raise_attribute_error(name: str) -> None:
    with pytest.raises(AttributeError, match=repr(name)):
        getattr(mlspec, name)
    assert not hasattr(mlspec, name)


def test_from_import_of_an_unknown_name_is_an_import_error() -> None:
    with pytest.raises(ImportError):
        exec("from mlspec import definitely_not_exported", {})


def test_version_is_a_string_matching_the_package_metadata() -> None:
    from importlib import metadata

    assert isinstance(mlspec.__version__, str)
    assert mlspec.__version__ == metadata.version("mlspec")


def test_import_mlspec_is_lazy() -> None:
    """`import mlspec` alone loads none of the exported modules; touching a name loads its module."""
    code = (
        "import sys, mlspec\n"
        "before = sorted(m for m in sys.modules\n"
        "                if m.startswith('mlspec.') or m.split('.')[0] in ('pydantic', 'ruamel'))\n"
        "mlspec.SpecError\n"
        "after = 'mlspec.errors' in sys.modules\n"
        "print(before, after)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[] True"
