"""Durations as people write them on a command line: `30`, `5s`, `2m`, `1h30m`, `0.5s` (Terraform's
`-lock-timeout=5m`). A bare number is seconds."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse(text: str) -> float:
    """Seconds; ValueError with what was expected when `text` is not a duration."""
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        parts = list(_PART.finditer(value))
        if not parts or "".join(p.group(0) for p in parts) != value:
            raise ValueError(f"`{text}` is not a duration: expected seconds (30) or a number with units, "
                             "s, m, h or d (5s, 2m, 1h30m)") from None
        seconds = sum(float(p.group(1)) * _UNITS[p.group(2)] for p in parts)
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError(f"`{text}` is not a duration: expected zero or more seconds")
    return seconds
