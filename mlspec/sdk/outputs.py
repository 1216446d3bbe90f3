"""What each kind publishes to its dependents, as typed models: consumers read fields, not dict keys.

A plugin names its model in `Capabilities.publishes`; the engine validates a step's outputs against
it when the step returns (a plugin that breaks its own promise fails the step, not a dependent three
steps later). The declared fields are the hand-off; anything else a plugin returns stays free-form,
kept in state and shown by `mlspec state show`, but not promised to anyone.

The declared fields, less `VOLATILE` ones (timings, version numbers), are also what early cutoff
compares: a step whose published content came out identical to what state holds leaves the
dependents that were planned only because of it as they were.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from mlspec.digests import listing_digest


class ArtifactRef(BaseModel):
    """A file in the content-addressed artifact store, named by the SHA-256 of its bytes."""

    model_config = ConfigDict(extra="allow", frozen=True)

    uri: str
    digest: str
    size: int | None = None


class Split(ArtifactRef):
    rows: int = Field(ge=0)


class Published(BaseModel):
    """Base of every kind's published outputs."""

    model_config = ConfigDict(extra="allow", frozen=True)

    VOLATILE: ClassVar[frozenset[str]] = frozenset()

    def content(self) -> dict[str, Any]:
        """The declared fields that say what dependents receive (not how long it took)."""
        keep = set(type(self).model_fields) - self.VOLATILE
        return self.model_dump(mode="json", include=keep)

    def content_digest(self) -> str:
        from mlspec.plan.fingerprint import digest

        return digest(self.content())


class TaskOutputs(Published):
    """A Task: the digest of each path it writes (`tree:…` for a directory)."""

    outs: dict[str, str] = Field(default_factory=dict)


class DatasetOutputs(Published):
    """A Dataset: its version (the digest of its source bytes), its splits as parquet artifacts with
    row counts (PII already dropped or hashed), its columns after PII, and its profile."""

    version: str
    rows: int = Field(ge=0)
    columns: dict[str, str] = Field(default_factory=dict)
    splits: dict[str, Split] = Field(default_factory=dict)
    profile: ArtifactRef | None = None
    pii: dict[str, list[str]] = Field(default_factory=dict)

    def content(self) -> dict[str, Any]:
        # The splits are the data: their digests, not the source files' (an edited check that lets the
        # same rows through, or a re-encoded CSV with the same rows, hands on the same splits).
        data = super().content()
        data.pop("version", None)
        return data

    def split(self, name: str) -> Split | None:
        return self.splits.get(name)


class ModelOutputs(Published):
    """A Model (what its dependents receive: its champion's): the weights' digest, its files, the
    metrics on the test split, the registry version, whether its gates passed."""

    VOLATILE: ClassVar[frozenset[str]] = frozenset({"version"})

    digest: str
    files: dict[str, ArtifactRef] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    version: int | None = None
    gates_passed: bool | None = None

    def content(self) -> dict[str, Any]:
        # The weights (`digest`) and what they scored: the files beside them include a model card with
        # timings and the fingerprint, which differ on every run of the same weights.
        data = super().content()
        data.pop("files", None)
        return data


class OptimizationOutputs(Published):
    """An Optimization: the optimized artifact (an ONNX graph with its weights beside it, a TensorRT
    engine), what runs it, and the proof that it is the same model: what a Service loads and serves.

    `entry` is the file to load; `inputs` the named inputs (dtype, dims with `batch`/`sequence`
    dynamic); `source` the Model version it was made from, with that version's files (its tokenizer
    or encoder turn a request into inputs). Parity and benchmark figures vary with the machine and
    are not what dependents receive: early cutoff leaves them out.
    """

    VOLATILE: ClassVar[frozenset[str]] = frozenset({"parity", "benchmark", "seconds", "sizes"})

    digest: str
    format: str  # "onnx", "tensorrt"
    files: dict[str, ArtifactRef] = Field(default_factory=dict)
    source_digest: str = ""  # the weights it was made from
    precision: str = "fp32"
    runtime: str = ""  # "onnxruntime", "tensorrt"
    provider: str = ""  # "CPUExecutionProvider", "CUDAExecutionProvider", "TensorRT 10.3.0"
    entry: str = ""
    inputs: list[dict[str, Any]] = Field(default_factory=list)
    output: str = ""
    profiles: list[dict[str, Any]] = Field(default_factory=list)
    source: dict[str, Any] = Field(default_factory=dict)
    parity: dict[str, Any] = Field(default_factory=dict)
    benchmark: dict[str, Any] = Field(default_factory=dict)
    machine: dict[str, Any] | None = None  # a TensorRT engine's: TensorRT, GPU, compute capability, CUDA


class ServiceOutputs(Published):
    """A Service: where it answers, which bento it runs and the digest of what that serves; and, for a
    server mlspec supervises on this machine, how to find it again (`mlspec serve status|logs|stop|start`):
    its pid, log file, command and the environment it was started with (no secrets)."""

    VOLATILE: ClassVar[frozenset[str]] = frozenset({"pid", "log", "command", "env", "processes", "seconds"})

    url: str
    bento: str = ""
    digest: str = ""
    pid: int | None = None
    log: str = ""
    command: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    processes: list[dict[str, Any]] = Field(default_factory=list)  # each: role, pid, command, log (start order)
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")  # the request body's JSON Schema


class PromptOutputs(Published):
    """A Prompt: its version's digest (template, variables, settings), the template text, and what an
    application's `mlspec.prompts.render` needs besides the registry: the declared variables and the
    A/B split the apply set up (`{alias, from, share}`), if any."""

    VOLATILE: ClassVar[frozenset[str]] = frozenset({"version", "tests", "seconds"})

    digest: str
    version: int | None = None
    template: str = ""
    variables: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    split: dict[str, Any] | None = None


def files_digest(files: dict[str, ArtifactRef]) -> str:
    """One digest for a set of stored files, name and content: the identity of a model's weights."""
    return listing_digest((name, ref.digest) for name, ref in sorted(files.items()))
