"""Shared fixtures. Tests never reach the network or a model hub."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("NO_COLOR", "1")

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


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
