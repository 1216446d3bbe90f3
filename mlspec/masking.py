"""Masking secrets: every value that any spec or mlspec.yaml names as `${env:NAME}` is a secret, and
never appears in anything mlspec writes or prints (state, plans, logs, the audit log, errors).

A secret can come back in another form than the one it went out in: a command prints it URL-encoded
inside a connection string, or base64-encoded in an Authorization header. Each secret is masked in
its plain, URL-encoded and base64 forms (standard and URL-safe alphabets, with and without padding).
Values shorter than MIN_LENGTH are not masked: masking every "1" or "on" would garble output and
protect nothing.

The engine builds one mask when it plans (`from_specs`) and makes it the process's (`use`), so the
CLI's last-resort error printing masks too (`mask`).
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

SHOWN = "(sensitive)"
MIN_LENGTH = 4
ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def names_in(value: Any) -> set[str]:
    """Every NAME a JSON-like value refers to as `${env:NAME}`, however deep."""
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "${env:" in item:
                found.update(ENV_REF.findall(item))
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return found


def forms(secret: str) -> set[str]:
    raw = secret.encode()
    encoded = {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    return {secret, quote(secret, safe=""), quote_plus(secret), *encoded, *(e.rstrip("=") for e in encoded)}


class Mask:
    """Replaces every form of every secret with SHOWN; a mask of nothing returns its input."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = tuple(dict.fromkeys(s for s in secrets if len(s) >= MIN_LENGTH))
        shown = sorted({f for s in self.secrets for f in forms(s) if len(f) >= MIN_LENGTH}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in shown)) if shown else None

    @classmethod
    def of_names(cls, names: Iterable[str], environ: Mapping[str, str] | None = None) -> Mask:
        env = os.environ if environ is None else environ
        return cls(env[name] for name in names if env.get(name))

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, value: str) -> str:
        return value if self._pattern is None else self._pattern.sub(SHOWN, value)

    def data(self, value: Any) -> Any:
        """A JSON-like value with every string masked (keys too)."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


_ACTIVE = Mask()


def use(mask: Mask) -> None:
    """Add `mask`'s secrets to the process's: what `mask()` applies (the CLI's error printing)."""
    global _ACTIVE
    _ACTIVE = Mask([*_ACTIVE.secrets, *mask.secrets])


def mask(text: str) -> str:
    return _ACTIVE.text(text)
