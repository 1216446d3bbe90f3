"""Turning a tabular split into model inputs: the encoding is fitted on the train split only, saved
beside the weights, and applied unchanged to validation, test and, later, serving traffic.

Numbers are standardised (missing values become the train mean, plus a missing-indicator column
when the train split had any); text, categories and booleans become one-hot columns over the train
split's most frequent values, with one bucket for everything else. Pure numpy and pyarrow: no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

TOP_CATEGORIES = 100


@dataclass
class Encoder:
    features: list[str]
    label: str
    task: str  # tabular-classification | tabular-regression
    numeric: dict[str, tuple[float, float, bool]] = field(default_factory=dict)  # mean, std, has-missing
    categories: dict[str, list[Any]] = field(default_factory=dict)  # column -> values, in column order
    classes: list[Any] = field(default_factory=list)

    @classmethod
    def fit(cls, table: pa.Table, features: Sequence[str] | None, label: str, task: str) -> Encoder:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        missing = [c for c in [*(features or ()), label] if c not in table.column_names]
        if missing:
            raise ValueError(f"column{'s' if len(missing) > 1 else ''} {', '.join(missing)} not in the data "
                             f"(columns: {', '.join(table.column_names)})")
        chosen = list(features) if features else [c for c in table.column_names if c != label]
        encoder = cls(chosen, label, task)
        for name in chosen:
            column = table.column(name)
            if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
                values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
                present = values[~np.isnan(values)]
                mean = float(present.mean()) if len(present) else 0.0
                std = float(present.std()) if len(present) else 1.0
                encoder.numeric[name] = (mean, std if std > 0 else 1.0, bool(column.null_count))
            else:
                counts = pc.value_counts(column.drop_null()).to_pylist()
                counts.sort(key=lambda row: (-row["counts"], str(row["values"])))
                encoder.categories[name] = [row["values"] for row in counts[:TOP_CATEGORIES]]
        target = table.column(label)
        if task == "tabular-classification":
            encoder.classes = sorted(set(target.drop_null().to_pylist()), key=str)
            if len(encoder.classes) < 2:
                raise ValueError(f"label `{label}` has {len(encoder.classes)} class in the train split; a "
                                 "classifier needs at least 2")
        return encoder

    @property
    def width(self) -> int:
        return sum(2 if has_missing else 1 for _, _, has_missing in self.numeric.values()) + sum(
            len(values) + 1 for values in self.categories.values())

    def transform(self, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """(inputs float32 [rows, width], targets: int64 class indices or float32 values)."""
        return self.inputs(table), self._targets(table)

    def inputs(self, table: pa.Table) -> np.ndarray:
        """The features alone, float32 [rows, width]: what serving has (no label)."""
        import numpy as np
        import pyarrow as pa

        rows = table.num_rows
        out = np.zeros((rows, self.width), dtype=np.float32)
        at = 0
        for name in self.features:
            column = table.column(name)
            if name in self.numeric:
                mean, std, has_missing = self.numeric[name]
                values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
                gone = np.isnan(values)
                out[:, at] = np.where(gone, 0.0, (values - mean) / std)
                at += 1
                if has_missing:
                    out[:, at] = gone
                    at += 1
            else:
                known = self.categories[name]
                index = {value: i for i, value in enumerate(known)}
                codes = np.array([index.get(v, len(known)) for v in column.to_pylist()], dtype=np.int64)
                out[np.arange(rows), at + codes] = 1.0
                at += len(known) + 1
        return out

    def _targets(self, table: pa.Table) -> np.ndarray:
        import numpy as np

        values = table.column(self.label).to_pylist()
        if self.task == "tabular-classification":
            index = {value: i for i, value in enumerate(self.classes)}
            unknown = sorted({str(v) for v in values if v not in index})
            if unknown:
                raise ValueError(f"label `{self.label}` holds values the train split did not: {', '.join(unknown[:5])}")
            return np.array([index[v] for v in values], dtype=np.int64)
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float32)

    def to_json(self) -> dict[str, Any]:
        return {"features": self.features, "label": self.label, "task": self.task,
                "numeric": {k: list(v) for k, v in self.numeric.items()}, "categories": self.categories,
                "classes": self.classes}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Encoder:
        return cls(list(data["features"]), data["label"], data["task"],
                   {k: (float(v[0]), float(v[1]), bool(v[2])) for k, v in data["numeric"].items()},
                   {k: list(v) for k, v in data["categories"].items()}, list(data["classes"]))
