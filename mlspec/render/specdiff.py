"""A branch's spec changes for people (text), machines (JSON) and pull requests (Markdown)."""

from __future__ import annotations

import json
from collections.abc import Callable

from mlspec.plan.model import Action
from mlspec.render.plan import COLOURS, change_lines
from mlspec.repo.compare import Comparison

STATUS_COLOURS = {"added": COLOURS[Action.CREATE], "removed": COLOURS[Action.DELETE], "changed": "yellow"}


def headline(found: Comparison) -> str:
    counts = {s: sum(1 for c in found.changes if c.status == s) for s in ("added", "changed", "removed")}
    if found.head_commit is None:
        head = found.head
    elif found.head == "working tree":
        head = f"the working tree (HEAD {found.head_commit[:8]})"
    else:
        head = f"{found.head} ({found.head_commit[:8]})"
    text = (f"Spec changes from {found.base} ({found.base_commit[:8]}) to {head}: "
            f"{counts['added']} added, {counts['changed']} changed, {counts['removed']} removed.")
    if not found.related:
        text += f" Note: {found.base} and {found.head} share no history."
    return text


def render_text(found: Comparison, style: Callable[..., str] = lambda text, **_: text) -> str:
    lines = [style(headline(found), bold=True)]
    for change in found.changes:
        colour = STATUS_COLOURS[change.status]
        where = style(f"  ({change.file})", dim=True) if change.file else ""
        lines.append(f"  {style(change.symbol, fg=colour, bold=True)} {style(change.address, bold=True)}  "
                     f"{change.status}{where}")
        if change.status == "changed":
            lines.extend(change_lines(change.changes, "      ", style))
    return "\n".join(lines)


def render_json(found: Comparison) -> str:
    return json.dumps({"format_version": "1", **found.to_json()}, indent=2, ensure_ascii=False, default=str)


def render_markdown(found: Comparison) -> str:
    lines = [f"**{headline(found)}**", ""]
    if not found.changes:
        return "\n".join(lines)
    lines += ["| | Resource | Change | Fields |", "|---|---|---|---|"]
    for change in found.changes:
        fields = ", ".join(f"`{c.path}`" for c in change.changes[:8]) if change.status == "changed" else ""
        more = f" and {len(change.changes) - 8} more" if change.status == "changed" and len(change.changes) > 8 else ""
        lines.append(f"| {change.symbol} | `{change.address}` | {change.status} | {fields}{more} |")
    return "\n".join(lines)
