"""The dependency graph as DOT, Mermaid, JSON or an indented text list."""

from __future__ import annotations

import json
import re

from mlspec.address import Address
from mlspec.graph import SpecGraph

_SHAPES = {  # Mermaid node shapes, one per kind, so a diagram reads without a legend
    "Dataset": ("[(", ")]"),
    "Model": ("[[", "]]"),
    "Optimization": ("{{", "}}"),
    "Service": ("([", "])"),
    "Prompt": (">", "]"),
    "Monitor": ("((", "))"),
    "Task": ("[", "]"),
}


def render_dot(graph: SpecGraph) -> str:
    lines = ["digraph mlspec {", "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];']
    for address in sorted(graph.nodes):
        lines.append(f'  "{address}";')
    for edge in sorted(graph.edges, key=lambda e: (e.upstream, e.downstream, e.field)):
        lines.append(f'  "{edge.upstream}" -> "{edge.downstream}" [label="{edge.field}"];')
    lines.append("}")
    return "\n".join(lines)


def render_mermaid(graph: SpecGraph) -> str:
    ids = {address: _mermaid_id(address) for address in graph.nodes}
    lines = ["flowchart LR"]
    for address in sorted(graph.nodes):
        left, right = _SHAPES.get(Address(address).kind, ("[", "]"))
        lines.append(f'  {ids[address]}{left}"{address}"{right}')
    for edge in sorted(graph.edges, key=lambda e: (e.upstream, e.downstream)):
        lines.append(f"  {ids[edge.upstream]} --> {ids[edge.downstream]}")
    return "\n".join(lines)


def render_json(graph: SpecGraph) -> str:
    return json.dumps(
        {
            "format_version": "1",
            "nodes": [
                {"address": a, "kind": n.resource.kind, "name": n.resource.name, "file": n.file,
                 "document": n.resource.doc}
                for a, n in sorted(graph.nodes.items())
            ],
            "edges": [
                {"from": e.upstream, "to": e.downstream, "field": e.field}
                for e in sorted(graph.edges, key=lambda e: (e.upstream, e.downstream, e.field))
            ],
        },
        indent=2,
    )


def render_text(graph: SpecGraph) -> str:
    """Each resource in apply order with what it depends on."""
    needs: dict[str, list[str]] = {}
    for edge in graph.edges:
        needs.setdefault(edge.downstream, []).append(edge.upstream)
    lines = []
    for address in graph.order():
        deps = sorted(set(needs.get(address, ())))
        lines.append(address + (f"  <- {', '.join(deps)}" if deps else ""))
    return "\n".join(lines)


def _mermaid_id(address: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", address)
