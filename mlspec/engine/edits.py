"""Edits of state by hand, as library calls: `mlspec promote` and `mlspec rollback` (the registry) and
`mlspec state migrate` (the whole state, to another backend).

Any resource whose plugin registers versions has a registry (Models today, Prompts next). A move
takes the state lock, appends the alias move, rewrites the resource's outputs to name its new
champion (so the next plan moves what is built on it) in the same transaction, and is audited, as
every other hand edit of state is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlspec import registry
from mlspec.address import Address
from mlspec.engine.session import record_edit, writing_state
from mlspec.errors import MlspecError, RegistryError, SpecError, StateError, StateMissingError
from mlspec.registry import CHAMPION, Entry
from mlspec.state.model import ResourceState, now


@dataclass(frozen=True)
class AliasMove:
    address: str
    alias: str  # "serving" for a plugin's own rollback, whose versions are named (a bento tag), not numbered
    before: int | str | None
    to: int | str
    serial: int | None

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "alias": self.alias, "from": self.before, "to": self.to}


def entries(root: Path | None = None) -> dict[str, Entry]:
    """Every registered address's versions, aliases and history; empty before the first apply."""
    from mlspec.project import load_project

    try:
        with writing_state(load_project(root)) as store:
            return store.registry()
    except StateMissingError:
        return {}


def resolve(found: dict[str, Entry], text: str) -> str:
    """`Kind/name`, or a bare name that exactly one registered address has."""
    candidates = [text] if "/" in text else [a for a in found if Address(a).name == text]
    if len(candidates) == 1 and candidates[0] in found:
        return candidates[0]
    if len(candidates) > 1:
        raise RegistryError(f"`{text}` is ambiguous: {', '.join(sorted(candidates))}; name the kind too")
    from mlspec.spec.suggest import did_you_mean

    hint = did_you_mean(text, list(found))
    raise RegistryError(f"{text} has no registered versions"
                        + (f"; {hint}" if hint else " (apply it first: `mlspec apply`)"))


def promote(address: str, version: int, alias: str = CHAMPION, *, lock_timeout: float = 0.0,
            root: Path | None = None, force: bool = False, reason: str = "") -> AliasMove:
    """A version that failed its gates is promoted only with `force` and a `reason`, both recorded."""
    if not re.fullmatch(r"[a-z][a-z0-9-]*", alias):
        raise RegistryError(f"--alias `{alias}`: an alias is lowercase letters, digits and -, starting with a letter")
    if force and not reason.strip():
        raise RegistryError("--force needs --reason: why this version ships although its gates failed "
                            "(recorded in the alias history and the audit log)")

    def choose(entry: Entry) -> tuple[str, int, str]:
        record = entry.version(version)
        if record.get("gates_passed") is False and not force:
            failed = "; ".join(f"`{g['gate']}` ({g.get('why', 'failed')})" for g in record.get("gates") or ()
                               if not g.get("passed")) or "its gates"
            raise RegistryError(f"version {version} failed {failed}: promoting it needs --force and a --reason")
        return alias, version, "promote"

    return _move(address, lock_timeout, root, choose, reason.strip(), force)


def rollback(address: str, *, lock_timeout: float = 0.0, root: Path | None = None) -> AliasMove:
    """The previous champion of a resource that registers versions; for one whose plugin rolls back its
    live object itself (a Service: the bento that served before), that plugin's `rollback`."""
    rolled = _plugin_rollback(address, lock_timeout, root)
    if rolled is not None:
        return rolled
    return _move(address, lock_timeout, root, lambda entry: (CHAMPION, entry.previous_champion(), "rollback"))


def _plugin_rollback(text: str, lock_timeout: float, root: Path | None) -> AliasMove | None:
    """Under the lock: the plugin puts its previous version back live, and state records what serves now
    (one transaction), audited. None when the address's plugin has no `rollback`."""
    from mlspec.discovery import Registry
    from mlspec.spec.specset import load_specs

    try:
        address = str(Address.parse(text))
    except ValueError:
        return None
    try:
        specs = load_specs(root)
    except SpecError:  # a rollback is for emergencies: the registry's works whatever state the specs are in
        return None
    resource = specs.resources.get(address)
    registry_of = Registry(prefer=specs.project.setting("plugin_for"))
    if resource is None or not registry_of.has(resource.kind):
        return None
    act = getattr(registry_of.for_kind(resource.kind), "rollback", None)
    if not callable(act):
        return None
    with writing_state(specs.project) as store, store.lock("rollback", timeout=lock_timeout):
        current = store.get(address)
        if current is None:
            raise StateError(f"{address} is not in the state: apply it first")
        try:
            outputs = act(resource, dict(current.outputs), specs.project.root, lambda _line: None)
        except MlspecError as err:
            raise RegistryError(f"{address}: {err}") from None
        before, after = str(current.outputs.get("bento") or ""), str(outputs.get("bento") or "")
        changed = ResourceState(current.address, current.fingerprint, current.spec, outputs, current.status,
                                current.created_at, now(), current.commit)
        serial = store.commit(changed)
        record_edit(store, specs.project.root, "rollback", {"address": address, "from": before, "to": after,
                                                            "serial": serial})
    return AliasMove(address, "serving", before, after, serial)


def _move(text: str, lock_timeout: float, root: Path | None, choose: Callable[[Entry], tuple[str, int, str]],
          reason: str = "", forced: bool = False) -> AliasMove:
    from mlspec.project import load_project

    project = load_project(root)
    with writing_state(project) as store, store.lock("registry", timeout=lock_timeout):
        found = store.registry()
        address = resolve(found, text)
        entry = found[address]
        alias, number, how = choose(entry)
        before = entry.aliases.get(alias)
        versions, moves = len(entry.versions), len(entry.history)
        followers = [a for a, v in entry.aliases.items() if v == before and a != alias] if how == "rollback" else []
        entry.point(alias, number, how, reason)
        for follower in sorted(followers):  # `production` went where the champion went: it comes back with it
            entry.point(follower, number, how, reason)
        if forced and len(entry.history) > moves:
            entry.history[-1]["forced"] = True
        write = entry.since(address, versions, moves)
        current = store.get(address)
        serial = None
        if current is None:  # removed from state (`state rm`): the registry alone moves
            store.register(write)
        else:
            # The outputs name the champion (what the planner and dependents build on), written in one
            # transaction with the move: a kill leaves both moved or neither.
            outputs = {**current.outputs, **registry.state_outputs(entry)}
            if entry.published() == current.fingerprint:
                outputs.pop(registry.HELD, None)  # its latest run is what dependents use now
            changed = ResourceState(current.address, current.fingerprint, current.spec, outputs, current.status,
                                    current.created_at, now(), current.commit)
            serial = store.commit(changed, registry=write)
        record_edit(store, project.root, f"registry.{how}",
                    {"address": address, "alias": alias, "from": before, "to": number, "serial": serial,
                     **({"reason": reason} if reason else {}), **({"forced": True} if forced else {})})
    return AliasMove(address, alias, before, number, serial)


@dataclass(frozen=True)
class Migrated:
    destination: str
    resources: int
    registered: int
    audit: int
    lineage: str
    serial: int

    def to_json(self) -> dict[str, Any]:
        return {"destination": self.destination, "resources": self.resources, "registered": self.registered,
                "audit_entries": self.audit, "lineage": self.lineage, "serial": self.serial}


def migrate_state(to: str, *, key: str | None = None, lock_timeout: float = 0.0,
                  root: Path | None = None) -> Migrated:
    """Copy the project's state into another backend (`postgresql://…`, or a path for the local
    one), both locked, verified by comparing snapshots; the copy records the move in its audit chain.
    mlspec.yaml is left for the user to point at the new backend."""
    from mlspec.project import load_project
    from mlspec.state.snapshot import copy

    project = load_project(root)
    destination, shown = _destination(to, key or str(project.setting("state", "key") or project.root.name),
                                      project.root)
    try:
        with writing_state(project) as source:
            if source.meta().lineage == destination.meta().lineage:
                raise StateError(f"{shown} holds this very state already (lineage {source.meta().lineage[:12]}): "
                                 "nothing to migrate")
        with writing_state(project) as source, source.lock("state migrate", timeout=lock_timeout), \
                destination.lock("state migrate", timeout=lock_timeout):
            found = copy(source, destination)
            record_edit(destination, project.root, "state.migrated",
                        {"to": shown, "lineage": found.lineage, "serial": found.serial})
    finally:
        destination.close()
    return Migrated(shown, len(found.resources), len(found.registry), len(found.audit), found.lineage, found.serial)


def _destination(to: str, key: str, root: Path) -> tuple[Any, str]:
    import os

    from mlspec.state.base import resolve_url

    resolved = resolve_url(to, "--to")
    if resolved.startswith(("postgres://", "postgresql://")) or "host=" in resolved:
        from mlspec.state.postgres import PostgresStateStore

        return PostgresStateStore(resolved, key), f"postgres state `{key}`"
    from mlspec.state.local import LocalStateStore

    path = Path(resolved) if os.path.isabs(resolved) else root / resolved
    return LocalStateStore(path, audit=path.parent / "audit" / "log.jsonl"), str(path)
