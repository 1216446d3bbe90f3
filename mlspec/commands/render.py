"""`mlspec render k8s [ADDR]`: what the plugins say their resources are, in another system's terms.

Kind-agnostic: every resource whose plugin has `manifests(resource, outputs, image)` contributes
(the Service plugin: Deployment or Argo Rollout, Service, HorizontalPodAutoscaler), with what state
recorded of it (the bento it runs). Written as one YAML file per resource, or to stdout.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mlspec.errors import EXIT_OK, MlspecError, StateMissingError


def run_k8s(address: str | None, out: Path | None, image: str | None, style: Callable[..., str]) -> int:
    from mlspec.errors import SpecError
    from mlspec.render.echo import show_spec_errors
    from mlspec.spec.specset import load_specs

    try:
        specs = load_specs()
    except SpecError as err:
        return show_spec_errors(err, "text", style)
    return _k8s(specs, address, out, image)


def _k8s(specs: Any, address: str | None, out: Path | None, image: str | None) -> int:
    from ruamel.yaml import YAML

    from mlspec.discovery import Registry
    from mlspec.engine.session import reading_state

    registry = Registry(prefer=specs.project.setting("plugin_for"))
    try:
        with reading_state(specs.project) as state:
            recorded = {e.address: e.outputs for e in state.list()}
    except StateMissingError:
        recorded = {}
    chosen = [r for r in specs.resources.values() if address is None or r.address == address]
    if address is not None and not chosen:
        raise MlspecError(f"`{address}` is not in the specs")
    documents: dict[str, list[dict[str, Any]]] = {}
    for resource in chosen:
        if not registry.has(resource.kind):
            continue
        make = getattr(registry.for_kind(resource.kind), "manifests", None)
        if callable(make):
            documents[resource.address] = list(make(resource, recorded.get(resource.address) or {}, image))
    if address is not None and address not in documents:
        raise MlspecError(f"{address}'s plugin renders no Kubernetes manifests")
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.representer.ignore_aliases = lambda *_: True  # shared label dicts written out, not as &id001 anchors
    for found, manifests in sorted(documents.items()):
        text = io.StringIO()
        yaml.dump_all(manifests, text)
        if out is None:
            click.echo(f"# {found}\n---\n" + text.getvalue())
            continue
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{found.replace('/', '-').lower()}.yaml"
        path.write_text(f"# {found}: rendered by `mlspec render k8s`\n" + text.getvalue())
        click.echo(f"wrote {path}")
    if not documents:
        click.echo("Nothing to render: no resource's plugin renders Kubernetes manifests.")
    return EXIT_OK
