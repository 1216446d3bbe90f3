from __future__ import annotations

import json

import click

from mlspec.engine.session import record_edit
from mlspec.engine.session import writing_state as state_store
from mlspec.errors import EXIT_OK, StateError, StateMissingError
from mlspec.project import load_project
from mlspec.state import StateStore


def _empty() -> StateStore:
    from mlspec.state.memory import MemoryStateStore

    return MemoryStateStore()


def run_list(fmt: str) -> int:
    try:
        with state_store() as store:
            meta, entries = store.meta(), store.list()
    except StateMissingError:
        meta, entries = _empty().meta(), []
        if fmt == "text":
            click.echo("no state yet: nothing has been applied", err=True)
    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", "lineage": meta.lineage, "serial": meta.serial,
                               "resources": [{"address": e.address, "status": e.status.value,
                                              "fingerprint": e.fingerprint, "updated_at": e.updated_at}
                                             for e in entries]}, indent=2))
        return EXIT_OK
    for entry in entries:
        marker = "" if entry.status == "applied" else f"  ({entry.status.value})"
        click.echo(f"{entry.address}{marker}")
    return EXIT_OK


def run_show(address: str, fmt: str) -> int:
    try:
        with state_store() as store:
            entry = store.get(address)
            known = [e.address for e in store.list()] if entry is None else []
    except StateMissingError:
        entry, known = None, []
    if entry is None:
        from mlspec.spec.suggest import did_you_mean

        hint = did_you_mean(address, known)
        raise StateError(f"`{address}` is not in the state" + (f"; {hint}" if hint else ""))
    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", **entry.to_json()}, indent=2))
        return EXIT_OK
    for key, value in entry.to_json().items():
        shown = json.dumps(value, indent=2) if isinstance(value, dict) else value
        click.echo(f"{key}: {shown}")
    return EXIT_OK


def run_rm(addresses: tuple[str, ...], lock_timeout: float) -> int:
    with state_store() as store, store.lock("state rm", timeout=lock_timeout):
        for address in addresses:
            serial = store.remove(address)
            click.echo(f"removed {address} (serial {serial}); the live object was not touched")
        audit_edit(store, "state.rm", {"addresses": list(addresses), "serial": serial})
    return EXIT_OK


def run_mv(source: str, destination: str, lock_timeout: float) -> int:
    from mlspec.address import Address

    if "/" not in destination or Address(source).kind != Address(destination).kind:
        raise StateError(f"cannot move {source} to {destination}: a move keeps the kind (its plugin owns what was "
                         f"made), as in {Address(source).kind}/{Address(destination).name or 'new-name'}")
    with state_store() as store, store.lock("state mv", timeout=lock_timeout):
        serial = store.move(source, destination)
        audit_edit(store, "state.mv", {"from": source, "to": destination, "serial": serial})
    click.echo(f"moved {source} to {destination} (serial {serial})")
    return EXIT_OK


def run_force_unlock(lock_id: str) -> int:
    with state_store() as store:
        info = store.force_unlock(lock_id)
        with store.lock("force-unlock"):
            audit_edit(store, "force-unlock", {"lock": info.id, "holder": info.describe()})
    click.echo(f"unlocked: the lock {info.describe()} is gone")
    return EXIT_OK


def audit_edit(store: StateStore, event: str, fields: dict[str, object]) -> None:
    record_edit(store, load_project().root, event, dict(fields))


def run_migrate(to: str, key: str | None, lock_timeout: float, fmt: str) -> int:
    from mlspec.engine.edits import migrate_state

    moved = migrate_state(to, key=key, lock_timeout=lock_timeout)
    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", **moved.to_json()}, indent=2))
        return EXIT_OK
    click.echo(f"copied {moved.resources} resource(s), {moved.registered} registry entr"
               f"{'y' if moved.registered == 1 else 'ies'} and {moved.audit} audit entries to {moved.destination} "
               f"(lineage {moved.lineage[:12]}, serial {moved.serial}), verified.")
    click.echo("Point mlspec.yaml's `state:` at it, then `mlspec plan` should say No changes.")
    return EXIT_OK


def run_pull(addresses: tuple[str, ...], fmt: str) -> int:
    from mlspec.engine.session import pull

    written = pull(addresses)
    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", "written": written}, indent=2))
        return EXIT_OK
    for address, found in written.items():
        click.echo(f"{address}: wrote {', '.join(found)}")
    if not written:
        click.echo("nothing to pull: every file applied resources wrote is here")
    return EXIT_OK
