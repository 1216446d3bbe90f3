"""Early cutoff on the bundled repo: what a Dataset check edit costs, with and without it.

    python benchmarks/cutoff.py [--before REV] [--repeat R] [--no-write]

Why: a new user tightened a Dataset check (`min_rows: 1000 -> 1500`) that the same rows still pass;
the splits came out byte-identical, and mlspec retrained the Model downstream into a version with the
same metrics. At GPU scale that is hours. With early cutoff the Dataset re-validates and nothing
downstream runs.

For each code version (the working tree, and `--before REV`, default the commit before early cutoff
landed), in the same run and interleaved: copy the bundled specs/, scripts/ and mlspec.yaml into a
fresh directory, `mlspec apply -y` (untimed), edit `min_rows` in specs/data/reviews.yaml, then time
`mlspec apply -y` as a fresh process and count the steps it ran (from `--format json`: `done`, and
`cutoff`). Reports the medians of R rounds and writes benchmarks/results/cutoff.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import source  # noqa: E402

REPO = HERE.parent
RESULTS = HERE / "results" / "cutoff.md"
BIN = Path(sys.executable).parent
MLSPEC = str(BIN / "mlspec") if (BIN / "mlspec").exists() else shutil.which("mlspec") or "mlspec"
BEFORE = "4a2881b"  # main before issue 12 (the plugin SDK and early cutoff)


def bundled(into: Path) -> Path:
    root = into / "bundled"
    shutil.copytree(REPO / "specs", root / "specs")
    shutil.copytree(REPO / "scripts", root / "scripts")
    shutil.copy(REPO / "mlspec.yaml", root / "mlspec.yaml")
    return root


def one(env: dict[str, str]) -> tuple[float, list[str], dict[str, str]]:
    """(seconds of the apply after the edit, the steps it ran, the steps it cut off)."""
    with tempfile.TemporaryDirectory(prefix="mlspec-cutoff-") as tmp:
        root = bundled(Path(tmp))
        first = subprocess.run([MLSPEC, "-C", str(root), "apply", "-y", "--format", "json"], env=env,
                               capture_output=True, text=True)  # fmt: skip
        if first.returncode != 0:
            raise SystemExit(f"the first apply failed:\n{first.stdout}\n{first.stderr}")
        spec = root / "specs" / "data" / "reviews.yaml"
        spec.write_text(spec.read_text().replace("min_rows: 1000", "min_rows: 1500"))
        started = time.perf_counter()
        edited = subprocess.run([MLSPEC, "-C", str(root), "apply", "-y", "--format", "json"], env=env,
                                capture_output=True, text=True)  # fmt: skip
        seconds = time.perf_counter() - started
        if edited.returncode != 0:
            raise SystemExit(f"the apply after the edit failed:\n{edited.stdout}\n{edited.stderr}")
        report = json.loads(edited.stdout)
        return seconds, list(report["done"]), dict(report.get("cutoff") or {})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default=BEFORE, help=f"the code to compare with (default {BEFORE})")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/cutoff.md")
    args = parser.parse_args()
    base = {**os.environ, "HF_HUB_OFFLINE": "1", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    before_env = dict(base)
    source.use_source(before_env, source.export_rev(args.before))
    runs: dict[str, list[tuple[float, list[str], dict[str, str]]]] = {"before": [], "after": []}
    for _ in range(args.repeat):  # interleaved: the machine's drift falls on both alike
        runs["before"].append(one(before_env))
        runs["after"].append(one(dict(base)))
    rows = []
    for name, found in runs.items():
        seconds = statistics.median(s for s, _, _ in found)
        done, cut = found[-1][1], found[-1][2]
        rows.append(f"| {name} | {seconds:.2f} | {len(done)}: {', '.join(done)} | "
                    f"{', '.join(cut) or '-'} |")
    ratio = statistics.median(s for s, _, _ in runs["before"]) / statistics.median(s for s, _, _ in runs["after"])
    text = "\n".join([
        "# Early cutoff: a Dataset check edit on the bundled repo",
        "",
        f"`python benchmarks/cutoff.py --repeat {args.repeat}` (before: {args.before}; after: the working tree), "
        "the apply after `min_rows: 1000 -> 1500` in specs/data/reviews.yaml, as a fresh process; "
        f"median of {args.repeat}, interleaved.",
        "",
        "| code | apply s | steps run | cut off |",
        "|---|---:|---|---|",
        *rows,
        "",
        f"before / after: {ratio:.1f}x",
        "",
    ])
    print(text)
    if not args.no_write:
        RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
