"""Benchmark `mlspec validate` on a generated spec repo, against check-jsonschema.

    python benchmarks/validate.py [--files N] [--repeat R] [--jobs J] [--rev REV | --src DIR]

By default it times the `mlspec` next to this Python (the editable checkout); `--rev HEAD` times
the committed code instead, which is steadier while someone is editing mlspec/.

Generates benchmarks/.work/repo-N/ (gitignored): N Model specs (~30 lines, one document per file)
referencing N/50 Dataset specs, plus mlspec.yaml and the JSON Schemas (`mlspec schema --dir`).
Every scenario runs as a fresh process; wall clock is the median (and min) of R runs. Memory:

- peak RSS: ru_maxrss from os.wait4 on the child. Linux reports the largest single process of the
  tree (the main process or any reaped worker), not their sum.
- tree PSS: the process tree's summed proportional set size (/proc/<pid>/smaps_rollup), sampled
  every 20 ms; counts pages shared by forked workers once. Approximate (sampling), but it is what
  the parallel run really costs in memory.

Results go to stdout and benchmarks/results/validate.md (Markdown).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
RESULTS = HERE / "results" / "validate.md"
BIN = Path(sys.executable).parent
MLSPEC = str(BIN / "mlspec") if (BIN / "mlspec").exists() else shutil.which("mlspec") or "mlspec"
MLSPEC_CMD = [MLSPEC]  # --mlspec replaces it (to time another build, or an experiment)
PEER = (
    str(BIN / "check-jsonschema") if (BIN / "check-jsonschema").exists() else shutil.which("check-jsonschema")
)
# Children use byte-compiled modules, as a pip-installed mlspec does, even where the environment sets
# PYTHONDONTWRITEBYTECODE (the editable checkout then has no .pyc); the .pyc files go under .work/.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
CHILD_ENV.update(NO_COLOR="1", PYTHONPYCACHEPREFIX=str(WORK / "pycache"))
MODELS_PER_DATASET = 50
TEAMS = ("growth", "risk", "search", "ads", "nlp", "support", "fraud", "pricing")

# Goals (10k files): cold <= 2 s and >= 4.5x faster than check-jsonschema, warm <= 0.6 s,
# one changed file <= 0.25 s, peak memory <= 200 MB.
GOAL_COLD_S = 2.0
GOAL_COLD_RATIO = 4.5
GOAL_WARM_S = 0.6
GOAL_ONE_S = 0.25
GOAL_MEM_MB = 200.0

# ---------------------------------------------------------------------------------------------
# The spec repo


PROJECT_FILE = """\
# yaml-language-server: $schema=schemas/project.schema.json
specs:
  - "specs/**/*.yaml"
limits:
  max_file_bytes: 1048576
state:
  backend: local
artifacts:
  url: .mlspec/artifacts
"""

TABULAR_DATASET = """\
# yaml-language-server: $schema=../../../schemas/spec.schema.json
apiVersion: mlspec/v1
kind: Dataset
metadata:
  name: {name}
  owner: team-{team}
  labels: {{domain: {team}, tier: {tier}}}
spec:
  description: customer activity snapshot {i}, one row per customer
  source:
    path: data/{name}.parquet
    format: parquet
  schema:
    columns:
      customer_id: {{type: int, nullable: false, unique: true}}
      email: {{type: string}}
      tenure_months: {{type: int, range: {{min: 0, max: 600}}}}
      monthly_spend: {{type: float, range: {{min: 0}}}}
      support_tickets: {{type: int, range: {{min: 0}}}}
      region: {{type: category, allowed: [emea, amer, apac]}}
      plan: {{type: category, allowed: [basic, plus, pro]}}
      churned: {{type: bool, nullable: false}}
  checks:
    min_rows: {min_rows}
    max_null_fraction: {{monthly_spend: 0.05, region: 0.01}}
    max_duplicate_fraction: 0.01
  splits:
    ratios: {{train: 0.7, validation: 0.15, test: 0.15}}
    seed: {seed}
    stratify_by: churned
  pii:
    columns: {{email: drop}}
"""

TEXT_DATASET = """\
# yaml-language-server: $schema=../../../schemas/spec.schema.json
apiVersion: mlspec/v1
kind: Dataset
metadata:
  name: {name}
  owner: team-{team}
  labels: {{domain: {team}, tier: {tier}}}
spec:
  description: labelled support tickets, export {i}
  source:
    path: [data/{name}/part-0.jsonl, data/{name}/part-1.jsonl]
    format: jsonl
  schema:
    columns:
      ticket_id: {{type: string, nullable: false, unique: true}}
      text: {{type: string, nullable: false}}
      language: {{type: category, allowed: [en, de, fr, es]}}
      author: {{type: string}}
      label: {{type: category, allowed: [negative, neutral, positive]}}
    strict: true
  checks:
    min_rows: {min_rows}
    max_null_fraction: 0.02
  splits:
    ratios: {{train: 0.8, validation: 0.1, test: 0.1}}
    seed: {seed}
    stratify_by: label
  pii:
    columns: {{author: hash}}
    salt: ${{env:PII_SALT}}
"""

TABULAR_MODEL = """\
# yaml-language-server: $schema=../../../schemas/spec.schema.json
apiVersion: mlspec/v1
kind: Model
metadata:
  name: {name}
  owner: team-{team}
  labels: {{domain: {team}, tier: {tier}}}
spec:
  task: tabular-classification
  dataset: {dataset}
  features: [tenure_months, monthly_spend, support_tickets, region, plan]
  label: churned
  architecture:
    family: mlp
    config: {{hidden_sizes: [{h1}, {h2}], dropout: 0.1}}
  hyperparameters:
    learning_rate: {lr}
    batch_size: {batch}
    epochs: {epochs}
    weight_decay: 0.01
    optimizer: adamw
  resources:
    accelerator: auto
    precision: fp32
  seed: {seed}
  evaluation:
    metrics: [accuracy, f1, roc_auc]
    gates: ["roc_auc >= 0.70", "f1 >= champion - 0.01"]
  registry:
    alias: champion
"""

TEXT_MODEL = """\
# yaml-language-server: $schema=../../../schemas/spec.schema.json
apiVersion: mlspec/v1
kind: Model
metadata:
  name: {name}
  owner: team-{team}
  labels: {{domain: {team}, tier: {tier}}}
spec:
  task: text-classification
  dataset: Dataset/{dataset}
  splits: {{train: train, validation: validation, test: test}}
  features: [text]
  label: label
  architecture:
    family: {family}
    config: {{hidden_size: {h1}, num_hidden_layers: 2, num_attention_heads: 2}}
  hyperparameters:
    learning_rate: {lr}
    batch_size: {batch}
    epochs: {epochs}
    max_length: 128
    warmup_ratio: 0.1
  resources:
    gpus: 1
    precision: bf16
  seed: {seed}
  evaluation:
    metrics: [accuracy, f1]
    gates: ["f1 >= 0.75", "f1 >= champion"]
  registry:
    alias: candidate
"""


@dataclass
class Repo:
    root: Path
    models: list[str]  # paths relative to root
    datasets: list[str]

    @property
    def files(self) -> int:
        return len(self.models) + len(self.datasets)


def generate(root: Path, n_models: int) -> Repo:
    if root.exists():
        shutil.rmtree(root)
    (root / "specs").mkdir(parents=True)
    (root / "mlspec.yaml").write_text(PROJECT_FILE, "utf-8")
    n_datasets = max(1, -(-n_models // MODELS_PER_DATASET))
    datasets, models = [], []
    text_datasets = set()
    for d in range(n_datasets):
        team = TEAMS[d % len(TEAMS)]
        name = f"ds-{team}-{d:05d}"
        text = d % 2 == 1
        if text:
            text_datasets.add(name)
        template = TEXT_DATASET if text else TABULAR_DATASET
        body = template.format(name=name, team=team, tier=("gold", "silver")[d % 2], i=d,
                               min_rows=1000 + d, seed=d % 97)  # fmt: skip
        rel = f"specs/data/{team}/{name}.yaml"
        _write(root / rel, body)
        datasets.append(rel)
    for m in range(n_models):
        d = m // MODELS_PER_DATASET
        team = TEAMS[d % len(TEAMS)]
        dataset = f"ds-{team}-{d:05d}"
        text = dataset in text_datasets
        name = f"{'clf' if text else 'churn'}-{m:06d}"
        template = TEXT_MODEL if text else TABULAR_MODEL
        body = template.format(
            name=name, team=team, tier=("gold", "silver", "bronze")[m % 3], dataset=dataset,
            family=("bert", "distilbert", "roberta")[m % 3], h1=32 * (1 + m % 4), h2=16 * (1 + m % 2),
            lr=_lr(m), batch=(16, 32, 64)[m % 3], epochs=1 + m % 10, seed=m % 1000,
        )  # fmt: skip
        rel = f"specs/models/{team}/{name}.yaml"
        _write(root / rel, body)
        models.append(rel)
    # A checkout made a while ago: the parse cache trusts stat data only for files older than its
    # write time minus 2 s (racily-clean rule), as in any real repo that was not just written.
    old = time.time() - 3600
    for rel in (*datasets, *models, "mlspec.yaml"):
        os.utime(root / rel, (old, old))
    return Repo(root, models, datasets)


def _lr(m: int) -> str:
    return f"0.000{1 + m % 9}"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")


# ---------------------------------------------------------------------------------------------
# Running a fresh process, timed, with its memory


@dataclass
class Run:
    seconds: float
    maxrss_mb: float  # os.wait4 ru_maxrss: the largest single process of the tree
    tree_pss_mb: float  # sampled peak of the tree's summed PSS
    rc: int
    stdout: str
    stderr: str

    @property
    def mode(self) -> str:
        try:
            return str(json.loads(self.stdout).get("mode", ""))
        except ValueError:
            return ""


@dataclass
class Scenario:
    name: str
    runs: list[Run] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def best(self) -> float:
        return min(r.seconds for r in self.runs)

    @property
    def maxrss(self) -> float:
        return max(r.maxrss_mb for r in self.runs)

    @property
    def tree_pss(self) -> float:
        return max(r.tree_pss_mb for r in self.runs)

    @property
    def modes(self) -> str:
        """How mlspec says each run went (`mode` in its JSON report, where it has one)."""
        return ", ".join(dict.fromkeys(r.mode for r in self.runs if r.mode)) or "-"


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def _tree_pss_kb(pid: int) -> int:
    kids = _children_map()
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        stack.extend(kids.get(p, ()))
        try:
            with open(f"/proc/{p}/smaps_rollup", "rb") as fh:
                for line in fh:
                    if line.startswith(b"Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def run(cmd: list[str], cwd: Path, *, sample: bool = True) -> Run:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, env=CHILD_ENV)
        peak = [0]
        done = threading.Event()

        def sampler() -> None:
            while not done.wait(0.02):
                with contextlib.suppress(Exception):  # the tree may vanish mid-read
                    peak[0] = max(peak[0], _tree_pss_kb(proc.pid))

        thread = threading.Thread(target=sampler, daemon=True)
        if sample:
            thread.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        done.set()
        if sample:
            thread.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(seconds, usage.ru_maxrss / 1024, peak[0] / 1024, proc.returncode,
                   out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"))  # fmt: skip


def mlspec_cmd(*args: str, jobs: int | None) -> list[str]:
    cmd = [*MLSPEC_CMD, "validate", "--format", "json", *args]
    if jobs is not None:
        cmd += ["--jobs", str(jobs)]
    return cmd


def expect_valid(r: Run, what: str, *, parsed: int | None = None, files: int | None = None) -> dict:
    if r.rc != 0:
        sys.exit(f"{what}: expected exit 0, got {r.rc}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    report = json.loads(r.stdout)
    assert report["valid"] and report["error_count"] == 0, report
    if files is not None:
        assert report["files"] == files, (what, report["files"], files)
    if parsed is not None:
        assert report["parsed"] == parsed, (what, "parsed", report["parsed"], "expected", parsed)
    return report


# ---------------------------------------------------------------------------------------------
# Sanity: both tools accept the repo, and both reject an invalid file


def sanity(repo: Repo, schema: Path, jobs: int | None) -> list[str]:
    """Untimed; the first run doubles as the benchmark's warm-up (byte-compiles, fills the page cache)."""
    lines = []
    shutil.rmtree(repo.root / ".mlspec", ignore_errors=True)
    r = run(mlspec_cmd("--no-cache", jobs=jobs), repo.root, sample=False)
    report = expect_valid(r, "mlspec validate (sanity)", files=repo.files)
    assert report["resources"] == repo.files, report
    lines.append(f"mlspec: repo valid (exit 0), {report['files']} files, {report['resources']} resources")
    sample = repo.models[: min(200, len(repo.models))]
    r = run([PEER, "--schemafile", str(schema), *sample], repo.root, sample=False)
    assert r.rc == 0, f"check-jsonschema rejected valid files:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    lines.append(f"check-jsonschema: {len(sample)} model files valid (exit 0)")

    victim = repo.root / repo.models[len(repo.models) // 2]
    original, st = victim.read_bytes(), victim.stat()
    text = original.decode()
    try:
        # Schema-level error: both tools must catch it.
        victim.write_text(text.replace("learning_rate: ", "learning_rate: -", 1), "utf-8")
        r = run(mlspec_cmd("--no-cache", jobs=jobs), repo.root, sample=False)
        assert r.rc == 1, f"mlspec accepted a negative learning_rate (rc {r.rc})"
        errors = json.loads(r.stdout)["diagnostics"]
        assert len(errors) == 1 and errors[0]["file"] == victim.relative_to(repo.root).as_posix(), errors
        r = run([PEER, "--schemafile", str(schema), victim.relative_to(repo.root).as_posix()], repo.root,
                sample=False)  # fmt: skip
        assert r.rc == 1, f"check-jsonschema accepted a negative learning_rate (rc {r.rc})"
        lines.append(f"invalid file (learning_rate < 0): mlspec exit 1 ({errors[0]['code']} at "
                     f"line {errors[0]['line']}), check-jsonschema exit 1")  # fmt: skip
        # Cross-file error: a dangling dataset reference; only mlspec can see it.
        line = next(x for x in text.splitlines() if x.strip().startswith("dataset:"))
        victim.write_text(text.replace(line, line.replace("ds-", "gone-ds-"), 1), "utf-8")
        r = run(mlspec_cmd("--no-cache", jobs=jobs), repo.root, sample=False)
        assert r.rc == 1, f"mlspec accepted a dangling reference (rc {r.rc})"
        code = json.loads(r.stdout)["diagnostics"][0]["code"]
        r = run([PEER, "--schemafile", str(schema), victim.relative_to(repo.root).as_posix()], repo.root,
                sample=False)  # fmt: skip
        lines.append(f"dangling dataset reference: mlspec exit 1 ({code}), check-jsonschema exit {r.rc} "
                     "(cannot see other files)")  # fmt: skip
    finally:
        victim.write_bytes(original)
        os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    return lines


# ---------------------------------------------------------------------------------------------
# The benchmark


def _progress(s: Scenario, r: Run) -> None:
    mode = f", mode {r.mode}" if r.mode else ""
    print(f"  {s.name}: {r.seconds:.3f} s, {r.maxrss_mb:.0f} MB{mode}", file=sys.stderr, flush=True)


def bench(repo: Repo, schema: Path, repeat: int, jobs: int | None) -> list[Scenario]:
    root, n = repo.root, repo.files
    state = root / ".mlspec"

    # sanity() ran first, untimed: it byte-compiled mlspec and filled the OS page cache.
    cold = Scenario("cold, `--no-cache`")
    for _ in range(repeat):
        r = run(mlspec_cmd("--no-cache", jobs=jobs), root)
        expect_valid(r, cold.name, parsed=n, files=n)
        cold.runs.append(r)
        _progress(cold, r)
    assert not state.exists() or not (state / "cache").exists(), "--no-cache wrote a cache"

    first = Scenario("cold with cache (first run, writes it)")
    for _ in range(repeat):
        shutil.rmtree(state, ignore_errors=True)
        r = run(mlspec_cmd(jobs=jobs), root)
        expect_valid(r, first.name, parsed=n, files=n)
        first.runs.append(r)
        _progress(first, r)

    warm = Scenario("warm (nothing changed)")
    for _ in range(repeat):
        r = run(mlspec_cmd(jobs=jobs), root)
        expect_valid(r, warm.name, parsed=0, files=n)
        warm.runs.append(r)
        _progress(warm, r)

    one = Scenario("one changed file")
    step = max(1, len(repo.models) // (repeat + 1))
    for k in range(repeat):
        victim = root / repo.models[(k + 1) * step % len(repo.models)]
        text = victim.read_text("utf-8")
        line = next(x for x in text.splitlines() if x.strip().startswith("learning_rate:"))
        victim.write_text(text.replace(line, f"    learning_rate: 0.00{k + 2}5", 1), "utf-8")
        r = run(mlspec_cmd(jobs=jobs), root)
        expect_valid(r, one.name, parsed=1, files=n)
        one.runs.append(r)
        _progress(one, r)

    peer = Scenario("check-jsonschema (model files only)")
    for _ in range(repeat):
        r = run([PEER, "--schemafile", str(schema), *repo.models], root)
        assert r.rc == 0, f"check-jsonschema failed (rc {r.rc}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        peer.runs.append(r)
        _progress(peer, r)
    return [cold, first, warm, one, peer]


def table(scenarios: list[Scenario], repo: Repo, repeat: int, jobs: int | None) -> str:
    cold, _, warm, one, peer = scenarios
    ratio = peer.median / cold.median
    machine = (
        f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {platform.machine()}, "
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}"
    )
    command = f"`{shlex.join(MLSPEC_CMD)}`" if MLSPEC_CMD != [MLSPEC] else "the `mlspec` script"
    lines = [
        f"## `mlspec validate`: {len(repo.models)} Model + {len(repo.datasets)} Dataset files "
        f"({repo.files} files), median of {repeat}",
        "",
        f"- mlspec: {SOURCE[0]}; run as {command}, `--jobs` {'default (CPUs)' if jobs is None else jobs}",
        f"- peer: check-jsonschema {_peer_version()}",
        f"- machine: {machine}",
        f"- load average (1, 5, 15 min): {LOAD[0]} before, {_load()} after",
        "",
        "| scenario | wall s (median) | wall s (min) | peak RSS MB (largest process) "
        "| tree PSS MB (sampled) | check-jsonschema s / this s | mlspec mode |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for s in scenarios:
        r = "1.00" if s is peer else f"{peer.median / s.median:.2f}x"
        mb = f"{s.maxrss:.0f} | {s.tree_pss:.0f}"
        lines.append(f"| {s.name} | {s.median:.3f} | {s.best:.3f} | {mb} | {r} | {s.modes} |")
    mem = max(s.maxrss for s in scenarios[:4])
    pss = max(s.tree_pss for s in scenarios[:4])

    def goal(what: str, measured: str, ok: bool) -> str:
        return f"| {what} | {measured} | {'met' if ok else '**missed**'} |"

    scale = "" if repo.files >= 10_000 else f" (set for 10k files; this run has {repo.files})"
    lines += [
        "",
        f"Goals{scale}:",
        "",
        "| goal | measured | |",
        "|---|---:|---|",
        goal(f"cold (`--no-cache`) <= {GOAL_COLD_S} s", f"{cold.median:.3f} s", cold.median <= GOAL_COLD_S),
        goal(
            f"cold >= {GOAL_COLD_RATIO}x faster than check-jsonschema",
            f"{ratio:.2f}x",
            ratio >= GOAL_COLD_RATIO,
        ),
        goal(f"warm <= {GOAL_WARM_S} s", f"{warm.median:.3f} s", warm.median <= GOAL_WARM_S),
        goal(f"one changed file <= {GOAL_ONE_S} s", f"{one.median:.3f} s", one.median <= GOAL_ONE_S),
        goal(f"peak memory <= {GOAL_MEM_MB:.0f} MB (largest process)", f"{mem:.0f} MB", mem <= GOAL_MEM_MB),
        goal(f"peak memory <= {GOAL_MEM_MB:.0f} MB (whole tree, PSS)", f"{pss:.0f} MB", pss <= GOAL_MEM_MB),
        "",
        f"Notes: every run is a fresh process (`mlspec validate --format json`, to check the parsed-file "
        f"count: {repo.files} cold, 0 warm, 1 after one edit). The OS page cache is warm (an untimed run "
        f'first); "cold" means no parse cache. check-jsonschema validates only the {len(repo.models)} '
        f"model files against one kind's schema, with no cross-file checks; mlspec validates all "
        f"{repo.files} files and links references. File mtimes are an hour old (an old checkout), so "
        f'the parse cache trusts stat data. "One changed file" edits a different model\'s '
        f"learning_rate each run. Peak RSS is ru_maxrss from os.wait4 (the largest single process, "
        f"workers included); tree PSS sums the process tree, sampled every 20 ms.",
    ]
    return "\n".join(lines) + "\n"


SOURCE = [""]


def export_rev(rev: str) -> Path:
    """`git archive REV mlspec` into .work/src-<sha>/, once."""
    repo = HERE.parent
    sha = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=repo, check=True,
                         capture_output=True, text=True).stdout.strip()  # fmt: skip
    dest = WORK / f"src-{sha[:12]}"
    if not (dest / "mlspec" / "__init__.py").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", sha, "mlspec"], cwd=repo, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def describe_source(rev: str | None) -> str:
    """Which mlspec the children import, and at which commit."""
    probe = [sys.executable, "-c", "import mlspec; print(mlspec.__file__)"]
    out = subprocess.run(probe, env=CHILD_ENV, cwd=WORK, capture_output=True, text=True, check=True)
    package = Path(out.stdout.strip()).parent
    repo = HERE.parent

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True).stdout.strip()

    if rev:
        return f"`{package}`, exported from commit {git('rev-parse', '--short=12', rev)}"
    if package.parent == repo:
        dirty = git("status", "--porcelain", "--", "mlspec")
        state = "**with uncommitted changes under mlspec/**" if dirty else "clean"
        return f"`{package}` (working tree), HEAD {git('rev-parse', '--short=12', 'HEAD')}, {state}"
    return f"`{package}`"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


LOAD = [_load()]


def _peer_version() -> str:
    try:
        from importlib.metadata import version

        return version("check-jsonschema")
    except Exception:
        return "?"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=10_000, help="Model spec files (default 10000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario (default 3)")
    parser.add_argument("--jobs", type=int, default=None, help="mlspec --jobs (default: mlspec's default)")
    parser.add_argument(
        "--mlspec",
        metavar="CMD",
        help="command to run instead of the `mlspec` script, "
        "e.g. 'python /path/to/patched_entry.py' (results are then not written)",
    )
    parser.add_argument(
        "--rev",
        help="time mlspec as committed at this git revision (exported under .work/, "
        "put first on PYTHONPATH), not the working tree, which may be mid-edit",
    )
    parser.add_argument(
        "--src", type=Path, help="time the mlspec package in this directory (put first on PYTHONPATH)"
    )
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/validate.md")
    args = parser.parse_args()
    if PEER is None:
        sys.exit("check-jsonschema is not installed")

    LOAD[0] = _load()
    if args.mlspec:
        MLSPEC_CMD[:] = shlex.split(args.mlspec)
        args.no_write = True
    if args.rev:
        args.src = export_rev(args.rev)
    if args.src:
        CHILD_ENV["PYTHONPATH"] = os.pathsep.join(
            filter(None, (str(args.src.resolve()), os.environ.get("PYTHONPATH")))
        )
    WORK.mkdir(parents=True, exist_ok=True)
    SOURCE[0] = describe_source(args.rev)
    print(f"mlspec: {SOURCE[0]}", file=sys.stderr)
    root = WORK / f"repo-{args.files}"
    t = time.perf_counter()
    repo = generate(root, args.files)
    schemas = WORK / "schemas"
    subprocess.run([*MLSPEC_CMD, "schema", "--dir", str(schemas)], env=CHILD_ENV, cwd=root, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    schema = schemas / "model.schema.json"
    print(f"generated {repo.files} files in {root} ({time.perf_counter() - t:.1f} s)", file=sys.stderr)

    for line in sanity(repo, schema, args.jobs):
        print(f"sanity: {line}", file=sys.stderr)
    scenarios = bench(repo, schema, args.repeat, args.jobs)
    text = table(scenarios, repo, args.repeat, args.jobs)
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text, "utf-8")
        print(f"wrote {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
