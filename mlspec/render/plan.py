"""Plans for people (text, Terraform's symbols), machines (JSON) and pull requests (Markdown).

The JSON form is documented in docs/plan-format.md and versioned by `format_version`. Markdown is
split into parts below GitHub's 65,536-character comment limit; each part stands on its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mlspec.plan.model import Action, Change, Plan, Step

COMMENT_LIMIT = 65_536
MARGIN = 1_024  # room for the part header and the closing lines
FIELDS_SHOWN = 20  # per step in text; the rest are counted
DETAILED_UP_TO = 200  # changing steps shown with causes and fields; past this, one line each
COLOURS = {Action.CREATE: "green", Action.UPDATE: "yellow", Action.REPLACE: "magenta", Action.DELETE: "red",
           Action.READ: "cyan"}
EMOJI = {Action.CREATE: "🟢", Action.UPDATE: "🟡", Action.REPLACE: "🟣", Action.DELETE: "🔴", Action.READ: "🔵"}


def summary_line(plan: Plan) -> str:
    counts = plan.counts()
    if plan.options and plan.options.get("refresh_only"):
        return f"Refresh-only plan: {counts['read']} to read into state, {counts['noop']} unchanged."
    text = (f"Plan: {counts['create']} to create, {counts['update']} to update, {counts['replace']} to replace, "
            f"{counts['delete']} to delete, {counts['noop']} unchanged.")
    conditional = sum(1 for s in plan.steps if s.conditional_on)
    if conditional:
        text += f" {conditional} conditional (cut off if their upstreams come out unchanged)."
    estimated = plan.estimated()
    if estimated.get("seconds"):
        text += f" Estimated: {duration(estimated['seconds'])}"
        if estimated.get("gpu_hours"):
            text += f", {estimated['gpu_hours']:.2f} GPU hours"
        text += "."
    return text


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def value(item: Any) -> str:
    return json.dumps(item, ensure_ascii=False, default=str) if not isinstance(item, str) else json.dumps(item)


def render_text(plan: Plan, style: Callable[..., str] = lambda text, **_: text) -> str:
    changing = [s for s in plan.steps if s.action.is_change]
    lines: list[str] = []
    if not changing:
        lines.append(style("No changes.", bold=True) + " The live world matches the specs and the state.")
    else:
        lines.append(f"mlspec will perform these actions (state serial {plan.serial}):")
        brief = len(changing) > DETAILED_UP_TO
        if brief:
            lines.append(style(f"({len(changing):,} changes: one line each; every field is in "
                               "`mlspec plan --format json`)", dim=True))
        lines.append("")
        for step in changing:
            lines.extend(_text_step(step, style, brief=brief))
    if plan.orphans:
        lines.append("")
        lines.append(style("Orphaned", fg="yellow", bold=True) + " (in state, no longer in the specs; kept because "
                     "prune is off, delete them with --prune or `prune: true` in mlspec.yaml):")
        lines.extend(f"  {address}" for address in plan.orphans)
    if plan.unmanaged:
        lines.append("")
        lines.append(style("Not planned", fg="yellow", bold=True) + ":")
        for why, addresses in _grouped(plan.unmanaged).items():
            lines.append(f"  {why}: {', '.join(addresses)}")
    lines.append("")
    lines.append(style(summary_line(plan), bold=True))
    return "\n".join(lines)


def qualifiers(step: Step) -> list[str]:
    """What a reviewer must know beyond the action: how a replace is done, and whether the step may
    not run at all (early cutoff)."""
    out = []
    if step.replace_order:
        out.append(step.replace_order.replace("_", " "))
    if step.conditional_on:
        out.append(f"conditional: runs only if {', '.join(step.conditional_on)} publishes something new")
    return out


def _text_step(step: Step, style: Callable[..., str], *, brief: bool = False) -> list[str]:
    colour = COLOURS.get(step.action)
    head = f"  {style(step.action.symbol.rjust(3), fg=colour, bold=True)} {style(step.address, bold=True)}"
    head += f"  {step.action.value}"
    extra = qualifiers(step)
    if extra:
        head += f" ({'; '.join(extra)})"
    if step.estimate and step.estimate.get("seconds") is not None:
        basis = step.estimate.get("basis") or "estimated"
        head += style(f"  (~{duration(step.estimate['seconds'])}, {basis})", dim=True)
    out = [head]
    if brief:
        return [head + (f"  because {step.causes[-1]}" if step.causes else "")]
    out.extend(f"        because {cause}" for cause in step.causes)
    out.extend(style(f"        note: {note}", fg="yellow") for note in step.notes)
    out.extend(change_lines(step.changes[:FIELDS_SHOWN], "        ", style))
    if len(step.changes) > FIELDS_SHOWN:
        out.append(f"        ... and {len(step.changes) - FIELDS_SHOWN} more fields")
    out.append("")
    return out


def change_lines(changes: Sequence[Change], indent: str, style: Callable[..., str]) -> list[str]:
    """`+ added = v`, `- removed = v`, `~ changed: a -> b`: one line per field, as Terraform shows them."""
    out = []
    for change in changes:
        if change.before is None:
            out.append(style(f"{indent}+ {change.path} = {value(change.after)}", fg="green"))
        elif change.after is None:
            out.append(style(f"{indent}- {change.path} = {value(change.before)}", fg="red"))
        elif multiline(change.before, change.after):
            out.append(style(f"{indent}~ {change.path}:", fg="yellow"))
            for line in text_diff(change.before, change.after):
                colour = "green" if line[:1] == "+" else "red" if line[:1] == "-" else None
                out.append(style(f"{indent}    {line}", fg=colour))
        else:
            out.append(style(f"{indent}~ {change.path}: {value(change.before)} -> {value(change.after)}", fg="yellow"))
    return out


def multiline(before: Any, after: Any) -> bool:
    return isinstance(before, str) and isinstance(after, str) and ("\n" in before.strip() or "\n" in after.strip())


def text_diff(before: str, after: str) -> list[str]:
    """A multi-line text's change (a prompt template, a command), as unified diff lines without headers,
    as Terraform shows a heredoc's."""
    import difflib

    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=2)
    return [line for line in lines if not line.startswith(("---", "+++", "@@"))]


def _grouped(pairs: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for address, why in pairs:
        out.setdefault(why, []).append(address)
    return out


def render_json(plan: Plan) -> str:
    return json.dumps(plan.to_json(), indent=2, ensure_ascii=False, default=str)


def render_markdown(plan: Plan, upstream: Mapping[str, Sequence[str]], limit: int = COMMENT_LIMIT) -> list[str]:
    """Comment bodies for a pull request, each under `limit` characters."""
    changing = [s for s in plan.steps if s.action.is_change]
    blocks: list[str] = []
    if changing:
        blocks.extend(_markdown_tables(changing, (limit - MARGIN) // 2))
        graph = _mermaid(changing, upstream)
        if graph:
            blocks.append(graph)
        blocks.extend(_markdown_step(step) for step in changing)
    else:
        blocks.append("No changes. The live world matches the specs and the state.")
    if plan.orphans:
        blocks.append("**Orphaned** (kept; prune is off): " + ", ".join(f"`{a}`" for a in plan.orphans))
    if plan.unmanaged:
        blocks.append("**Not planned**: " +
                      "; ".join(f"{why}: {', '.join(f'`{a}`' for a in addrs)}"
                                for why, addrs in _grouped(plan.unmanaged).items()))
    budget = limit - MARGIN
    parts: list[list[str]] = [[]]
    size = 0
    for block in blocks:
        if len(block) > budget:
            block = block[: budget - 200] + "\n\n… (cut: too long for one comment; see the JSON plan)\n"
            if "<details>" in block and "</details>" not in block[-20:]:
                block += "\n</details>\n"
        if size + len(block) > budget and parts[-1]:
            parts.append([])
            size = 0
        parts[-1].append(block)
        size += len(block) + 2
    title = f"### mlspec plan\n\n**{summary_line(plan)}**"
    out = []
    for i, part in enumerate(parts, 1):
        head = title if len(parts) == 1 else f"{title} (part {i} of {len(parts)})"
        out.append("\n\n".join([head, *part]) + "\n")
    return out


def _markdown_tables(steps: Sequence[Step], budget: int) -> list[str]:
    """The summary table, as several tables of whole rows when one would not fit a comment."""
    head = "| | Resource | Action | Why | Estimate |\n|---|---|---|---|---|"
    tables: list[str] = []
    rows: list[str] = []
    size = len(head)
    for step in steps:
        estimate = (step.estimate or {}).get("seconds")
        why = _cell(step.causes[0] if step.causes else "")
        extra = qualifiers(step)
        action = step.action.value + (f" ({'; '.join(extra)})" if extra else "")
        row = (f"| {EMOJI.get(step.action, '')} | `{step.address}` | {action} | "
               f"{why[:300] + '…' if len(why) > 300 else why} | {duration(estimate) if estimate is not None else ''} |")
        if rows and size + len(row) + 1 > budget:
            tables.append("\n".join([head, *rows]))
            rows, size = [], len(head)
        rows.append(row)
        size += len(row) + 1
    tables.append("\n".join([head, *rows]))
    return tables


def _markdown_step(step: Step) -> str:
    extra = qualifiers(step)
    action = step.action.value + (f" ({_cell('; '.join(extra))})" if extra else "")
    lines = [f"<details><summary><code>{step.action.symbol} {step.address}</code> {action}</summary>", ""]
    lines.extend(f"{'because' if i == 0 else '&nbsp;&nbsp;because'} {_cell(cause)}<br>"
                 for i, cause in enumerate(step.causes))
    lines.extend(f"⚠️ {_cell(note)}<br>" for note in step.notes)
    estimate = step.estimate or {}
    if estimate.get("seconds") is not None and estimate.get("basis"):  # the basis says what the last run measured
        lines.append(f"⏱️ ~{duration(estimate['seconds'])}, {_cell(str(estimate['basis']))}<br>")
    if step.changes:
        lines += ["", "| Field | Before | After |", "|---|---|---|"]
        lines.extend(f"| `{c.path}` | {_cell(value(c.before)) if c.before is not None else ''} | "
                     f"{_cell(value(c.after)) if c.after is not None else ''} |" for c in step.changes
                     if not multiline(c.before, c.after))
        for change in (c for c in step.changes if multiline(c.before, c.after)):
            lines += ["", f"`{change.path}`:", "", "```diff", *text_diff(change.before, change.after), "```"]
    lines += ["", "</details>"]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def _mermaid(steps: Sequence[Step], upstream: Mapping[str, Sequence[str]]) -> str:
    """The changing part of the graph, coloured by action; only edges between changing steps."""
    if len(steps) > 300:
        return ""  # past this GitHub will not render it anyway
    ids = {s.address: f"n{i}" for i, s in enumerate(steps)}
    lines = ["```mermaid", "graph LR"]
    for step in steps:
        lines.append(f'  {ids[step.address]}["{step.action.symbol} {step.address}"]:::{step.action.value}')
    for step in steps:
        for dep in upstream.get(step.address, ()):
            if dep in ids:
                lines.append(f"  {ids[dep]} --> {ids[step.address]}")
    lines += [
        "  classDef create fill:#dafbe1,stroke:#1a7f37", "  classDef update fill:#fff8c5,stroke:#9a6700",
        "  classDef replace fill:#fbefff,stroke:#8250df", "  classDef delete fill:#ffebe9,stroke:#cf222e",
        "  classDef read fill:#ddf4ff,stroke:#0969da", "```",
    ]
    return "\n".join(lines)
