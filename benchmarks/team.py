"""Team mode against real services started here: PostgreSQL 16 (pgserver, a Unix socket) and an
S3-compatible server on 127.0.0.1 (moto). Every figure is a ratio against a peer run in the same
process and session, never an absolute goal on its own.

    python benchmarks/team.py [--commits N] [--races N] [--megabytes N] [--no-write]

1. Commit cost: N step commits (a row, its serial) on the PostgreSQL store against the local SQLite one,
   interleaved in blocks of 1,000; total and the first and last 1,000 (flat per step?).
   Goal: PostgreSQL <= 1.5x local, and flat.
2. Racing applies: N trials of two processes taking the PostgreSQL lock at the same moment, each
   committing 20 steps if it gets it: exactly one holds it each time, the serial strictly increases,
   nothing is lost.
3. Plan on shared state: `mlspec plan` of 2,000 Task stages with its state on PostgreSQL against the
   same plan on the local state, fresh processes, median of 3. Goal: <= 1.2x.
4. Object storage: an M MB artifact put and read back (digest checked) through the artifact store,
   against the same transfers by hand (`s3fs` put_file/get_file), interleaved.

Results go to stdout and, unless --no-write, benchmarks/results/team.md.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from workloads import task_repo  # noqa: E402

RESULTS = HERE / "results" / "team.md"
BIN = Path(sys.executable).parent
MLSPEC = str(BIN / "mlspec") if (BIN / "mlspec").exists() else shutil.which("mlspec") or "mlspec"


def commits(url: str, count: int) -> list[str]:
    from mlspec.state.local import LocalStateStore
    from mlspec.state.model import ResourceState
    from mlspec.state.postgres import PostgresStateStore

    scratch = Path(tempfile.mkdtemp(prefix="mlspec-team-"))
    local = LocalStateStore(scratch / "state.db")
    shared = PostgresStateStore(url, f"bench-{uuid.uuid4().hex[:8]}")
    spans: dict[str, list[float]] = {"local": [], "postgres": []}
    with local.lock("bench"), shared.lock("bench"):
        for block in range(0, count, 1000):
            for name, store in (("local", local), ("postgres", shared)):
                started = time.perf_counter()
                for i in range(block, min(count, block + 1000)):
                    store.commit(ResourceState(f"Task/s{i}", f"f{i}", {"i": i}, {"outs": {}}))
                spans[name].append(time.perf_counter() - started)
    local.close()
    shared.close()
    shutil.rmtree(scratch, ignore_errors=True)
    total = {k: sum(v) for k, v in spans.items()}
    rows = [f"| {name} | {total[name]:.2f} | {v[0]:.3f} | {v[-1]:.3f} | {v[-1] / v[0]:.2f}x |"
            for name, v in spans.items()]
    return ["## 1. Commit cost", "", f"{count:,} step commits each, interleaved in blocks of 1,000.", "",
            "| backend | total s | first 1,000 s | last 1,000 s | last / first |", "|---|---:|---:|---:|---:|", *rows,
            "", f"PostgreSQL / local: {total['postgres'] / total['local']:.2f}x (goal <= 1.5x)", ""]


RACER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from mlspec.errors import StateLockedError
    from mlspec.state.model import ResourceState
    from mlspec.state.postgres import PostgresStateStore
    url, key, go, trial = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
    store = PostgresStateStore(url, key)
    while not go.exists():
        time.sleep(0.001)
    try:
        with store.lock("race"):
            for i in range(20):
                store.commit(ResourceState(f"Task/t{trial}-{i}", "f", {}, {}))
            print("won")
    except StateLockedError:
        print("locked")
""")


def races(url: str, trials: int) -> list[str]:
    from mlspec.state.postgres import PostgresStateStore

    key = f"race-{uuid.uuid4().hex[:8]}"
    PostgresStateStore(url, key).close()
    verdicts, serials = [], []
    for trial in range(trials):
        go = Path(tempfile.mktemp(prefix="mlspec-go-"))
        procs = [subprocess.Popen([sys.executable, "-c", RACER, url, key, str(go), str(trial)],
                                  stdout=subprocess.PIPE, text=True) for _ in range(2)]
        time.sleep(0.5)  # both connected and waiting
        go.touch()
        outs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
        go.unlink()
        verdicts.append(outs)
        store = PostgresStateStore(url, key)
        serials.append(store.meta().serial)
        rows = len(store.list())
        store.close()
    one_each = sum(1 for v in verdicts if v.count("won") == 1)
    increasing = all(b > a for a, b in itertools.pairwise(serials))
    lost = (trials * 20) - rows
    return ["## 2. Racing applies", "", f"{trials} trials of two processes taking the lock together.", "",
            f"- exactly one held the lock: {one_each}/{trials}",
            f"- serial strictly increasing: {'yes' if increasing else 'NO'} ({serials[0]} .. {serials[-1]})",
            f"- rows lost: {lost}", ""]


def plans(url: str, stages: int, repeat: int) -> list[str]:
    work = Path(tempfile.mkdtemp(prefix="mlspec-team-plan-"))
    times: dict[str, list[float]] = {"local": [], "postgres": []}
    key = f"plan-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "MLSPEC_STATE_URL": url}
    for name in ("local", "postgres"):
        root = work / name
        task_repo(root, stages, trivial=True)
        if name == "postgres":
            config = (root / "mlspec.yaml").read_text()
            (root / "mlspec.yaml").write_text(config + f"state: {{backend: postgres, url: '${{env:MLSPEC_STATE_URL}}', "
                                                       f"key: {key}}}\n")
        subprocess.run([MLSPEC, "-C", str(root), "apply", "-y", "--allow-dirty"], env=env, check=True,
                       capture_output=True)
    for _ in range(repeat):
        for name in ("local", "postgres"):
            started = time.perf_counter()
            subprocess.run([MLSPEC, "-C", str(work / name), "plan", "--detailed-exitcode"], env=env, check=True,
                           capture_output=True)
            times[name].append(time.perf_counter() - started)
    shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    return ["## 3. Plan on shared state", "", f"`mlspec plan` of {stages:,} Task stages, fresh processes, median of "
            f"{repeat}.", "", f"| local | {med['local']:.2f} s |", f"| postgres | {med['postgres']:.2f} s |", "",
            f"PostgreSQL / local: {med['postgres'] / med['local']:.2f}x (goal <= 1.2x)", ""]


def transfers(megabytes: int) -> list[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(AWS_ENDPOINT_URL=f"http://{host}:{port}", AWS_ACCESS_KEY_ID="bench",
                      AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      AWS_REQUEST_CHECKSUM_CALCULATION="when_required")
    import boto3
    import s3fs

    boto3.client("s3").create_bucket(Bucket="mlspec-bench")
    from mlspec.artifacts import ArtifactStore

    work = Path(tempfile.mkdtemp(prefix="mlspec-team-s3-"))
    data = os.urandom(megabytes << 20)
    fs = s3fs.S3FileSystem()
    ours: dict[str, list[float]] = {"put": [], "get": []}
    hand: dict[str, list[float]] = {"put": [], "get": []}
    for trial in range(3):
        source = work / f"blob-{trial}.bin"
        source.write_bytes(data + bytes([trial]))  # new bytes each time: a real upload, never "already there"
        started = time.perf_counter()
        fs.put_file(str(source), f"mlspec-bench/hand/{trial}.bin")
        hand["put"].append(time.perf_counter() - started)
        started = time.perf_counter()
        fs.get_file(f"mlspec-bench/hand/{trial}.bin", str(work / f"hand-{trial}.bin"))
        hand["get"].append(time.perf_counter() - started)
        store = ArtifactStore("s3://mlspec-bench/store", work)
        started = time.perf_counter()
        artifact = store.put(source, ".bin", keep=True)  # digest, existence check, upload
        ours["put"].append(time.perf_counter() - started)
        scratch = work / f"scratch-{trial}"
        scratch.mkdir()
        started = time.perf_counter()
        store.local(artifact, scratch)  # download, digest checked
        ours["get"].append(time.perf_counter() - started)
    server.stop()
    shutil.rmtree(work, ignore_errors=True)
    rows = []
    for op in ("put", "get"):
        a, b = statistics.median(ours[op]), statistics.median(hand[op])
        rows.append(f"| {op} | {megabytes / a:,.0f} MB/s | {megabytes / b:,.0f} MB/s | {b / a:.2f}x |")
    return ["## 4. Object storage", "", f"A {megabytes} MB artifact to and from moto on 127.0.0.1, median of 3.", "",
            "| | artifact store (digest, checks) | s3fs by hand | ratio (hand time / ours) |", "|---|---:|---:|---:|",
            *rows, ""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--races", type=int, default=20)
    parser.add_argument("--stages", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--megabytes", type=int, default=64)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    import pgserver

    pgdata = Path(tempfile.mkdtemp(prefix="mlspec-team-pg-"))
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    try:
        url = server.get_uri()
        lines = ["# Team mode: PostgreSQL and object storage, against the local backends", "",
                 f"`python benchmarks/team.py` on {os.cpu_count()} CPUs; PostgreSQL 16 (pgserver, Unix socket), "
                 "moto on 127.0.0.1.", ""]
        lines += commits(url, args.commits)
        lines += races(url, args.races)
        lines += plans(url, args.stages, args.repeat)
        lines += transfers(args.megabytes)
    finally:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        RESULTS.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
