"""Start-up cost: `mlspec validate` is a pre-commit hook, so it must load nothing it does not need.

Each check runs in a fresh interpreter (this test process has imported everything already) and
reports the modules loaded as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

# Heavy or optional: plugins only (torch, transformers, tensorrt, bentoml), the graph library only for
# graph queries (networkx), JSON Schema only for the schema tooling (jsonschema), and no rich output.
MUST_NOT_LOAD = ("torch", "transformers", "tensorrt", "bentoml", "networkx", "jsonschema", "rich")

DATASET = """\
apiVersion: mlspec/v1
kind: Dataset
metadata: {name: reviews}
spec:
  source: {path: data/reviews.csv, format: csv}
  schema: {columns: {text: {type: string}, label: {type: category}}}
  splits: {ratios: {train: 0.8, validation: 0.1, test: 0.1}}
"""
MODEL = """\
apiVersion: mlspec/v1
kind: Model
metadata: {name: sentiment}
spec:
  task: text-classification
  dataset: reviews
  label: label
  features: [text]
  architecture: {family: bert}
"""
# Two tasks that depend on each other: the cycle check must not need networkx either.
CYCLE = """\
apiVersion: mlspec/v1
kind: Task
metadata: {name: a}
spec: {cmd: [x], depends_on: [b]}
---
apiVersion: mlspec/v1
kind: Task
metadata: {name: b}
spec: {cmd: [x], depends_on: [Task/a]}
"""


def loaded_after(code: str, cwd: Path) -> dict[str, object]:
    """Run `code` in a fresh interpreter; it must leave `result`; returns it with the top-level modules."""
    script = textwrap.dedent(code) + textwrap.dedent(
        """
        import json, sys
        print(json.dumps({"result": result, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def heavy(modules: object) -> list[str]:
    assert isinstance(modules, list)
    return sorted(set(modules) & set(MUST_NOT_LOAD))


def test_importing_the_cli_loads_only_click(tmp_path: Path) -> None:
    report = loaded_after("import mlspec.cli\nresult = None", tmp_path)
    assert heavy(report["modules"]) == []
    assert "pydantic" not in report["modules"]  # kinds load when a command needs them
    assert "ruamel" not in report["modules"]


@pytest.mark.parametrize(
    ("files", "exit_code"),
    [
        ({"specs/data.yaml": DATASET, "specs/model.yaml": MODEL}, 0),
        ({"specs/data.yaml": DATASET, "specs/model.yaml": MODEL.replace("label: label", "lable: label")}, 1),
        ({"specs/tasks.yaml": CYCLE}, 1),
    ],
    ids=["valid", "invalid", "cycle"],
)
def test_validate_loads_nothing_heavy(
    project: Callable[..., Path], files: dict[str, str], exit_code: int
) -> None:
    root = project(files)
    report = loaded_after(
        """
        import contextlib, io
        from mlspec.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            result = main(["validate", "--no-cache"])
        """,
        root,
    )
    assert report["result"] == exit_code
    assert heavy(report["modules"]) == []


def test_the_version_and_help_paths_stay_light(tmp_path: Path) -> None:
    report = loaded_after(
        """
        import contextlib, io
        from mlspec.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            result = [main(["--help"]), main(["validate", "--help"]), main(["version"])]
        """,
        tmp_path,
    )
    assert report["result"] == [0, 0, 0]
    assert heavy(report["modules"]) == []
    assert "pydantic" not in report["modules"]


def test_plugins_import_only_the_sdk_of_mlspec() -> None:
    """The boundary of docs/architecture.md, read from the source (the import-linter contract in
    pyproject.toml says the same, module by module): a built-in plugin is written like anyone's."""
    import ast

    plugins = Path(__file__).resolve().parents[1] / "plugins"
    found = []
    for path in sorted(plugins.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if (name == "mlspec" or name.startswith("mlspec.")) and not name.startswith("mlspec.sdk"):
                    found.append(f"{path.relative_to(plugins)}:{node.lineno} {name}")
    assert found == []
