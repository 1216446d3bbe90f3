"""Which mlspec a benchmark runs: the working tree, or the code as committed at a git revision.

While someone is editing mlspec/ and plugins/, the working tree can be mid-edit at any moment;
`--rev HEAD` exports the committed packages (`git archive`) under benchmarks/.work/src-<sha>/ and
puts them first on the children's PYTHONPATH. The editable install's finder comes after PYTHONPATH
on sys.meta_path, so the exported packages win; `describe` checks where they were imported from.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "benchmarks" / ".work"
PACKAGES = ("mlspec", "mlspec_task")  # the core and the built-in Task plugin (plugins/mlspec_task)


def export_rev(rev: str) -> Path:
    """`git archive REV mlspec plugins` into .work/src-<sha>/, once."""
    sha = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
    dest = WORK / f"src-{sha[:12]}"
    if not (dest / "mlspec" / "__init__.py").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha, "mlspec", "plugins"], cwd=REPO, check=True,
                                 capture_output=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def use_source(env: dict[str, str], src: Path) -> None:
    """Put the packages in `src` (a checkout or an export) first on the children's PYTHONPATH."""
    src = src.resolve()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(src), str(src / "plugins"), env.get("PYTHONPATH"))))


def describe(env: dict[str, str], rev: str | None) -> str:
    """Where the children import mlspec and its Task plugin from, and at which commit."""
    probe = "import importlib, sys; print(*(importlib.import_module(p).__file__ for p in sys.argv[1:]))"
    out = subprocess.run([sys.executable, "-c", probe, *PACKAGES], env=env, cwd=WORK, capture_output=True,
                         text=True, check=True).stdout.split()  # fmt: skip
    places = ", ".join(f"`{Path(f).parent}`" for f in out)
    if rev:
        return f"{places}, exported from commit {_git('rev-parse', '--short=12', rev)}"
    if all(Path(f).is_relative_to(REPO) for f in out):
        dirty = _git("status", "--porcelain", "--", "mlspec", "plugins")
        state = "**with uncommitted changes under mlspec/ or plugins/**" if dirty else "clean"
        return f"{places} (working tree), HEAD {_git('rev-parse', '--short=12', 'HEAD')}, {state}"
    return places


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
