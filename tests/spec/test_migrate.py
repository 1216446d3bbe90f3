"""`mlspec migrate`: older specs become current ones, and nothing else in the file moves."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlspec.cli import main
from mlspec.spec.migrate import migrate_text

OLD = """\
# A model from the old days
apiVersion: "mlspec/v1alpha1"   # quoted, with a comment
kind: Model
metadata: {name: m}
spec:
  task: text-classification
  dataset: reviews
  label: label
  architecture: {family: bert, config: {hidden_size: 32}}
  hyperparameters:
    lr: 0.001     # tuned by hand
    epochs: 2
---
apiVersion: mlspec/v1alpha1
kind: Task
metadata:
  name: t
spec:
  'command': [python, x.py]
  params: {lr: 1}        # a Task's own params are not hyperparameters: kept
"""
DATASET = """\
apiVersion: mlspec/v1
kind: Dataset
metadata: {name: reviews}
spec:
  source: {path: data/r.csv, format: csv}
  schema:
    columns: {text: {type: string}, label: {type: category}}
"""


def test_only_the_renamed_keys_and_the_api_version_change() -> None:
    result = migrate_text(OLD, "specs/m.yaml")
    assert not result.problems
    assert result.after == (
        OLD.replace('"mlspec/v1alpha1"', '"mlspec/v1"').replace("apiVersion: mlspec/v1alpha1", "apiVersion: mlspec/v1")
        .replace("    lr: 0.001", "    learning_rate: 0.001").replace("'command'", "'cmd'")
    )
    assert "Model/m: spec.hyperparameters.lr -> learning_rate" in result.applied


def test_current_specs_are_left_byte_for_byte() -> None:
    assert migrate_text(DATASET, "specs/d.yaml").after == DATASET


def test_both_old_and_new_key_is_refused_and_nothing_is_written() -> None:
    text = OLD.replace("    epochs: 2", "    epochs: 2\n    learning_rate: 0.1")
    result = migrate_text(text, "specs/m.yaml")
    assert result.after == text and "both set" in result.problems[0]


def test_invalid_yaml_is_reported_not_touched() -> None:
    result = migrate_text("apiVersion: mlspec/v1alpha1\nkind: [\n", "specs/x.yaml")
    assert result.after == result.before and "not valid YAML" in result.problems[0]


def test_the_command_migrates_in_place_and_validate_then_passes(
    project: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project({"specs/m.yaml": OLD, "specs/d.yaml": DATASET})
    assert main(["-C", str(root), "validate"]) == 1  # v1alpha1 is not read
    assert "mlspec migrate" in capsys.readouterr().out

    assert main(["-C", str(root), "migrate", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "-    lr: 0.001     # tuned by hand" in out and "+    learning_rate: 0.001     # tuned by hand" in out
    assert (root / "specs" / "m.yaml").read_text() == OLD  # a dry run writes nothing

    assert main(["-C", str(root), "migrate"]) == 0
    assert "migrated specs/m.yaml" in capsys.readouterr().out
    assert main(["-C", str(root), "validate"]) == 0
    assert main(["-C", str(root), "migrate"]) == 0  # idempotent
    assert "already current" in capsys.readouterr().out


def test_a_missing_path_is_an_error(project: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    root = project({"specs/d.yaml": DATASET})
    assert main(["-C", str(root), "migrate", str(root / "nope.yaml")]) == 1
    assert "no such file or directory" in capsys.readouterr().err


def test_a_symlinked_spec_is_migrated_where_it_points_and_stays_a_link(project: Callable[..., Path]) -> None:
    root = project({"shared/m.yaml": OLD, "specs/d.yaml": DATASET})
    (root / "specs" / "m.yaml").symlink_to("../shared/m.yaml")
    assert main(["-C", str(root), "migrate"]) == 0
    assert (root / "specs" / "m.yaml").is_symlink()
    assert "apiVersion: mlspec/v1\n" in (root / "shared" / "m.yaml").read_text()
