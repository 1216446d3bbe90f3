"""A cached `mlspec validate` always says what `--no-cache` says.

Each scenario is a sequence of edits a user could make; after every step, the cached run (which
may reuse the verdict, re-link or link fully) must report exactly the diagnostics of a run that
parses everything. Files are aged before each run so the stat-trusted path is exercised too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mlspec.cli import main
from mlspec.validation import validate

DATASET = "apiVersion: mlspec/v1\nkind: Dataset\nmetadata: {name: reviews}\nspec:\n  source: {path: d.csv, format: csv}\n"
MODEL = (
    "apiVersion: mlspec/v1\nkind: Model\nmetadata: {name: m}\nspec:\n  task: text-classification\n"
    "  dataset: reviews\n  label: label\n  architecture: {family: bert}\n  hyperparameters: {epochs: 2}\n"
)


def age(root: Path, seconds: float = 30) -> None:
    then = time.time_ns() - int(seconds * 1e9)
    for path in root.rglob("*"):
        if path.is_file() and ".mlspec" not in path.parts:
            os.utime(path, ns=(then, then))


def verdict(root: Path, *paths: str, use_cache: bool = True) -> list[tuple[object, ...]]:
    report = validate(root, [root / p for p in paths] or None, use_cache=use_cache)
    return [(d.code, d.file, d.line, d.col, d.message) for d in report.diagnostics]


def same(root: Path, *paths: str) -> list[tuple[object, ...]]:
    age(root)
    cached = verdict(root, *paths)
    assert cached == verdict(root, *paths, use_cache=False)
    return cached


@pytest.fixture
def repo(project: Callable[..., Path]) -> Path:
    root = project({"specs/data.yaml": DATASET, "specs/model.yaml": MODEL}, config="limits: {max_file_bytes: 5000}\n")
    assert same(root) == [] and same(root) == []
    return root


def test_a_file_that_was_too_large_and_is_restored(repo: Path) -> None:
    data = repo / "specs" / "data.yaml"
    original = data.read_bytes()
    data.write_bytes(original + b"# " + b"x" * 6000 + b"\n")
    assert [d[0] for d in same(repo)] == ["MLS002", "MLS201"]
    data.write_bytes(original)
    assert same(repo) == []


def test_a_fifo_swapped_in_and_restored(repo: Path) -> None:
    data = repo / "specs" / "data.yaml"
    original = data.read_bytes()
    data.unlink()
    os.mkfifo(data)
    assert "MLS001" in [d[0] for d in same(repo)]
    data.unlink()
    data.write_bytes(original)
    assert same(repo) == []


def test_a_lowered_limit_then_restored(repo: Path) -> None:
    config = repo / "mlspec.yaml"
    config.write_text("limits: {max_file_bytes: 100}\n")
    assert {d[0] for d in same(repo)} == {"MLS002"}
    config.write_text("limits: {max_file_bytes: 5000}\n")
    assert same(repo) == []


def test_a_paths_run_does_not_leave_a_verdict_that_hides_errors(repo: Path) -> None:
    model = repo / "specs" / "model.yaml"
    model.write_text(MODEL.replace("dataset: reviews", "dataset: reviewz"))
    (repo / "big.yaml").write_text("# " + "x" * 6000 + "\n")
    same(repo, "specs/model.yaml", "big.yaml")
    assert [d[0] for d in same(repo)] == ["MLS201"]


def test_files_first_seen_by_a_paths_run_then_added_to_the_globs(repo: Path) -> None:
    (repo / "extra").mkdir()
    (repo / "extra" / "bad.yaml").write_text("apiVersion: mlspec/v1\nkind: Task\nmetadata: {name: t}\nspec: {}\n")
    assert [d[0] for d in same(repo, "extra/bad.yaml")] == ["MLS100"]
    (repo / "mlspec.yaml").write_text("specs: ['specs/**/*.yaml', 'extra/*.yaml']\nlimits: {max_file_bytes: 5000}\n")
    assert [d[0] for d in same(repo)] == ["MLS100"]


def test_a_relink_names_things_as_a_full_link_does(project: Callable[..., Path]) -> None:
    first = "apiVersion: mlspec/v1\nkind: Task\nmetadata: {name: x}\nspec: {cmd: [a]}\n---\n" + MODEL.replace(
        "dataset: reviews", "dataset: x"
    )
    root = project({"specs/a.yaml": first, "specs/z.yaml": "apiVersion: mlspec/v1\nkind: Service\nmetadata: {name: x}\nspec: {model: m}\n"})
    before = same(root)
    (root / "specs" / "a.yaml").write_text("# a comment moves every line\n" + first)
    after = same(root)
    assert [d[4] for d in after] == [d[4] for d in before]


def test_content_replaced_with_the_old_mtime_put_back(repo: Path) -> None:
    model = repo / "specs" / "model.yaml"
    same(repo)
    stamp = model.stat().st_mtime_ns
    text = MODEL.replace("dataset: reviews", "dataset: reviewz")  # same size: only ctime tells
    assert len(text) == len(MODEL)
    model.write_text(text)
    os.utime(model, ns=(stamp, stamp))
    cached = verdict(repo)
    assert cached == verdict(repo, use_cache=False) and [d[0] for d in cached] == ["MLS201"]


@pytest.mark.parametrize(
    ("numeral", "codes"),
    [("0b101", ["MLS102"]), ("_5", ["MLS102"]), ("1__0", []), ("0x_5", [])],  # YAML 1.2 core: strings, ints
)
def test_numerals_the_yaml_parsers_read_differently_are_judged_the_same(
    repo: Path, numeral: str, codes: list[str]
) -> None:
    (repo / "specs" / "model.yaml").write_text(MODEL.replace("epochs: 2", f"epochs: {numeral}"))
    assert [d[0] for d in same(repo)] == codes


@pytest.mark.parametrize("glob", ["specs/[z-a].yaml", "../**/*.yaml", "/etc/**/*.yaml"])
def test_bad_or_escaping_globs_are_errors_on_the_project_file(
    repo: Path, glob: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "mlspec.yaml").write_text(f"specs: ['specs/**/*.yaml', '{glob}']\n")
    assert main(["-C", str(repo), "validate"]) == 1
    out = capsys.readouterr().out
    assert "mlspec.yaml: error[MLS300]" in out and "internal error" not in out


def test_a_paths_run_reports_only_on_what_it_was_asked(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text(DATASET)
    (repo / "specs" / "esc.yaml").symlink_to(outside)
    assert [d[0] for d in same(repo)] == ["MLS005"]
    assert same(repo, "specs/model.yaml") == []
    escaping = same(repo, "specs/esc.yaml")
    assert [(d[0], d[1]) for d in escaping] == [("MLS005", "specs/esc.yaml")]
