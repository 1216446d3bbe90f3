"""JSON Schemas generated from the kinds: for editors (yaml-language-server) and check-jsonschema.

One file per kind, one for any document (dispatching on `kind` with if/then, which editors follow
for completion), and one for mlspec.yaml. Files are committed; `mlspec schema --check` fails CI
when they drift from the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlspec.errors import SchemaStaleError

DRAFT = "https://json-schema.org/draft/2020-12/schema"
ANY_DOCUMENT = "spec.schema.json"
PROJECT = "project.schema.json"


def file_name(kind: str) -> str:
    return f"{kind.lower()}.schema.json"


def generate() -> dict[str, dict[str, Any]]:
    from pydantic.json_schema import models_json_schema

    from mlspec.config import ProjectConfig
    from mlspec.spec.kinds import API_VERSION, KINDS

    schemas: dict[str, dict[str, Any]] = {}
    for kind, cls in KINDS.items():
        schema = cls.model_json_schema(by_alias=True)
        schemas[file_name(kind)] = {"$schema": DRAFT, "$id": file_name(kind), **schema,
                                    "title": f"mlspec {kind}"}
    refs, defs = models_json_schema([(cls, "validation") for cls in KINDS.values()], by_alias=True)
    schemas[ANY_DOCUMENT] = {
        "$schema": DRAFT,
        "$id": ANY_DOCUMENT,
        "title": "mlspec document (any kind)",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {"apiVersion": {"const": API_VERSION}, "kind": {"enum": list(KINDS)}},
        "allOf": [
            {
                "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                "then": refs[(cls, "validation")],
            }
            for kind, cls in KINDS.items()
        ],
        **defs,
    }
    schemas[PROJECT] = {"$schema": DRAFT, "$id": PROJECT, **ProjectConfig.model_json_schema(by_alias=True),
                        "title": "mlspec project file (mlspec.yaml)"}
    return schemas


def dumps(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in generate().items():
        path = directory / name
        text = dumps(schema)
        if not path.exists() or path.read_text("utf-8") != text:
            path.write_text(text, "utf-8")
            written.append(path)
    return written


def stale(directory: Path) -> list[str]:
    """Names of schema files that are missing or differ from what the kinds generate."""
    out = []
    for name, schema in generate().items():
        path = directory / name
        if not path.is_file() or path.read_text("utf-8") != dumps(schema):
            out.append(name)
    return out


def check(directory: Path) -> None:
    names = stale(directory)
    if names:
        raise SchemaStaleError(
            f"schemas in {directory} are stale ({', '.join(names)}): run `mlspec schema --dir {directory}` "
            "and commit the result"
        )
