"""`mlspec prompts list|show|diff`: the Prompts' versions in the registry, their aliases and results,
and what changed between two versions of a template. (`mlspec promote` and `mlspec rollback` move
their aliases, as for Models.)"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from typing import Any

import click

from mlspec.engine import edits
from mlspec.errors import EXIT_OK, RegistryError
from mlspec.registry import Entry
from mlspec.render.echo import show_versions


def _prompts() -> dict[str, Entry]:
    return {a: e for a, e in edits.entries().items() if a.startswith("Prompt/")}


def run_list(fmt: str) -> int:
    rows: list[dict[str, Any]] = []
    for address, entry in _prompts().items():
        latest = entry.versions[-1] if entry.versions else {}
        rows.append({"address": address, "versions": len(entry.versions), "aliases": entry.aliases,
                     "latest": latest.get("version"), "latest_passed": latest.get("gates_passed"),
                     "latest_pass_rate": (latest.get("metrics") or {}).get("pass_rate")})
    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", "prompts": rows}, indent=2))
        return EXIT_OK
    if not rows:
        click.echo("no prompts registered yet: `mlspec apply` tests and registers them", err=True)
    for row in rows:
        aliases = ", ".join(f"{a}=v{v}" for a, v in sorted(row["aliases"].items())) or "no aliases"
        rate = row["latest_pass_rate"]
        shown = f"  (v{row['latest']}: {rate:.0%} of tests passed)" if rate is not None else ""
        click.echo(f"{row['address']}  {row['versions']} version(s)  {aliases}{shown}")
    return EXIT_OK


def run_show(address: str, fmt: str, style: Callable[..., str]) -> int:
    found = _prompts()
    address = edits.resolve(found, address if "/" in address else f"Prompt/{address}")

    def describe(record: dict[str, Any]) -> tuple[str, list[str]]:
        tests = record.get("tests") or {}
        tail = f"{tests.get('passed', 0)} of {tests.get('cases', 0)} case(s) against {record.get('target', '?')}"
        return tail, [f"      `{f['test']}`: {'; '.join(f['reasons'])}" for f in (tests.get("failures") or [])[:3]]

    show_versions(address, found[address], fmt, style, describe, failed="failed its gate")
    return EXIT_OK


def run_diff(address: str, first: int | None, second: int | None, fmt: str, style: Callable[..., str]) -> int:
    """Two versions' templates, variables and settings; by default the version before the latest
    against the latest."""
    found = _prompts()
    address = edits.resolve(found, address if "/" in address else f"Prompt/{address}")
    entry = found[address]
    numbers = [v["version"] for v in entry.versions]
    if first is None and second is None:
        if len(numbers) < 2:
            raise RegistryError(f"{address} has one version (v{numbers[0]}): nothing to compare it with")
        first, second = numbers[-2], numbers[-1]
    elif second is None:
        second = numbers[-1]
    assert first is not None and second is not None
    a, b = entry.version(first), entry.version(second)
    lines = list(difflib.unified_diff(str(a.get("template", "")).splitlines(), str(b.get("template", "")).splitlines(),
                                      f"{address} v{first}", f"{address} v{second}", lineterm=""))
    changed = {k: {"before": a.get(k), "after": b.get(k)} for k in ("variables", "settings")
               if a.get(k) != b.get(k)}
    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", "address": address, "from": first, "to": second,
                               "template_diff": lines, "changed": changed}, indent=2))
        return EXIT_OK
    if not lines and not changed:
        click.echo(f"{address}: v{first} and v{second} have the same template, variables and settings")
    for line in lines:
        colour = "green" if line.startswith("+") and not line.startswith("+++") else (
            "red" if line.startswith("-") and not line.startswith("---") else None)
        click.echo(style(line, fg=colour) if colour else line)
    for key, change in changed.items():
        click.echo(f"~ {key}: {_json(change['before'])} -> {_json(change['after'])}")
    return EXIT_OK


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
