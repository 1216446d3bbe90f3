"""The Model plugin on an NVIDIA GPU: bf16 autocast on CUDA, and DDP through torchrun on one GPU.

Marked `gpu`: skipped where torch sees no CUDA device (CI). Run on a GPU machine with
`python -m pytest -m gpu tests/plugins/test_torch_gpu.py`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.cli import Result  # noqa: E402
from tests.plugins.test_torch_plugin import CONFIG, churn, outputs  # noqa: E402
from tests.plugins.test_torch_training import DATASET, TABULAR, TEXT, reviews  # noqa: E402

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")]
Mlspec = Callable[..., Result]


@pytest.fixture(autouse=True)
def _python_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def test_a_tiny_bert_trains_on_cuda_in_bf16(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    spec = TEXT.replace("  evaluation:", "  resources: {accelerator: cuda, precision: bf16}\n  evaluation:")
    root = project({"specs/reviews.yaml": DATASET.format(name="reviews"), "data/reviews.csv": reviews(),
                    "specs/sentiment.yaml": spec}, config=CONFIG)
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    out = outputs(mlspec, root, "Model/sentiment")
    assert out["device"] == torch.cuda.get_device_name(0) and out["gpu_hours"] > 0
    assert out["metrics"]["accuracy"] >= 0.9 and out["gates_passed"]


def test_ddp_through_torchrun_on_one_gpu(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    spec = TABULAR.replace("  evaluation:",
                           "  resources: {accelerator: cuda, gpus: 1, launcher: torchrun}\n  evaluation:")
    root = project({**churn(), "specs/churn.yaml": spec}, config=CONFIG)
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    out = outputs(mlspec, root, "Model/churn")
    assert out["device"] == torch.cuda.get_device_name(0) and out["gates_passed"], out
