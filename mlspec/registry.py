"""The model registry: the versions each Model address has produced, and the aliases that point at them.

Kept in state as two append-only lists per address, versions and alias moves (aliases are where the
moves leave them), written by the state store in the same transaction as the step that made the
version: the operations a shared database backend performs as inserts, never one document rewritten
whole. Like MLflow's registry in shape (versions, aliases such as `champion` and `candidate`), and
like Terraform's state in discipline: the apply that made a version records it, and every hand edit
(`mlspec promote`, `mlspec rollback`) is audited. Any kind whose plugin declares
`registers_versions` has one (Models today, Prompts next).

What dependents build on is the champion. A resource that registers versions *publishes* its
champion's fingerprint (outputs["published"]): the planner hands that to its dependents instead of
the resource's own fingerprint, so a candidate that failed its gates leaves every Service where it
was, and a rollback or promote moves them on the next apply.

This module is pure: it turns an entry and a request into the write the store performs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlspec.errors import RegistryError
from mlspec.state.model import now

NOTE = "registry"  # where state format 1 kept the whole registry, as one document
CHAMPION = "champion"
CANDIDATE = "candidate"
# Output keys the engine writes for a resource that registers versions (never a plugin's own).
HELD = "held"
PUBLISHED = "published"
ENGINE_KEYS = frozenset((HELD, PUBLISHED, "champion", "aliases", "version"))

__all__ = ["CANDIDATE", "CHAMPION", "Entry", "RegistryError", "RegistryWrite"]


@dataclass(frozen=True)
class RegistryWrite:
    """What one operation adds to an address's registry: new version records and alias moves, in
    order. Stores append them; nothing already recorded is rewritten."""

    address: str
    versions: tuple[dict[str, Any], ...] = ()
    moves: tuple[dict[str, Any], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.versions or self.moves)

    def applied_to(self, entry: Entry | None) -> Entry:
        out = Entry.from_json(entry.to_json() if entry is not None else None)
        out.versions.extend(self.versions)
        for move in self.moves:
            out.history.append(move)
            out.aliases[move["alias"]] = int(move["to"])
        return out


@dataclass
class Entry:
    """One address's versions (1, 2, ...), its aliases and the history of alias moves."""

    versions: list[dict[str, Any]] = field(default_factory=list)
    aliases: dict[str, int] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Entry:
        data = data or {}
        return cls(list(data.get("versions", [])), dict(data.get("aliases", {})), list(data.get("history", [])))

    def to_json(self) -> dict[str, Any]:
        return {"versions": self.versions, "aliases": self.aliases, "history": self.history}

    @classmethod
    def from_rows(cls, versions: list[dict[str, Any]], moves: list[dict[str, Any]]) -> Entry:
        """From a store's append-only lists: aliases are where the moves, replayed, leave them."""
        aliases: dict[str, int] = {}
        for move in moves:
            aliases[move["alias"]] = int(move["to"])
        return cls(versions, aliases, moves)

    def since(self, address: str, versions: int, moves: int) -> RegistryWrite:
        """What was added after an entry had `versions` versions and `moves` moves: the write to store."""
        return RegistryWrite(address, tuple(self.versions[versions:]), tuple(self.history[moves:]))

    def version(self, number: int) -> dict[str, Any]:
        for record in self.versions:
            if record["version"] == number:
                return record
        known = ", ".join(str(v["version"]) for v in self.versions) or "none"
        raise RegistryError(f"no version {number} (versions: {known})")

    def alias(self, name: str) -> dict[str, Any] | None:
        number = self.aliases.get(name)
        return self.version(number) if number is not None else None

    def aliases_of(self, number: int) -> list[str]:
        return sorted(a for a, v in self.aliases.items() if v == number)

    def add(self, record: Mapping[str, Any]) -> int:
        """Register a version. The same weights from the same fingerprint (an apply redone after a crash
        between the registry's write and the state's) are the same version; the same weights judged by
        other gates are a new one, with its own verdict."""
        for known in self.versions:
            if (known.get("digest"), known.get("fingerprint")) == (record.get("digest"), record.get("fingerprint")):
                return int(known["version"])
        number = max((v["version"] for v in self.versions), default=0) + 1
        self.versions.append({**record, "version": number, "created_at": record.get("created_at") or now()})
        return number

    def point(self, alias: str, number: int, how: str, why: str = "") -> None:
        self.version(number)
        if self.aliases.get(alias) == number:
            return
        self.history.append({"alias": alias, "from": self.aliases.get(alias), "to": number, "how": how,
                             "at": now(), **({"why": why} if why else {})})
        self.aliases[alias] = number

    def previous_champion(self) -> int:
        """The champion before the current one: what `mlspec rollback` restores. Champions form a
        stack: an apply or promote pushes one, a rollback pops one, so rolling back twice goes two
        champions back, not forth between the last two."""
        stack: list[int] = []
        for move in self.history:
            if move["alias"] != CHAMPION:
                continue
            if move["how"] == "rollback":
                if stack:
                    stack.pop()
            else:
                stack.append(int(move["to"]))
        if len(stack) < 2:
            raise RegistryError("there is no earlier champion to roll back to"
                                + ("" if CHAMPION in self.aliases else " (nothing was ever promoted)"))
        return stack[-2]

    def published(self) -> str:
        """The fingerprint dependents build on: the champion's, or "" while there is none."""
        champion = self.alias(CHAMPION)
        return str(champion.get("fingerprint", "")) if champion else ""

    def champion_summary(self) -> dict[str, Any] | None:
        """What a Service needs to serve the champion, kept in the Model's outputs."""
        champion = self.alias(CHAMPION)
        if champion is None:
            return None
        return {k: champion[k] for k in ("version", "digest", "files", "metrics", "fingerprint") if k in champion}


def from_rows(versions: Iterable[tuple[str, str]], moves: Iterable[tuple[str, str]]) -> dict[str, Entry]:
    """A backend's two append-only tables, (address, record JSON) and (address, move JSON), each in
    order, as the entries they add up to."""
    import json

    found: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    for address, record in versions:
        found.setdefault(address, ([], []))[0].append(json.loads(record))
    for address, move in moves:
        found.setdefault(address, ([], []))[1].append(json.loads(move))
    return {address: Entry.from_rows(*found[address]) for address in sorted(found)}


def registered(entry: Entry | None, address: str, record: Mapping[str, Any], aliases: tuple[str, ...],
               outputs: Mapping[str, Any], fingerprint: str, held: str | None,
               commit: str | None = None) -> tuple[RegistryWrite, dict[str, Any]]:
    """Take a step's version into the registry: the write to store, and the outputs state keeps.

    The record gets the step's fingerprint and git commit; the aliases it asks for point at it; the
    outputs carry the version number, the champion and what dependents build on (PUBLISHED), and
    HELD when dependents must not take it.
    """
    current = Entry.from_json(entry.to_json() if entry is not None else None)
    versions, moves = len(current.versions), len(current.history)
    number = current.add({**dict(record), "fingerprint": fingerprint, "commit": commit})
    for alias in aliases:
        current.point(alias, number, "apply", held or "")
    kept = {k: v for k, v in outputs.items() if k not in ENGINE_KEYS}
    if held:
        kept[HELD] = held
    elif current.published() != fingerprint:
        # It passed, under another alias (`staging`): dependents keep the champion until a person promotes.
        kept[HELD] = (f"registered as version {number} ({', '.join(aliases) or 'no alias'}), not as the champion: "
                      f"`mlspec promote {address} {number}` to make it the one dependents use")
    return current.since(address, versions, moves), {**kept, **state_outputs(current), "version": number}


def state_outputs(entry: Entry) -> dict[str, Any]:
    """The registry's part of a resource's outputs: its champion and what its dependents build on."""
    return {"champion": entry.champion_summary(), PUBLISHED: entry.published(),
            "aliases": dict(sorted(entry.aliases.items()))}


def view(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """What a dependent receives of a resource that registers versions: its champion's files, digest,
    metrics and version, whatever its latest run was (a held candidate, a staging version)."""
    champion = outputs.get("champion")
    if not isinstance(champion, Mapping):
        return dict(outputs)
    return {**{k: v for k, v in outputs.items() if k != HELD}, **champion, "gates_passed": True}


def servable(outputs: Mapping[str, Any]) -> bool:
    """May a Service serve this Model? When it has a champion: one that passed its gates, or that a
    person promoted by hand (audited)."""
    if "champion" in outputs:
        return outputs["champion"] is not None
    return outputs.get("gates_passed") is not False
