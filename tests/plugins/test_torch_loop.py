"""The shared training loop: an interrupted run resumes to exactly the weights of one that never
stopped; NaN stops training and says where; checkpoints are kept as asked."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from mlspec_torch.loop import LoopSettings, TrainingFailed, total_steps, train  # noqa: E402

from mlspec.sdk import StepInterrupted  # noqa: E402

ROWS, BATCH = 256, 16


def data() -> tuple[Any, Any]:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(ROWS, 8, generator=generator)
    return inputs, (inputs[:, 0] > 0).long()


def batches_of(stop_after: int | None = None, event: threading.Event | None = None):  # type: ignore[no-untyped-def]
    inputs, labels = data()
    seen = [0]

    def batches(epoch: int) -> Iterator[tuple[Any, ...]]:
        order = torch.randperm(ROWS, generator=torch.Generator().manual_seed(1000 + epoch))  # a function of epoch
        for start in range(0, ROWS, BATCH):
            seen[0] += 1
            if stop_after is not None and event is not None and seen[0] > stop_after:
                event.set()
            index = order[start : start + BATCH]
            yield inputs[index], labels[index]

    return batches


def model() -> Any:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(16, 2))


def loss_of(net: Any, batch: tuple[Any, ...]) -> Any:
    return torch.nn.functional.cross_entropy(net(batch[0]), batch[1])


SETTINGS = LoopSettings(learning_rate=0.01, epochs=3, batch_size=BATCH, checkpoint_every=5, keep_checkpoints=2,
                        warmup_ratio=0.1, seed=7)


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    whole = model()
    done = train(whole, batches_of(), ROWS // BATCH, loss_of, SETTINGS, torch.device("cpu"), tmp_path / "a",
                 log=lambda _: None)
    assert done.steps == total_steps(SETTINGS, ROWS // BATCH) == 48 and done.resumed_from is None

    stop = threading.Event()
    first = model()
    with pytest.raises(StepInterrupted, match="stopped at step"):
        train(first, batches_of(stop_after=23, event=stop), ROWS // BATCH, loss_of, SETTINGS, torch.device("cpu"),
              tmp_path / "b", log=lambda _: None, cancelled=stop)
    logged: list[str] = []
    again = model()  # a new process would start from fresh weights: the checkpoint restores them
    resumed = train(again, batches_of(), ROWS // BATCH, loss_of, SETTINGS, torch.device("cpu"), tmp_path / "b",
                    log=logged.append)
    assert resumed.resumed_from == 23 and logged[0] == "resuming from step 23 of 48"
    for a, b in zip(whole.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert len(list((tmp_path / "b").glob("step-*.pt"))) == 2  # keep_checkpoints


def test_a_nan_loss_stops_training_and_says_where(tmp_path: Path) -> None:
    def nan_loss(net: Any, batch: tuple[Any, ...]) -> Any:
        return loss_of(net, batch) * float("nan")

    with pytest.raises(TrainingFailed, match=r"the loss became nan at step 1 \(epoch 1, batch 1\)"):
        train(model(), batches_of(), ROWS // BATCH, nan_loss, SETTINGS, torch.device("cpu"), tmp_path,
              log=lambda _: None)


def test_max_steps_and_accumulation_count_optimizer_steps(tmp_path: Path) -> None:
    settings = LoopSettings(learning_rate=0.01, epochs=5, batch_size=BATCH, gradient_accumulation_steps=4,
                            max_steps=7, checkpoint_every=100)
    done = train(model(), batches_of(), ROWS // BATCH, loss_of, settings, torch.device("cpu"), tmp_path,
                 log=lambda _: None, metrics=tmp_path / "metrics.jsonl")
    assert done.steps == 7 and done.samples == 7 * 4 * BATCH
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 7


def test_on_a_gpu_the_loss_is_read_in_batches_and_a_nan_still_names_its_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a CUDA run does (losses stay on the device, read every few steps), taken on the CPU."""
    import mlspec_torch.loop as loop

    monkeypatch.setattr(loop, "reads_loss_each_step", lambda device: False)
    calls = {"n": 0}

    def late_nan(net: Any, batch: tuple[Any, ...]) -> Any:
        calls["n"] += 1
        return loss_of(net, batch) * (float("nan") if calls["n"] == 3 else 1.0)

    with pytest.raises(TrainingFailed, match=r"the loss became nan at step 3 \(epoch 1, batch 3\)"):
        train(model(), batches_of(), ROWS // BATCH, late_nan, SETTINGS, torch.device("cpu"), tmp_path,
              log=lambda _: None, metrics=tmp_path / "m.jsonl")
    logged = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [row["step"] for row in logged] == [1, 2]  # the steps before it, each with its loss
    assert not list(tmp_path.glob("step-*.pt"))  # nothing trained past the NaN was saved
