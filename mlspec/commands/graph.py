from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from mlspec.address import Address
from mlspec.errors import EXIT_ERROR, EXIT_OK, MlspecError
from mlspec.graph import SpecGraph
from mlspec.render import graph as render
from mlspec.render.echo import show_report
from mlspec.validation import validate

RENDERERS: dict[str, Callable[[SpecGraph], str]] = {
    "text": render.render_text,
    "dot": render.render_dot,
    "mermaid": render.render_mermaid,
    "json": render.render_json,
}


def run(
    project: Path | None, fmt: str, *, upstream: str | None, downstream: str | None, style: Callable[..., str]
) -> int:
    if upstream and downstream:
        raise MlspecError("--upstream and --downstream exclude each other; pick one")
    report = validate(project, need_graph=True)
    if not report.ok:
        show_report(report, "json" if fmt == "json" else "text", style)
        return EXIT_ERROR
    graph = report.graph
    for flag, query in (("--upstream", upstream), ("--downstream", downstream)):
        if query is not None:
            address = _address(graph, query, flag)
            graph = graph.subgraph(graph.upstream(address) if flag == "--upstream" else graph.downstream(address))
    click.echo(RENDERERS[fmt](graph))
    return EXIT_OK


def _address(graph: SpecGraph, text: str, flag: str) -> str:
    from mlspec.spec.suggest import did_you_mean

    address = graph.resolve(text)
    owners = graph._by_name.get(text, []) if "/" not in text else []
    if address is None and len(owners) > 1:
        raise MlspecError(f"{flag} {text}: ambiguous, it names {' and '.join(sorted(owners))}; write the kind")
    if address is None:
        hint = did_you_mean(text, graph.nodes) or did_you_mean(text, [Address(a).name for a in graph.nodes])
        raise MlspecError(f"{flag} {text}: no such resource" + (f"; {hint}" if hint else ""))
    return address
