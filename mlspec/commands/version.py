from __future__ import annotations

import json
import platform
from importlib import metadata

import click

from mlspec import __version__
from mlspec.errors import EXIT_OK

LIBRARIES = ("pydantic", "ruamel.yaml", "ruamel.yaml.clib", "click", "networkx", "jsonschema")


def run(fmt: str) -> int:
    libraries: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            libraries[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libraries[name] = None
    info = {"mlspec": __version__, "python": platform.python_version(), "libraries": libraries}
    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", **info}, indent=2))
    else:
        click.echo(f"mlspec {__version__} (Python {info['python']})")
        for name, version in libraries.items():
            click.echo(f"  {name} {version or 'not installed'}")
    return EXIT_OK
