"""Capabilities, not kind names: a chain Dataset -> Model -> Optimization -> Service of stub plugins that
declare what the core must know (a registry, gates, serving, a replace order), and the core treating
them so without knowing what any of those kinds is."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli import Result

STUBS = textwrap.dedent('''
    from __future__ import annotations

    from typing import ClassVar

    from mlspec.sdk import (API_VERSION, CANDIDATE, Capabilities, DatasetOutputs, Diff, Estimate, ModelOutputs,
                            Observation, OptimizationOutputs, ReplaceOrder, ServiceOutputs, StepResult, Version)


    def log(request, what):
        with open(request.workdir / "calls.log", "a") as fh:
            fh.write(f"{what} {request.address} {request.fingerprint[:8]}\\n")


    class Stub:
        api_version: ClassVar[int] = API_VERSION
        version: ClassVar[str] = "1"
        settings_model: ClassVar[None] = None

        def validate(self, resource):
            return ()

        def inputs(self, resource, context):
            verdict = context.workdir / "verdict.txt"  # what the stub Model's gates will say
            return {"verdict": verdict.read_text()} if verdict.exists() and resource.kind == "Model" else {}

        def refresh(self, resource, state, context):
            return Observation(exists=True)

        def diff(self, resource, before, after):
            return Diff.replacing(before, after)

        def destroy(self, request, runtime):
            log(request, "destroy")

        def estimate(self, resource, previous):
            return Estimate(seconds=0.0)


    class Data(Stub):
        name: ClassVar[str] = "stub-data"
        capabilities: ClassVar[Capabilities] = Capabilities(publishes=DatasetOutputs)

        def apply(self, request, runtime):
            log(request, "apply")
            return StepResult({"version": "v1", "rows": 10, "splits": {}})


    class Trainer(Stub):
        name: ClassVar[str] = "stub-model"
        capabilities: ClassVar[Capabilities] = Capabilities(
            publishes=ModelOutputs, registers_versions=True, gates_dependents=True)

        def apply(self, request, runtime):
            log(request, "apply")
            passed = (request.workdir / "verdict.txt").read_text().strip() == "pass"
            outputs = {"digest": request.fingerprint, "metrics": {"f1": 0.9 if passed else 0.1},
                       "gates": [] if (request.workdir / "ungated").exists() else [{"gate": "f1 >= 0.5"}]}
            if passed:
                return StepResult(outputs, Version({**outputs, "gates_passed": True}, ("champion",)))
            return StepResult(outputs, Version({**outputs, "gates_passed": False}, (CANDIDATE,)),
                              held="gate `f1 >= 0.5` failed (f1 0.1, short by 0.4)")


    class Optimizer(Stub):
        name: ClassVar[str] = "stub-opt"
        capabilities: ClassVar[Capabilities] = Capabilities(publishes=OptimizationOutputs)

        def apply(self, request, runtime):
            log(request, "apply")
            model = request.published("Model/sentiment", ModelOutputs)
            return StepResult({"digest": "o-" + model.digest, "format": "onnx", "source_digest": model.digest})


    class Server(Stub):
        name: ClassVar[str] = "stub-serve"
        capabilities: ClassVar[Capabilities] = Capabilities(
            publishes=ServiceOutputs, serves=True, replace_order=ReplaceOrder.CREATE_BEFORE_DESTROY)

        def apply(self, request, runtime):
            log(request, "apply")
            return StepResult({"url": "http://127.0.0.1:3311", "digest": request.fingerprint})
''')

CONFIG = """\
specs: ["specs/**/*.yaml"]
plugin_for: {Dataset: mlspec-stubs, Model: mlspec-stubs, Optimization: mlspec-stubs, Service: mlspec-stubs}
policies:
  gated_serving: true
"""
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
OPTIMIZATION = """\
apiVersion: mlspec/v1
kind: Optimization
metadata: {name: sentiment-onnx}
spec: {model: sentiment, target: onnxruntime, precision: fp32}
"""
SERVICE = """\
apiVersion: mlspec/v1
kind: Service
metadata: {name: sentiment-api, labels: {tier: gold}}
spec: {model: Optimization/sentiment-onnx, runtime: bentoml, host: 127.0.0.1, port: PORT}
"""


@pytest.fixture
def chain(tmp_path: Path, project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site"
    (site / "mlspec_stubs").mkdir(parents=True)
    (site / "mlspec_stubs" / "__init__.py").write_text(STUBS)
    info = site / "mlspec_stubs-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlspec-stubs\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[mlspec.plugins]\nDataset = mlspec_stubs:Data\nModel = mlspec_stubs:Trainer\n"
                                          "Optimization = mlspec_stubs:Optimizer\nService = mlspec_stubs:Server\n")
    monkeypatch.syspath_prepend(str(site))
    root = project({"specs/data.yaml": DATASET, "specs/model.yaml": MODEL, "specs/opt.yaml": OPTIMIZATION,
                    "specs/service.yaml": SERVICE.replace("PORT", "3311"), "data/reviews.csv": "text,label\n",
                    "verdict.txt": "pass\n"}, config=CONFIG)
    yield root
    for name in [m for m in sys.modules if m.startswith("mlspec_stubs")]:
        del sys.modules[name]


def calls(root: Path) -> list[str]:
    return [" ".join(line.split()[:2]) for line in (root / "calls.log").read_text().splitlines()]


def test_a_replace_order_is_in_the_plan_and_the_apply_follows_it(chain: Path, mlspec: Callable[..., Result]) -> None:
    assert mlspec(chain, "apply", "-y").code == 0
    (chain / "specs/service.yaml").write_text(SERVICE.replace("PORT", "3312"))
    plan = mlspec(chain, "plan", "--format", "json").json()
    step = next(s for s in plan["steps"] if s["address"] == "Service/sentiment-api")
    assert step["action"] == "replace" and step["replace_order"] == "create_before_destroy"
    assert "Service/sentiment-api  replace (create before destroy)" in mlspec(chain, "plan").out
    (chain / "calls.log").unlink()
    assert mlspec(chain, "apply", "-y").code == 0
    assert calls(chain) == ["apply Service/sentiment-api", "destroy Service/sentiment-api"]  # no gap in serving


def test_a_held_version_leaves_the_chain_and_registry_commands_take_any_registering_kind(
    chain: Path, mlspec: Callable[..., Result]
) -> None:
    assert mlspec(chain, "apply", "-y").code == 0
    (chain / "verdict.txt").write_text("fail\n")
    (chain / "calls.log").unlink()
    held = mlspec(chain, "apply", "-y")
    assert held.code == 0 and "held: Model/sentiment" in held.out, held.output
    assert calls(chain) == ["apply Model/sentiment"]  # the Optimization and the Service keep what they had
    assert mlspec(chain, "plan", "--detailed-exitcode").code == 0
    promoted = mlspec(chain, "promote", "sentiment", "2", "--force", "--reason", "ok")  # a bare name: the one with it
    assert promoted.code == 0 and "Model/sentiment: champion v1 -> v2" in promoted.out, promoted.output
    plan = mlspec(chain, "plan")
    assert "because Model/sentiment's champion is now version 2" in plan.out, plan.out


def test_a_cutoff_through_a_model_leaves_nothing_to_do_next_time(chain: Path, mlspec: Callable[..., Result]) -> None:
    """The Dataset re-runs and hands on the same content: the Model (which registers versions) and
    everything built on it are cut off, and the next plan is empty. The dependents' fingerprints are
    committed as built on the Model's champion, which the cut-off run did not move."""
    assert mlspec(chain, "apply", "-y").code == 0
    (chain / "specs/data.yaml").write_text(DATASET.replace("test: 0.1}}", "test: 0.1}, seed: 9}"))
    (chain / "calls.log").unlink()
    applied = mlspec(chain, "apply", "-y")
    assert applied.code == 0, applied.output
    assert "3 steps cut off: Dataset/reviews came out unchanged" in applied.out, applied.out
    assert calls(chain) == ["apply Dataset/reviews"]
    again = mlspec(chain, "plan", "--detailed-exitcode")
    assert again.code == 0, again.output


def test_gated_serving_refuses_a_model_no_gate_judged_unless_the_service_allows_it(
    chain: Path, mlspec: Callable[..., Result]
) -> None:
    (chain / "ungated").write_text("")
    first = mlspec(chain, "apply", "-y")  # nothing was applied when it planned: apply checks what the Model made
    assert first.code == 1
    assert "Service/sentiment-api would serve Model/sentiment, whose champion passed no gate" in first.out, first.out
    (chain / "specs/service.yaml").write_text(SERVICE.replace("PORT", "3312"))
    refused = mlspec(chain, "plan")
    assert refused.code == 1
    assert ("Service/sentiment-api would serve Model/sentiment, whose champion passed no gate: it has no evaluation "
            "gates") in refused.err, refused.output
    assert "set `allow_ungated: true` on Service/sentiment-api" in refused.err
    (chain / "specs/service.yaml").write_text(SERVICE.replace("PORT", "3312, allow_ungated: true"))
    allowed = mlspec(chain, "plan")
    assert allowed.code == 0, allowed.output


def test_gated_serving_follows_the_whole_upstream_chain(chain: Path, mlspec: Callable[..., Result]) -> None:
    """The Service is two hops from the Model: a Model without a champion still gates it."""
    from mlspec.state.local import LocalStateStore
    from mlspec.state.model import ResourceState

    assert mlspec(chain, "apply", "-y").code == 0
    store = LocalStateStore(chain / ".mlspec" / "state.db")
    try:
        with store.lock("test"):
            model = store.get("Model/sentiment")
            assert model is not None
            store.commit(ResourceState(model.address, model.fingerprint, model.spec,
                                       {**model.outputs, "champion": None}, model.status))
    finally:
        store.close()
    (chain / "specs/service.yaml").write_text(SERVICE.replace("PORT", "3312"))
    refused = mlspec(chain, "plan")
    assert refused.code == 1
    assert "Service/sentiment-api would serve Model/sentiment, which has no champion" in refused.err, refused.output


def test_what_a_kind_publishes_is_checked_when_its_step_returns(
    chain: Path, tmp_path: Path, mlspec: Callable[..., Result]
) -> None:
    """An Optimization that leaves out `format` breaks its own promise: its step fails, naming the field."""
    stubs = tmp_path / "site" / "mlspec_stubs" / "__init__.py"
    stubs.write_text(stubs.read_text().replace('"format": "onnx", ', ""))
    failed = mlspec(chain, "apply", "-y")
    assert failed.code == 1
    assert "did not publish a valid OptimizationOutputs: format: Field required" in failed.output, failed.output



def test_promoting_a_version_that_failed_its_gates_needs_force_and_a_reason(
    chain: Path, mlspec: Callable[..., Result]
) -> None:
    assert mlspec(chain, "apply", "-y").code == 0
    (chain / "verdict.txt").write_text("fail\n")
    assert mlspec(chain, "apply", "-y").code == 0  # version 2, held
    refused = mlspec(chain, "promote", "Model/sentiment", "v2")
    assert refused.code == 1 and "version 2 failed" in refused.err and "--force" in refused.err, refused.output
    no_reason = mlspec(chain, "promote", "Model/sentiment", "v2", "--force")
    assert no_reason.code == 1 and "--force needs --reason" in no_reason.err
    forced = mlspec(chain, "promote", "Model/sentiment", "v2", "--force", "--reason", "recalibrated gate, see #812")
    assert forced.code == 0, forced.output
    history = mlspec(chain, "models", "show", "Model/sentiment", "--format", "json").json()["history"]
    assert history[-1] | {"at": ""} == {"alias": "champion", "from": 1, "to": 2, "how": "promote", "at": "",
                                        "why": "recalibrated gate, see #812", "forced": True}
    from mlspec.audit.log import AuditLog

    last = list(AuditLog(chain).entries())[-1]
    assert last["event"] == "registry.promote" and last["forced"] is True and last["reason"].startswith("recal")
