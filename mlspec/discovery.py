"""Finding and loading plugins: entry points in the group `mlspec.plugins`, named by the kind they own.

    [project.entry-points."mlspec.plugins"]
    Task = "mlspec_shell:ShellPlugin"

Naming entry points by kind lets mlspec see two plugins claiming one kind without importing either,
and import only the plugins of kinds the specs use. Built-in plugins are registered exactly like a
third party's. A plugin is checked when it is loaded (its contract version, every method, its
capabilities), never first found wanting in the middle of an apply. The contract itself is
mlspec/sdk/contract.py.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

from mlspec.errors import PluginError
from mlspec.sdk.contract import API_VERSION, METHODS, Capabilities, Plugin, ReplaceOrder, capabilities

if TYPE_CHECKING:
    from pydantic import BaseModel

ENTRY_POINT_GROUP = "mlspec.plugins"

__all__ = ["ENTRY_POINT_GROUP", "PluginError", "Registry", "load_plugin", "plugin_settings", "wants_context"]


class Registry:
    """Plugins by kind, discovered from entry points and loaded on first use."""

    def __init__(self, points: Iterable[EntryPoint] | None = None, prefer: Mapping[str, str] | None = None) -> None:
        """`prefer`: kind -> distribution name, from mlspec.yaml's `plugin_for`, when several claim a kind."""
        self._prefer = {kind: _normal(dist) for kind, dist in (prefer or {}).items()}
        self._points: dict[str, list[EntryPoint]] = {}
        for point in entry_points(group=ENTRY_POINT_GROUP) if points is None else points:
            self._points.setdefault(point.name, []).append(point)
        self._loaded: dict[str, Plugin] = {}

    def kinds(self) -> list[str]:
        return sorted(self._points)

    def has(self, kind: str) -> bool:
        return kind in self._points

    def for_kind(self, kind: str) -> Plugin:
        if kind in self._loaded:
            return self._loaded[kind]
        points = self._points.get(kind, [])
        if not points:
            raise PluginError(f"no plugin is installed for kind `{kind}` (entry point group {ENTRY_POINT_GROUP})")
        if len({p.value for p in points}) > 1:
            chosen = [p for p in points if kind in self._prefer and _normal(_dist_name(p)) == self._prefer[kind]]
            if len(chosen) != 1:
                owners = ", ".join(f"{p.value} (from {_distribution(p)})" for p in points)
                raise PluginError(
                    f"kind `{kind}` is claimed by several plugins: {owners}; choose one in mlspec.yaml "
                    f"(`plugin_for: {{{kind}: <distribution>}}`) or uninstall the others"
                )
            points = chosen
        plugin = load_plugin(points[0])
        self._loaded[kind] = plugin
        return plugin


def load_plugin(point: EntryPoint) -> Plugin:
    """Import and check a plugin: its contract version and that it implements every method."""
    where = f"{point.value} (from {_distribution(point)})"
    try:
        cls = point.load()
        plugin = cls()
    except Exception as err:
        raise PluginError(f"plugin {where} failed to load: {type(err).__name__}: {err}") from err
    version = getattr(plugin, "api_version", None)
    if version != API_VERSION:
        raise PluginError(f"plugin {where} implements contract version {version}; this mlspec speaks {API_VERSION}")
    missing = [m for m in METHODS if not callable(getattr(plugin, m, None))]
    missing += [a for a in ("name", "version") if not isinstance(getattr(plugin, a, None), str)]
    if missing:
        raise PluginError(f"plugin {where} does not implement {', '.join(missing)}")
    declared = getattr(plugin, "capabilities", None)
    if declared is not None and not isinstance(declared, Capabilities):
        raise PluginError(f"plugin {where}: capabilities must be an mlspec.sdk.Capabilities")
    found = capabilities(plugin)
    if not isinstance(found.replace_order, ReplaceOrder):
        raise PluginError(f"plugin {where}: capabilities.replace_order must be one of "
                          f"{', '.join(o.value for o in ReplaceOrder)}")
    if found.writes_paths and not callable(getattr(plugin, "writes", None)):
        raise PluginError(f"plugin {where} declares writes_paths but has no `writes(resource)` method")
    return plugin  # type: ignore[no-any-return]


def wants_context(method: Callable[..., Any]) -> bool:
    """Does this plugin method declare a `context` parameter (an optional one of the contract)? Asked
    per resource, answered once per function: `inspect.signature` costs ~35 us, 10,000 times a plan."""
    function = getattr(method, "__func__", method)
    try:
        return _takes_context(function)
    except TypeError:  # unhashable: asked the long way
        return _declares_context(function)


@functools.lru_cache(maxsize=256)
def _takes_context(function: Callable[..., Any]) -> bool:
    return _declares_context(function)


def _declares_context(function: Callable[..., Any]) -> bool:
    import inspect

    try:
        return "context" in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def plugin_settings(plugin: Plugin, raw: Mapping[str, Any] | None) -> BaseModel | None:
    """Validate `plugins.<name>` of mlspec.yaml against the plugin's settings model, every error at once."""
    model = plugin.settings_model
    if model is None:
        if raw:
            raise PluginError(f"mlspec.yaml: plugins.{plugin.name}: plugin `{plugin.name}` takes no settings")
        return None
    from pydantic import ValidationError

    try:
        return model.model_validate(dict(raw or {}))
    except ValidationError as err:
        problems = "; ".join(
            f"plugins.{plugin.name}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise PluginError(f"mlspec.yaml: {problems}") from None


def _dist_name(point: EntryPoint) -> str:
    dist = getattr(point, "dist", None)
    return str(dist.name) if dist is not None else ""


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _distribution(point: EntryPoint) -> str:
    dist = getattr(point, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"
