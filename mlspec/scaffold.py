"""`mlspec init`: a new spec repo that validates, with pre-commit and CI already wired."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlspec import __version__
from mlspec.errors import MlspecError

PROJECT_FILE = """\
# mlspec project file. Every setting has a default; see `mlspec schema` for the full reference.
# yaml-language-server: $schema=schemas/project.schema.json
specs:
  - "specs/**/*.yaml"
limits:
  max_file_bytes: 1048576
state:
  backend: local          # .mlspec/state.db; teams point this at postgres
artifacts:
  url: .mlspec/artifacts  # or s3://bucket/prefix
"""

DATASET = """\
# yaml-language-server: $schema=../schemas/spec.schema.json
apiVersion: mlspec/v1
kind: Dataset
metadata:
  name: reviews
  owner: team-ml
spec:
  source:
    path: data/reviews.csv
    format: csv
  schema:
    columns:
      text: {type: string, nullable: false}
      label: {type: category, allowed: [negative, positive]}
  checks:
    min_rows: 100
    max_duplicate_fraction: 0.05
  splits:
    ratios: {train: 0.8, validation: 0.1, test: 0.1}
    seed: 13
    stratify_by: label
"""

MODEL = """\
# yaml-language-server: $schema=../schemas/spec.schema.json
apiVersion: mlspec/v1
kind: Model
metadata:
  name: sentiment
  owner: team-ml
spec:
  task: text-classification
  dataset: reviews
  label: label
  features: [text]
  architecture:
    family: bert
    config: {hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 2}
  hyperparameters:
    learning_rate: 0.0005
    batch_size: 32
    epochs: 2
  evaluation:
    metrics: [accuracy, f1]
    gates: ["f1 >= 0.70"]
"""

PRE_COMMIT = """\
# mlspec validate runs on every commit touching YAML; it validates the whole spec set (references
# cross files) as the commit will hold it (--staged: git's index, not the work tree), and caches
# unchanged files under .mlspec/, so it stays fast on large repos.
repos:
  - repo: local
    hooks:
      - id: mlspec-validate
        name: mlspec validate
        entry: mlspec validate --staged
        language: system
        pass_filenames: false
        files: '(\\.ya?ml)$'
"""

def _template(name: str) -> str:
    from importlib.resources import files

    return files("mlspec").joinpath("templates", name).read_text("utf-8")


GITIGNORE = """\
# mlspec's local state, caches and artifacts
.mlspec/
# what the CI plan job writes
plan.md
plan.err
plan.code
"""


@dataclass(frozen=True)
class Created:
    path: Path
    skipped: bool


EXTRAS = "torch,onnx,postgres,s3"  # what a team's CI needs: training, optimization, shared state and artifacts
EXAMPLE_INSTALL = f"mlspec[{EXTRAS}] @ git+https://github.com/YOUR-ORG/mlspec@v{__version__}"


def install_requirement(extras: str = EXTRAS) -> str:
    """What installs this very mlspec on a CI runner, with `extras`: a direct reference (PEP 440 `@`),
    since the name `mlspec` alone on the package index is another project. Read from how this copy
    was installed (PEP 610's direct_url.json): a git install pins its commit; a local checkout pins
    its origin and HEAD; otherwise the example, for the team to point at where it keeps mlspec."""
    import json
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        raw = distribution("mlspec").read_text("direct_url.json")
    except PackageNotFoundError:
        raw = None
    info = json.loads(raw) if raw else {}
    vcs = info.get("vcs_info") or {}
    if vcs.get("vcs") == "git" and vcs.get("commit_id"):
        return f"mlspec[{extras}] @ git+{info['url']}@{vcs['commit_id']}"
    if "archive_info" in info and str(info.get("url", "")).startswith(("https://", "http://")):
        return f"mlspec[{extras}] @ {info['url']}"
    url = str(info.get("url", ""))
    if url.startswith("file://"):
        found = _origin_of(Path(url.removeprefix("file://")))
        if found is not None:
            return f"mlspec[{extras}] @ git+{found[0]}@{found[1]}"
    return EXAMPLE_INSTALL.replace(f"[{EXTRAS}]", f"[{extras}]")


def _origin_of(checkout: Path) -> tuple[str, str] | None:
    """(origin URL, HEAD commit) of a local checkout whose origin a runner can reach (https or ssh)."""
    import subprocess

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    origin, head = git("remote", "get-url", "origin"), git("rev-parse", "HEAD")
    if origin.startswith(("https://", "ssh://", "git@")) and head:
        return origin.removesuffix(".git") + ".git", head
    return None


def init(directory: Path, *, force: bool = False, install: str | None = None) -> list[Created]:
    from mlspec import schemas

    if directory.exists() and not directory.is_dir():
        raise MlspecError(f"{directory} exists and is not a directory")
    files = {
        "mlspec.yaml": PROJECT_FILE,
        "specs/reviews.dataset.yaml": DATASET,
        "specs/sentiment.model.yaml": MODEL,
        ".pre-commit-config.yaml": PRE_COMMIT,
        ".github/workflows/mlspec.yml": _template("github-actions.yml").replace(
            "__MLSPEC_INSTALL__", install or install_requirement()),
        ".gitignore": GITIGNORE,
    }
    files.update({f"schemas/{name}": schemas.dumps(schema) for name, schema in schemas.generate().items()})
    out = []
    for rel, text in files.items():
        path = directory / rel
        if path.exists() and not force:
            out.append(Created(path, skipped=True))
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, "utf-8")
        except OSError as err:
            raise MlspecError(f"cannot write {path}: {err.strerror or err}") from err
        out.append(Created(path, skipped=False))
    return out
