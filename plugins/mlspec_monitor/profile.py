"""The reference a Monitor compares with, and the current window, each as a `Sample` per feature.

The reference is built once, when the Monitor is applied, from the Dataset's stored split (parquet in
the artifact store) and kept as a small JSON artifact: per numeric feature a sorted sample of at most
`KEPT` values (all of them for a reference of that size, so the tests are exact there), per
categorical one its value counts, per text one a sample of lengths and its out-of-vocabulary counts
against the Model's tokenizer. No raw reference data is needed at monitoring time.

The current window streams: a numeric feature keeps a seeded reservoir of at most `KEPT` values, a
categorical one its counts, a text one its lengths' reservoir and OOV counts. Memory is bounded by
`KEPT` and the features' cardinality, whatever the number of rows.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlspec.sdk.sampling import Reservoir

KEPT = 10_000
MAX_CATEGORIES = 1_000
WORD = re.compile(r"[A-Za-z][A-Za-z']+")


@dataclass
class Sample:
    """What is kept of one feature, reference or current."""

    kind: str  # numeric | categorical | text
    rows: int = 0  # values seen (not null)
    nulls: int = 0
    values: np.ndarray = field(default_factory=lambda: np.zeros(0))  # numeric: the reservoir; text: lengths
    counts: Counter[Any] = field(default_factory=Counter)  # categorical: value -> count
    words: int = 0  # text: words seen ...
    unknown: int = 0  # ... of which not in the vocabulary

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "rows": self.rows, "nulls": self.nulls}
        if self.kind in ("numeric", "text"):
            out["values"] = np.sort(self.values).tolist()
        if self.kind == "categorical":
            out["counts"] = {str(k): v for k, v in self.counts.most_common(MAX_CATEGORIES)}
        if self.kind == "text":
            out |= {"words": self.words, "unknown": self.unknown}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Sample:
        return cls(str(data["kind"]), int(data["rows"]), int(data.get("nulls", 0)),
                   np.asarray(data.get("values") or [], dtype=np.float64), Counter(data.get("counts") or {}),
                   int(data.get("words", 0)), int(data.get("unknown", 0)))


class Accumulator:
    """Batches of one feature's values in; a bounded Sample out (a seeded reservoir, Algorithm R)."""

    def __init__(self, kind: str, vocabulary: frozenset[str] | None = None, seed: int = 0) -> None:
        self.sample = Sample(kind)
        self.vocabulary = vocabulary
        self.rng = np.random.default_rng(seed)
        self.kept = Reservoir(KEPT, self.rng)

    def add(self, values: list[Any]) -> None:
        kept = [v for v in values if v is not None and v == v]  # None and NaN are nulls
        self.sample.nulls += len(values) - len(kept)
        if not kept:
            return
        kind = self.sample.kind
        if kind == "categorical":
            self.sample.counts.update(str(v) for v in kept)
            self.sample.rows += len(kept)
            return
        if kind == "text":
            texts = [str(v) for v in kept]
            if self.vocabulary is not None:
                for text in texts:
                    words = WORD.findall(text.lower())
                    self.sample.words += len(words)
                    self.sample.unknown += sum(1 for w in words if w not in self.vocabulary)
            numbers = np.fromiter((len(t) for t in texts), dtype=np.float64, count=len(texts))
        else:  # a number logged as text, a list, a boolean: not a value of a numeric feature, a null
            numbers = np.asarray([float(v) for v in kept if isinstance(v, (int, float)) and not isinstance(v, bool)
                                  and math.isfinite(v)], dtype=np.float64)
            self.sample.nulls += len(kept) - len(numbers)
        self.sample.rows += len(numbers)
        self._reservoir(numbers)

    def add_array(self, numbers: np.ndarray, nulls: int = 0) -> None:
        """The fast path for a numeric column already in numpy (no per-value Python)."""
        self.sample.nulls += nulls
        self.sample.rows += len(numbers)
        self._reservoir(np.asarray(numbers, dtype=np.float64))

    def _reservoir(self, numbers: np.ndarray) -> None:
        self.kept.add(numbers)

    def finish(self) -> Sample:
        s = self.sample
        s.values = self.kept.sample().copy() if s.kind != "categorical" else np.zeros(0)
        return s


def kind_of(arrow_type: str, values: Iterable[Any] = ()) -> str:
    """numeric for numbers, text for strings that read as prose (long, or mostly distinct), else
    categorical (strings with few values, booleans)."""
    if any(word in arrow_type for word in ("int", "float", "double", "decimal")) and "bool" not in arrow_type:
        return "numeric"
    seen = [str(v) for v in values if v is not None]
    if seen and (sum(len(v) for v in seen) / len(seen) > 24 or len(set(seen)) > max(50, len(seen) // 2)):
        return "text"
    return "categorical"


def vocabulary_of(tokenizer_json: Mapping[str, Any]) -> frozenset[str]:
    """The whole words a tokenizer knows (WordPiece's `##` pieces and special tokens left out)."""
    vocab = (tokenizer_json.get("model") or {}).get("vocab") or {}
    words = vocab.keys() if isinstance(vocab, Mapping) else (w for w, *_ in vocab)
    return frozenset(w.lower() for w in words if not w.startswith(("##", "[", "<")))
