from __future__ import annotations

import json
from collections.abc import Callable

import click

from mlspec.errors import EXIT_OK, MlspecError, StateMissingError


def run(address: str, fmt: str, style: Callable[..., str]) -> int:
    from mlspec import lineage
    from mlspec.engine.session import writing_state
    from mlspec.render import lineage as render
    from mlspec.validation import validate

    graph = validate(need_graph=True).graph
    found = graph.resolve(address)
    if found is None:
        from mlspec.spec.suggest import did_you_mean

        hint = did_you_mean(address, list(graph.nodes))
        raise MlspecError(f"`{address}` is not in the specs" + (f"; {hint}" if hint else ""))
    try:
        with writing_state() as store:
            recorded = {e.address: e for e in store.list()}
    except StateMissingError:
        recorded = {}
    tree = lineage.tree(graph, recorded, found)
    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", **tree}, indent=2))
    else:
        click.echo(render.render_text(tree, style))
    return EXIT_OK
