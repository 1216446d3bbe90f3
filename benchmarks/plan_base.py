"""`mlspec plan --base REF` against a plain `mlspec plan`, on the same repository in the same run.

Why: a pull request's plan also says what the branch changes in the specs, read from git objects.
That must stay cheap on a big spec repo: only the files git reports as changed are read at REF.
Goal (issue 5): on 2,000 resources where the branch changes 5 files, <= 1.5x a plain plan.

    python benchmarks/plan_base.py [--resources 2000] [--changed 5] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from workloads import task_repo

WORK = Path(__file__).parent / ".work" / "plan-base"
MLSPEC = str(Path(sys.executable).parent / "mlspec")


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def build(resources: int, changed: int) -> Path:
    root = WORK / f"repo-{resources}-{changed}"
    if root.exists():
        return root
    task_repo(root, resources, trivial=True)
    (root / ".gitignore").write_text(".mlspec/\nout/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "bench@example.com")
    git(root, "config", "user.name", "bench")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "main")
    git(root, "checkout", "-q", "-b", "feature")
    step = max(1, resources // changed)
    for i in range(0, step * changed, step):
        path = root / "specs" / f"s{i}.yaml"
        path.write_text(path.read_text().replace('["true"]', '["true", "changed"]'))
    git(root, "commit", "-qam", "feature")
    subprocess.run([MLSPEC, "plan"], cwd=root, check=True, capture_output=True)  # warm the caches
    return root


def timed(root: Path, *args: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([MLSPEC, "plan", *args], cwd=root, capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"mlspec plan {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=2000)
    parser.add_argument("--changed", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    root = build(args.resources, args.changed)
    plain, based = [], []
    for _ in range(args.repeat):  # interleaved, so drift in the machine's load hits both alike
        plain.append(timed(root))
        based.append(timed(root, "--base", "main"))
    ratio = statistics.median(based) / statistics.median(plain)
    load = os.getloadavg()
    table = "\n".join([
        f"## `mlspec plan --base main` vs `mlspec plan` ({args.resources} resources, {args.changed} changed files, "
        f"median of {args.repeat}, interleaved)",
        "",
        f"- machine: {os.cpu_count()} CPUs; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} after the run",
        "",
        "| command | wall s (median) | wall s (min) |",
        "|---|---:|---:|",
        f"| `mlspec plan` | {statistics.median(plain):.3f} | {min(plain):.3f} |",
        f"| `mlspec plan --base main` | {statistics.median(based):.3f} | {min(based):.3f} |",
        "",
        f"Ratio: {ratio:.2f}x (goal <= 1.5x: {'met' if ratio <= 1.5 else '**missed**'}).",
    ])
    print(table)
    out = Path(__file__).parent / "results" / "plan_base.md"
    out.write_text(table + "\n")


if __name__ == "__main__":
    main()
