"""Lineage for people: an indented tree, each resource with what state recorded of it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlspec.digests import is_digest


def render_text(tree: dict[str, Any], style: Callable[..., str]) -> str:
    lines: list[str] = []
    _node(tree, 0, lines, style)
    used_by = tree.get("used_by") or []
    lines += ["", "used by: " + (", ".join(used_by) if used_by else "nothing")]
    return "\n".join(lines)


def _node(data: dict[str, Any], depth: int, lines: list[str], style: Callable[..., str]) -> None:
    pad = "    " * depth
    head = style(data["address"], bold=True)
    if data["applied"]:
        head += "  " + ", ".join(_facts(data, style))
    else:
        head += style("  (not applied yet)", fg="yellow")
    lines.append(pad + head)
    if data.get("summary"):
        lines.append(f"{pad}    {data['summary']}")
    lines.extend(f"{pad}    {path}  " + (f"sha256 {value[:12]}" if is_digest(value) else value)
                 for path, value in data.get("files", {}).items())
    for parent in data["from"]:
        _node(parent, depth + 1, lines, style)


def _facts(data: dict[str, Any], style: Callable[..., str]) -> list[str]:
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
    return facts
