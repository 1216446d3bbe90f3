"""`mlspec lineage`: where a resource's data came from, and what uses it.

The pipeline under test is the smallest with both directions: Task/gen writes data/x.csv from gen.py,
Dataset/x reads that file, Task/train depends on the dataset. Lineage of Dataset/x must show the
dataset's version, rows and source digests, the upstream Task with the digests of its deps, and the
dependents (`used by:`), as text and as JSON, and say plainly when nothing is applied yet.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli import Result

Mlspec = Callable[..., Result]

PY = sys.executable
GEN = """\
import pathlib
pathlib.Path("data").mkdir(exist_ok=True)
pathlib.Path("data/x.csv").write_text("id,label\\n" + "".join(f"{i},{'ab'[i % 2]}\\n" for i in range(50)))
"""


def doc(kind: str, name: str, **spec: Any) -> str:
    return json.dumps({"apiVersion": "mlspec/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}) + "\n"


@pytest.fixture
def root(project: Callable[..., Path]) -> Path:
    return project({
        "gen.py": GEN,
        "specs/gen.yaml": doc("Task", "gen", cmd=[PY, "gen.py"], deps=["gen.py"], outs=["data/x.csv"]),
        "specs/x.yaml": doc("Dataset", "x", depends_on=["Task/gen"], source={"path": "data/x.csv", "format": "csv"}),
        "specs/train.yaml": doc("Task", "train", cmd=[PY, "-c", "pass"], depends_on=["Dataset/x"]),
    }, config="specs: ['specs/**/*.yaml']\n")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def state_show(mlspec: Mlspec, root: Path, address: str) -> dict[str, Any]:
    shown = mlspec(root, "state", "show", address, "--format", "json")
    assert shown.code == 0, shown.output
    result: dict[str, Any] = shown.json()
    return result


def test_before_any_apply_lineage_says_not_applied_yet(mlspec: Mlspec, root: Path) -> None:
    shown = mlspec(root, "lineage", "Dataset/x")
    assert shown.code == 0, shown.output
    assert shown.out.splitlines() == [
        "Dataset/x  (not applied yet)",
        "    Task/gen  (not applied yet)",
        "",
        "used by: Task/train",
    ]
    tree = mlspec(root, "lineage", "Dataset/x", "--format", "json").json()
    assert tree["applied"] is False and tree["from"][0]["applied"] is False and tree["used_by"] == ["Task/train"]


def test_lineage_shows_version_rows_sources_and_the_upstream_task_with_its_deps(mlspec: Mlspec, root: Path) -> None:
    assert mlspec(root, "apply", "-y").code == 0
    dataset, gen = state_show(mlspec, root, "Dataset/x"), state_show(mlspec, root, "Task/gen")
    version, data_sha, gen_sha = dataset["outputs"]["version"], sha256(root / "data/x.csv"), sha256(root / "gen.py")
    assert dataset["outputs"]["sources"] == {"data/x.csv": data_sha}

    shown = mlspec(root, "lineage", "Dataset/x")
    assert shown.code == 0, shown.output
    assert shown.out.splitlines() == [
        f"Dataset/x  fingerprint {dataset['fingerprint'][:12]}, version {version[:12]}, 50 rows",
        f"    data/x.csv  sha256 {data_sha[:12]}",
        f"    Task/gen  fingerprint {gen['fingerprint'][:12]}",
        f"        gen.py  sha256 {gen_sha[:12]}",
        "",
        "used by: Task/train",
    ]
    assert mlspec(root, "lineage", "x").out == shown.out, "a bare name finds the one resource so named"

    tree = mlspec(root, "lineage", "Dataset/x", "--format", "json").json()
    assert tree["format_version"] == "1"
    assert (tree["address"], tree["applied"], tree["status"]) == ("Dataset/x", True, "applied")
    assert (tree["fingerprint"], tree["version"], tree["rows"]) == (dataset["fingerprint"], version, 50)
    assert tree["files"] == {"data/x.csv": data_sha}
    [upstream] = tree["from"]
    assert (upstream["address"], upstream["fingerprint"]) == ("Task/gen", gen["fingerprint"])
    assert upstream["files"] == {"gen.py": gen_sha} and upstream["from"] == []
    assert tree["used_by"] == ["Task/train"]


def test_lineage_follows_a_change_of_the_data(mlspec: Mlspec, root: Path) -> None:
    assert mlspec(root, "apply", "-y").code == 0
    (root / "gen.py").write_text(GEN.replace("range(50)", "range(80)"))
    assert mlspec(root, "apply", "-y").code == 0
    tree = mlspec(root, "lineage", "Dataset/x", "--format", "json").json()
    assert tree["rows"] == 80 and tree["files"] == {"data/x.csv": sha256(root / "data/x.csv")}
    assert tree["from"][0]["files"] == {"gen.py": sha256(root / "gen.py")}


def test_lineage_of_the_end_of_the_pipeline_is_used_by_nothing(mlspec: Mlspec, root: Path) -> None:
    assert mlspec(root, "apply", "-y").code == 0
    shown = mlspec(root, "lineage", "Task/train")
    assert shown.code == 0, shown.output
    lines = shown.out.splitlines()
    assert lines[0].startswith("Task/train  fingerprint ")
    assert lines[1].startswith("    Dataset/x  fingerprint ") and "50 rows" in lines[1]
    assert lines[3].startswith("        Task/gen  fingerprint ")
    assert lines[-1] == "used by: nothing"


def test_an_unknown_address_is_an_error_with_a_suggestion(mlspec: Mlspec, root: Path) -> None:
    for wrong in ("Dataset/xx", "Dataset/y"):
        result = mlspec(root, "lineage", wrong)
        assert result.code == 1, result.output
        assert f"`{wrong}` is not in the specs; did you mean `Dataset/x`?" in result.err
        assert result.out == ""
