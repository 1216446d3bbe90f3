"""Helpers for tests that need a real git repository: make one, commit to it, drive the CLI in it.

Repositories are made with the git CLI (as a user makes them), in a temporary directory, with their
own user.name/user.email and no signing, so the tests do not depend on the machine's git config.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NAME, EMAIL = "Ada Lovelace", "ada@example.com"
CONFIG = "specs: ['specs/**/*.yaml']\n"
GITIGNORE = ".mlspec/\nout/\nrun.log\n"
def task(name: str, *, owner: str = "team-x", **spec: Any) -> str:
    """A Task spec in YAML; by default it runs `true` with params {lr: 0.1}."""
    body: dict[str, Any] = {"cmd": ["true"], "params": {"lr": 0.1}, **spec}
    return (f"apiVersion: mlspec/v1\nkind: Task\nmetadata: {{name: {name}, owner: {owner}}}\n"
            f"spec: {json.dumps(body)}\n")


def git(cwd: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(["git", "-c", "commit.gpgsign=false", "-c", "advice.detachedHead=false", *args],
                          cwd=cwd, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout


@dataclass
class Repo:
    root: Path

    def git(self, *args: str, check: bool = True) -> str:
        return git(self.root, *args, check=check)

    def write(self, files: dict[str, str]) -> None:
        for rel, text in files.items():
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def remove(self, *paths: str) -> None:
        for rel in paths:
            (self.root / rel).unlink()

    def commit(self, files: dict[str, str] | None = None, *, remove: tuple[str, ...] = (),
               message: str = "change") -> str:
        """Write `files`, delete `remove`, commit everything; the new commit's sha."""
        self.write(files or {})
        self.remove(*remove)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def status(self) -> str:
        return self.git("status", "--porcelain", "--untracked-files=all")


def make_repo(root: Path, files: dict[str, str] | None = None, *, config: str = CONFIG,
              commit: bool = True) -> Repo:
    """A git repository at `root` holding mlspec.yaml, .gitignore and `files`, committed on main."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", NAME)
    git(root, "config", "user.email", EMAIL)
    repo = Repo(root)
    repo.write({"mlspec.yaml": config, ".gitignore": GITIGNORE, **(files or {})})
    if commit:
        repo.commit(message="initial")
    return repo





