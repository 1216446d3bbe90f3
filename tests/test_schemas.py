"""The JSON Schemas give editors and check-jsonschema users the verdict mlspec gives.

The schemas are generated from the pydantic kinds and committed under schemas/. These tests check
that the committed files are current, that every spec mlspec accepts (the bundled example repo, the
test fixtures, what `mlspec init` writes) is valid under them, and that documents broken at the
schema level (unknown field, wrong type, bad enum, bad name, missing apiVersion, ...) are rejected by
both. Semantic rules (split ratios that sum to 1) and links between files are mlspec's alone and
are not expected of a schema.

YAML is read the way check-jsonschema reads it: ruamel.yaml's safe loader with timestamps kept as
strings (JSON has no dates).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML, SafeConstructor

from mlspec import schemas
from mlspec.spec.kinds import KINDS
from mlspec.spec.summary import summarize

jsonschema = pytest.importorskip("jsonschema")

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "schemas"
FIXTURES_VALID = Path(__file__).resolve().parent / "fixtures" / "valid"


def _yaml() -> YAML:
    yaml = YAML(typ="safe")

    class Constructor(SafeConstructor):  # a subclass, so the change does not leak into ruamel globally
        pass

    Constructor.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)
    yaml.Constructor = Constructor
    return yaml


YAML_LOADER = _yaml()


def load_documents(text: str) -> list[Any]:
    return [doc for doc in YAML_LOADER.load_all(text) if doc is not None]


@pytest.fixture(scope="module")
def schema_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed schemas; generated afresh when the repo has none yet."""
    if COMMITTED.is_dir():
        return COMMITTED
    directory = tmp_path_factory.mktemp("schemas")
    schemas.write(directory)
    return directory


def validator(schema_dir: Path, name: str) -> Any:
    schema = json.loads((schema_dir / name).read_text("utf-8"))
    return jsonschema.Draft202012Validator(schema)


def schema_errors(schema_dir: Path, document: Any) -> dict[str, list[str]]:
    """Errors per schema file: the any-kind schema and, when `kind` is known, the kind's own."""
    names = [schemas.ANY_DOCUMENT]
    if isinstance(document, dict) and document.get("kind") in KINDS:
        names.append(schemas.file_name(document["kind"]))
    return {name: [e.message for e in validator(schema_dir, name).iter_errors(document)] for name in names}


def mlspec_errors(text: str, rel: str = "specs/doc.yaml") -> list[str]:
    """mlspec's verdict on one file (syntax, envelope, schema, semantic rules; links are checked apart)."""
    return [f"{d.code} {d.message}" for d in summarize(text.encode(), rel).diagnostics if d.is_error]


# --------------------------------------------------------------------------------------------------
# The committed files


def test_committed_schemas_are_current() -> None:
    if not COMMITTED.is_dir():
        pytest.skip(
            f"{COMMITTED} does not exist yet: run `mlspec schema` and commit it (checked in tmp instead)"
        )
    assert schemas.stale(COMMITTED) == [], "run `mlspec schema` and commit schemas/"


def test_generated_schemas_round_trip(tmp_path: Path) -> None:
    written = schemas.write(tmp_path)
    assert sorted(p.name for p in written) == sorted(schemas.generate())
    assert schemas.stale(tmp_path) == []
    assert schemas.write(tmp_path) == []  # a second run changes nothing


def test_every_schema_is_a_valid_draft_2020_12_schema(schema_dir: Path) -> None:
    names = sorted(schemas.generate())
    assert {schemas.ANY_DOCUMENT, schemas.PROJECT} <= set(names)
    assert {schemas.file_name(k) for k in KINDS} <= set(names)
    for name in names:
        schema = json.loads((schema_dir / name).read_text("utf-8"))
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", name
        jsonschema.Draft202012Validator.check_schema(schema)


# --------------------------------------------------------------------------------------------------
# Valid specs are valid under the schemas and for mlspec


def _init_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlspec.scaffold import init

    root = tmp_path_factory.mktemp("init") / "repo"
    init(root)
    return root


def valid_spec_files(init_root: Path) -> Iterator[tuple[str, Path]]:
    for base, label in (
        (REPO / "specs", "repo"),
        (FIXTURES_VALID, "fixtures"),
        (init_root / "specs", "init"),
    ):
        if base.is_dir():
            for path in sorted(base.rglob("*")):
                if path.suffix in (".yaml", ".yml") and path.is_file():
                    yield f"{label}:{path.relative_to(base).as_posix()}", path


@pytest.fixture(scope="module")
def init_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _init_project(tmp_path_factory)


def test_there_are_valid_specs_to_check(init_root: Path) -> None:
    labels = [label for label, _ in valid_spec_files(init_root)]
    assert any(label.startswith("init:") for label in labels)
    if (REPO / "specs").is_dir():
        assert any(label.startswith("repo:") for label in labels)


def test_valid_specs_pass_both(init_root: Path, schema_dir: Path) -> None:
    checked = 0
    failures: list[str] = []
    for label, path in valid_spec_files(init_root):
        text = path.read_text("utf-8")
        problems = mlspec_errors(text, path.name)
        if problems:
            failures.append(f"{label}: mlspec: {problems}")
        for i, document in enumerate(load_documents(text)):
            checked += 1
            for name, errors in schema_errors(schema_dir, document).items():
                if errors:
                    failures.append(f"{label} (document {i}): {name}: {errors[:3]}")
    assert checked > 0
    assert failures == []


def test_whole_spec_sets_validate(init_root: Path) -> None:
    """The example repo and the scaffold also link (references, cycles) without an error."""
    from mlspec.validation import validate

    roots = [init_root] + ([REPO] if (REPO / "specs").is_dir() else [])
    for root in roots:
        report = validate(root, use_cache=False)
        assert [f"{d.file}:{d.line}: {d.code} {d.message}" for d in report.diagnostics] == [], root


def test_project_files_pass_the_project_schema(init_root: Path, schema_dir: Path) -> None:
    files = [init_root / "mlspec.yaml"] + ([REPO / "mlspec.yaml"] if (REPO / "mlspec.yaml").is_file() else [])
    for path in files:
        (document,) = load_documents(path.read_text("utf-8"))
        errors = [e.message for e in validator(schema_dir, schemas.PROJECT).iter_errors(document)]
        assert errors == [], path
    bad = {"specs": "specs/*.yaml", "limits": {"max_file_bytes": 0}, "colour": "blue"}
    assert len(list(validator(schema_dir, schemas.PROJECT).iter_errors(bad))) == 3


def test_editor_modelines_point_at_existing_schemas(init_root: Path) -> None:
    """`# yaml-language-server: $schema=...` in the scaffold and the example repo resolves to a file."""
    roots = [init_root] + ([REPO] if (REPO / "specs").is_dir() else [])
    seen = 0
    for root in roots:
        for path in [root / "mlspec.yaml", *sorted((root / "specs").rglob("*.yaml"))]:
            if not path.is_file():
                continue
            for line in path.read_text("utf-8").splitlines():
                if line.startswith("# yaml-language-server: $schema="):
                    seen += 1
                    target = (path.parent / line.split("=", 1)[1].strip()).resolve()
                    assert target.is_file(), f"{path}: {line}"
    assert seen > 0


# --------------------------------------------------------------------------------------------------
# Documents invalid at the schema level are rejected by both

MODEL = """\
apiVersion: mlspec/v1
kind: Model
metadata:
  name: sentiment
  labels: {tier: gold}
spec:
  task: text-classification
  dataset: reviews
  label: label
  architecture: {family: bert}
  hyperparameters: {learning_rate: 0.0005, epochs: 2}
  evaluation: {metrics: [f1], gates: ["f1 >= 0.7"]}
"""
SERVICE = """\
apiVersion: mlspec/v1
kind: Service
metadata: {name: api}
spec:
  model: sentiment
  port: 3000
  resources: {memory: 2Gi}
"""
DATASET = """\
apiVersion: mlspec/v1
kind: Dataset
metadata: {name: reviews}
spec:
  source: {path: data.csv, format: csv}
  schema: {columns: {text: {type: string}}}
"""
TASK = "apiVersion: mlspec/v1\nkind: Task\nmetadata: {name: t}\nspec: {cmd: [make]}\n"
PROMPT = "apiVersion: mlspec/v1\nkind: Prompt\nmetadata: {name: p}\nspec: {template: hi}\n"

INVALID: list[tuple[str, str, str]] = [
    # (id, document, the code mlspec reports)
    ("unknown spec field", MODEL.replace("  label: label", "  lable: label"), "MLS101"),
    ("unknown nested field", MODEL.replace("learning_rate:", "learnin_rate:"), "MLS101"),
    ("unknown metadata field", MODEL.replace("  labels:", "  tags:"), "MLS101"),
    ("unknown top-level field", MODEL + "status: {}\n", "MLS101"),
    ("wrong type: string for int", MODEL.replace("epochs: 2", "epochs: two"), "MLS102"),
    ("wrong type: bool for int", MODEL.replace("epochs: 2", "epochs: true"), "MLS102"),
    ("wrong type: quoted number", SERVICE.replace("port: 3000", "port: '3000'"), "MLS102"),
    ("wrong type: scalar for list", MODEL.replace("metrics: [f1]", "metrics: f1"), "MLS102"),
    ("wrong type: label value", MODEL.replace("{tier: gold}", "{tier: 1}"), "MLS102"),
    ("wrong type: spec", "apiVersion: mlspec/v1\nkind: Task\nmetadata: {name: t}\nspec: [make]\n", "MLS102"),
    ("bad enum: task", MODEL.replace("text-classification", "regression"), "MLS103"),
    ("bad enum: metric", MODEL.replace("metrics: [f1]", "metrics: [f2]"), "MLS103"),
    ("bad enum: format", DATASET.replace("format: csv", "format: xml"), "MLS103"),
    ("bad enum: column type", DATASET.replace("type: string", "type: text"), "MLS103"),
    ("bad name: upper case", MODEL.replace("name: sentiment", "name: Sentiment"), "MLS105"),
    ("bad name: underscore", MODEL.replace("name: sentiment", "name: senti_ment"), "MLS105"),
    ("bad name: too long", MODEL.replace("name: sentiment", "name: " + "a" * 64), "MLS105"),
    ("bad name: leading dash", MODEL.replace("name: sentiment", "name: -sentiment"), "MLS105"),
    ("bad name: number", MODEL.replace("name: sentiment", "name: 42"), "MLS102"),
    ("missing apiVersion", MODEL.replace("apiVersion: mlspec/v1\n", ""), "MLS020"),
    ("wrong apiVersion", MODEL.replace("mlspec/v1", "mlspec/v2"), "MLS020"),
    ("missing kind", MODEL.replace("kind: Model\n", ""), "MLS021"),
    ("unknown kind", MODEL.replace("kind: Model", "kind: Modle"), "MLS021"),
    ("missing metadata", TASK.replace("metadata: {name: t}\n", ""), "MLS100"),
    ("missing name", TASK.replace("{name: t}", "{owner: me}"), "MLS100"),
    ("missing spec field", MODEL.replace("  dataset: reviews\n", ""), "MLS100"),
    ("out of range: port", SERVICE.replace("port: 3000", "port: 70000"), "MLS104"),
    ("out of range: learning rate", MODEL.replace("learning_rate: 0.0005", "learning_rate: 0"), "MLS104"),
    ("pattern: memory", SERVICE.replace("memory: 2Gi", "memory: 2GB"), "MLS104"),
    (
        "empty list",
        PROMPT.replace("{template: hi}", "{template: hi, tests: [{name: a, assert: []}]}"),
        "MLS104",
    ),
    ("null for a non-null field", TASK.replace("{cmd: [make]}", "{cmd: [make], cache: null}"), "MLS102"),
    ("reference of a wrong shape", MODEL.replace("dataset: reviews", "dataset: 'two words'"), "MLS104"),
]


@pytest.mark.parametrize(("text", "code"), [(t, c) for _, t, c in INVALID], ids=[i for i, _, _ in INVALID])
def test_schema_level_errors_are_rejected_by_both(schema_dir: Path, text: str, code: str) -> None:
    problems = mlspec_errors(text)
    assert any(p.startswith(code) for p in problems), problems
    (document,) = load_documents(text)
    for name, errors in schema_errors(schema_dir, document).items():
        assert errors, f"{name} accepts a document mlspec rejects with {code}: {problems}"


def test_the_invalid_documents_differ_from_a_valid_one_only_by_the_defect(schema_dir: Path) -> None:
    """The bases of INVALID are themselves valid, so each case tests exactly its defect."""
    for base in (MODEL, SERVICE, DATASET, TASK, PROMPT):
        assert mlspec_errors(base) == []
        (document,) = load_documents(base)
        assert all(not errors for errors in schema_errors(schema_dir, document).values())


def test_gate_syntax_is_in_the_schema(schema_dir: Path) -> None:
    text = MODEL.replace('"f1 >= 0.7"', '"f1 is good"')
    assert mlspec_errors(text)
    (document,) = load_documents(text)
    for name, errors in schema_errors(schema_dir, document).items():
        assert errors, name


# --------------------------------------------------------------------------------------------------
# The real check-jsonschema command


def _check_jsonschema() -> list[str] | None:
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or shutil.which(
        "check-jsonschema"
    )
    return [exe] if exe else None


@pytest.mark.skipif(_check_jsonschema() is None, reason="check-jsonschema is not installed")
def test_check_jsonschema_cli_agrees(schema_dir: Path, tmp_path: Path) -> None:
    command = _check_jsonschema()
    assert command is not None
    schema = schema_dir / "model.schema.json"
    good = tmp_path / "good.yaml"
    good.write_text(MODEL)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        MODEL.replace("learning_rate:", "learnin_rate:").replace("name: sentiment", "name: Sentiment")
    )

    def run(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, "--schemafile", str(schema), str(path)], capture_output=True, text=True, timeout=120
        )

    ok = run(good)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok" in ok.stdout.lower()
    rejected = run(bad)
    assert rejected.returncode == 1, rejected.stdout + rejected.stderr
    assert "learnin_rate" in rejected.stdout
    assert "Sentiment" in rejected.stdout
    assert sorted(mlspec_errors(bad.read_text()))[0].startswith("MLS101")
