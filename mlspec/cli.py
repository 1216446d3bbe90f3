"""The `mlspec` command line: thin click commands over the library API.

Each command parses flags, calls one library function, renders, and returns an exit code; library
modules are imported inside commands so `mlspec --help` and the pre-commit hook start fast.
Exit codes (Terraform's): 0 success, 1 any error (bad usage included), 2 reserved for
`plan --detailed-exitcode`. `main()` is the one place errors are turned into messages and codes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mlspec import __version__
from mlspec.errors import EXIT_ERROR, EXIT_OK, MlspecError

F = TypeVar("F", bound=Callable[..., Any])


def format_option(*choices: str) -> Callable[[F], F]:
    return click.option(
        "--format", "fmt", type=click.Choice(choices), default=choices[0], show_default=True,
        help="Output format: text for people, json for machines.",
    )


def _style() -> Callable[..., str]:
    if sys.stdout.isatty() and "NO_COLOR" not in os.environ:
        return click.style
    return lambda text, **_: text


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="mlspec", message="%(prog)s %(version)s")
@click.option("-C", "--project", "project", type=click.Path(file_okay=False, path_type=Path),
              help="Run as if started in this directory.")
@click.option("--debug", is_flag=True, help="Show tracebacks for internal errors.")
@click.pass_context
def cli(ctx: click.Context, project: Path | None, debug: bool) -> None:
    """Declarative GitOps for the ML lifecycle.

    \b
    Example:
      mlspec init my-specs && cd my-specs
      mlspec validate
    """
    if project is not None:  # like `git -C` and `make -C`: every path is then relative to DIR
        try:
            os.chdir(project)
        except OSError as err:
            raise MlspecError(f"-C {project}: {err.strerror}") from err
    ctx.obj = {"project": None, "debug": debug}


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@format_option("text", "json", "github")
@click.option("--no-cache", is_flag=True, help="Parse every file; ignore and do not update .mlspec/cache.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Worker processes for parsing (default: CPUs).")
@click.option("--staged", is_flag=True, help="Validate what git's index holds, as the next commit will (pre-commit).")
@click.pass_obj
def validate(obj: dict[str, Any], paths: tuple[Path, ...], fmt: str, no_cache: bool, jobs: int | None,
             staged: bool) -> int:
    """Check specs: syntax, schema, references and cycles, every error in one pass.

    PATHS are files or directories; without them, the globs of mlspec.yaml (default specs/**/*.yaml).

    \b
    Examples:
      mlspec validate
      mlspec validate specs/models --format json
      mlspec validate --format github    # annotations in GitHub Actions
      mlspec validate --staged           # the pre-commit hook: what the commit will hold
    """
    from mlspec.commands.validate import run

    return run(obj["project"], list(paths), fmt, use_cache=not no_cache, jobs=jobs, style=_style(), staged=staged)


@cli.command()
@format_option("text", "dot", "mermaid", "json")
@click.option("--upstream", metavar="ADDR", help="Only ADDR and what it depends on.")
@click.option("--downstream", metavar="ADDR", help="Only ADDR and what depends on it.")
@click.pass_obj
def graph(obj: dict[str, Any], fmt: str, upstream: str | None, downstream: str | None) -> int:
    """Show the dependency graph of the specs.

    \b
    Examples:
      mlspec graph
      mlspec graph --format mermaid --downstream Dataset/reviews
      mlspec graph --format dot | dot -Tsvg > graph.svg
    """
    from mlspec.commands.graph import run

    return run(obj["project"], fmt, upstream=upstream, downstream=downstream, style=_style())


@cli.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("schemas"),
              show_default=True, help="Where the schema files live.")
@click.option("--check", is_flag=True, help="Fail (exit 1) if the files differ from the kinds; write nothing.")
@click.option("--kind", help="Print one kind's schema to stdout instead.")
@format_option("text", "json")
def schema(directory: Path, check: bool, kind: str | None, fmt: str) -> int:
    """Write the JSON Schemas of the kinds (for editors and check-jsonschema).

    \b
    Examples:
      mlspec schema                  # write schemas/*.schema.json
      mlspec schema --check          # in CI: are the committed schemas current?
      mlspec schema --kind Model
    """
    from mlspec.commands.schema import run

    return run(directory, check=check, kind=kind, fmt=fmt)


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."))
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@click.option("--install", metavar="REQUIREMENT",
              help="What CI installs mlspec from (default: where this mlspec came from, pinned).")
@format_option("text", "json")
def init(directory: Path, force: bool, install: str | None, fmt: str) -> int:
    """Scaffold a spec repo: mlspec.yaml, example specs, schemas, pre-commit and CI.

    \b
    Examples:
      mlspec init my-specs
      mlspec init my-specs --install "mlspec[torch] @ git+https://github.com/acme/mlspec@v0.1.0"
    """
    from mlspec.commands.init import run

    return run(directory, force=force, fmt=fmt, install=install)


@cli.command()
@format_option("text", "json")
def version(fmt: str) -> int:
    """Print the version of mlspec and of the libraries it runs on.

    \b
    Example:
      mlspec version --format json
    """
    from mlspec.commands.version import run

    return run(fmt)


if TYPE_CHECKING:  # generic in the click that mypy reads; older clicks do not subscript at run time
    _FloatParam = click.ParamType[float, Any]
    _IntParam = click.ParamType[int, Any]
else:
    _FloatParam = _IntParam = click.ParamType


class Duration(_FloatParam):
    """`30`, `5s`, `2m`, `1h30m`: seconds, as a float."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        from mlspec.duration import parse

        try:
            return parse(str(value))
        except ValueError as err:
            self.fail(str(err), param, ctx)


def lock_timeout_option(f: F) -> F:
    return click.option(
        "--lock-timeout", type=Duration(), default="0", show_default=True, metavar="DURATION",
        help="Wait this long for the state lock (with backoff) before giving up: 30, 5s, 2m.",
    )(f)


def plan_options(f: F) -> F:
    for option in reversed((
        click.option("--target", "targets", multiple=True, metavar="ADDR",
                     help="Only ADDR and what it depends on (repeatable)."),
        click.option("--replace", "replace", multiple=True, metavar="ADDR",
                     help="Recompute ADDR even if nothing changed (repeatable)."),
        click.option("--refresh/--no-refresh", default=True, show_default=True,
                     help="Ask plugins whether the live objects still match state (drift)."),
        click.option("--refresh-only", is_flag=True, help="Only bring state in line with the live objects."),
        click.option("--prune/--no-prune", default=None,
                     help="Delete resources that left the specs (default: `prune` in mlspec.yaml)."),
        click.option("--allow-destroy", is_flag=True, help="Allow deleting resources the protect policy guards."),
    )):
        f = option(f)
    return f


def _options(targets: tuple[str, ...], replace: tuple[str, ...], refresh: bool, refresh_only: bool,
             prune: bool | None, allow_destroy: bool) -> Any:
    from mlspec.engine.planner import PlanOptions

    return PlanOptions(targets, replace, refresh=refresh, refresh_only=refresh_only, prune=prune,
                       allow_destroy=allow_destroy)


@cli.command()
@plan_options
@format_option("text", "json", "markdown")
@click.option("-out", "--out", "out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Save the plan; `mlspec apply FILE` then carries out exactly it.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 with no changes, 1 on error, 2 with changes.")
@click.option("--base", metavar="REF", help="Also show what this branch changes in the specs against REF (git).")
def plan(targets: tuple[str, ...], replace: tuple[str, ...], refresh: bool, refresh_only: bool, prune: bool | None,
         allow_destroy: bool, fmt: str, out: Path | None, detailed_exitcode: bool, base: str | None) -> int:
    """Show what apply would change in the live world, and why.

    \b
    Examples:
      mlspec plan
      mlspec plan --target Model/sentiment -out plan.json
      mlspec plan --format markdown > comment.md      # a pull-request comment
      mlspec plan --detailed-exitcode                 # in CI: exit 2 when there are changes
      mlspec plan --base origin/main --format markdown  # a pull request: its spec changes and their plan
    """
    from mlspec.commands.plan import run

    return run(_options(targets, replace, refresh, refresh_only, prune, allow_destroy), fmt, out=out,
               detailed_exitcode=detailed_exitcode, base=base, style=_style())


@cli.command()
@click.argument("base", metavar="REF1")
@click.argument("head", metavar="[REF2]", required=False)
@format_option("text", "json", "markdown")
def diff(base: str, head: str | None, fmt: str) -> int:
    """Show what changed in the specs between two git refs, resource by resource and field by field.

    Without REF2, compare REF1 with the work tree (uncommitted edits included). Specs are read from
    git objects: nothing is checked out.

    \b
    Examples:
      mlspec diff main                  # this branch against main
      mlspec diff v1.2 v1.3 --format json
    """
    from mlspec.commands.diff import run

    return run(base, head, fmt, _style())


@cli.command()
@click.argument("plan_file", required=False, type=click.Path(dir_okay=False, exists=True, path_type=Path))
@plan_options
@format_option("text", "json")
@click.option("--parallelism", type=click.IntRange(min=1), default=4, show_default=True,
              help="Steps run at once where the graph allows.")
@click.option("-y", "--auto-approve", is_flag=True, help="Do not ask before applying (a terminal asks).")
@click.option("--allow-dirty", is_flag=True, help="Apply although the work tree has uncommitted changes.")
@click.option("--allow-rewind", is_flag=True,
              help="Apply a commit that does not descend from the last applied one.")
@lock_timeout_option
def apply(plan_file: Path | None, targets: tuple[str, ...], replace: tuple[str, ...], refresh: bool,
          refresh_only: bool, prune: bool | None, allow_destroy: bool, fmt: str, parallelism: int, auto_approve: bool,
          allow_dirty: bool, allow_rewind: bool, lock_timeout: float) -> int:
    """Carry out the plan: run each step through its plugin, committing state as each ends.

    With PLAN_FILE (from `mlspec plan -out`), apply exactly that plan, or refuse it when the state or
    the specs moved since it was made. Ctrl-C once lets running steps finish; twice stops them.

    \b
    Examples:
      mlspec apply
      mlspec plan -out plan.json && mlspec apply plan.json
      mlspec apply --target Task/prepare --parallelism 8 --lock-timeout 60
    """
    from mlspec.commands.apply import run
    from mlspec.engine.session import ApplySettings

    settings = ApplySettings(parallelism, lock_timeout, allow_dirty=allow_dirty, allow_rewind=allow_rewind)
    return run(_options(targets, replace, refresh, refresh_only, prune, allow_destroy), plan_file, fmt,
               settings=settings, auto_approve=auto_approve, style=_style())


@cli.command()
@click.argument("addresses", nargs=-1)
@format_option("text", "json")
def pull(addresses: tuple[str, ...], fmt: str) -> int:
    """Write back, from the artifact store, the files applied resources wrote in the repo (a Task's
    outs) that are missing here, as on a fresh clone. Without ADDRESSES, every resource's.

    \b
    Examples:
      mlspec pull
      mlspec pull Task/make-data
    """
    from mlspec.commands.state import run_pull

    return run_pull(addresses, fmt)


@cli.group()
def artifacts() -> None:
    """The artifact store: what it holds that nothing refers to, and a Model's files as a directory.

    \b
    Examples:
      mlspec artifacts gc
      mlspec artifacts pull Model/sentiment --to ./sentiment-model
    """


@artifacts.command("gc")
@click.option("--delete", is_flag=True, help="Delete what is unreferenced (without it: a dry run).")
@format_option("text", "json")
def artifacts_gc(delete: bool, fmt: str) -> int:
    """Find the artifacts that no state record, registry version or run cache of the state refers to;
    delete them with --delete.

    \b
    Examples:
      mlspec artifacts gc
      mlspec artifacts gc --delete
    """
    from mlspec.commands.artifacts import run_gc

    return run_gc(delete, fmt)


@artifacts.command("pull")
@click.argument("address")
@click.option("--to", "to", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The directory to write the files into.")
@click.option("--version", type=click.IntRange(min=1), help="A registry version (default: the champion).")
@format_option("text", "json")
def artifacts_pull(address: str, to: Path, version: int | None, fmt: str) -> int:
    """Write a registered Model's files (its champion's) into a directory, each checked against its
    digest: a directory that `transformers` or `torch` loads directly.

    \b
    Example:
      mlspec artifacts pull Model/sentiment --to ./sentiment-model
    """
    from mlspec.commands.artifacts import run_pull

    return run_pull(address, to, version, fmt)


@cli.group()
def state() -> None:
    """Inspect and edit the state (what mlspec last applied), like `terraform state`.

    \b
    Examples:
      mlspec state list
      mlspec state show Model/sentiment --format json
      mlspec state mv Model/sentiment Model/sentiment-v2
    """


@state.command("list")
@format_option("text", "json")
def state_list(fmt: str) -> int:
    """List the addresses in the state.

    \b
    Example:
      mlspec state list --format json
    """
    from mlspec.commands.state import run_list

    return run_list(fmt)


@state.command("show")
@click.argument("address")
@format_option("text", "json")
def state_show(address: str, fmt: str) -> int:
    """Show one address's recorded fingerprint, spec, outputs and status.

    \b
    Example:
      mlspec state show Dataset/reviews
    """
    from mlspec.commands.state import run_show

    return run_show(address, fmt)


@state.command("rm")
@click.argument("addresses", nargs=-1, required=True)
@lock_timeout_option
def state_rm(addresses: tuple[str, ...], lock_timeout: float) -> int:
    """Forget addresses (the live objects are not touched; the next plan creates them anew).

    \b
    Example:
      mlspec state rm Service/old-api
    """
    from mlspec.commands.state import run_rm

    return run_rm(addresses, lock_timeout)


@state.command("migrate")
@click.option("--to", "to", required=True, metavar="URL",
              help="postgresql://… (or ${env:NAME}), or a path for a local state file.")
@click.option("--key", help="The state's name in a shared database (default: mlspec.yaml's state.key, or the "
              "directory's name).")
@lock_timeout_option
@format_option("text", "json")
def state_migrate(to: str, key: str | None, lock_timeout: float, fmt: str) -> int:
    """Copy the state (lineage, serial, records, registry, audit chain) into another backend, verified.

    \b
    Example:
      mlspec state migrate --to '${env:MLSPEC_STATE_URL}' --key sentiment-specs
    """
    from mlspec.commands.state import run_migrate

    return run_migrate(to, key, lock_timeout, fmt)


@state.command("mv")
@click.argument("source")
@click.argument("destination")
@lock_timeout_option
def state_mv(source: str, destination: str, lock_timeout: float) -> int:
    """Rename an address in the state (after renaming its spec), so the next plan does not replace it.

    \b
    Example:
      mlspec state mv Model/sentiment Model/sentiment-v2
    """
    from mlspec.commands.state import run_mv

    return run_mv(source, destination, lock_timeout)


@cli.group()
def models() -> None:
    """The model registry: each Model's versions and aliases (champion, candidate, ...), kept in state.

    \b
    Examples:
      mlspec models list
      mlspec models show Model/sentiment --format json
    """


@models.command("list")
@format_option("text", "json")
def models_list(fmt: str) -> int:
    """Every registered Model: its versions, aliases and champion's metrics."""
    from mlspec.commands.models import run_list

    return run_list(fmt)


@models.command("show")
@click.argument("address")
@format_option("text", "json")
def models_show(address: str, fmt: str) -> int:
    """One Model's versions, newest first: metrics, gate verdicts, aliases, and the alias history.

    \b
    Example:
      mlspec models show sentiment
    """
    from mlspec.commands.models import run_show

    return run_show(address, fmt, _style())


@cli.group()
def serve() -> None:
    """The servers mlspec supervises on this machine (applied Services): status, logs, stop, start.

    \b
    Examples:
      mlspec serve status
      mlspec serve logs Service/sentiment-api -n 100
      mlspec serve stop Service/sentiment-api
    """


@serve.command("status")
@click.argument("address", required=False)
@format_option("text", "json")
def serve_status(address: str | None, fmt: str) -> int:
    """Each server: its URL, whether it is running, live (/livez) and ready (/readyz). With ADDR, exit 1
    unless it is ready."""
    from mlspec.commands.serve import run_status

    return run_status(address, fmt, _style())


@serve.command("logs")
@click.argument("address")
@click.option("-n", "--lines", type=click.IntRange(1, 100_000), default=50, show_default=True)
def serve_logs(address: str, lines: int) -> int:
    """The end of a server's log (.mlspec/serving/<name>/server.log)."""
    from mlspec.commands.serve import run_logs

    return run_logs(address, lines)


@serve.command("stop")
@click.argument("address")
def serve_stop(address: str) -> int:
    """Stop a server. State keeps it: the next plan says it is down, and apply starts it again."""
    from mlspec.commands.serve import run_stop

    return run_stop(address)


@serve.command("start")
@click.argument("address")
@lock_timeout_option
def serve_start(address: str, lock_timeout: float) -> int:
    """Start a stopped server again, as the last apply started it, and record it in state (audited)."""
    from mlspec.commands.serve import run_start

    return run_start(address, lock_timeout)


@cli.group()
def render() -> None:
    """Resources in another system's terms, from the specs and state.

    \b
    Examples:
      mlspec render k8s --out k8s/
      mlspec render k8s Service/sentiment-api --image registry.example.com/sentiment-api:v2
    """


@render.command("k8s")
@click.argument("address", required=False)
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="write one YAML file per resource here (default: stdout)")
@click.option("--image", default=None, help="the container image (default: the bento's tag)")
def render_k8s(address: str | None, out: Path | None, image: str | None) -> int:
    """Kubernetes manifests: per Service a Deployment (an Argo Rollout with its canary steps), a Service
    and a HorizontalPodAutoscaler, with resources, GPU requests and probes on /livez and /readyz."""
    from mlspec.commands.render import run_k8s

    return run_k8s(address, out, image, _style())


@render.command("prometheus")
@click.argument("address", required=False)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the rules file here (default: stdout)")
def render_prometheus(address: str | None, out: Path | None) -> int:
    """Prometheus alerting rules: per Monitor, an alert on drift and one when it has not run for a while,
    on the gauges `mlspec monitor run` writes (check them with `promtool check rules`)."""
    from mlspec.commands.render import run_prometheus

    return run_prometheus(address, out, _style())


@cli.group()
def monitor() -> None:
    """Drift of what a Service is asked against the data its Model was trained on.

    \b
    Examples:
      mlspec monitor run                           # every Monitor; exit 3 when one found drift
      mlspec monitor run sentiment-drift --format json
    """


@monitor.command("run")
@click.argument("address", required=False)
@lock_timeout_option
@format_option("text", "json")
def monitor_run(address: str | None, lock_timeout: float, fmt: str) -> int:
    """Judge the current window of each Monitor (or ADDR) against its reference: a report (JSON, HTML,
    Prometheus gauges under .mlspec/monitoring/), the alerts, the verdict in state. Exit code 3 on
    drift; with `on_drift: retrain` the next plan replaces the Model."""
    from mlspec.commands.monitor import run_monitor

    return run_monitor(address, lock_timeout, fmt, _style())


class VersionNumber(_IntParam):
    """`3` or `v3`, as `mlspec models show` prints it."""

    name = "version"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        text = str(value).strip()
        digits = text[1:] if text[:1] in ("v", "V") else text
        if not digits.isdigit() or int(digits) < 1:
            self.fail(f"`{text}` is not a version: expected a number such as 3 or v3", param, ctx)
        return int(digits)


@cli.command()
@click.argument("address")
@click.argument("version", type=VersionNumber())
@click.option("--alias", default="champion", show_default=True, help="The alias to point at VERSION.")
@click.option("--force", is_flag=True, help="Promote a version that failed its gates (needs --reason).")
@click.option("--reason", default="", help="Why: recorded in the alias history and the audit log.")
@lock_timeout_option
@format_option("text", "json")
def promote(address: str, version: int, alias: str, force: bool, reason: str, lock_timeout: float, fmt: str) -> int:
    """Point ALIAS of ADDRESS at VERSION (audited). Promoting a champion moves what is built on it on
    the next apply. A version that failed its gates is promoted only with --force and a --reason.

    \b
    Examples:
      mlspec promote Model/sentiment 3 --alias champion
      mlspec promote Model/sentiment v4 --force --reason "gate recalibrated, see #812"
    """
    from mlspec.commands.models import run_promote

    return run_promote(address, version, alias, lock_timeout, fmt, force=force, reason=reason)


@cli.command()
@click.argument("address")
@lock_timeout_option
@format_option("text", "json")
def rollback(address: str, lock_timeout: float, fmt: str) -> int:
    """Make the previous champion of ADDRESS the champion again (audited); the Services that serve it
    follow on the next apply.

    \b
    Example:
      mlspec rollback Model/sentiment && mlspec apply
    """
    from mlspec.commands.models import run_rollback

    return run_rollback(address, lock_timeout, fmt)


@cli.group()
def prompts() -> None:
    """The prompt registry: each Prompt's versions (template, variables, settings), their test results and
    aliases. Applications render the version an alias points at: `mlspec.prompts.render(name, alias)`.

    \b
    Examples:
      mlspec prompts list
      mlspec prompts show review-triage
      mlspec prompts diff review-triage 1 2
      mlspec promote Prompt/review-triage 1 --alias production --reason "v2 confuses billing"
    """


@prompts.command("list")
@format_option("text", "json")
def prompts_list(fmt: str) -> int:
    """Every registered Prompt: its versions, aliases and the latest version's pass rate."""
    from mlspec.commands.prompts import run_list

    return run_list(fmt)


@prompts.command("show")
@click.argument("address")
@format_option("text", "json")
def prompts_show(address: str, fmt: str) -> int:
    """One Prompt's versions, newest first: digest, test results, failures, aliases, alias history."""
    from mlspec.commands.prompts import run_show

    return run_show(address, fmt, _style())


@prompts.command("diff")
@click.argument("address")
@click.argument("first", required=False, type=VersionNumber())
@click.argument("second", required=False, type=VersionNumber())
@format_option("text", "json")
def prompts_diff(address: str, first: int | None, second: int | None, fmt: str) -> int:
    """The template diff between two versions (default: the latest two), and changed variables or settings.

    \b
    Example:
      mlspec prompts diff review-triage v1 v3
    """
    from mlspec.commands.prompts import run_diff

    return run_diff(address, first, second, fmt, _style())


@cli.command()
@click.argument("address")
@format_option("text", "json")
def lineage(address: str, fmt: str) -> int:
    """What ADDR was built from, back to file digests, and what depends on it.

    \b
    Examples:
      mlspec lineage Dataset/reviews
      mlspec lineage Model/sentiment --format json
    """
    from mlspec.commands.lineage import run

    return run(address, fmt, _style())


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show the changes as a diff; write nothing.")
@format_option("text", "json")
def migrate(paths: tuple[Path, ...], dry_run: bool, fmt: str) -> int:
    """Upgrade specs of an older apiVersion (mlspec/v1alpha1) to the current one, in place.

    Only the renamed keys and the apiVersion change: comments, quoting and layout are kept.

    \b
    Examples:
      mlspec migrate --dry-run
      mlspec migrate specs/models
    """
    from mlspec.commands.migrate import run

    return run(list(paths), dry_run, fmt, _style())


@cli.group()
def audit() -> None:
    """Read and verify the audit log (.mlspec/audit/log.jsonl): every apply, who, from which commit.

    \b
    Examples:
      mlspec audit verify
      mlspec audit log --address Model/sentiment --since 7d
    """


@audit.command("verify")
@format_option("text", "json")
def audit_verify(fmt: str) -> int:
    """Check the hash chain: say where an entry was edited, dropped or reordered (exit 1).

    \b
    Example:
      mlspec audit verify --format json
    """
    from mlspec.commands.audit import run_verify

    return run_verify(fmt, _style())


@audit.command("log")
@click.option("--address", metavar="ADDR", help="Only entries that touched ADDR.")
@click.option("--since", metavar="WHEN", help="Only entries since a date (2026-11-01), a time, or an age (7d, 12h).")
@format_option("text", "json")
def audit_log(address: str | None, since: str | None, fmt: str) -> int:
    """Show the audit log, oldest first.

    \b
    Example:
      mlspec audit log --address Task/prepare --since 2026-11-01
    """
    from mlspec.commands.audit import run_log

    return run_log(address, since, fmt)


@cli.command("force-unlock")
@click.argument("lock_id")
def force_unlock(lock_id: str) -> int:
    """Remove the state lock left by a run that died (its id is in the "locked" error).

    \b
    Example:
      mlspec force-unlock 3f2a9c1b7d04
    """
    from mlspec.commands.state import run_force_unlock

    return run_force_unlock(lock_id)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: the only place exceptions become messages and exit codes."""
    args = list(sys.argv[1:] if argv is None else argv)
    cwd = os.getcwd()
    try:
        result = cli.main(args=args, prog_name="mlspec", standalone_mode=False)
    except click.exceptions.Exit as exit_:
        return exit_.exit_code
    except click.UsageError as err:  # click's own code is 2; ours is 1 (2 means "plan has changes")
        err.show()
        return EXIT_ERROR
    except click.ClickException as err:
        err.show()
        return EXIT_ERROR
    except (click.Abort, KeyboardInterrupt):
        click.echo("Interrupted.", err=True)
        return 130
    except MlspecError as err:
        from mlspec.masking import mask

        click.echo(f"{click.style('error', fg='red', bold=True)}: {mask(str(err))}", err=True)
        return err.exit_code
    except Exception:
        if "--debug" in args:
            raise
        from mlspec.masking import mask

        exc = sys.exc_info()[1]
        click.echo(
            f"internal error: {type(exc).__name__}: {mask(str(exc))}\n"
            "This is a bug in mlspec. Run again with --debug for the traceback and report it.",
            err=True,
        )
        return EXIT_ERROR
    finally:
        os.chdir(cwd)  # -C must not leak into a caller that runs main() in-process (tests, tools)
    return result if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
