"""`mlspec models list|show`, `mlspec promote`, `mlspec rollback`: the registry by hand.

The work is mlspec/engine/edits.py's; this module prints it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from mlspec.engine import edits
from mlspec.errors import EXIT_OK
from mlspec.registry import CHAMPION
from mlspec.render.echo import show_versions


def run_list(fmt: str) -> int:
    entries = {a: e for a, e in edits.entries().items() if not a.startswith("Prompt/")}  # `mlspec prompts list`
    rows: list[dict[str, Any]] = []
    for address, entry in entries.items():
        champion = entry.alias(CHAMPION)
        latest = entry.versions[-1] if entry.versions else {}
        rows.append({"address": address, "versions": len(entry.versions), "aliases": entry.aliases,
                     "champion": champion["version"] if champion else None,
                     "champion_metrics": champion.get("metrics") if champion else None,
                     "latest": latest.get("version"), "latest_passed": latest.get("gates_passed")})
    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", "models": rows}, indent=2))
        return EXIT_OK
    if not rows:
        click.echo("no models registered yet: `mlspec apply` trains and registers them", err=True)
    for row in rows:
        aliases = ", ".join(f"{a}=v{v}" for a, v in sorted(row["aliases"].items())) or "no aliases"
        metrics = _metrics(row["champion_metrics"] or {})
        click.echo(f"{row['address']}  {row['versions']} version(s)  {aliases}" + (f"  ({metrics})" if metrics else ""))
    return EXIT_OK


def run_show(address: str, fmt: str, style: Callable[..., str]) -> int:
    entries = edits.entries()
    address = edits.resolve(entries, address)

    def describe(record: dict[str, Any]) -> tuple[str, list[str]]:
        below = [f"      gate `{g['gate']}`: {g['why']}" for g in record.get("gates") or () if not g.get("passed")]
        facts = [f"{k} {record[k]}" for k in ("device", "commit") if record.get(k)]
        if record.get("seconds") is not None:
            facts.append(f"{float(record['seconds']):.1f}s")
        if facts:
            below.append(style(f"      {'  '.join(facts)}", dim=True))
        return _metrics(record.get("metrics") or {}), below

    show_versions(address, entries[address], fmt, style, describe)
    return EXIT_OK


def run_promote(address: str, version: int, alias: str, lock_timeout: float, fmt: str, *, force: bool = False,
                reason: str = "") -> int:
    return _shown(edits.promote(address, version, alias, lock_timeout=lock_timeout, force=force, reason=reason), fmt)


def run_rollback(address: str, lock_timeout: float, fmt: str) -> int:
    return _shown(edits.rollback(address, lock_timeout=lock_timeout), fmt)


def _shown(move: edits.AliasMove, fmt: str) -> int:
    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", **move.to_json()}, indent=2))
    else:
        if isinstance(move.to, str):  # a plugin's own rollback: its versions are named
            click.echo(f"{move.address}: serving {move.before} -> {move.to}")
            return EXIT_OK
        was = f"v{move.before}" if move.before is not None else "none"
        click.echo(f"{move.address}: {move.alias} {was} -> v{move.to}")
        if move.alias == CHAMPION and move.before != move.to:
            click.echo("What is built on it follows on the next `mlspec apply` (see `mlspec plan`).")
    return EXIT_OK


def _metrics(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k} {float(v):.4f}" for k, v in sorted(metrics.items()))
