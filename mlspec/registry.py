"""The model registry: the versions each Model address has produced, and the aliases that point at them.

Kept in state (one note, written under the state lock), so it travels with the state and needs no
server. Like MLflow's registry in shape (versions, aliases such as `champion` and `candidate`), and
like Terraform's state in discipline: the apply that trained a version records it, and every hand
edit (`mlspec promote`, `mlspec rollback`) is audited.

What dependents build on is the champion. A resource that registers versions *publishes* its
champion's fingerprint (outputs["published"]): the planner hands that to its dependents instead of
the resource's own fingerprint, so a candidate that failed its gates leaves every Service where it
was, and a rollback or promote moves them on the next apply.

This module is pure: it turns one registry document into the next. The caller reads and writes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlspec.errors import MlspecError
from mlspec.state.model import now

NOTE = "registry"
CHAMPION = "champion"
CANDIDATE = "candidate"
# Reserved output keys. A plugin returns REGISTER ({"record": {...}, "aliases": [...]}) to register
# the version it made; HELD (a reason) to keep its dependents from taking it.
REGISTER = "register"
HELD = "held"
PUBLISHED = "published"


class RegistryError(MlspecError):
    """A registry command named a model, version or alias that does not exist."""


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


def read(note: Mapping[str, Any] | None) -> dict[str, Entry]:
    return {address: Entry.from_json(data) for address, data in (note or {}).items()}


def write(entries: Mapping[str, Entry]) -> dict[str, Any]:
    return {address: entry.to_json() for address, entry in sorted(entries.items())}


def registered(entries: dict[str, Entry], address: str, outputs: Mapping[str, Any], fingerprint: str,
               commit: str | None = None) -> dict[str, Any]:
    """Take a step's REGISTER request into the registry; return the outputs state keeps.

    The record gets the step's fingerprint and git commit; the aliases it asks for point at it; the outputs carry
    the version number, the champion (for Services) and what dependents build on (PUBLISHED).
    """
    request = outputs.get(REGISTER)
    if not isinstance(request, Mapping):
        return dict(outputs)
    entry = entries.setdefault(address, Entry())
    number = entry.add({**dict(request.get("record") or {}), "fingerprint": fingerprint, "commit": commit})
    aliases = [str(alias) for alias in request.get("aliases") or ()]
    for alias in aliases:
        entry.point(alias, number, "apply", str(outputs.get(HELD) or ""))
    kept = {k: v for k, v in outputs.items() if k != REGISTER}
    if entry.published() != fingerprint and not kept.get(HELD):
        # It passed, under another alias (`staging`): dependents keep the champion until a person promotes.
        kept[HELD] = (f"registered as version {number} ({', '.join(aliases) or 'no alias'}), not as the champion: "
                      f"`mlspec promote {address} {number}` to make it the one dependents use")
    return {**kept, **state_outputs(entry), "version": number}


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
