"""The request and response schemas of a generated service, typed from the Model's features.

A text classifier takes `{"text": "..."}`; a tabular model one field per feature, numbers as numbers
and categories as strings (what the encoder fitted on the train split knows; anything else is its
"other" bucket, as in training). Extra fields are refused, so a typo is a 422 naming it, not a silently
ignored input. Used both inside the server (app.py) and when a Service is planned (its outputs carry
the schema as JSON Schema, for clients and the Prompt kind).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MAX_TEXT = 100_000  # characters in one text feature: beyond, the tokenizer truncates anyway


def features(manifest: Mapping[str, Any], encoder: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The request's fields from a Model's `mlspec-model.json` (and its tabular encoder, when it has one)."""
    names = list(manifest.get("features") or ())
    if manifest.get("task") == "text-classification":
        return [{"name": names[0], "type": "text"}]
    numeric = set((encoder or {}).get("numeric") or ())
    categories = (encoder or {}).get("categories") or {}
    return [{"name": n, "type": "number"} if n in numeric else
            {"name": n, "type": "category", "examples": [str(v) for v in (categories.get(n) or [])[:5]]}
            for n in names]


def request_model(fields: Sequence[Mapping[str, Any]]) -> Any:
    from pydantic import ConfigDict, Field, create_model

    made: dict[str, Any] = {}
    for field in fields:
        if field["type"] == "text":
            made[field["name"]] = (str, Field(max_length=MAX_TEXT))
        elif field["type"] == "number":
            made[field["name"]] = (float | None, Field(None, allow_inf_nan=False))
        else:
            made[field["name"]] = (str | None, Field(None, examples=field.get("examples") or None))
    return create_model("Request", __config__=ConfigDict(extra="forbid"), **made)


def prediction_model() -> Any:
    from pydantic import BaseModel

    class Prediction(BaseModel):
        label: str | None  # the class; None for a regression
        value: float  # the class's probability, or the regression's value
        scores: dict[str, float]  # every class's probability
        version: str  # the version that answered: "Model/sentiment v2" (for the request log and the client's)

    return Prediction


def json_schema(fields: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The request body's JSON Schema, for clients (and the Service's outputs)."""
    item = request_model(fields).model_json_schema()
    return {"type": "object", "required": ["inputs"], "additionalProperties": False,
            "properties": {"inputs": {"type": "array", "minItems": 1, "items": item}}}
