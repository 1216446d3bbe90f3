"""Diagnostic codes are an interface: unique, described, and documented."""

from __future__ import annotations

from mlspec.spec import codes
from tests.conftest import REPO


def all_codes() -> dict[str, str]:
    return {name: value for name, value in vars(codes).items() if isinstance(value, str) and value.startswith("MLS")}


def test_codes_are_unique_and_described() -> None:
    values = list(all_codes().values())
    assert len(values) == len(set(values))
    assert set(values) == set(codes.DESCRIPTIONS)


def test_every_code_is_documented() -> None:
    doc = (REPO / "docs" / "diagnostics.md").read_text()
    for name, value in all_codes().items():
        assert f"| {value} | `{name}` |" in doc, f"{value} missing from docs/diagnostics.md"
