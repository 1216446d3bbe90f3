"""Dataset: versioned data with a schema, quality checks, deterministic splits and PII handling."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import ClassVar, Literal

from pydantic import Field

from mlspec.spec.kinds.base import Envelope, EnvStr, Issue, SpecBase, Strict

ColumnType = Literal["string", "int", "float", "bool", "category", "datetime"]
Scalar = str | int | float | bool


class Source(Strict):
    path: str | list[str] = Field(description="file, directory or glob, relative to the spec repo")
    format: Literal["csv", "jsonl", "parquet"]
    encoding: str = "utf-8"
    delimiter: str | None = Field(None, description="csv only; default ','")


class Range(Strict):
    min: float | None = None
    max: float | None = None

    def issues(self) -> Iterator[Issue]:
        if self.min is not None and self.max is not None and self.min > self.max:
            yield Issue(("min",), f"min {self.min} is greater than max {self.max}", expected="min <= max")


class Column(Strict):
    type: ColumnType
    nullable: bool = True
    range: Range | None = None
    allowed: list[Scalar] | None = Field(None, description="the only values the column may hold")
    unique: bool = False
    description: str | None = None


class Schema(Strict):
    columns: dict[str, Column] = Field(min_length=1)
    strict: bool = Field(False, description="fail when the data has columns the schema does not declare")


class Checks(Strict):
    min_rows: int | None = Field(None, ge=0)
    max_null_fraction: float | dict[str, float] | None = Field(
        None, description="a fraction for every column, or per column"
    )
    max_duplicate_fraction: float | None = Field(None, ge=0, le=1)

    def issues(self) -> Iterator[Issue]:
        fractions = self.max_null_fraction
        items = fractions.items() if isinstance(fractions, dict) else [(None, fractions)]
        for column, value in items:
            if value is not None and not 0 <= value <= 1:
                loc = ("max_null_fraction",) if column is None else ("max_null_fraction", column)
                yield Issue(loc, f"{value} is not a fraction", expected="a number from 0 to 1")


class Splits(Strict):
    ratios: dict[str, float] = Field(min_length=1, description="split name -> share of rows; shares sum to 1")
    seed: int = 0
    stratify_by: str | None = Field(None, description="keep this column's class balance in every split")

    def issues(self) -> Iterator[Issue]:
        for name, share in self.ratios.items():
            if not 0 < share <= 1:
                yield Issue(("ratios", name), f"split share {share} is not in (0, 1]", expected="0 < share <= 1")
        total = sum(self.ratios.values())
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            yield Issue(
                ("ratios",), f"split ratios sum to {total:g}, not 1", expected="shares that sum to 1",
                hint=f"scale them, e.g. divide each by {total:g}",
            )


class Pii(Strict):
    columns: dict[str, Literal["drop", "hash"]] = Field(min_length=1)
    salt: EnvStr | None = Field(None, description="salt for `hash`; use ${env:NAME}, it is sensitive")


class DatasetSpec(SpecBase):
    source: Source
    schema_: Schema | None = Field(None, alias="schema")
    checks: Checks | None = None
    splits: Splits | None = None
    pii: Pii | None = None
    profile: bool = Field(True, description="compute per-column statistics for drift monitoring")

    def facts(self) -> dict[str, list[str]]:
        facts: dict[str, list[str]] = {}
        if self.splits:
            facts["splits"] = list(self.splits.ratios)
        if self.schema_:
            facts["columns"] = list(self.schema_.columns)
        if self.pii:
            facts["pii"] = list(self.pii.columns)  # dropped or hashed: no model may learn from either
        return facts

    def issues(self) -> Iterator[Issue]:
        columns = self.schema_.columns if self.schema_ else None
        if columns is None:
            return
        known = sorted(columns)
        if self.splits and self.splits.stratify_by and self.splits.stratify_by not in columns:
            yield _unknown_column(("splits", "stratify_by"), self.splits.stratify_by, known)
        if self.pii:
            for column in self.pii.columns:
                if column not in columns:
                    yield _unknown_column(("pii", "columns", column), column, known)
        if self.checks and isinstance(self.checks.max_null_fraction, dict):
            for column in self.checks.max_null_fraction:
                if column not in columns:
                    yield _unknown_column(("checks", "max_null_fraction", column), column, known)


def _unknown_column(loc: tuple[str, ...], column: str, known: list[str]) -> Issue:
    from mlspec.spec.suggest import did_you_mean

    return Issue(
        loc, f"column `{column}` is not in the schema", expected=f"one of {', '.join(known)}",
        hint=did_you_mean(column, known),
    )


class Dataset(Envelope):
    kind_name: ClassVar[str] = "Dataset"
    kind: Literal["Dataset"]
    spec: DatasetSpec
