"""The Monitor's figures (issue 18): a drift report over N logged rows x 20 features (12 numeric, 8
categorical; 6 of them drifted), against Evidently's DataDriftPreset on the same data, in the same run.

- mlspec: the plugin's own path, as `mlspec monitor run` takes it: the reference profile (built from a
  parquet reference, as at apply), the request log read as JSON lines (pyarrow, streamed), the report.
- Evidently: `Report([DataDriftPreset()]).run(current, reference)` on pandas DataFrames read from parquet
  (cheaper for it than JSON lines), the raw reference included (it needs it).

Each runs in a process of its own, so peak memory (max RSS) is its own; mlspec also at a quarter of
the rows, to show that its memory does not grow with them. The verdicts (which features drifted) are
compared.

    python benchmarks/monitor.py [--rows 1000000] [--reference 50000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
NUMERIC = [f"n{i}" for i in range(12)]
CATEGORICAL = [f"c{i}" for i in range(8)]
DRIFTED = {"n0", "n1", "n2", "n3", "c0", "c1"}


def columns(rows: int, seed: int, drift: bool) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for i, name in enumerate(NUMERIC):
        shift = 0.4 if drift and name in DRIFTED else 0.0
        data[name] = np.round(rng.normal(10 + i + shift * (1 + i), 1 + i / 4, rows), 4)
    for i, name in enumerate(CATEGORICAL):
        values = np.array([f"v{j}" for j in range(3 + i)])
        p = np.linspace(1, 2, len(values))
        if drift and name in DRIFTED:
            p = p[::-1] ** 3
        data[name] = values[rng.choice(len(values), rows, p=p / p.sum())]
    return data


def write(scratch: Path, rows: int, reference_rows: int) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = {"reference": scratch / "reference.parquet", "current": scratch / "current.parquet",
             "log": scratch / "requests.jsonl"}
    pq.write_table(pa.table(columns(reference_rows, 1, drift=False)), paths["reference"])
    current = columns(rows, 2, drift=True)
    pq.write_table(pa.table(current), paths["current"])
    now = time.time()
    names = [*NUMERIC, *CATEGORICAL]
    with open(paths["log"], "w") as sink:
        for start in range(0, rows, 50_000):
            chunk = {n: current[n][start:start + 50_000].tolist() for n in names}
            lines = []
            for j in range(len(chunk[names[0]])):
                features = {n: chunk[n][j] for n in names}
                lines.append(json.dumps({"ts": now, "service": "Service/bench", "version": "v1",
                                         "features": features, "prediction": "yes", "score": 0.9}))
            sink.write("\n".join(lines) + "\n")
    return paths


def child_mlspec(paths: dict[str, str], rows: int) -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "plugins"))
    import pyarrow.parquet as pq
    from mlspec_monitor import report, window

    from mlspec.spec.kinds.monitor import MonitorSpec

    kinds = {**dict.fromkeys(NUMERIC, "numeric"), **dict.fromkeys(CATEGORICAL, "categorical")}
    spec = MonitorSpec.model_validate({"reference": {"dataset": "bench"}, "features": list(kinds),
                                       "current": {"log": "requests.jsonl"}, "window": {"duration": None,
                                                                                       "min_samples": 100}})
    started = time.perf_counter()
    reference = window.from_table_batches(pq.ParquetFile(paths["reference"]).iter_batches(batch_size=65_536), kinds,
                                          None)
    profile = {"features": {n: s.to_json() for n, s in reference.samples.items()}, "labels": {}}
    profiled = time.perf_counter() - started
    found = window.from_logs([Path(paths["log"])], kinds, None, None, None)
    made = report.judged("Monitor/bench", spec, profile, found)
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "profile_seconds": profiled, "rows": made["rows"],
            "drifted": sorted(n for n, f in made["features"].items() if f["drifted"]),
            "methods": {n: [v["method"] for v in f["verdicts"]] for n, f in made["features"].items()}}


def child_evidently(paths: dict[str, str], rows: int) -> dict[str, Any]:
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    started = time.perf_counter()
    reference = pd.read_parquet(paths["reference"])
    current = pd.read_parquet(paths["current"])
    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    elapsed = time.perf_counter() - started
    drifted, methods = [], {}
    for metric in snapshot.dict()["metrics"]:
        name = str(metric.get("metric_id") or metric.get("metric_name") or "")
        if not name.startswith("ValueDrift("):
            continue
        fields = dict(part.split("=", 1) for part in name[len("ValueDrift("):-1].split(","))
        value, threshold = float(metric["value"]), float(fields["threshold"])
        p_value = "p_value" in fields["method"] or "K-S" in fields["method"] or "chi" in fields["method"].lower()
        methods[fields["column"]] = fields["method"]
        if (value < threshold) if p_value else (value >= threshold):
            drifted.append(fields["column"])
    return {"seconds": elapsed, "rows": len(current), "drifted": sorted(drifted), "methods": methods}


def measured(which: str, paths: dict[str, Path], rows: int) -> dict[str, Any]:
    """One side in a process of its own: its result and its peak memory."""
    done = subprocess.run([sys.executable, __file__, "--child", which, "--paths",
                           json.dumps({k: str(v) for k, v in paths.items()}), "--rows", str(rows)],
                          capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference", type=int, default=50_000)
    parser.add_argument("--child", choices=["mlspec", "evidently"])
    parser.add_argument("--paths")
    args = parser.parse_args()
    if args.child:
        paths = json.loads(args.paths)
        found = (child_mlspec if args.child == "mlspec" else child_evidently)(paths, args.rows)
        found["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(found))
        return
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        for part in ("small", "big"):
            (Path(scratch) / part).mkdir()
        small = write(Path(scratch) / "small", args.rows // 4, args.reference)
        big = write(Path(scratch) / "big", args.rows, args.reference)
        print(f"# {os.cpu_count()} CPUs; data written in {time.perf_counter() - started:.0f} s "
              f"({big['log'].stat().st_size / 1e6:.0f} MB of JSON lines for {args.rows:,} rows)\n")
        ours_small = measured("mlspec", small, args.rows // 4)
        ours = measured("mlspec", big, args.rows)
        theirs = measured("evidently", big, args.rows)
    print("| run | rows | seconds | peak MB | drifted features |")
    print("|---|---:|---:|---:|---|")
    for name, found in (("mlspec, from the JSON-lines log", ours), ("mlspec, a quarter of the rows", ours_small),
                        ("Evidently DataDriftPreset, from parquet", theirs)):
        print(f"| {name} | {found['rows']:,} | {found['seconds']:.2f} | {found['peak_mb']:.0f} | "
              f"{', '.join(found['drifted'])} |")
    same = ours["drifted"] == theirs["drifted"]
    print(f"\nspeed: {theirs['seconds'] / ours['seconds']:.1f}x Evidently's (goal >= 10x); memory: "
          f"{ours['peak_mb']:.0f} MB at {args.rows:,} rows against {ours_small['peak_mb']:.0f} MB at "
          f"{args.rows // 4:,}; verdicts {'the same' if same else 'DIFFERENT'} (truly drifted: "
          f"{', '.join(sorted(DRIFTED))})")
    print(f"methods: mlspec {ours['methods']['n0']} / {ours['methods']['c0']}; Evidently "
          f"{theirs['methods'].get('n0')} / {theirs['methods'].get('c0')}")


if __name__ == "__main__":
    main()
