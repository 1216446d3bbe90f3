"""Benchmark `mlspec plan` and `mlspec apply` at scale, against `dvc status` for the no-op plan.

    python benchmarks/plan_apply.py [--quick] [--repeat R] [--rev REV | --src DIR] [--no-write]

Why: plan is what a CI job runs on every push and apply is the loop every step goes through, so both
must stay fast as a spec repo grows to thousands of steps. DVC is the tool people know for the same
job (a pipeline of commands with file deps), so the no-op plan is timed against `dvc status` on the
equivalent dvc.yaml, in the same run, on the same machine. Scenarios (sizes with `--quick` in brackets):

1. No-op plan, 2,000 [200] Task stages (benchmarks/workloads.py: a chain plus fan-out, files as
   deps, each copying its input to out/<i>.txt). mlspec: `mlspec apply` once, then `mlspec plan
   --detailed-exitcode` (exit 0, and `--format json` says has_changes false). DVC: a git repo with
   the same pipeline, `dvc init`, brought up to date once, then `dvc status` ("up to date").
   Goals: mlspec <= 1/5 of DVC's time, and <= 1.5 s.
2. Plan of 10,000 [1,000] trivial Task stages (`cmd: [true]`) after the `cmd` of one leaf changed:
   exactly one step to replace. Goals: <= 3 s; peak memory is reported.
3. Apply of 10,000 [1,000] steps whose effect is trivial: (a) Task stages running `true` (one
   process spawned per step), (b) an in-process no-op plugin owning the Task kind (installed as a
   distribution into .work/, on PYTHONPATH, chosen with `plugin_for`). Per-step cost must stay
   flat: the time of the first and of the last 1,000 [100] steps, from the `updated_at` stamps that
   state keeps for each step (ms precision). Goal: <= 10 s in all.
4. 16 independent steps that each sleep 1 s, `--parallelism 8`: the wall time of the apply.
   Goal: <= 2.5 s (ideal: 2 s).

DVC runs from its own venv, benchmarks/.work/dvc-venv (dvc==3.67.1), created the first time: that
needs the package registry (pip). The DVC repo is brought up to date with `dvc commit -f` after the
outputs were written directly, which records in dvc.lock exactly what `dvc repro` would, but `dvc
repro` of 2,000 stages takes tens of minutes on 2 cores (0.5 s per stage at 200 stages, and growing);
`--dvc-repro` uses it anyway. The DVC repo is kept in .work/ and reused while it is up to date.

Every command runs as a fresh process with byte-compiled modules (as a pip-installed mlspec would);
times are the median of R runs (at least 3). Peak memory is ru_maxrss from os.wait4 on the child (the
number /usr/bin/time -v reports): the largest single process of its tree. Input files and specs are
an hour old (a checkout made a while ago), so stat caches can trust them. Results go to stdout and,
unless --quick or --no-write, to benchmarks/results/plan_apply.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import source  # noqa: E402
from workloads import dvc_yaml, task_repo  # noqa: E402

WORK = HERE / ".work"
RESULTS = HERE / "results" / "plan_apply.md"
BIN = Path(sys.executable).parent
MLSPEC = str(BIN / "mlspec") if (BIN / "mlspec").exists() else shutil.which("mlspec") or "mlspec"
DVC_VERSION = "3.67.1"
DVC_VENV = WORK / "dvc-venv"
DVC = DVC_VENV / "bin" / "dvc"
# Children use byte-compiled modules even where the environment sets PYTHONDONTWRITEBYTECODE; the
# .pyc files go under .work/. No colours, no DVC analytics.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
CHILD_ENV.update(NO_COLOR="1", PYTHONPYCACHEPREFIX=str(WORK / "pycache"), DVC_NO_ANALYTICS="1")

GOAL_NOOP_RATIO = 5.0  # mlspec at most 1/5 of dvc status
GOAL_NOOP_S = 1.5
GOAL_ONE_S = 3.0
GOAL_APPLY_S = 10.0
GOAL_FLAT = 1.5  # last 1k steps / first 1k steps (this script's threshold for "flat")
GOAL_PARALLEL_S = 2.5

NOOP_DIST = "mlspec-bench-noop"
NOOP_PACKAGE = "mlspec_bench_noop"
NOOP_PLUGIN = '''\
"""A plugin that owns the Task kind and does nothing: what apply costs besides the steps' own work."""

from __future__ import annotations

from typing import ClassVar

from mlspec.sdk import API_VERSION, Diff, Estimate, FieldChange, Observation, StepResult


class NoopPlugin:
    api_version: ClassVar[int] = API_VERSION
    name: ClassVar[str] = "bench-noop"
    version: ClassVar[str] = "0.1.0"
    settings_model: ClassVar[None] = None

    def validate(self, resource):
        return ()

    def inputs(self, resource, context):
        return {}

    def refresh(self, resource, state, context):
        return Observation(exists=True)

    def diff(self, resource, before, after):
        keys = sorted(set(before) | set(after))
        return Diff(tuple(FieldChange(f"spec.{k}", before.get(k), after.get(k), True)
                          for k in keys if before.get(k) != after.get(k)))

    def apply(self, request, runtime) -> StepResult:
        return StepResult()

    def destroy(self, request, runtime) -> None:
        return None

    def estimate(self, resource, previous):
        return Estimate(seconds=0.0, basis="does nothing")
'''


# ---------------------------------------------------------------------------------------------
# Running a fresh process


@dataclass
class Run:
    seconds: float
    rc: int
    stdout: str
    stderr: str
    maxrss_mb: float  # os.wait4 ru_maxrss: the largest single process of the child's tree


def run(cmd: Sequence[str | Path], cwd: Path, *, env: dict[str, str] | None = None) -> Run:
    """Run `cmd` to the end, timed (wall clock), with its peak RSS; output captured in temp files."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen([str(c) for c in cmd], cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=env or CHILD_ENV)  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(seconds, proc.returncode, out.read().decode("utf-8", "replace"),
                   err.read().decode("utf-8", "replace"), usage.ru_maxrss / 1024)  # fmt: skip


def check(r: Run, what: str, rc: int = 0) -> Run:
    if r.rc != rc:
        sys.exit(f"{what}: expected exit {rc}, got {r.rc}\n--- stdout\n{r.stdout[-3000:]}\n"
                 f"--- stderr\n{r.stderr[-3000:]}")
    return r


def mlspec(root: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    return run([MLSPEC, "-C", str(root), *args], root, env=env)


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Timings:
    name: str
    seconds: list[float] = field(default_factory=list)
    maxrss_mb: list[float] = field(default_factory=list)

    def add(self, r: Run) -> None:
        self.seconds.append(r.seconds)
        self.maxrss_mb.append(r.maxrss_mb)
        note(f"  {self.name}: {r.seconds:.3f} s, {r.maxrss_mb:.0f} MB")

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def peak_mb(self) -> float:
        return max(self.maxrss_mb)


def age(root: Path, *dirs: str) -> None:
    """Make the files under `dirs` an hour old, as in a checkout made a while ago."""
    old = time.time() - 3600
    for d in dirs:
        for path in (root / d).rglob("*"):
            if path.is_file():
                os.utime(path, (old, old))
    if (root / "mlspec.yaml").exists():
        os.utime(root / "mlspec.yaml", (old, old))


def fresh(root: Path) -> Path:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    return root


# ---------------------------------------------------------------------------------------------
# 1. No-op plan against dvc status


def ensure_dvc() -> str:
    """The DVC venv, created once (needs the package registry); returns DVC's version."""
    if not DVC.exists():
        note(f"creating {DVC_VENV} with dvc=={DVC_VERSION} (needs the package registry, once)")
        subprocess.run([sys.executable, "-m", "venv", str(DVC_VENV)], check=True)
        subprocess.run([str(DVC_VENV / "bin" / "python"), "-m", "pip", "install", "-q", f"dvc=={DVC_VERSION}"],
                       check=True)  # fmt: skip
    return check(run([DVC, "--version"], WORK), "dvc --version").stdout.strip()


def dvc_repo(stages: int, *, repro: bool) -> Path:
    """A git repo with the pipeline as dvc.yaml, up to date; reused from an earlier run when it still is."""
    root = WORK / f"dvc-{stages}"
    ready = root / ".bench-ready"
    if ready.exists() and run([DVC, "status", "-q"], root).rc == 0:
        note(f"dvc: reusing {root} (up to date)")
        return root
    fresh(root)
    dvc_yaml(root, stages)
    age(root, "data")
    git = ["git", "-c", "user.email=bench@example.com", "-c", "user.name=bench"]
    check(run([*git, "init", "-q"], root), "git init")
    check(run([*git, "add", "dvc.yaml", "data"], root), "git add")
    check(run([*git, "commit", "-qm", "pipeline"], root), "git commit")
    check(run([DVC, "init", "-q"], root), "dvc init")
    t = time.perf_counter()
    if repro:
        check(run([DVC, "repro", "-q"], root), "dvc repro")
    else:
        for i in range(stages):  # what each stage's command does
            shutil.copyfile(root / "data" / f"in-{i}.txt", root / "out" / f"{i}.txt")
        check(run([DVC, "commit", "-f", "-q"], root), "dvc commit")
    note(f"dvc: {'repro' if repro else 'commit'} of {stages} stages took {time.perf_counter() - t:.1f} s")
    check(run([*git, "add", "-A"], root), "git add")
    check(run([*git, "commit", "-qm", "lock"], root), "git commit")
    ready.touch()
    return root


def bench_noop(stages: int, repeat: int, *, repro: bool) -> tuple[Timings, Timings]:
    note(f"1. no-op plan, {stages} stages")
    root = fresh(WORK / f"noop-{stages}")
    task_repo(root, stages)
    age(root, "data", "specs")
    check(mlspec(root, "apply", "-y", "--allow-dirty"), "mlspec apply (setup)")
    report = json.loads(check(mlspec(root, "plan", "--format", "json"), "mlspec plan --format json").stdout)
    if report["has_changes"] or report["summary"]["noop"] != stages:
        sys.exit(f"mlspec plan after apply is not a no-op: {report['summary']}")
    ours = Timings("mlspec plan (no-op)")
    for _ in range(repeat):
        ours.add(check(mlspec(root, "plan", "--detailed-exitcode"), "mlspec plan --detailed-exitcode"))

    droot = dvc_repo(stages, repro=repro)
    r = check(run([DVC, "status"], droot), "dvc status (warm-up)")
    if "up to date" not in r.stdout:
        sys.exit(f"dvc status: the repo is not up to date:\n{r.stdout[-2000:]}")
    peer = Timings("dvc status (no-op)")
    for _ in range(repeat):
        r = check(run([DVC, "status"], droot), "dvc status")
        assert "up to date" in r.stdout, r.stdout[-2000:]
        peer.add(r)
    return ours, peer


# ---------------------------------------------------------------------------------------------
# 2. One leaf changed in a large plan; 3a. the apply of that repo


@dataclass
class ApplyRun:
    name: str
    steps: int
    seconds: float  # the whole `mlspec apply`: start-up, plan, steps
    first_s: float  # from the first step's commit to the `window`-th
    last_s: float  # across the last `window` commits
    window: int
    steps_s: float  # from the first commit to the last

    @property
    def flat(self) -> float:
        return self.last_s / self.first_s if self.first_s > 0 else float("inf")


def commit_times(root: Path, env: dict[str, str] | None = None) -> list[datetime]:
    """Each resource's last commit, from state (`updated_at`, ms precision), sorted."""
    r = check(mlspec(root, "state", "list", "--format", "json", env=env), "mlspec state list")
    return sorted(datetime.fromisoformat(entry["updated_at"]) for entry in json.loads(r.stdout)["resources"])


def measure_apply(name: str, root: Path, steps: int, window: int, *, env: dict[str, str] | None = None) -> ApplyRun:
    r = check(mlspec(root, "apply", "-y", "--allow-dirty", env=env), f"mlspec apply ({name})")
    note(f"  {name}: {r.seconds:.2f} s, {r.maxrss_mb:.0f} MB")
    stamps = commit_times(root, env)
    if len(stamps) != steps:
        sys.exit(f"{name}: state holds {len(stamps)} resources, expected {steps}")

    def span(a: datetime, b: datetime) -> float:
        return (b - a).total_seconds()

    return ApplyRun(name, steps, r.seconds, span(stamps[0], stamps[window - 1]), span(stamps[-window], stamps[-1]),
                    window, span(stamps[0], stamps[-1]))  # fmt: skip


def bench_one_change(stages: int, repeat: int, window: int) -> tuple[Timings, ApplyRun]:
    note(f"2/3a. {stages} trivial Task stages: apply, then one leaf changed")
    root = fresh(WORK / f"one-{stages}")
    task_repo(root, stages, trivial=True)
    age(root, "data", "specs")
    applied = measure_apply("Task `true`", root, stages, window)
    leaf = stages - 1  # the last stage: it depends on its hub, nothing depends on it (workloads.upstream_of)
    spec = root / "specs" / f"s{leaf}.yaml"
    text = spec.read_text()
    assert 'cmd: ["true"]' in text, text
    spec.write_text(text.replace('cmd: ["true"]', 'cmd: ["true", "changed"]'))
    report = json.loads(check(mlspec(root, "plan", "--format", "json"), "mlspec plan --format json", 0).stdout)
    changing = [s["address"] for s in report["steps"] if s["action"] != "noop"]
    if changing != [f"Task/s{leaf}"]:
        sys.exit(f"expected exactly Task/s{leaf} to change, the plan changes {changing[:10]} ({len(changing)})")
    one = Timings("mlspec plan (one leaf changed)")
    for _ in range(repeat):
        one.add(check(mlspec(root, "plan", "--detailed-exitcode"), "mlspec plan --detailed-exitcode", 2))
    return one, applied


# ---------------------------------------------------------------------------------------------
# 3b. Apply through an in-process no-op plugin


def install_noop_plugin(site: Path) -> None:
    """A real installed distribution (as tests/test_plugin.py does): found through its entry point."""
    fresh(site)
    (site / NOOP_PACKAGE).mkdir()
    (site / NOOP_PACKAGE / "__init__.py").write_text(NOOP_PLUGIN)
    info = site / f"{NOOP_PACKAGE}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {NOOP_DIST}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[mlspec.plugins]\nTask = {NOOP_PACKAGE}:NoopPlugin\n")


def bench_noop_plugin(stages: int, window: int) -> ApplyRun:
    note(f"3b. {stages} steps through an in-process no-op plugin")
    site = WORK / "noop-plugin-site"
    install_noop_plugin(site)
    env = dict(CHILD_ENV)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (env.get("PYTHONPATH"), str(site))))
    root = fresh(WORK / f"plugin-{stages}")
    task_repo(root, stages, trivial=True)
    (root / "mlspec.yaml").write_text(f'specs: ["specs/**/*.yaml"]\nplugin_for: {{Task: {NOOP_DIST}}}\n')
    age(root, "data", "specs")
    return measure_apply("no-op plugin", root, stages, window, env=env)


# ---------------------------------------------------------------------------------------------
# 4. Independent sleeping steps in parallel


def bench_parallel(steps: int, parallelism: int, sleep_s: float, repeat: int) -> Timings:
    note(f"4. {steps} independent steps sleeping {sleep_s:g} s, --parallelism {parallelism}")
    root = fresh(WORK / f"parallel-{steps}")
    (root / "specs").mkdir()
    (root / "mlspec.yaml").write_text('specs: ["specs/**/*.yaml"]\n')
    for i in range(steps):
        (root / "specs" / f"p{i}.yaml").write_text(
            f'apiVersion: mlspec/v1\nkind: Task\nmetadata: {{name: p{i}}}\nspec:\n  cmd: ["sleep", "{sleep_s:g}"]\n'
        )
    age(root, "specs")
    timings = Timings(f"apply of {steps} x sleep {sleep_s:g} s")
    for _ in range(repeat):
        shutil.rmtree(root / ".mlspec", ignore_errors=True)
        r = check(mlspec(root, "apply", "-y", "--allow-dirty", "--parallelism", str(parallelism)),
                  "mlspec apply (parallel)")
        done = r.stderr.count(": created (")
        assert done == steps, f"{done} steps created, expected {steps}:\n{r.stderr[-2000:]}"
        timings.add(r)
    return timings


# ---------------------------------------------------------------------------------------------
# Report


@dataclass
class Sizes:
    noop: int
    large: int
    window: int
    parallel: int = 16
    parallelism: int = 8
    sleep_s: float = 1.0


FULL = Sizes(noop=2_000, large=10_000, window=1_000)
QUICK = Sizes(noop=200, large=1_000, window=100)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def table(
    sizes: Sizes,
    repeat: int,
    noop: tuple[Timings, Timings],
    one: Timings,
    applies: list[ApplyRun],
    parallel: Timings,
    *,
    where: str,
    dvc_version: str,
    dvc_setup: str,
    load_before: str,
) -> str:
    ours, peer = noop
    ratio = peer.median / ours.median
    machine = (
        f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {platform.machine()}, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )

    def goal(what: str, measured: str, ok: bool) -> str:
        return f"| {what} | {measured} | {'met' if ok else '**missed**'} |"

    lines = [
        f"## `mlspec plan` / `mlspec apply` at scale (median of {repeat})",
        "",
        f"- mlspec: {where}",
        f"- peer: DVC {dvc_version} (`dvc status`; repo brought up to date with {dvc_setup})",
        f"- machine: {machine}; a 2-core VM with possible background load: compare ratios taken in one run, "
        "not absolute times across runs",
        f"- load average (1, 5, 15 min): {load_before} before, {_load()} after",
        "",
        "| scenario | wall s (median) | wall s (min) | peak RSS MB | note |",
        "|---|---:|---:|---:|---|",
        f"| 1. no-op plan, {sizes.noop} Task stages: `mlspec plan` | {ours.median:.3f} | {ours.best:.3f} | "
        f"{ours.peak_mb:.0f} | {ratio:.1f}x faster than `dvc status` |",
        f"| 1. no-op, {sizes.noop} stages: `dvc status` | {peer.median:.3f} | {peer.best:.3f} | {peer.peak_mb:.0f} | |",
        f"| 2. plan, {sizes.large} Task stages, one leaf's `cmd` changed | {one.median:.3f} | {one.best:.3f} | "
        f"{one.peak_mb:.0f} | 1 to replace, {sizes.large - 1} unchanged |",
    ]
    for a in applies:
        lines.append(
            f"| 3. apply, {a.steps} steps, {a.name} | {a.seconds:.3f} | | | first {a.window}: {a.first_s:.2f} s, "
            f"last {a.window}: {a.last_s:.2f} s ({a.flat:.2f}x); first to last commit {a.steps_s:.2f} s |"
        )
    lines += [
        f"| 4. apply, {sizes.parallel} independent steps sleeping {sizes.sleep_s:g} s, `--parallelism "
        f"{sizes.parallelism}` | {parallel.median:.3f} | {parallel.best:.3f} | {parallel.peak_mb:.0f} | "
        f"ideal {sizes.sleep_s * -(-sizes.parallel // sizes.parallelism):g} s |",
        "",
    ]
    scale = "" if sizes == FULL else f" (set for {FULL.noop} / {FULL.large} stages; this run is smaller: --quick)"
    lines += [
        f"Goals{scale}:",
        "",
        "| goal | measured | |",
        "|---|---:|---|",
        goal(f"1. no-op plan <= 1/{GOAL_NOOP_RATIO:g} of `dvc status`", f"{ratio:.1f}x faster",
             ratio >= GOAL_NOOP_RATIO),
        goal(f"1. no-op plan <= {GOAL_NOOP_S} s", f"{ours.median:.3f} s", ours.median <= GOAL_NOOP_S),
        goal(f"2. plan with one change <= {GOAL_ONE_S} s", f"{one.median:.3f} s", one.median <= GOAL_ONE_S),
    ]  # fmt: skip
    for a in applies:
        lines.append(goal(f"3. apply ({a.name}) <= {GOAL_APPLY_S:g} s", f"{a.seconds:.2f} s",
                          a.seconds <= GOAL_APPLY_S))  # fmt: skip
        lines.append(goal(f"3. apply ({a.name}) flat: last {a.window} / first {a.window} <= {GOAL_FLAT}",
                          f"{a.flat:.2f}x", a.flat <= GOAL_FLAT))  # fmt: skip
    lines += [
        goal(f"4. {sizes.parallel} x {sizes.sleep_s:g} s steps, parallelism {sizes.parallelism}, <= "
             f"{GOAL_PARALLEL_S} s", f"{parallel.median:.3f} s", parallel.median <= GOAL_PARALLEL_S),
        "",
        "Notes: every run is a fresh process; the OS page cache is warm (an untimed run first). Plans are "
        "timed in text form (`--detailed-exitcode`: exit 0 for the no-op, 2 with the one change); an untimed "
        "`--format json` plan checks that the no-op has no changes and that exactly the changed leaf is "
        "replaced. The DVC and mlspec repos hold the same pipeline (benchmarks/workloads.py); DVC also "
        "checks its outputs, as mlspec's refresh does. Apply times are the whole `mlspec apply` (start-up, "
        "plan, steps; default `--parallelism` 4 for 3.); per-step spans come from the `updated_at` each "
        "step's final commit leaves in state. The flatness threshold "
        f"({GOAL_FLAT}x) is this script's reading of \"flat\". Peak RSS: ru_maxrss from os.wait4, the "
        "largest single process of the tree (/usr/bin/time -v reports the same number).",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run (results not written)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timed scenario (default 3, at least 3)")
    parser.add_argument("--dvc-repro", action="store_true", help="bring the DVC repo up to date with `dvc repro`")
    parser.add_argument("--rev", help="time mlspec (and its plugins) as committed at this git revision")
    parser.add_argument("--src", type=Path, help="time the mlspec package in this directory (first on PYTHONPATH)")
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/plan_apply.md")
    args = parser.parse_args()
    if args.repeat < 3:
        parser.error("--repeat must be at least 3")
    sizes = QUICK if args.quick else FULL
    load_before = _load()
    WORK.mkdir(parents=True, exist_ok=True)
    if args.rev:
        args.src = source.export_rev(args.rev)
    if args.src:
        source.use_source(CHILD_ENV, args.src)
    where = source.describe(CHILD_ENV, args.rev)
    note(f"mlspec: {where}")
    dvc_version = ensure_dvc()
    noop = bench_noop(sizes.noop, args.repeat, repro=args.dvc_repro)
    one, task_apply = bench_one_change(sizes.large, args.repeat, sizes.window)
    plugin_apply = bench_noop_plugin(sizes.large, sizes.window)
    parallel = bench_parallel(sizes.parallel, sizes.parallelism, sizes.sleep_s, args.repeat)
    dvc_setup = "`dvc repro`" if args.dvc_repro else "`dvc commit -f` after writing the outputs"
    text = table(sizes, args.repeat, noop, one, [task_apply, plugin_apply], parallel, where=where,
                 dvc_version=dvc_version, dvc_setup=dvc_setup, load_before=load_before)  # fmt: skip
    print(text)
    if not (args.quick or args.no_write):
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text, "utf-8")
        note(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
