"""The project file, mlspec.yaml: where specs live, limits, state, artifacts and plugin settings.

Every field has a default, so a repo without mlspec.yaml works (`specs/**/*.yaml`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlspec.spec.vocabulary import DEFAULT_SPECS, PROJECT_FILE

__all__ = ["PROJECT_FILE", "ProjectConfig"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Limits(_Strict):
    max_file_bytes: int = Field(1_048_576, gt=0, description="larger spec files are rejected unread")


class StateConfig(_Strict):
    backend: Literal["local", "postgres"] = "local"
    path: str = ".mlspec/state.db"
    url: str | None = Field(None, description="postgres only: a libpq URI; write it as ${env:NAME}, it holds a "
                            "password")
    key: str | None = Field(None, description="postgres only: this state's name in the database (default: the "
                            "project directory's name); two spec repos sharing a database need different keys")


class ArtifactsConfig(_Strict):
    url: str = Field(".mlspec/artifacts", description="local path or fsspec URL (s3://, gs://)")


class PathsConfig(_Strict):
    outside: list[str] = Field(
        default_factory=list, description="absolute directories outside the repo that specs may read from (a "
        "shared model directory); every plan that reads one says so. Nothing is ever written or deleted there",
    )


class OwnerRule(_Strict):
    match: list[str] = Field(min_length=1, description="address globs: `Model/*`, `*/sentiment*`, `*`")
    teams: list[str] | None = Field(None, description="allowed metadata.owner values (checked by validate)")
    people: list[str] | None = Field(
        None, description="who may change them: commit author emails or CI actors, globs allowed (checked by plan "
        "--base and apply)",
    )


class LabelRule(_Strict):
    match: list[str] = Field(min_length=1, description="address globs")
    labels: list[str] = Field(min_length=1, description="label keys every matching resource must carry")


class ProtectRule(_Strict):
    labels: dict[str, str] = Field(min_length=1, description="resources carrying all these labels are protected")


class Policies(_Strict):
    """Small and declarative on purpose: globs over addresses, lists of names, one flag."""

    owners: list[OwnerRule] = Field(default_factory=list, description="CODEOWNERS-style: the last matching rule wins")
    required_labels: list[LabelRule] = Field(default_factory=list)
    gated_serving: bool = Field(False, description="a Service may only serve a Model whose gates passed")
    protect: list[ProtectRule] = Field(
        default_factory=list, description="no delete of matching resources without --allow-destroy"
    )


class ProjectConfig(_Strict):
    specs: list[str] = Field(default_factory=lambda: list(DEFAULT_SPECS), min_length=1,
                             description="globs, relative to the project root")
    exclude: list[str] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    state: StateConfig = Field(default_factory=StateConfig)
    artifacts: ArtifactsConfig = Field(default_factory=ArtifactsConfig)
    paths: PathsConfig = Field(default_factory=PathsConfig)
    prune: bool = Field(False, description="delete resources that are in state but no longer in specs")
    plugins: dict[str, dict[str, Any]] = Field(default_factory=dict, description="settings per plugin")
    policies: Policies = Field(default_factory=Policies)
    plugin_for: dict[str, str] = Field(
        default_factory=dict, description="kind -> the distribution whose plugin owns it, when several are installed"
    )
