"""The command line, end to end through `mlspec.cli.main(argv)`: what a user and a CI script see.

`main()` is the entry point the console script calls, so these tests see the real exit codes (0 ok,
1 any error including bad usage, never click's 2) and the real stdout/stderr split. Every project
lives in a temporary directory and is addressed with `-C`, so nothing here touches the repo.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import mlspec
import mlspec.errors
from mlspec.cli import cli, main
from tests.cli import Result, invoke

REPO = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------------------------------
# Projects

DATASETS = """\
apiVersion: mlspec/v1
kind: Dataset
metadata:
  name: reviews
spec:
  source: {path: data/reviews.csv, format: csv}
---
apiVersion: mlspec/v1
kind: Dataset
metadata:
  name: other
spec:
  source: {path: data/other.csv, format: csv}
"""

MODEL = """\
apiVersion: mlspec/v1
kind: Model
metadata:
  name: sentiment
spec:
  task: text-classification
  dataset: reviews
  label: label
  architecture: {family: bert}
  hyperparameters:
    learning_rate: 0.0005
    epochs: 2
"""

SERVICE = """\
apiVersion: mlspec/v1
kind: Service
metadata:
  name: sentiment-api
spec:
  model: sentiment
"""

TASK = "apiVersion: mlspec/v1\nkind: Task\nmetadata: {name: make-data}\nspec: {cmd: [make, data]}\n"

GOOD = {"specs/data.yaml": DATASETS, "specs/model.yaml": MODEL, "specs/service.yaml": SERVICE}

# Line 11 of the model has a typo at column 5: `learnin_rate` (12 characters).
BAD_MODEL = MODEL.replace("    learning_rate:", "    learnin_rate:")
BAD_LINE, BAD_COL = 11, 5
# Without the service: a Model with a schema error is not linked, so a reference to it would dangle.
BAD = {"specs/data.yaml": DATASETS, "specs/model.yaml": BAD_MODEL}




@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """run("validate", ...) -> Result: main() in process, with stdout and stderr apart."""

    return lambda *args: invoke(capsys, *args, crash_ok=True)  # some tests make it crash on purpose


@pytest.fixture
def good(project: Callable[..., Path]) -> Path:
    return project(GOOD)


def assert_no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output, result.output
    assert "internal error" not in result.output, result.output


# --------------------------------------------------------------------------------------------------
# validate: text


def test_validate_good_project_exits_0_with_one_summary_line(run: Callable[..., Result], good: Path) -> None:
    result = run("-C", good, "validate")
    assert result.code == 0, result.output
    assert result.err == ""
    assert re.fullmatch(
        r"valid: 0 errors, 0 warnings in 3 files \(4 resources, \d+\.\d\ds\)\n", result.out
    ), result.out


def test_validate_bad_project_points_at_file_line_col_with_source_and_caret(
    run: Callable[..., Result], project: Callable[..., Path]
) -> None:
    root = project(BAD)
    result = run("-C", root, "validate")
    assert result.code == 1
    lines = result.out.splitlines()
    assert lines[0] == f"specs/model.yaml:{BAD_LINE}:{BAD_COL}: error[MLS101] unknown field `learnin_rate`"
    source = BAD_MODEL.splitlines()[BAD_LINE - 1]
    gutter = " " * len(str(BAD_LINE))
    assert lines[1] == f"{gutter} |"
    assert lines[2] == f"{BAD_LINE} | {source}"
    caret_line = lines[3]
    prefix = f"{gutter} | "
    assert caret_line.startswith(prefix)
    carets = caret_line[len(prefix) :]
    assert carets.index("^") == BAD_COL - 1  # the caret sits under the column reported
    assert carets.strip().split()[0] == "^" * len("learnin_rate")  # and underlines the whole key
    assert carets.rstrip().endswith("spec.hyperparameters.learnin_rate")
    assert "did you mean `learning_rate`?" in result.out
    assert lines[-1].startswith("invalid: 1 error, 0 warnings in 2 files")


def test_validate_reports_every_problem_of_every_file_in_one_pass(
    run: Callable[..., Result], project: Callable[..., Path]
) -> None:
    root = project(
        {
            "specs/data.yaml": DATASETS.replace("format: csv}\n---", "format: xml}\n---"),  # bad enum
            "specs/model.yaml": BAD_MODEL.replace("name: sentiment", "name: Sentiment"),  # bad name, typo
            "specs/service.yaml": SERVICE.replace("model: sentiment", "model: sentimnt"),  # dangling ref
        }
    )
    result = run("-C", root, "validate")
    assert result.code == 1
    heads = [line for line in result.out.splitlines() if re.match(r"^specs/\S+:\d+:\d+: error\[", line)]
    codes = [re.search(r"error\[(MLS\d+)\]", h)[1] for h in heads]  # type: ignore[index]
    assert codes.count("MLS103") == 1 and codes.count("MLS101") == 1 and codes.count("MLS105") == 1
    assert "MLS201" in codes
    files = [h.split(":", 1)[0] for h in heads]
    assert files == sorted(files)  # sorted by file, so editors and people read them in order
    assert result.out.splitlines()[-1].startswith(f"invalid: {len(heads)} errors")


def test_an_invalid_resource_is_not_reported_as_missing(
    run: Callable[..., Result], project: Callable[..., Path]
) -> None:
    """A typo in Model/sentiment is one error, not also a dangling reference from the Service."""
    root = project({**GOOD, "specs/model.yaml": BAD_MODEL})
    result = run("-C", root, "validate", "--format", "json")
    assert result.code == 1
    assert [d["code"] for d in json.loads(result.out)["diagnostics"]] == ["MLS101"]


def test_the_cache_never_changes_the_verdict(
    run: Callable[..., Result], project: Callable[..., Path]
) -> None:
    """After each edit a pre-commit hook would see, the cached run says what a cold run says."""
    root = project(GOOD)
    specs = root / "specs"
    edits: list[tuple[str, Callable[[], object]]] = [
        ("nothing", lambda: None),
        ("typo", lambda: (specs / "model.yaml").write_text(BAD_MODEL)),
        ("same bytes again", lambda: (specs / "model.yaml").write_text(BAD_MODEL)),
        ("fix", lambda: (specs / "model.yaml").write_text(MODEL)),
        (
            "rename a dataset",
            lambda: (specs / "data.yaml").write_text(DATASETS.replace("name: reviews", "name: r2")),
        ),
        ("rename it back", lambda: (specs / "data.yaml").write_text(DATASETS)),
        ("delete a file", lambda: (specs / "model.yaml").unlink()),
        ("restore it", lambda: (specs / "model.yaml").write_text(MODEL)),
        ("duplicate", lambda: (specs / "copy.yaml").write_text(MODEL)),
        ("remove the duplicate", lambda: (specs / "copy.yaml").unlink()),
        ("exclude a file", lambda: (root / "mlspec.yaml").write_text("exclude: ['specs/data.yaml']\n")),
        ("project file broken", lambda: (root / "mlspec.yaml").write_text("limits: {max_file_bytes: -1}\n")),
        ("project file gone", lambda: (root / "mlspec.yaml").unlink()),
    ]

    def verdict(*flags: str) -> tuple[int, list[tuple[object, ...]]]:
        result = run("-C", root, "validate", "--format", "json", *flags)
        report = json.loads(result.out)
        return result.code, [
            (d["code"], d["file"], d["line"], d["col"], d["message"]) for d in report["diagnostics"]
        ]

    # Files edited in a step get an mtime an hour ago (a distinct one per step), so on later steps the
    # files left alone are old enough for the cache to trust their stat without reading them.
    long_ago = time.time_ns() - 3600 * 10**9
    for step, (name, edit) in enumerate(edits):
        edit()
        for path in [root / "mlspec.yaml", *specs.iterdir()]:
            if path.is_file() and path.stat().st_mtime_ns > long_ago + 1800 * 10**9:
                os.utime(path, ns=(long_ago + step * 10**9,) * 2)
        cached = verdict()
        assert cached == verdict("--no-cache"), name
        again = run("-C", root, "validate", "--format", "json")
        assert json.loads(again.out)["parsed"] == 0, name  # the run after that reads nothing again
        assert verdict() == cached, name


def test_a_bad_project_setting_does_not_hide_the_specs(
    run: Callable[..., Result], project: Callable[..., Path]
) -> None:
    broken = "apiVersion: mlspec/v1\nkind: Task\nmetadata: {name: t}\nspec: {cmd: [x], bogus: 1}\n"
    root = project({"src/t.yaml": broken}, config='specs: ["src/*.yaml"]\nlimits: {max_file_bytes: -1}\n')
    result = run("-C", root, "validate", "--format", "json")
    assert result.code == 1
    codes = {(d["file"], d["code"]) for d in json.loads(result.out)["diagnostics"]}
    assert ("mlspec.yaml", "MLS104") in codes
    assert ("src/t.yaml", "MLS101") in codes  # the specs are still checked, with the globs given
    assert not any(code == "MLS006" for _, code in codes)


def test_validate_warning_alone_exits_0(run: Callable[..., Result], project: Callable[..., Path]) -> None:
    root = project({**GOOD, "specs/extra.yaml": SERVICE.replace("sentiment-api", "second-api") + "---\n"})
    result = run("-C", root, "validate")
    assert result.code == 0, result.output
    assert "warning[MLS017]" in result.out
    assert "valid: 0 errors, 1 warning" in result.out


def test_validate_without_specs_is_a_warning_not_a_crash(run: Callable[..., Result], tmp_path: Path) -> None:
    result = run("-C", tmp_path, "validate")
    assert result.code == 0
    assert "warning[MLS006]" in result.out


def test_validate_missing_project_directory_is_one_line_error(
    run: Callable[..., Result], tmp_path: Path
) -> None:
    result = run("-C", tmp_path / "nope", "validate")
    assert result.code == 1
    assert result.err.startswith("error: ") and result.err.count("\n") == 1
    assert_no_traceback(result)


def test_validate_named_paths(
    run: Callable[..., Result], good: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(good)
    assert run("validate", "specs/data.yaml").code == 0
    missing = run("validate", "specs/nope.yaml")
    assert missing.code == 1
    assert "specs/nope.yaml: error[MLS001]" in missing.out


def test_validate_paths_resolve_references_against_the_whole_spec_set(
    run: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "bundled"
    shutil.copytree(REPO / "specs", root / "specs")
    shutil.copy(REPO / "mlspec.yaml", root / "mlspec.yaml")
    monkeypatch.chdir(root)
    assert run("validate").code == 0
    result = run("validate", "specs/models")
    assert result.code == 0, result.output


def test_project_option_applies_to_validate_paths(
    run: Callable[..., Result], good: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = run("-C", good, "validate", "specs/data.yaml")
    assert result.code == 0, result.output


# --------------------------------------------------------------------------------------------------
# validate: json and github


def test_validate_json_is_machine_readable(run: Callable[..., Result], project: Callable[..., Path]) -> None:
    root = project(BAD)
    result = run("-C", root, "validate", "--format", "json")
    assert result.code == 1
    report = json.loads(result.out)  # stdout is the JSON and nothing else
    assert report["format_version"] == "1"
    assert report["valid"] is False
    assert report["error_count"] == 1 and report["warning_count"] == 0
    assert report["files"] == 2
    (diagnostic,) = report["diagnostics"]
    assert diagnostic["code"] == "MLS101"
    assert diagnostic["severity"] == "error"
    assert diagnostic["file"] == "specs/model.yaml"
    assert (diagnostic["line"], diagnostic["col"]) == (BAD_LINE, BAD_COL)
    assert diagnostic["field"] == "spec.hyperparameters.learnin_rate"
    assert diagnostic["message"] == "unknown field `learnin_rate`"
    assert "learning_rate" in diagnostic["hint"]


def test_validate_json_on_a_good_project(run: Callable[..., Result], good: Path) -> None:
    result = run("-C", good, "validate", "--format", "json")
    assert result.code == 0
    report = json.loads(result.out)
    assert report["valid"] is True
    assert report["diagnostics"] == []
    assert report["resources"] == 4


def test_validate_github_annotations(run: Callable[..., Result], project: Callable[..., Path]) -> None:
    root = project(BAD)
    result = run("-C", root, "validate", "--format", "github")
    assert result.code == 1
    (line,) = result.out.splitlines()  # one diagnostic, one workflow command, even with a multi-line body
    assert line.startswith(f"::error file=specs/model.yaml,line={BAD_LINE},col={BAD_COL},title=MLS101::")
    body = line.split("::", 2)[2]
    assert body.startswith("unknown field `learnin_rate`")
    assert "%0A" in body  # expected/hint go on further lines of the annotation, escaped


def test_validate_github_escapes_properties_and_data(
    run: Callable[..., Result], project: Callable[..., Path]
) -> None:
    # A file name with `,` and `:` (legal on Linux) would end a property early; `%` in the message
    # would start an escape; a newline would end the command.
    weird = "specs/a,b:c.yaml"
    root = project(
        {weird: "apiVersion: mlspec/v1\nkind: Task\nmetadata: {name: t}\nspec: {cmd: [x], 50%: 1}\n"}
    )
    result = run("-C", root, "validate", "--format", "github")
    assert result.code == 1
    (line,) = result.out.splitlines()
    assert line.startswith("::error file=specs/a%2Cb%3Ac.yaml,line=4,col=18,title=MLS101::")
    body = line.split("::", 2)[2]
    assert "`50%25`" in body
    assert "\r" not in body


def test_validate_github_warning_and_clean(run: Callable[..., Result], project: Callable[..., Path]) -> None:
    root = project({**GOOD, "specs/extra.yaml": SERVICE.replace("sentiment-api", "second-api") + "---\n"})
    result = run("-C", root, "validate", "--format", "github")
    assert result.code == 0
    assert re.fullmatch(
        r"::warning file=specs/extra\.yaml,line=\d+,col=\d+,title=MLS017::empty document.*\n", result.out
    )


def test_validate_github_on_a_clean_project_prints_nothing(run: Callable[..., Result], good: Path) -> None:
    clean = run("-C", good, "validate", "--format", "github")
    assert (clean.code, clean.out, clean.err) == (0, "", "")


# --------------------------------------------------------------------------------------------------
# Usage errors and help


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "--bogus"],
        ["bogus-command"],
        ["validate", "--format", "yaml"],
        ["graph", "--format", "html"],
        ["version", "--format", "github"],
        ["validate", "--jobs", "0"],
        ["schema", "--kind"],
        ["init", "a", "b"],
        ["--no-such-global-flag", "validate"],
    ],
    ids=lambda a: " ".join(a),
)
def test_bad_usage_exits_1_not_2(run: Callable[..., Result], tmp_path: Path, args: list[str]) -> None:
    result = run("-C", tmp_path, *args)
    assert result.code == 1, "bad usage is exit 1 (2 is reserved for plan --detailed-exitcode)"
    assert "Error:" in result.err
    assert result.out == ""
    assert_no_traceback(result)


def test_no_arguments_prints_usage(run: Callable[..., Result]) -> None:
    result = run()
    assert result.code in (0, 1)
    assert "Usage: mlspec" in result.output


COMMANDS = sorted(cli.commands)


def test_the_commands_this_file_covers_exist() -> None:
    assert {"init", "validate", "graph", "schema", "version"} <= set(COMMANDS)


@pytest.mark.parametrize("command", [None, *COMMANDS])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_on_every_command_has_an_example(
    run: Callable[..., Result], command: str | None, flag: str
) -> None:
    result = run(*([command] if command else []), flag)
    assert result.code == 0
    assert result.out.startswith("Usage: mlspec")
    assert "Example" in result.out


def test_version_flag(run: Callable[..., Result]) -> None:
    result = run("--version")
    assert (result.code, result.out) == (0, f"mlspec {mlspec.__version__}\n")


def test_version_command_json(run: Callable[..., Result]) -> None:
    import platform

    result = run("version", "--format", "json")
    assert result.code == 0
    info = json.loads(result.out)
    assert info["format_version"] == "1"
    assert info["mlspec"] == mlspec.__version__
    assert info["python"] == platform.python_version()
    for library in ("pydantic", "click", "ruamel.yaml"):
        assert info["libraries"][library], library
    text = run("version")
    assert text.code == 0 and text.out.startswith(f"mlspec {mlspec.__version__} (Python ")


# --------------------------------------------------------------------------------------------------
# init


def test_init_scaffolds_a_repo_that_validates_clean(run: Callable[..., Result], tmp_path: Path) -> None:
    from mlspec import schemas

    target = tmp_path / "new" / "my-specs"  # parents are created
    result = run("init", target)
    assert result.code == 0, result.output
    assert (target / "mlspec.yaml").is_file()
    assert sorted(p.suffix for p in (target / "specs").rglob("*") if p.is_file()) == [".yaml", ".yaml"]
    assert (target / ".pre-commit-config.yaml").is_file()
    assert (target / ".github" / "workflows" / "mlspec.yml").is_file()
    assert sorted(p.name for p in (target / "schemas").iterdir()) == sorted(schemas.generate())
    assert "mlspec validate" in (target / ".pre-commit-config.yaml").read_text()
    assert "mlspec validate --format github" in (target / ".github/workflows/mlspec.yml").read_text()

    validated = run("-C", target, "validate")
    assert validated.code == 0, validated.output
    assert validated.out.startswith("valid: 0 errors, 0 warnings in 2 files (2 resources")
    assert run("schema", "--dir", target / "schemas", "--check").code == 0
    assert run("-C", target, "graph").out == "Dataset/reviews\nModel/sentiment  <- Dataset/reviews\n"


def test_init_json_lists_the_files(run: Callable[..., Result], tmp_path: Path) -> None:
    result = run("init", tmp_path / "x", "--format", "json")
    assert result.code == 0
    report = json.loads(result.out)
    assert report["format_version"] == "1"
    paths = {Path(f["path"]).relative_to(tmp_path / "x").as_posix() for f in report["files"]}
    assert {"mlspec.yaml", ".pre-commit-config.yaml", ".github/workflows/mlspec.yml"} <= paths
    assert not any(f["skipped"] for f in report["files"])


def test_init_keeps_existing_files_without_force(run: Callable[..., Result], tmp_path: Path) -> None:
    target = tmp_path / "repo"
    assert run("init", target).code == 0
    project_file = target / "mlspec.yaml"
    original = project_file.read_text()
    project_file.write_text("# mine\n")

    again = run("init", target)
    assert again.code == 0
    assert project_file.read_text() == "# mine\n"  # not overwritten
    assert re.search(r"exists\s+\S*mlspec\.yaml", again.out)
    assert "--force" in again.out
    as_json = json.loads(run("init", target, "--format", "json").out)
    skipped = {Path(f["path"]).name: f["skipped"] for f in as_json["files"]}
    assert skipped["mlspec.yaml"] is True

    forced = run("init", target, "--force")
    assert forced.code == 0
    assert project_file.read_text() == original


def test_init_onto_a_file_is_a_usage_error(run: Callable[..., Result], tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    result = run("init", target)
    assert result.code == 1
    assert_no_traceback(result)


def test_init_below_a_file_is_a_clear_error(run: Callable[..., Result], tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = run("init", tmp_path / "file" / "sub")
    assert result.code == 1
    assert_no_traceback(result)


# --------------------------------------------------------------------------------------------------
# graph


def test_graph_text(run: Callable[..., Result], good: Path) -> None:
    result = run("-C", good, "graph")
    assert result.code == 0
    assert result.out == (
        "Dataset/other\n"
        "Dataset/reviews\n"
        "Model/sentiment  <- Dataset/reviews\n"
        "Service/sentiment-api  <- Model/sentiment\n"
    )


def test_graph_dot(run: Callable[..., Result], good: Path) -> None:
    result = run("-C", good, "graph", "--format", "dot")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == "digraph mlspec {" and lines[-1] == "}"
    assert '  "Dataset/reviews" -> "Model/sentiment" [label="spec.dataset"];' in lines
    assert '  "Model/sentiment" -> "Service/sentiment-api" [label="spec.model"];' in lines
    assert '  "Dataset/other";' in lines


def test_graph_mermaid(run: Callable[..., Result], good: Path) -> None:
    result = run("-C", good, "graph", "--format", "mermaid")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == "flowchart LR"
    assert "  Dataset_reviews --> Model_sentiment" in lines
    assert "  Model_sentiment --> Service_sentiment_api" in lines
    assert '  Service_sentiment_api(["Service/sentiment-api"])' in lines


def test_graph_json(run: Callable[..., Result], good: Path) -> None:
    result = run("-C", good, "graph", "--format", "json")
    assert result.code == 0
    graph = json.loads(result.out)
    assert graph["format_version"] == "1"
    assert [n["address"] for n in graph["nodes"]] == [
        "Dataset/other", "Dataset/reviews", "Model/sentiment", "Service/sentiment-api",
    ]  # fmt: skip
    model = next(n for n in graph["nodes"] if n["address"] == "Model/sentiment")
    expected = {
        "address": "Model/sentiment",
        "kind": "Model",
        "name": "sentiment",
        "file": "specs/model.yaml",
    }
    assert {k: model[k] for k in expected} == expected
    assert graph["edges"] == [
        {"from": "Dataset/reviews", "to": "Model/sentiment", "field": "spec.dataset"},
        {"from": "Model/sentiment", "to": "Service/sentiment-api", "field": "spec.model"},
    ]


@pytest.mark.parametrize(
    ("flag", "address", "expected"),
    [
        (
            "--upstream",
            "Service/sentiment-api",
            ["Dataset/reviews", "Model/sentiment", "Service/sentiment-api"],
        ),
        ("--upstream", "Model/sentiment", ["Dataset/reviews", "Model/sentiment"]),
        ("--downstream", "Dataset/reviews", ["Dataset/reviews", "Model/sentiment", "Service/sentiment-api"]),
        ("--downstream", "sentiment", ["Model/sentiment", "Service/sentiment-api"]),  # a bare, unique name
        ("--downstream", "Dataset/other", ["Dataset/other"]),
    ],
)
def test_graph_upstream_downstream(
    run: Callable[..., Result], good: Path, flag: str, address: str, expected: list[str]
) -> None:
    result = run("-C", good, "graph", "--format", "json", flag, address)
    assert result.code == 0, result.output
    graph = json.loads(result.out)
    assert [n["address"] for n in graph["nodes"]] == expected
    assert all(e["from"] in expected and e["to"] in expected for e in graph["edges"])
    text = run("-C", good, "graph", flag, address)
    assert [line.split()[0] for line in text.out.splitlines()] == sorted(expected, key=expected.index)


@pytest.mark.parametrize("flag", ["--upstream", "--downstream"])
def test_graph_unknown_address_suggests(run: Callable[..., Result], good: Path, flag: str) -> None:
    result = run("-C", good, "graph", flag, "Model/sentimnt")
    assert result.code == 1
    assert result.out == ""
    assert result.err == f"error: {flag} Model/sentimnt: no such resource; did you mean `Model/sentiment`?\n"


def test_graph_upstream_and_downstream_exclude_each_other(run: Callable[..., Result], good: Path) -> None:
    result = run("-C", good, "graph", "--upstream", "sentiment", "--downstream", "sentiment")
    assert result.code == 1
    assert "exclude each other" in result.err


def test_graph_ambiguous_bare_name_says_so(run: Callable[..., Result], project: Callable[..., Path]) -> None:
    task = "apiVersion: mlspec/v1\nkind: Task\nmetadata: {name: reviews}\nspec: {cmd: [make]}\n"
    root = project({**GOOD, "specs/task.yaml": task})
    result = run("-C", root, "graph", "--upstream", "reviews")
    assert result.code == 1
    assert "no such resource" not in result.err
    assert "Dataset/reviews" in result.err and "Task/reviews" in result.err


def test_graph_on_invalid_specs_shows_the_diagnostics(
    run: Callable[..., Result], project: Callable[..., Path]
) -> None:
    root = project(BAD)
    text = run("-C", root, "graph", "--format", "dot")
    assert text.code == 1
    assert f"specs/model.yaml:{BAD_LINE}:{BAD_COL}: error[MLS101]" in text.out
    assert "digraph" not in text.out
    as_json = run("-C", root, "graph", "--format", "json")
    assert as_json.code == 1
    assert json.loads(as_json.out)["valid"] is False


# --------------------------------------------------------------------------------------------------
# schema


def test_schema_write_then_check_then_stale(run: Callable[..., Result], tmp_path: Path) -> None:
    from mlspec import schemas

    directory = tmp_path / "schemas"
    result = run("schema", "--dir", directory)
    assert result.code == 0
    expected = sorted(schemas.generate())
    assert result.out == f"wrote {len(expected)} schema file(s) to {directory}\n"
    assert sorted(p.name for p in directory.iterdir()) == expected
    for path in directory.iterdir():
        assert json.loads(path.read_text())["$schema"] == "https://json-schema.org/draft/2020-12/schema"

    assert run("schema", "--dir", directory).out == f"{directory} is up to date\n"  # idempotent
    check = run("schema", "--dir", directory, "--check")
    assert (check.code, check.out) == (0, f"schemas in {directory} are up to date\n")

    edited = directory / "model.schema.json"
    edited.write_text(edited.read_text().replace('"mlspec Model"', '"mlspec Model (edited)"'))
    stale = run("schema", "--dir", directory, "--check")
    assert stale.code == 1
    assert (
        stale.err.startswith("error: ") and "model.schema.json" in stale.err and "mlspec schema" in stale.err
    )
    assert "(edited)" in edited.read_text()  # --check writes nothing
    as_json = run("schema", "--dir", directory, "--check", "--format", "json")
    assert as_json.code == 1
    assert json.loads(as_json.out)["stale"] == ["model.schema.json"]

    assert run("schema", "--dir", directory).code == 0  # regenerating repairs it
    assert run("schema", "--dir", directory, "--check").code == 0


def test_schema_check_of_a_missing_directory_fails(run: Callable[..., Result], tmp_path: Path) -> None:
    result = run("schema", "--dir", tmp_path / "absent", "--check")
    assert result.code == 1
    assert not (tmp_path / "absent").exists()


def test_schema_kind_prints_one_schema(run: Callable[..., Result], tmp_path: Path) -> None:
    from mlspec import schemas

    result = run("schema", "--kind", "Model")
    assert result.code == 0
    printed = json.loads(result.out)
    assert printed == schemas.generate()["model.schema.json"]
    assert printed["title"] == "mlspec Model"
    assert "spec" in printed["properties"]
    assert not (tmp_path / "schemas").exists()


def test_schema_unknown_kind_suggests(run: Callable[..., Result]) -> None:
    result = run("schema", "--kind", "Modl")
    assert result.code == 1
    assert result.err == "error: unknown kind `Modl`; did you mean `Model`?\n"


def test_project_option_applies_to_schema(
    run: Callable[..., Result], good: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert run("-C", good, "schema").code == 0
    assert (good / "schemas" / "model.schema.json").is_file()
    assert not (elsewhere / "schemas").exists()


# --------------------------------------------------------------------------------------------------
# Errors and exit codes


def test_unexpected_exception_is_an_internal_error_without_traceback(
    run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: object, **__: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr("mlspec.commands.version.run", boom)
    result = run("version")
    assert result.code == 1
    assert "internal error: RuntimeError: boom" in result.err
    assert "--debug" in result.err
    assert "Traceback" not in result.output
    with pytest.raises(RuntimeError, match="boom"):
        main(["--debug", "version"])


def test_interrupt_is_reported_briefly(run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_: object, **__: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("mlspec.commands.version.run", interrupted)
    result = run("version")
    assert result.code == 130
    assert result.err.strip() == "Interrupted."


# --------------------------------------------------------------------------------------------------
# No input makes mlspec crash


def _deep(n: int) -> str:
    return "[" * n + "]" * n


NASTY: dict[str, dict[str, str | bytes]] = {
    "empty file": {"specs/a.yaml": ""},
    "only comments": {"specs/a.yaml": "# nothing\n"},
    "binary": {"specs/a.yaml": b"\x00\x01\x02\xff\xfe"},
    "latin-1": {"specs/a.yaml": b"apiVersion: mlspec/v1\nname: caf\xe9\n"},
    "utf-16": {"specs/a.yaml": "apiVersion: mlspec/v1\n".encode("utf-16")},
    "bom": {"specs/a.yaml": b"\xef\xbb\xbf" + SERVICE.encode()},
    "a list": {"specs/a.yaml": "- a\n- b\n"},
    "a scalar": {"specs/a.yaml": "42\n"},
    "tabs": {"specs/a.yaml": "apiVersion: mlspec/v1\nkind: Model\n\tmetadata: x\n"},
    "syntax error": {"specs/a.yaml": "a: [1, 2\n"},
    "duplicate keys": {"specs/a.yaml": "a: 1\na: 2\n"},
    "alias bomb": {
        "specs/a.yaml": "a: &a [1,1,1,1,1,1,1,1,1]\n"
        + "".join(f"{x}: &{x} [{', '.join(['*' + p] * 9)}]\n" for p, x in zip("abcde", "bcdef", strict=True))
    },
    "deep nesting": {"specs/a.yaml": _deep(50_000)},
    "python tag": {"specs/a.yaml": "!!python/object/apply:os.system [echo hacked]\n"},
    "custom tag": {"specs/a.yaml": "apiVersion: !foo mlspec/v1\n"},
    "non-string keys": {"specs/a.yaml": "1: a\n~: b\n? [x, y]\n: c\n"},
    "empty documents": {"specs/a.yaml": "---\n---\n---\n"},
    "wrong envelope types": {"specs/a.yaml": "apiVersion: 1\nkind: Model\nmetadata: a\nspec: 3\n"},
    "huge integer": {"specs/a.yaml": MODEL.replace("epochs: 2", "epochs: " + "9" * 5000)},
    "nan and inf": {
        "specs/a.yaml": DATASETS.split("---")[0]
        + "  checks: {max_null_fraction: .inf}\n  splits: {ratios: {train: .nan}}\n"
    },
    "weird name": {"specs/a.yaml": SERVICE.replace("sentiment-api", "'Héllo wörld 💥'")},
    "very long line": {"specs/a.yaml": SERVICE.replace("sentiment-api", "a" * 100_000)},
    "crlf": {"specs/a.yaml": BAD_MODEL.replace("\n", "\r\n")},
    "merge keys": {"specs/a.yaml": "base: &b {x: 1}\napiVersion: mlspec/v1\n<<: *b\n<<: [*b, 1]\n"},
    "self cycle": {
        "specs/a.yaml": "apiVersion: mlspec/v1\nkind: Task\nmetadata: {name: a}\n"
        "spec: {cmd: [x], depends_on: [a]}\n"
    },
    "bad interpolation": {"specs/a.yaml": SERVICE + "  env: {A: '${env:}', B: '${env:A-B}', C: '${'}\n"},
    "bad regex": {
        "specs/a.yaml": "apiVersion: mlspec/v1\nkind: Prompt\nmetadata: {name: p}\n"
        "spec: {template: x, tests: [{name: t, assert: [{regex: '(['}]}]}\n"
    },
    "project file not a mapping": {"mlspec.yaml": "- x\n", "specs/a.yaml": SERVICE},
    "project file wrong types": {"mlspec.yaml": "specs: 5\nlimits: {max_file_bytes: -1}\n"},
    "project file binary": {"mlspec.yaml": b"\xff\xfe\x00\x00"},
    "project file unknown glob syntax": {"mlspec.yaml": "specs: ['**/[a-', '/etc/*.yaml', '../*.yaml']\n"},
    "tiny size limit": {"mlspec.yaml": "limits: {max_file_bytes: 1}\n", "specs/a.yaml": SERVICE},
    "directory named like a spec": {"specs/d.yaml/x.yaml": SERVICE},
    "corrupt cache": {"specs/a.yaml": SERVICE, ".mlspec/cache/validate.db": "garbage"},
    "corrupt cache, old name": {"specs/a.yaml": SERVICE, ".mlspec/cache/validate.pickle": "garbage"},
    "cache path is a directory": {"specs/a.yaml": SERVICE, ".mlspec/cache/validate.db/x": ""},
    "cache directory is a file": {"specs/a.yaml": SERVICE, ".mlspec/cache": "not a directory"},
    "state dir is a file": {"specs/a.yaml": SERVICE, ".mlspec": "not a directory"},
}


@pytest.mark.parametrize("files", NASTY.values(), ids=NASTY.keys())
def test_nasty_input_never_crashes(
    run: Callable[..., Result], project: Callable[..., Path], files: dict
) -> None:
    root = project(files)
    for args in (["validate"], ["validate", "--format", "github"], ["graph"], ["validate", "--no-cache"]):
        result = run("-C", root, *args)
        assert result.code in (0, 1), (args, result.output)
        assert_no_traceback(result)
    as_json = run("-C", root, "validate", "--format", "json")
    assert_no_traceback(as_json)
    report = json.loads(as_json.out)
    assert report["valid"] is (as_json.code == 0)


def test_symlinks_never_crash(
    run: Callable[..., Result], project: Callable[..., Path], tmp_path: Path
) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text(SERVICE)
    root = project({"specs/a.yaml": SERVICE.replace("sentiment-api", "a")})
    (root / "specs" / "escape.yaml").symlink_to(outside)
    (root / "specs" / "broken.yaml").symlink_to(root / "specs" / "missing.yaml")
    (root / "specs" / "loop.yaml").symlink_to(root / "specs" / "loop.yaml")
    (root / "specs" / "dirloop").symlink_to(root / "specs")
    result = run("-C", root, "validate")
    assert result.code == 1
    assert_no_traceback(result)
    assert "specs/escape.yaml: error[MLS005]" in result.out
    assert "specs/loop.yaml: error[MLS001]" in result.out


@pytest.mark.parametrize("kind", ["[Model]", "{name: Model}"])
def test_unhashable_kind_is_a_diagnostic(
    run: Callable[..., Result], project: Callable[..., Path], kind: str
) -> None:
    """`kind: [Model]` once crashed the envelope check (`kind not in KINDS`: unhashable type)."""
    root = project(
        {"specs/a.yaml": f"apiVersion: mlspec/v1\nkind: {kind}\nmetadata: {{name: a}}\nspec: {{}}\n"}
    )
    result = run("-C", root, "validate")
    assert_no_traceback(result)
    assert result.code == 1
    assert "specs/a.yaml:2:7: error[MLS021]" in result.out


class _Plant:
    """Unpickling this creates a marker file: stands for any code a committed cache could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _cache_db(run: Callable[..., Result], root: Path) -> Path:
    assert run("-C", root, "validate").code == 0
    db = root / ".mlspec" / "cache" / "validate.db"
    if not db.is_file():
        pytest.skip(f"no cache at {db.relative_to(root)}: the cache changed, update this test")
    return db


def _tamper(db: Path, sql: str, *params: object) -> None:
    connection = sqlite3.connect(db)
    try:
        with connection:
            connection.execute(sql, params)
    except sqlite3.Error as err:
        pytest.skip(f"the cache's tables changed ({err}): update this test")
    finally:
        connection.close()


def test_a_committed_cache_cannot_run_code(
    run: Callable[..., Result], project: Callable[..., Path], tmp_path: Path
) -> None:
    """A spec repo may commit .mlspec/ (a .gitignore does not stop that): loading it must run nothing."""
    root = project({"specs/a.yaml": TASK})
    db = _cache_db(run, root)
    marker = tmp_path / "pwned"
    # A payload in every stored summary and no stored verdict, so the next run links and loads them.
    _tamper(db, "UPDATE files SET summary = ?", pickle.dumps(_Plant(marker)))
    _tamper(db, "DELETE FROM meta WHERE name = 'result'")
    (root / "specs" / "a.yaml").write_text(TASK)  # as in a fresh clone: same bytes, new mtime
    result = run("-C", root, "validate")
    assert not marker.exists(), "loading the cache ran code from the repo"
    assert_no_traceback(result)
    assert result.code == 0, result.output


def test_a_committed_cache_cannot_forge_the_verdict(
    run: Callable[..., Result], project: Callable[..., Path]
) -> None:
    import hashlib

    root = project({"specs/a.yaml": TASK})
    db = _cache_db(run, root)
    bad = TASK.replace("{cmd: [make, data]}", "{cmd: [make, data], bogus: 1}")
    (root / "specs" / "a.yaml").write_text(bad)
    _tamper(db, "UPDATE files SET digest = ?", hashlib.blake2b(bad.encode(), digest_size=16).digest())
    # Committed, then cloned: the same bytes, cache included, in another checkout.
    clone = root.parent / "clone"
    shutil.copytree(root, clone)
    assert run("-C", clone, "validate", "--no-cache").code == 1
    result = run("-C", clone, "validate")
    assert result.code == 1, result.output
    assert "error[MLS101]" in result.out


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_a_fifo_in_the_spec_tree_does_not_hang(project: Callable[..., Path]) -> None:
    root = project({"specs/a.yaml": TASK})
    os.mkfifo(root / "specs" / "pipe.yaml")
    code = f"import sys; from mlspec.cli import main; sys.exit(main(['-C', {str(root)!r}, 'validate']))"
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail("mlspec validate hung on a FIFO")
    assert done.returncode == 1
    assert "specs/pipe.yaml" in done.stdout


def test_source_lines_in_output_are_the_users_bytes(
    run: Callable[..., Result], project: Callable[..., Path]
) -> None:
    """A diagnostic on a file with a BOM and CRLF endings still shows the right line under the caret."""
    text = textwrap.dedent(
        """\
        apiVersion: mlspec/v1
        kind: Task
        metadata: {name: t}
        spec: {cmd: [x], bogus: 1}
        """
    ).replace("\n", "\r\n")
    root = project({"specs/a.yaml": b"\xef\xbb\xbf" + text.encode()})
    result = run("-C", root, "validate")
    assert result.code == 1
    assert result.out.startswith("specs/a.yaml:4:18: error[MLS101] unknown field `bogus`\n")
    assert "4 | spec: {cmd: [x], bogus: 1}\n" in result.out


def test_no_spec_files_is_positioned_at_the_specs_setting(run: Callable[..., Result], tmp_path: Path) -> None:
    (tmp_path / "mlspec.yaml").write_text("# the project\nlimits: {max_file_bytes: 1000}\nspecs: ['models/**/*.yaml']\n")
    result = run("-C", tmp_path, "validate")
    assert result.code == 0 and "mlspec.yaml:3:1: warning[MLS006]" in result.out, result.output
