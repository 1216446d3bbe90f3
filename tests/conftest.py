"""Shared fixtures. Tests never reach the network or a model hub."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli import Result, invoke

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("NO_COLOR", "1")

# What would make provenance (who, branch, CI) or git itself depend on where the tests run.
CI_ENVIRONMENT = ("MLSPEC_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILDKITE_BUILD_CREATOR", "GITHUB_HEAD_REF",
                  "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME", "BUILDKITE_BRANCH", "GITHUB_RUN_ID", "CI_PIPELINE_ID", "CI",
                  "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL",
                  "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL")

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def _no_ci_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same results on a laptop and in CI, whose runner sets CI, GITHUB_ACTOR and friends."""
    for variable in CI_ENVIRONMENT:
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def mlspec(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """mlspec(root, "plan", ...) -> Result: the CLI in-process, run in `root` (-C), never a traceback."""
    return lambda root, *args: invoke(capsys, *args, root=root)


@pytest.fixture
def project(tmp_path: Path) -> Callable[..., Path]:
    """Write files into a fresh project directory: project({"specs/a.yaml": "..."}) -> root."""

    def make(files: dict[str, str | bytes], config: str | None = None) -> Path:
        root = tmp_path / "repo"
        root.mkdir(exist_ok=True)
        if config is not None:
            (root / "mlspec.yaml").write_text(config)
        for rel, content in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        return root

    return make
