"""`mlspec monitor run [ADDR]`: judge drift now; the report's paths, the verdict, and an exit code
that says drift (3) or not (0), for cron and CI. The work is mlspec/engine/monitoring.py's."""

from __future__ import annotations

import json
from collections.abc import Callable

import click

from mlspec.engine import monitoring
from mlspec.errors import EXIT_DRIFT, EXIT_OK


def run_monitor(address: str | None, lock_timeout: float, fmt: str, style: Callable[..., str]) -> int:
    reports = monitoring.run(address, lock_timeout=lock_timeout, log=lambda line: click.echo(line, err=True))
    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", "reports": reports}, indent=2, default=str))
    else:
        if not reports:
            click.echo("no Monitor in these specs", err=True)
        for report in reports:
            colour = {"drift": "red", "no drift": "green"}.get(report["verdict"], "yellow")
            click.echo(f"{style(report['monitor'], bold=True)}: {style(report['verdict'], fg=colour)}: "
                       f"{report['summary']}")
            for name, feature in report["features"].items():
                for verdict in feature.get("verdicts") or ():
                    mark = style("drift", fg="red") if verdict["drifted"] else "ok"
                    click.echo(f"  {name} ({feature['kind']}): {verdict['method']} {verdict['value']:.4g} "
                               f"(threshold {verdict['threshold']:g}): {mark}")
            for problem in report.get("problems") or ():
                click.echo(style(f"  {problem}", fg="yellow"))
            skipped = report.get("skipped") or {}
            if skipped:
                click.echo(f"  skipped: {', '.join(f'{n} {why}' for why, n in skipped.items())}")
            click.echo(style(f"  report: {report['files']['html']}", dim=True))
    return EXIT_DRIFT if any(r["verdict"] == "drift" for r in reports) else EXIT_OK
