"""Prompts for applications: the approved version of a template, rendered.

    from mlspec.prompts import render

    rendered = render("review-triage", alias="production", key=user.id, review=text)
    call_model(rendered.text)
    log.info("prompt", extra={"prompt": rendered.address, "version": rendered.version})

What is rendered is the version the alias points at in state (the registry), never the work tree: a
template edited but not applied, or applied but failing its tests, does not reach an application.
Versions are read once and cached for `ttl_s` (5 s by default), so a promote or rollback reaches
running applications within seconds, and a warm call costs a dictionary lookup, the binding of its
values to the declared variables (types checked), and Jinja2's render of a compiled template in its
sandbox. With an A/B split on the alias, `key` decides the version: a hash of it, the same every
time, so one user sees one version.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from mlspec.errors import MlspecError, PromptError
from mlspec.spec.jinja import TYPES, TemplateError, compiled

__all__ = ["PromptError", "Rendered", "clear_cache", "render"]

TTL_S = 5.0


class Rendered(NamedTuple):
    """A rendered prompt: its text, and which version it is, for the application's log."""

    text: str
    address: str  # Prompt/review-triage
    version: int  # the registry's number: what to log beside the model's answer
    digest: str  # the version's content digest (template, variables, settings)
    alias: str
    settings: dict[str, Any]  # the model settings the version was tested with


@dataclass(frozen=True, slots=True)
class _Version:
    number: int
    digest: str
    template: Any  # jinja2.Template, compiled in the sandbox
    settings: dict[str, Any]
    types: dict[str, tuple[type, ...]]  # each variable's allowed types
    defaults: dict[str, Any]  # the values a render starts from: defaults, and None for optional ones
    required: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Alias:
    address: str
    alias: str
    versions: tuple[tuple[float, _Version], ...]  # cumulative share -> version (one entry without a split)
    expires: float


_CACHE: dict[tuple[str | Path | None, str, str], _Alias] = {}
_LOCK = threading.Lock()


def render(name: str, /, alias: str = "production", *, key: str | int | None = None, root: str | Path | None = None,
           ttl_s: float = TTL_S, **values: Any) -> Rendered:
    """The text of prompt `name` (or `Prompt/name`) at `alias`, with `values` bound to its variables.

    PromptError when the prompt has no such alias or the values do not fit its variables (all
    problems named at once); a version with a split needs no `key`, but then always gives the
    version that holds the larger share."""
    cache_key = (root, name, alias)
    found = _CACHE.get(cache_key)
    if found is None or found.expires < time.monotonic():
        found = _load(name, alias, root, ttl_s)
        with _LOCK:
            _CACHE[cache_key] = found
    version = found.versions[0][1] if len(found.versions) == 1 or key is None else _pick(found, key)
    bound = _bind(version, values, found.address)
    try:
        text = version.template.render(bound)
    except Exception as err:  # jinja2's errors are many classes (a sandbox refusal, a value of the wrong type)
        raise PromptError(f"{found.address} v{version.number} cannot be rendered: {type(err).__name__}: "
                          f"{err}") from None
    return Rendered(text, found.address, version.number, version.digest, alias, version.settings)


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()


def _bind(version: _Version, values: dict[str, Any], address: str) -> dict[str, Any]:
    types = version.types
    for name, value in values.items():  # the fast path: a few dict lookups and isinstance calls
        allowed = types.get(name)
        if allowed is None or not isinstance(value, allowed) or ((value is True or value is False) and \
                bool not in allowed):
            break
    else:
        if version.required.issubset(values):
            return {**version.defaults, **values}
    problems = [_unknown(n, version) if n not in types else f"`{n}` must be {_kind(types[n])}, not "
                f"{type(v).__name__}" for n, v in values.items()
                if n not in types or not isinstance(v, types[n]) or (isinstance(v, bool) and bool not in types[n])]
    problems += [f"`{n}` is required" for n in sorted(version.required - set(values))]
    raise PromptError(f"{address} v{version.number}: " + "; ".join(problems))


def _unknown(name: str, version: _Version) -> str:
    from mlspec.spec.suggest import did_you_mean

    hint = did_you_mean(name, sorted(version.types))
    return f"`{name}` is not one of its variables" + (f" ({hint})" if hint else "")


def _kind(allowed: tuple[type, ...]) -> str:
    return next((k for k, v in TYPES.items() if v == allowed), "/".join(t.__name__ for t in allowed))


def _pick(found: _Alias, key: str | int) -> _Version:
    point = int.from_bytes(hashlib.blake2b(f"{found.address}\0{key}".encode(), digest_size=8).digest()) / 2**64
    for upto, version in found.versions:
        if point < upto:
            return version
    return found.versions[-1][1]


def _load(name: str, alias: str, root: str | Path | None, ttl_s: float) -> _Alias:
    from mlspec.errors import StateMissingError
    from mlspec.project import load_project
    from mlspec.state import open_state

    address = name if "/" in name else f"Prompt/{name}"
    try:
        store = open_state(load_project(Path(root) if root is not None else None), create=False)
    except StateMissingError:
        raise PromptError(f"{address}: nothing was applied in this project yet (`mlspec apply`)") from None
    try:
        entry = store.registry().get(address)
        resource = store.get(address)
    finally:
        store.close()
    if entry is None or not entry.versions:
        raise PromptError(f"{address} has no versions: apply it first (`mlspec apply`), or check the name")
    number = entry.aliases.get(alias)
    if number is None:
        known = ", ".join(sorted(entry.aliases)) or "none"
        raise PromptError(f"{address} has no alias `{alias}` (its aliases: {known})")
    try:
        main = _version(entry.version(number))
        split = (resource.outputs.get("split") if resource is not None else None) or None
        if split and split.get("alias") == alias and resource is not None and resource.outputs.get("version") == number:
            share = float(split["share"])
            held = _version(entry.version(int(split["from"])))
            versions: tuple[tuple[float, _Version], ...] = ((1 - share, held), (1.0, main))
            if share > 0.5:
                versions = ((share, main), (1.0, held))
        else:
            versions = ((1.0, main),)
    except (TemplateError, KeyError, ValueError, MlspecError) as err:
        raise PromptError(f"{address} `{alias}` (v{number}) cannot be read from state: {err}") from None
    return _Alias(address, alias, versions, time.monotonic() + ttl_s)


def _version(record: dict[str, Any]) -> _Version:
    declared = record.get("variables") or {}
    types = {name: TYPES[str(spec.get("type", "string"))] for name, spec in declared.items()}
    defaults = {name: spec.get("default") for name, spec in declared.items()
                if spec.get("default") is not None or not spec.get("required", True)}
    required = frozenset(name for name, spec in declared.items()
                         if spec.get("required", True) and spec.get("default") is None)
    return _Version(int(record["version"]), str(record.get("digest", "")), compiled(str(record["template"])),
                    dict(record.get("settings") or {}), types, defaults, required)
