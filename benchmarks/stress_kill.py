"""Kill `mlspec apply` with SIGKILL at random moments, then check that the next apply picks up cleanly.

    python benchmarks/stress_kill.py [--trials 50] [--stages 30] [--seed S] [--creation-every N] [--keep]
                                     [--rev REV | --src DIR]

Why: apply commits state as each step ends, so that a crash (kill -9, OOM killer, a preempted CI
runner) loses at most the steps in flight. That promise only holds if every moment of an apply is
safe to die in: opening or creating the state, taking the lock, committing a step, releasing the
lock. This script kills at random moments and checks what a user would rely on afterwards.

Each trial builds a small Task project (benchmarks/.work/stress-kill/trial-N/): `--stages` stages in a
chain plus fan-out (benchmarks/workloads.upstream_of), each appending its name to a shared `runs.log`,
sleeping a little (so kills land mid-apply) and writing out/<i>.txt. It starts `mlspec apply
--parallelism 4`, sends SIGKILL to it after a random delay (uniform over the length of a whole apply,
measured once first), waits for the task commands the dead process left running, and checks:

1. `mlspec state list --format json` loads (exit 0);
2. `mlspec apply` again exits 0. A lock left held by the dead process is expected: its message must
   name `mlspec force-unlock ID`; the script runs that, counts it, and applies again;
3. `mlspec plan --detailed-exitcode` exits 0 (nothing left to do), every stage's out exists with the
   right content, and no stage that state recorded `applied` before the resume ran again (runs.log
   lines before and after the resume).

A uniform delay almost never lands in the few milliseconds in which the first apply creates the
state file, so every `--creation-every`-th trial (default 5th) instead kills 0-5 ms after
.mlspec/state.db appears.

Prints a summary (trials, resumes ok, force-unlocks needed, where the kills landed, violations) and
exits 1 on any violation. Trial directories are deleted unless a violation happened there or --keep.
`--rev HEAD` runs the committed mlspec rather than a working tree that may be mid-edit (source.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import source  # noqa: E402
from workloads import upstream_of  # noqa: E402

WORK = HERE / ".work" / "stress-kill"
BIN = Path(sys.executable).parent
MLSPEC = str(BIN / "mlspec") if (BIN / "mlspec").exists() else shutil.which("mlspec") or "mlspec"
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
CHILD_ENV.update(NO_COLOR="1", PYTHONPYCACHEPREFIX=str(HERE / ".work" / "pycache"))
FORCE_UNLOCK = re.compile(r"mlspec force-unlock ([0-9A-Za-z_-]+)")
FAN = 5


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return f"--- stdout\n{self.stdout[-2000:]}\n--- stderr\n{self.stderr[-2000:]}"


def mlspec(root: Path, *args: str, timeout: float = 120) -> Result:
    proc = subprocess.run([MLSPEC, "-C", str(root), *args], cwd=root, env=CHILD_ENV, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip
    return Result(proc.returncode, proc.stdout, proc.stderr)


def project(root: Path, stages: int, sleep_s: float) -> None:
    """`stages` Task specs: each logs its name to runs.log, sleeps, writes out/<i>.txt."""
    if root.exists():
        shutil.rmtree(root)
    for sub in ("specs", "data", "out"):
        (root / sub).mkdir(parents=True)
    (root / "mlspec.yaml").write_text('specs: ["specs/**/*.yaml"]\n')
    (root / "runs.log").touch()
    for i in range(stages):
        (root / "data" / f"in-{i}.txt").write_text(f"input {i}\n")
        up = upstream_of(i, FAN)
        script = f"echo s{i} >> runs.log && sleep {sleep_s:g} && echo s{i} > out/{i}.txt"
        depends = f"\n  depends_on: [Task/s{up}]" if up is not None else ""
        (root / "specs" / f"s{i}.yaml").write_text(
            f"apiVersion: mlspec/v1\nkind: Task\nmetadata: {{name: s{i}}}\nspec:\n"
            f'  cmd: ["sh", "-c", "{script}"]\n  deps: [data/in-{i}.txt]{depends}\n  outs: [out/{i}.txt]\n'
        )


def processes_in(root: Path) -> list[int]:
    """Processes whose working directory is `root`: task commands a killed apply left running."""
    found = []
    target = str(root.resolve())
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if os.readlink(f"/proc/{entry.name}/cwd") == target:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def wait_for_orphans(root: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while processes_in(root):
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes still running in {root} after {timeout:g} s: {processes_in(root)}")
        time.sleep(0.02)


def log_lines(root: Path) -> list[str]:
    return (root / "runs.log").read_text().split()


@dataclass
class Trial:
    number: int
    delay: float  # seconds after start; after the state file appeared for a `creation` trial
    creation: bool = False
    landed: str = ""  # where the kill landed: how many steps state held applied
    force_unlocks: int = 0
    resumed: bool = False
    violations: list[str] = field(default_factory=list)


def resumed(t: Trial, root: Path, parallelism: int) -> bool:
    """Apply again, force-unlocking a lock the dead process left (up to three times)."""
    resume = mlspec(root, "apply", "-y", "--allow-dirty", "--parallelism", str(parallelism))
    for _ in range(3):
        if resume.rc == 0:
            break
        match = FORCE_UNLOCK.search(resume.stdout + resume.stderr)
        if not match:
            break
        # The lock dies with its holder (an OS lock): a plain apply must take it over by itself.
        t.violations.append("a plain `mlspec apply` after the kill was refused by the dead run's lock:\n"
                            + resume.output)
        unlocked = mlspec(root, "force-unlock", match.group(1))
        if unlocked.rc != 0:
            t.violations.append(f"`mlspec force-unlock {match.group(1)}` exited {unlocked.rc}\n{unlocked.output}")
            return False
        t.force_unlocks += 1
        resume = mlspec(root, "apply", "-y", "--allow-dirty", "--parallelism", str(parallelism))
    if resume.rc != 0:
        t.violations.append(f"`mlspec apply` after the kill exited {resume.rc}\n{resume.output}")
        return False
    return True


def trial(number: int, root: Path, stages: int, sleep_s: float, parallelism: int, delay: float, *,
          creation: bool = False) -> Trial:  # fmt: skip
    """One kill and the checks after it. `creation`: kill `delay` s after the state file appears."""
    t = Trial(number, delay, creation)
    project(root, stages, sleep_s)
    proc = subprocess.Popen([MLSPEC, "apply", "-y", "--allow-dirty", "--parallelism", str(parallelism)],
                            cwd=root, env=CHILD_ENV,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    if creation:
        db = root / ".mlspec" / "state.db"
        while not db.exists() and proc.poll() is None:
            time.sleep(0.0002)
    time.sleep(delay)
    finished_first = proc.poll() is not None
    if not finished_first:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    wait_for_orphans(root)

    # 1. state loads
    listed = mlspec(root, "state", "list", "--format", "json")
    entries = json.loads(listed.stdout)["resources"] if listed.rc == 0 else []
    if listed.rc != 0:  # a violation; the resume below is still tried, and reported on
        t.violations.append(f"`mlspec state list --format json` exited {listed.rc} after the kill\n{listed.output}")
    applied = {e["address"].removeprefix("Task/") for e in entries if e["status"] == "applied"}
    others = Counter(e["status"] for e in entries if e["status"] != "applied")
    if finished_first:
        t.landed = "after the apply ended"
    elif not (root / ".mlspec" / "state.db").exists():
        t.landed = "before the state existed"
    elif listed.rc != 0:
        t.landed = "state unreadable"
    else:
        t.landed = f"{len(applied)}/{stages} applied" + "".join(f", {n} {s}" for s, n in sorted(others.items()))
    before = log_lines(root)

    # 2. apply again, force-unlocking a lock the dead process left
    if not resumed(t, root, parallelism):
        return t
    t.resumed = True

    # 3. nothing left to do, every out written, nothing applied ran again
    plan = mlspec(root, "plan", "--detailed-exitcode")
    if plan.rc != 0:
        t.violations.append(f"`mlspec plan --detailed-exitcode` exited {plan.rc} after the resume\n{plan.output}")
    for i in range(stages):
        out = root / "out" / f"{i}.txt"
        if not out.is_file() or out.read_text() != f"s{i}\n":
            t.violations.append(f"out/{i}.txt is {'wrong' if out.exists() else 'missing'} after the resume")
    wait_for_orphans(root)
    rerun = sorted(set(log_lines(root)[len(before) :]) & applied, key=lambda s: int(s[1:]))
    if rerun:
        t.violations.append(f"stages recorded applied before the resume ran again: {', '.join(rerun)}")
    return t


def calibrate(root: Path, stages: int, sleep_s: float, parallelism: int) -> float:
    """How long one whole apply takes here: the range the kill moments are drawn from."""
    project(root, stages, sleep_s)
    started = time.perf_counter()
    r = mlspec(root, "apply", "-y", "--allow-dirty", "--parallelism", str(parallelism))
    seconds = time.perf_counter() - started
    if r.rc != 0:
        sys.exit(f"the uninterrupted apply failed (exit {r.rc})\n{r.output}")
    if sorted(log_lines(root)) != sorted(f"s{i}" for i in range(stages)):
        sys.exit("the uninterrupted apply did not run every stage exactly once")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=50, help="kills (default 50)")
    parser.add_argument("--stages", type=int, default=30, help="Task stages per project (default 30)")
    parser.add_argument("--sleep", type=float, default=0.05, help="seconds each stage sleeps (default 0.05)")
    parser.add_argument("--parallelism", type=int, default=4, help="apply --parallelism (default 4)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    parser.add_argument("--creation-every", type=int, default=5, metavar="N",
                        help="every Nth trial kills 0-5 ms after the state file appears (0: never; default 5)")
    parser.add_argument("--keep", action="store_true", help="keep every trial's directory")
    parser.add_argument("--rev", help="run mlspec (and its plugins) as committed at this git revision")
    parser.add_argument("--src", type=Path, help="run the mlspec package in this directory (first on PYTHONPATH)")
    args = parser.parse_args()
    if args.rev:
        args.src = source.export_rev(args.rev)
    if args.src:
        source.use_source(CHILD_ENV, args.src)
    print(f"mlspec: {source.describe(CHILD_ENV, args.rev)}", flush=True)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    WORK.mkdir(parents=True, exist_ok=True)
    whole = calibrate(WORK / "calibration", args.stages, args.sleep, args.parallelism)
    shutil.rmtree(WORK / "calibration")
    print(f"seed {seed}; one uninterrupted apply of {args.stages} stages takes {whole:.2f} s; kills are drawn "
          f"uniformly from [0, {whole:.2f}] s", flush=True)  # fmt: skip

    trials: list[Trial] = []
    for n in range(1, args.trials + 1):
        root = WORK / f"trial-{n:03d}"
        creation = args.creation_every > 0 and n % args.creation_every == 0
        delay = rng.uniform(0.0, 0.005) if creation else rng.uniform(0.0, whole)
        t = trial(n, root, args.stages, args.sleep, args.parallelism, delay, creation=creation)
        trials.append(t)
        status = "VIOLATION" if t.violations else "ok"
        unlock = f", force-unlock x{t.force_unlocks}" if t.force_unlocks else ""
        when = f"{t.delay * 1000:.1f} ms after the state file appeared" if creation else f"at {t.delay:.3f} s"
        print(f"trial {n:3d}: kill {when}, {t.landed or '-'}{unlock}: {status}", flush=True)
        for v in t.violations:
            print("    " + v.replace("\n", "\n    "), flush=True)
        if not (t.violations or args.keep):
            shutil.rmtree(root, ignore_errors=True)

    bad = [t for t in trials if t.violations]
    fixed = ("before the state existed", "after the apply ended", "state unreadable")
    landed = Counter(t.landed if t.landed in fixed else "mid-apply" for t in trials)
    print()
    creations = [t for t in trials if t.creation]
    print(f"trials:              {len(trials)} (seed {seed}); {len(creations)} killed as the state file was created, "
          f"{sum(bool(t.violations) for t in creations)} of them with violations")
    print(f"kills landed:        {', '.join(f'{n} {where}' for where, n in landed.most_common())}")
    print(f"resumes ok:          {sum(t.resumed for t in trials)}/{len(trials)}")
    print(f"force-unlocks needed: {sum(t.force_unlocks > 0 for t in trials)} trials "
          f"({sum(t.force_unlocks for t in trials)} in all)")  # fmt: skip
    print(f"violations:          {sum(len(t.violations) for t in bad)} in {len(bad)} trials"
          + (f" ({', '.join(str(t.number) for t in bad)}; directories kept under {WORK})" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
