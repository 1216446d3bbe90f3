"""Finding the project and its spec files.

The root is the nearest directory upwards with mlspec.yaml (else the current directory). Spec files
are the globs of mlspec.yaml, walked once. A symlink may point anywhere inside the root; one that
leaves it is reported, never read: a spec repo must not pull in files from outside itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlspec.errors import ProjectError
from mlspec.spec import codes
from mlspec.spec.diagnostics import Diagnostic, Severity
from mlspec.spec.globs import compile_glob, static_prefix
from mlspec.spec.vocabulary import DEFAULT_SPECS, PROJECT_FILE

STATE_DIR = ".mlspec"
_SKIP_DIRS = frozenset((".git", ".mlspec", "node_modules", "__pycache__", ".venv", "venv"))


@dataclass(frozen=True, slots=True)
class SpecFile:
    rel: str  # POSIX, relative to the root when inside it: what diagnostics show
    path: str  # where to read it
    stat: os.stat_result | None = None  # taken during discovery, so reading needs no second stat


@dataclass
class Project:
    root: Path
    config: Any  # ProjectConfig, or a plain dict mirror of it from the cache
    config_file: Path | None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    def setting(self, *keys: str) -> Any:
        value = self.config
        for key in keys:
            value = value[key] if isinstance(value, dict) else getattr(value, key)
        return value


def find_root(start: Path | None = None) -> Path:
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / PROJECT_FILE).is_file():
            return candidate
    return here


def load_project(root: Path | None = None) -> Project:
    """Read mlspec.yaml (when present) into a validated config; problems become diagnostics."""
    root = find_root(root)
    if not root.is_dir():
        raise ProjectError(f"project directory {root} does not exist")
    config_file = root / PROJECT_FILE
    if not config_file.is_file():
        from mlspec.config import ProjectConfig

        return Project(root, ProjectConfig(), None)
    from mlspec.config import ProjectConfig
    from mlspec.spec.check import translate_model

    try:
        raw = config_file.read_bytes()
    except OSError as err:
        raise ProjectError(f"cannot read {config_file}: {err.strerror}") from err
    from mlspec.spec.loader import decode, load_text

    text, problem = decode(raw, PROJECT_FILE)
    if problem is not None:
        return Project(root, ProjectConfig(), config_file, [problem])
    loaded = load_text(text or "", PROJECT_FILE)
    diagnostics = [d for d in loaded.diagnostics if d.code != codes.EMPTY_FILE]
    if not loaded.documents:
        return Project(root, ProjectConfig(), config_file, diagnostics)
    document = loaded.documents[0]
    if len(loaded.documents) > 1:
        extra = loaded.documents[1].position(())
        diagnostics.append(
            Diagnostic(codes.PROJECT_INVALID, f"{PROJECT_FILE} holds {len(loaded.documents)} documents; only the first "
                       "is read", PROJECT_FILE, extra.line, extra.col, hint="merge them into one document")
        )
    config, problems = translate_model(ProjectConfig, document, PROJECT_FILE)
    if config is None and isinstance(document.data, dict):
        # Keep every setting that is valid: one bad limit must not throw away the `specs` globs.
        bad = {d.field.split(".", 1)[0].split("[", 1)[0] for d in problems if d.field}
        salvaged = {k: v for k, v in document.data.items() if k not in bad}
        try:
            config = ProjectConfig.model_validate(salvaged)
        except ValueError:
            config = None
    return Project(root, config or ProjectConfig(), config_file, diagnostics + problems)


def discover(project: Project, paths: list[Path] | None = None) -> tuple[list[SpecFile], list[Diagnostic]]:
    """The spec files: the project's globs, or the given files and directories."""
    root = project.root
    diagnostics: list[Diagnostic] = []
    excludes = _globs(project.setting("exclude"), "exclude", diagnostics)
    found: dict[str, SpecFile] = {}
    if paths:
        for given in paths:
            absolute = given if given.is_absolute() else Path.cwd() / given
            rel = _relative(absolute, root)
            if absolute.is_dir():
                prefix = "" if rel == "." else rel.rstrip("/") + "/"
                regexes = [compile_glob(prefix + "**/*.yaml"), compile_glob(prefix + "**/*.yml")]
                _walk(root, absolute, prefix, regexes, excludes, found, diagnostics)
            elif absolute.exists() or absolute.is_symlink():
                _add(root, absolute, rel, found, diagnostics)
            else:
                diagnostics.append(Diagnostic(codes.FILE_UNREADABLE, "no such file or directory", str(given)))
    else:
        patterns = [p for p in project.setting("specs") if _inside(p, "specs", diagnostics)]
        regexes = _globs(patterns, "specs", diagnostics)
        starts = sorted({static_prefix(p) for p in patterns})
        for start in _outermost(starts):
            _walk(root, root / start, f"{start}/" if start else "", regexes, excludes, found, diagnostics)
        if not found and not diagnostics:
            line = _line_of(project.config_file, "specs")
            diagnostics.append(
                Diagnostic(
                    codes.NO_SPEC_FILES, f"no spec files match {', '.join(patterns)}",
                    PROJECT_FILE if project.config_file else ".", line, 1 if line else None,
                    severity=Severity.WARNING,
                    hint=None if project.config_file or patterns != list(DEFAULT_SPECS)
                    else "put specs under specs/ or set `specs:` in mlspec.yaml",
                )
            )
    return sorted(found.values(), key=lambda f: f.rel), diagnostics


def _line_of(config_file: Path | None, key: str) -> int | None:
    """The line of a top-level key of mlspec.yaml (a warning's position; None when it is not written)."""
    if config_file is None:
        return None
    try:
        lines = config_file.read_text(errors="replace").splitlines()
    except OSError:
        return None
    pattern = re.compile(rf"^{re.escape(key)}\s*:")
    return next((i for i, text in enumerate(lines, 1) if pattern.match(text)), None)


def _inside(pattern: str, setting: str, diagnostics: list[Diagnostic]) -> bool:
    """A spec glob must stay inside the project: no absolute paths, no `..`."""
    if pattern.startswith("/") or ".." in pattern.split("/"):
        diagnostics.append(
            Diagnostic(codes.PROJECT_INVALID, f"`{pattern}` reaches outside the project", PROJECT_FILE,
                       field=setting, expected="a glob relative to the project root, without `..`")
        )
        return False
    return True


def _globs(patterns: list[str], setting: str, diagnostics: list[Diagnostic]) -> list[Any]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(compile_glob(pattern))
        except re.error as err:
            diagnostics.append(
                Diagnostic(codes.PROJECT_INVALID, f"invalid glob `{pattern}`: {err}", PROJECT_FILE, field=setting)
            )
    return compiled


def _outermost(starts: list[str]) -> list[str]:
    out: list[str] = []
    for start in starts:
        if not any(start == o or start.startswith(o + "/") or o == "" for o in out):
            out.append(start)
    return out


def _walk(
    root: Path,
    top: Path,
    prefix: str,
    regexes: list[Any],
    excludes: list[Any],
    found: dict[str, SpecFile],
    diagnostics: list[Diagnostic],
) -> None:
    """Walk `top`; a file is named (matched and shown) as `prefix` + its path below `top`.

    os.scandir rather than os.walk: the entry's type says whether it is a link without an lstat.
    Symlinked directories are not followed.
    """
    stack = [(str(top), prefix)]
    while stack:
        directory, rel_dir = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in _SKIP_DIRS:
                    stack.append((entry.path, f"{rel_dir}{entry.name}/"))
                continue
            rel = rel_dir + entry.name
            if not any(r.match(rel) for r in regexes) or any(r.match(rel) for r in excludes):
                continue
            if rel == PROJECT_FILE and Path(directory) == root:  # the project file is not a spec
                continue
            if entry.is_symlink():
                _add(root, Path(entry.path), rel, found, diagnostics)
            else:
                try:
                    found[rel] = SpecFile(rel, entry.path, entry.stat())
                except OSError:
                    found[rel] = SpecFile(rel, entry.path)


def _add(root: Path, path: Path, rel: str, found: dict[str, SpecFile], diagnostics: list[Diagnostic]) -> None:
    if path.is_symlink():
        target = Path(os.path.realpath(path))
        if not target.is_relative_to(root.resolve()):
            diagnostics.append(
                Diagnostic(
                    codes.SYMLINK_ESCAPES, f"symlink points outside the project (to {target})", rel,
                    hint="copy the file into the repo instead of linking to it",
                )
            )
            return
        if target.is_dir():
            return
    found[rel] = SpecFile(rel, str(path))


def _relative(path: Path, root: Path) -> str:
    """The name a given path is shown by: relative to the root when inside it. A symlink is named
    where it is, not where it points (only its directory is resolved)."""
    try:
        return (path.parent.resolve() / path.name).relative_to(root).as_posix()
    except ValueError:
        return str(path)
