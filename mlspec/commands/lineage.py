from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from mlspec.errors import EXIT_OK, MlspecError, StateMissingError


def run(address: str, fmt: str, style: Callable[..., str]) -> int:
    from mlspec.project import load_project
    from mlspec.state import open_state
    from mlspec.validation import validate

    report = validate(need_graph=True)
    graph = report.graph
    found = graph.resolve(address)
    if found is None:
        from mlspec.spec.suggest import did_you_mean

        hint = did_you_mean(address, list(graph.nodes))
        raise MlspecError(f"`{address}` is not in the specs" + (f"; {hint}" if hint else ""))
    try:
        store = open_state(load_project(), create=False)
        recorded = {e.address: e for e in store.list()}
        store.close()
    except StateMissingError:
        recorded = {}
    parents = graph.direct_upstream()

    def node(at: str, seen: frozenset[str]) -> dict[str, Any]:
        entry = recorded.get(at)
        outputs = entry.outputs if entry else {}
        data: dict[str, Any] = {"address": at, "applied": entry is not None}
        if entry is not None:
            data |= {"fingerprint": entry.fingerprint, "status": entry.status.value, "commit": entry.commit,
                     "updated_at": entry.updated_at}
            files = {k: v for k, v in (entry.spec.get("inputs") or {}).items() if v and k != "rows"}
            files |= outputs.get("sources") or {}
            data["files"] = dict(sorted(files.items()))
            for key in ("version", "rows", "held"):
                if key in outputs:
                    data[key] = outputs[key]
            if isinstance(outputs.get("champion"), dict):  # a registered model: what its dependents use
                data["champion"] = outputs["champion"].get("version")
        data["from"] = [node(p, seen | {at}) for p in parents.get(at, ()) if p not in seen]
        return data

    tree = node(found, frozenset())
    used_by = sorted(graph.downstream(found) - {found})
    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", **tree, "used_by": used_by}, indent=2))
        return EXIT_OK
    lines: list[str] = []

    def show(data: dict[str, Any], depth: int) -> None:
        pad = "    " * depth
        head = style(data["address"], bold=True)
        if not data["applied"]:
            head += style("  (not applied yet)", fg="yellow")
        else:
            facts = [f"fingerprint {data['fingerprint'][:12]}"]
            if "version" in data:
                facts.append(f"version {str(data['version'])[:12]}")
            if data.get("champion") is not None and data["champion"] != data.get("version"):
                facts.append(f"champion version {data['champion']}")
            if data.get("held"):
                facts.append(style("held by its gates", fg="yellow"))
            if "rows" in data:
                facts.append(f"{data['rows']:,} rows")
            if data.get("commit"):
                facts.append(f"commit {data['commit'][:8]}")
            if data["status"] != "applied":
                facts.append(style(data["status"], fg="red"))
            head += "  " + ", ".join(facts)
        lines.append(pad + head)
        for path, sha in data.get("files", {}).items():
            lines.append(f"{pad}    {path}  sha256 {sha[:12]}")
        for parent in data["from"]:
            show(parent, depth + 1)

    show(tree, 0)
    lines.append("")
    lines.append("used by: " + (", ".join(used_by) if used_by else "nothing"))
    click.echo("\n".join(lines))
    return EXIT_OK
