"""`mlspec models list|show`, `mlspec promote`, `mlspec rollback`: the model registry by hand.

Reading needs no lock. Promote and rollback move an alias under the state lock, rewrite the
Model's outputs to name its new champion (so the next plan moves the Services that serve it), and
are written to the audit log, as every other hand edit of state is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from mlspec import registry
from mlspec.commands.state import audit_edit, state_store
from mlspec.errors import EXIT_OK, StateMissingError
from mlspec.registry import CHAMPION, Entry, RegistryError
from mlspec.state import StateStore
from mlspec.state.model import ResourceState, now


def _entries() -> dict[str, Entry]:
    try:
        with state_store() as store:
            return registry.read(store.note(registry.NOTE))
    except StateMissingError:
        return {}


def _address(entries: dict[str, Entry], address: str) -> str:
    if "/" not in address:
        address = f"Model/{address}"
    if address not in entries:
        from mlspec.spec.suggest import did_you_mean

        hint = did_you_mean(address, list(entries))
        raise RegistryError(f"{address} has no registered versions"
                            + (f"; {hint}" if hint else " (apply it first: `mlspec apply`)"))
    return address


def run_list(fmt: str) -> int:
    entries = _entries()
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
    entries = _entries()
    address = _address(entries, address)
    entry = entries[address]
    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", "address": address, **entry.to_json()}, indent=2))
        return EXIT_OK
    click.echo(style(address, bold=True))
    for record in reversed(entry.versions):
        number = record["version"]
        aliases = entry.aliases_of(number)
        verdict = "passed" if record.get("gates_passed") else style("failed its gates", fg="red")
        head = f"  v{number}" + (f" [{', '.join(aliases)}]" if aliases else "")
        click.echo(f"{style(head, bold=True)}  {record.get('created_at', '')[:19]}  {verdict}  "
                   f"digest {str(record.get('digest', ''))[:12]}  {_metrics(record.get('metrics') or {})}")
        for gate in record.get("gates") or ():
            if not gate.get("passed"):
                click.echo(f"      gate `{gate['gate']}`: {gate['why']}")
        facts = [f"{k} {record[k]}" for k in ("device", "commit") if record.get(k)]
        if record.get("seconds") is not None:
            facts.append(f"{float(record['seconds']):.1f}s")
        if facts:
            click.echo(style(f"      {'  '.join(facts)}", dim=True))
    if entry.history:
        click.echo("  history:")
        for move in entry.history[-10:]:
            was = f"v{move['from']}" if move.get("from") else "none"
            click.echo(f"    {move['at'][:19]}  {move['alias']}: {was} -> v{move['to']} ({move['how']})")
    return EXIT_OK


def run_promote(address: str, version: int, alias: str, lock_timeout: float, fmt: str) -> int:
    import re

    if not re.fullmatch(r"[a-z][a-z0-9-]*", alias):
        raise RegistryError(f"--alias `{alias}`: an alias is lowercase letters, digits and -, starting with a letter")
    return _move(address, lock_timeout, fmt, lambda entry: (alias, version, "promote"))


def run_rollback(address: str, lock_timeout: float, fmt: str) -> int:
    return _move(address, lock_timeout, fmt, lambda entry: (CHAMPION, entry.previous_champion(), "rollback"))


def _move(address: str, lock_timeout: float, fmt: str, choose: Callable[[Entry], tuple[str, int, str]]) -> int:
    with state_store() as store, store.lock("registry", timeout=lock_timeout):
        entries = registry.read(store.note(registry.NOTE))
        address = _address(entries, address)
        entry = entries[address]
        alias, number, how = choose(entry)
        before = entry.aliases.get(alias)
        entry.point(alias, number, how)
        serial = _rewrite_outputs(store, address, entry, registry.write(entries))
        audit_edit(store, f"registry.{how}", {"address": address, "alias": alias, "from": before, "to": number,
                                          "serial": serial})
    result: dict[str, Any] = {"address": address, "alias": alias, "from": before, "to": number}
    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", **result}, indent=2))
    else:
        was = f"v{before}" if before is not None else "none"
        click.echo(f"{address}: {alias} {was} -> v{number}")
        if alias == CHAMPION and before != number:
            click.echo("The Services that serve it follow on the next `mlspec apply` (see `mlspec plan`).")
    return EXIT_OK


def _rewrite_outputs(store: StateStore, address: str, entry: Entry, note: dict[str, Any]) -> int | None:
    """The Model's outputs name its champion (what the planner and dependents build on), written in
    one transaction with the registry: a kill leaves both moved or neither."""
    current = store.get(address)
    if current is None:  # removed from state (`state rm`): the registry alone moves
        store.set_note(registry.NOTE, note)
        return None
    outputs = {**current.outputs, **registry.state_outputs(entry)}
    if entry.published() == current.fingerprint:
        outputs.pop(registry.HELD, None)  # its latest run is what dependents use now
    changed = ResourceState(current.address, current.fingerprint, current.spec, outputs, current.status,
                            current.created_at, now(), current.commit)
    return store.commit(changed, notes={registry.NOTE: note})


def _metrics(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k} {float(v):.4f}" for k, v in sorted(metrics.items()))
