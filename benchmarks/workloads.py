"""Spec repos for the plan/apply benchmarks: Task pipelines as mlspec specs and as the equivalent dvc.yaml.

The shape (issue 4): a chain plus fan-out, with files as deps. Stage i reads `data/in-<i>.txt` (a
file in the repo), and depends on stage i-1 (a chain) or, for every `fan`-th stage, on a hub stage
(a fan-out). Each stage writes `out/<i>.txt`.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROJECT = """specs: ["specs/**/*.yaml"]\n"""


def upstream_of(i: int, fan: int) -> int | None:
    """The stage stage i depends on: a hub every `fan` stages, the previous one otherwise."""
    if i == 0:
        return None
    return (i // fan) * fan if i % fan else i - fan


def task_repo(root: Path, stages: int, *, fan: int = 10, trivial: bool = False, per_file: int = 1,
              sleep: float | None = None) -> Path:
    """`stages` Task specs (one per file when per_file=1) and their input files.

    By default each stage copies its input to `out/<i>.txt`, as the DVC pipeline does; `trivial`
    stages run `true` and write nothing; `sleep` stages sleep that long.
    """
    (root / "specs").mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "out").mkdir(exist_ok=True)
    (root / "mlspec.yaml").write_text(PROJECT)
    docs: list[str] = []
    for i in range(stages):
        (root / "data" / f"in-{i}.txt").write_text(f"input {i}\n")
        up = upstream_of(i, fan)
        deps = f"[data/in-{i}.txt]"
        depends = f"\n  depends_on: [Task/s{up}]" if up is not None else ""
        outs = ""
        if sleep is not None:
            run = [sys.executable, "-c", f"import time; time.sleep({sleep})"]
        elif trivial:
            run = ["true"]
        else:
            run, outs = ["cp", f"data/in-{i}.txt", f"out/{i}.txt"], f"\n  outs: [out/{i}.txt]"
        argv = ", ".join(f'"{a}"' for a in run)
        docs.append(
            f"apiVersion: mlspec/v1\nkind: Task\nmetadata: {{name: s{i}}}\nspec:\n  cmd: [{argv}]\n"
            f"  deps: {deps}{depends}{outs}\n"
        )
    for start in range(0, stages, per_file):
        (root / "specs" / f"s{start}.yaml").write_text("---\n".join(docs[start : start + per_file]))
    return root


def dvc_yaml(root: Path, stages: int, *, fan: int = 10) -> Path:
    """The same pipeline as DVC stages: each reads its input file and its upstream's output."""
    lines = ["stages:"]
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "out").mkdir(exist_ok=True)
    for i in range(stages):
        (root / "data" / f"in-{i}.txt").write_text(f"input {i}\n")
        up = upstream_of(i, fan)
        deps = [f"data/in-{i}.txt"] + ([f"out/{up}.txt"] if up is not None else [])
        lines += [f"  s{i}:", f"    cmd: cp data/in-{i}.txt out/{i}.txt", "    deps:"]
        lines += [f"      - {d}" for d in deps]
        lines += ["    outs:", f"      - out/{i}.txt"]
    (root / "dvc.yaml").write_text("\n".join(lines) + "\n")
    return root
