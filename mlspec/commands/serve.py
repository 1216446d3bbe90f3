"""`mlspec serve status|logs|stop|start`: the servers mlspec supervises here. The work is
mlspec/engine/serving.py's; this module prints it."""

from __future__ import annotations

import json
from collections.abc import Callable

import click

from mlspec.engine import serving
from mlspec.engine.session import reading_state
from mlspec.errors import EXIT_ERROR, EXIT_OK


def run_status(address: str | None, fmt: str, style: Callable[..., str]) -> int:
    with reading_state() as state:
        found = serving.status(state.list(), address)
    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", "servers": [s.to_json() for s in found]}, indent=2))
    elif not found:
        click.echo("No servers: nothing mlspec serves runs here (apply a Service).")
    for server in found if fmt != "json" else ():
        state_text = (style("ready", fg="green") if server.ready else style("live, not ready", fg="yellow")
                      if server.live else style("running, not answering", fg="yellow") if server.running
                      else style("down", fg="red"))
        click.echo(f"{server.address}  {server.url}  {state_text}  pid {server.pid}  bento {server.bento}")
    down = [s for s in found if not s.ready]
    return EXIT_ERROR if address is not None and down else EXIT_OK


def run_logs(address: str, lines: int) -> int:
    with reading_state() as state:
        shown = serving.logs(state.list(), address, lines)
    click.echo("\n".join(shown))
    return EXIT_OK


def run_stop(address: str) -> int:
    with reading_state() as state:
        stopped = serving.stop(state.list(), address)
    click.echo(f"{address}: stopped" if stopped else f"{address}: not running")
    return EXIT_OK


def run_start(address: str, lock_timeout: float) -> int:
    started = serving.start_recorded(address, lock_timeout=lock_timeout)
    click.echo(f"{address}: serving at {started.outputs['url']} (pid {started.outputs['pid']})")
    return EXIT_OK
