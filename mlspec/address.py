"""`Address`: a resource's name, `Kind/name`, as a value rather than a string split by hand.

It is a `str` subclass, so an address is still a key of every mapping, a JSON value and a plan's
text, while `.kind` and `.name` replace the `split("/", 1)` that every caller used to write.
"""

from __future__ import annotations

from typing import Self


class Address(str):
    """`Model/sentiment`. Build with `Address.of(kind, name)` or `Address.parse(text)`."""

    __slots__ = ()

    @classmethod
    def of(cls, kind: str, name: str) -> Self:
        return cls(f"{kind}/{name}")

    @classmethod
    def parse(cls, text: str, *, default_kind: str | None = None) -> Self:
        """`Kind/name`, or a bare `name` with `default_kind` (a spec field that names one kind)."""
        if "/" in text:
            return cls(text)
        if default_kind is None:
            raise ValueError(f"`{text}` is not an address (expected Kind/name)")
        return cls.of(default_kind, text)

    @staticmethod
    def pair(text: str) -> tuple[str, str]:
        """(kind, name) of `Kind/name` without building an Address: for loops over every reference."""
        kind, _, name = text.partition("/")
        return kind, name

    @property
    def kind(self) -> str:
        return self.partition("/")[0]

    @property
    def name(self) -> str:
        return self.partition("/")[2]
