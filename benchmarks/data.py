"""The Dataset plugin's figures (issue 6), each against a peer in the same run.

1. Digest throughput of a 2 GB file: mlspec's digest (through the stat cache, first sight: the
   file is read) against `sha256sum` on the same file, interleaved; then the unchanged file again
   (the stat cache answers: a stat and a lookup). Goals: >= 80% of sha256sum; warm <= 5 ms.
2. Validate and profile a 10-million-row, 10-column parquet dataset: the plugin's streaming pass
   (schema, nulls, ranges, allowed values, uniqueness, duplicates, profile), in a fresh process so
   its peak memory is its own. Goal: memory bounded by batches (reported beside the file size and
   the size the table would take in memory).

    python benchmarks/data.py [--gigabytes 2] [--rows 10000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

WORK = Path(__file__).parent / ".work" / "data"
CHUNK = 1 << 24

INSPECT = """
import json, sys, time, resource
from types import SimpleNamespace as NS
from mlspec_data.quality import Inspector
from mlspec_data.sources import batches
columns = {f"f{i}": NS(type="float", nullable=True, range=NS(min=-10.0, max=10.0), allowed=None, unique=False)
           for i in range(6)}
columns |= {"id": NS(type="int", nullable=False, range=None, allowed=None, unique=True),
            "city": NS(type="category", nullable=False, range=None, allowed=[f"c{i}" for i in range(50)],
                       unique=False),
            "flag": NS(type="bool", nullable=True, range=None, allowed=None, unique=False),
            "note": NS(type="string", nullable=True, range=None, allowed=None, unique=False)}
spec = NS(schema_=NS(columns=columns, strict=True),
          checks=NS(min_rows=1, max_null_fraction=0.5, max_duplicate_fraction=0.01))
started = time.perf_counter()
inspector = Inspector(spec, profile=True, stratify="city", seed=0)
for batch in batches(__import__("pathlib").Path(sys.argv[1]), "parquet"):
    inspector.add(batch)
violations, profile = inspector.finish(str)
took = time.perf_counter() - started
print(json.dumps({"seconds": took, "rows": inspector.rows, "violations": [v.rule for v in violations],
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def big_file(gigabytes: float) -> Path:
    path = WORK / f"blob-{gigabytes:g}g.bin"
    size = int(gigabytes * (1 << 30))
    if path.exists() and path.stat().st_size == size:
        return path
    WORK.mkdir(parents=True, exist_ok=True)
    block = os.urandom(CHUNK)
    with open(path, "wb") as fh:
        for _ in range(size // CHUNK):
            fh.write(block)
    return path


def table(rows: int) -> Path:
    path = WORK / f"table-{rows}.parquet"
    if path.exists():
        return path
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    WORK.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(path, pa.schema([*(pa.field(f"f{i}", pa.float64()) for i in range(6)),
                                           pa.field("id", pa.int64()), pa.field("city", pa.string()),
                                           pa.field("flag", pa.bool_()), pa.field("note", pa.string())]),
                          compression="zstd") as writer:
        step = 1_000_000
        for start in range(0, rows, step):
            n = min(step, rows - start)
            cities = np.array([f"c{i}" for i in range(50)])
            writer.write_table(pa.table({
                **{f"f{i}": rng.normal(size=n) for i in range(6)},
                "id": np.arange(start, start + n),
                "city": cities[rng.integers(0, 50, n)],
                "flag": rng.random(n) < 0.5,
                "note": np.array(["ok", "late", "refund", "n/a"])[rng.integers(0, 4, n)],
            }))
    return path


def sha256sum(path: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["sha256sum", str(path)], check=True, capture_output=True)
    return time.perf_counter() - started


def ours(path: Path, cache: Path) -> float:
    """A fresh process, as `mlspec plan` would be: first sight of the file (an empty stat cache)."""
    cache.unlink(missing_ok=True)
    code = ("import sys, time; from pathlib import Path; from mlspec.digests import FileDigests\n"
            "t = time.perf_counter()\n"
            "with FileDigests(Path(sys.argv[2])) as d: d.file(Path(sys.argv[1]))\n"
            "print(time.perf_counter() - t)")
    done = subprocess.run([sys.executable, "-c", code, str(path), str(cache)], check=True, capture_output=True,
                          text=True)
    return float(done.stdout)


def warm(path: Path, cache: Path) -> float:
    from mlspec.digests import FileDigests

    with FileDigests(cache) as digests:
        digests.file(path)  # make sure it is recorded
    time.sleep(2.1)  # past the racy window, as any later plan is
    started = time.perf_counter()
    with FileDigests(cache) as digests:
        digests.file(path)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    blob = big_file(args.gigabytes)
    cache = WORK / "digests.db"
    sha256sum(blob)  # the page cache holds the file for both: this measures hashing, not the disk
    theirs, mine = [], []
    for _ in range(args.repeat):
        theirs.append(sha256sum(blob))
        mine.append(ours(blob, cache))
    warm_s = warm(blob, cache)
    gb = blob.stat().st_size / (1 << 30)
    ratio = statistics.median(theirs) / statistics.median(mine)

    parquet = table(args.rows)
    runs = []
    for _ in range(args.repeat):
        done = subprocess.run([sys.executable, "-c", INSPECT, str(parquet)], check=True, capture_output=True,
                              text=True)
        runs.append(json.loads(done.stdout))
    seconds = statistics.median(r["seconds"] for r in runs)
    peak = max(r["peak_mb"] for r in runs)
    in_memory = args.rows * (6 * 8 + 8 + 1 + 2 * 8) / (1 << 20)  # rough Arrow size of the whole table
    load = os.getloadavg()
    lines = [
        f"## Dataset plugin (medians of {args.repeat}, one run)",
        "",
        f"- machine: {os.cpu_count()} CPUs; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} after the run",
        f"- peak RSS of this driver: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB",
        "",
        "| scenario | measured | goal | |",
        "|---|---:|---|---|",
        f"| digest {gb:.1f} GB, first sight: `sha256sum` | {statistics.median(theirs):.2f} s "
        f"({gb / statistics.median(theirs):.2f} GB/s) | | |",
        f"| digest {gb:.1f} GB, first sight: mlspec (fresh process) | {statistics.median(mine):.2f} s "
        f"({gb / statistics.median(mine):.2f} GB/s), {ratio:.0%} of sha256sum | >= 80% | "
        f"{'met' if ratio >= 0.8 else '**missed**'} |",
        f"| digest, unchanged file (stat cache) | {warm_s * 1000:.2f} ms | <= 5 ms | "
        f"{'met' if warm_s <= 0.005 else '**missed**'} |",
        f"| validate + profile {args.rows:,} rows x 10 columns (parquet {parquet.stat().st_size / (1 << 20):.0f} MB) "
        f"| {seconds:.1f} s ({args.rows / seconds / 1e6:.2f} M rows/s), peak {peak:.0f} MB | bounded | "
        f"whole table in memory would be ~{in_memory:.0f} MB |",
    ]
    text = "\n".join(lines)
    print(text)
    (Path(__file__).parent / "results" / "data.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
