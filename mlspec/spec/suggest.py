"""Did-you-mean: the closest known name to a misspelt one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str]) -> str | None:
    options = list(candidates)
    lowered = {c.lower(): c for c in options}
    if word.lower() in lowered:  # `model` -> `Model`, `Learning_Rate` -> `learning_rate`
        return lowered[word.lower()]
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return match[0] if match else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    best = closest(word, candidates)
    return f"did you mean `{best}`?" if best is not None and best != word else None
