"""What `mlspec apply` draws while it works: a training step's own bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from mlspec.plan.model import Action, Step
from mlspec.render.progress import ApplyProgress

STEP = Step("Model/m", Action.CREATE, ("new resource",))


def test_a_training_bar_shows_loss_throughput_and_eta_then_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    monkeypatch.setattr("rich.console.Console", lambda **_: Console(file=screen, force_terminal=True, width=160))
    with ApplyProgress(1, fancy=True) as progress:
        progress.event("started", STEP, "")
        meter = progress.meter("Model/m")
        meter(30, 120, "loss 0.4100 · 1,234 samples/s")
        tasks = progress._progress.tasks
        bar = next(t for t in tasks if t.fields["what"].strip() == "Model/m")
        assert (bar.completed, bar.total, bar.description) == (30, 120, "loss 0.4100 · 1,234 samples/s")
        meter(120, 120, "loss 0.2000 · 1,300 samples/s")
        assert [t.fields["what"] for t in progress._progress.tasks] == ["apply"]  # finished: its bar is gone
        progress.event("held", STEP, "gate `f1 >= 0.9` failed")
    assert "Model/m: created" in screen.getvalue() and "held: gate `f1 >= 0.9` failed" in screen.getvalue()


def test_plain_output_ignores_the_meter_and_says_what_was_held(capsys: pytest.CaptureFixture[str]) -> None:
    with ApplyProgress(2, fancy=False) as progress:
        progress.meter("Model/m")(1, 10, "loss 1.0")
        progress.event("held", STEP, "gate `f1 >= 0.9` failed")
        progress.event("withheld", Step("Service/api", Action.REPLACE, ()), "upstream Model/m was held")
    err = capsys.readouterr().err
    assert "loss 1.0" not in err
    assert "Model/m: created (0.0s), held: gate `f1 >= 0.9` failed" in err
    assert "Service/api: withheld (upstream Model/m was held)" in err
