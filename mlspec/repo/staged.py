"""What a commit would hold: the spec set as git's index has it, for the pre-commit hook.

A hook that validates the work tree passes a commit whose Model names a Dataset spec that was never
staged; a clean checkout of that commit then fails. So `mlspec validate --staged` validates the
index: every YAML file and mlspec.yaml as staged, written out to a scratch directory by git itself
(`git checkout-index`), files git does not track left out, as a checkout of the commit would.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlspec.errors import GitError


@contextmanager
def staged_tree(root: Path) -> Iterator[Path]:
    """A directory holding the project's YAML files as staged; GitError outside a repository."""
    from mlspec.repo.checkout import open_checkout

    checkout = open_checkout(root)
    listed = checkout.git("ls-files", "-z", "--cached", "--", f"{checkout.prefix or '.'}")
    wanted = [p for p in listed.split("\0") if p.endswith((".yaml", ".yml"))]
    scratch = Path(tempfile.mkdtemp(prefix="mlspec-staged-"))
    try:
        if wanted:
            done = subprocess.run(["git", "checkout-index", "-z", "--stdin", f"--prefix={scratch}/"],
                                  input="\0".join(wanted).encode(), cwd=checkout.repo.working_dir,
                                  capture_output=True)
            if done.returncode != 0:
                raise GitError(f"git checkout-index failed: {done.stderr.decode(errors='replace').strip()}")
        project = scratch / checkout.prefix if checkout.prefix else scratch
        project.mkdir(parents=True, exist_ok=True)
        # The parse cache is the work tree's: a staged file whose bytes it has seen costs a digest, not a parse.
        (root / ".mlspec").mkdir(exist_ok=True)
        (project / ".mlspec").symlink_to(root.resolve() / ".mlspec", target_is_directory=True)
        yield project
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
