"""The plugin contract, exercised with the complete example plugin of docs/plugins.md, installed."""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from mlspec.digests import FileDigests
from mlspec.discovery import PluginError, Registry
from mlspec.sdk import API_VERSION, PlanContext, Runtime, StepRequest
from mlspec.spec.specset import load_specs
from tests.conftest import REPO

TASK = "apiVersion: mlspec/v1\nkind: Task\nmetadata: {name: greet}\nspec: {cmd: [echo], outs: [out/hello.txt]}\n"


def install(site: Path, package: str, code: str, entry_points: str) -> None:
    """A real installed distribution: importlib.metadata finds it as it finds pip-installed ones."""
    (site / package).mkdir(parents=True)
    (site / package / "__init__.py").write_text(code)
    info = site / f"{package}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    yield path
    for name in [m for m in sys.modules if m.startswith(("mlspec_hello", "mlspec_other"))]:
        del sys.modules[name]


def documented_plugin() -> str:
    doc = (REPO / "docs" / "plugins.md").read_text()
    return re.search(r"```python\n(# mlspec_hello/__init__.py\n.*?)```", doc, re.S).group(1)  # type: ignore[union-attr]


def test_the_documented_plugin_installs_and_runs(site: Path, project: Callable[..., Path]) -> None:
    install(site, "mlspec_hello", documented_plugin(), '[mlspec.plugins]\nTask = mlspec_hello:HelloPlugin\n')
    registry = Registry(prefer={"Task": "mlspec-hello"})  # the built-in Task plugin is installed too
    plugin = registry.for_kind("Task")
    assert (plugin.name, plugin.version, plugin.api_version) == ("hello", "0.1.0", API_VERSION)
    assert registry.for_kind("Task") is plugin  # loaded once

    root = project({"specs/greet.yaml": TASK})
    resource = load_specs(root).resources["Task/greet"]
    assert list(plugin.validate(resource)) == []
    lines: list[str] = []
    result = plugin.apply(StepRequest(resource, {}, None, root, str(root / ".mlspec" / "artifacts")),
                          Runtime(log=lines.append))
    outputs = dict(result.outputs)
    assert lines == ["Task/greet: wrote out/hello.txt"]
    assert (root / "out" / "hello.txt").read_text() == "hello from Task/greet\n"
    assert plugin.estimate(resource, None).seconds == 0.01
    diff = plugin.diff(resource, {"cmd": ["echo"]}, {"cmd": ["echo", "hi"]})
    assert diff.forces_replace and diff.changes[0].path == "spec.cmd"

    from mlspec.state import ResourceState

    state = ResourceState("Task/greet", "fp", {}, outputs)
    with FileDigests(None) as digests:
        context = PlanContext(root, digests)
        assert plugin.refresh(resource, state, context).exists
        plugin.destroy(StepRequest(resource, {}, state, root, ""), Runtime())
        observed = plugin.refresh(resource, state, context)
    assert not observed.exists and observed.drift is not None and "deleted" in observed.drift


def test_the_documented_plugin_applies_through_the_engine(
    site: Path, project: Callable[..., Path], mlspec: Callable[..., Any]
) -> None:
    """The same code, chosen in mlspec.yaml over the built-in Task plugin, planned and applied by `mlspec apply`."""
    install(site, "mlspec_hello", documented_plugin(), '[mlspec.plugins]\nTask = mlspec_hello:HelloPlugin\n')
    root = project({"specs/greet.yaml": TASK}, config="plugin_for: {Task: mlspec-hello}\n")
    applied = mlspec(root, "apply", "-y", "--allow-dirty", "--format", "json")
    assert applied.code == 0, applied.output
    assert (root / "out" / "hello.txt").read_text() == "hello from Task/greet\n"
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0


def test_two_plugins_claiming_one_kind_is_an_error_naming_both(site: Path) -> None:
    install(site, "mlspec_hello", documented_plugin(), "[mlspec.plugins]\nTask = mlspec_hello:HelloPlugin\n")
    install(site, "mlspec_other", "class Other: pass\n", "[mlspec.plugins]\nTask = mlspec_other:Other\n")
    with pytest.raises(PluginError, match=r"claimed by several plugins.*plugin_for") as err:
        Registry().for_kind("Task")
    assert "mlspec_hello" in str(err.value) and "mlspec_other" in str(err.value)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("class P:\n    api_version = 99\n", "contract version 99"),
        (
            textwrap.dedent(
                f"""
                class P:
                    api_version = {API_VERSION}
                    name = "p"
                    version = "1"
                    def validate(self, r): return []
                """
            ),
            "does not implement inputs, refresh, diff, apply, destroy, estimate",
        ),
        ("raise ImportError('needs torch')\n", "failed to load: ImportError: needs torch"),
    ],
)
def test_a_plugin_that_breaks_the_contract_is_refused_when_loaded(site: Path, code: str, message: str) -> None:
    install(site, "mlspec_other", code, "[mlspec.plugins]\nMonitor = mlspec_other:P\n")
    with pytest.raises(PluginError, match=re.escape(message)):  # chosen over the built-in Monitor plugin
        Registry(prefer={"Monitor": "mlspec-other"}).for_kind("Monitor")


def test_an_unowned_kind_is_a_clear_error() -> None:
    with pytest.raises(PluginError, match="no plugin is installed for kind `Prompt`"):
        Registry([EntryPoint("Task", "x:Y", "mlspec.plugins")]).for_kind("Prompt")


def test_plugin_settings_from_mlspec_yaml_are_validated_with_every_error_named() -> None:
    from mlspec_task import TaskPlugin
    from pydantic import BaseModel, ConfigDict

    from mlspec.discovery import plugin_settings

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        workers: int = 1
        queue: str = "default"

    class WithSettings(TaskPlugin):
        name = "batch"
        settings_model = Settings  # type: ignore[assignment]

    assert plugin_settings(WithSettings(), {"workers": 4}) == Settings(workers=4)
    assert plugin_settings(WithSettings(), None) == Settings()
    with pytest.raises(PluginError) as err:
        plugin_settings(WithSettings(), {"workers": "many", "qeue": "x"})
    assert "plugins.batch.workers" in str(err.value) and "plugins.batch.qeue" in str(err.value)
    from mlspec_data import DatasetPlugin

    with pytest.raises(PluginError, match="plugin `data` takes no settings"):
        plugin_settings(DatasetPlugin(), {"anything": 1})
