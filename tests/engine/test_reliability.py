"""`mlspec apply` when things go wrong: kill -9, a second apply, a failing step, Ctrl-C once and twice.

Real `mlspec` processes on a real SQLite state in a temporary spec repo. Every task runs `step.py`
(written into the repo), which appends `start NAME PID` to run.log, sleeps, writes out/NAME.txt and
appends `done NAME PID`: the log says which steps really ran, and how often. A step fails (exit 3) while
the file `fail-NAME` exists, and keeps running (up to a minute) while `hold-NAME` exists, so a test
decides when a step in flight ends, however slow the machine. Neither file is a dep: creating or
removing one changes nothing in the plan.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PY = sys.executable

STEP = """\
import os, pathlib, sys, time

name, seconds, *outs = sys.argv[1:]

def log(word):
    with open("run.log", "a") as f:
        f.write(f"{word} {name} {os.getpid()}\\n")

log("start")
if pathlib.Path(f"fail-{name}").exists():
    print(f"{name}: cannot go on, fail-{name} exists", file=sys.stderr)
    sys.exit(3)
time.sleep(float(seconds))
held = time.monotonic()
while pathlib.Path(f"hold-{name}").exists() and time.monotonic() - held < 60:
    time.sleep(0.02)
for out in outs:
    pathlib.Path(out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(out).write_text(name)
log("done")
"""


def mlspec_argv() -> list[str]:
    if importlib.util.find_spec("mlspec.__main__") is not None:
        return [PY, "-m", "mlspec"]
    return [str(Path(PY).with_name("mlspec"))]  # the console script next to this interpreter


MLSPEC = mlspec_argv()


def task(name: str, seconds: float = 0.05, after: Iterable[str] = ()) -> str:
    """A Task spec (JSON is YAML): step.py NAME SECONDS out/NAME.txt, after the tasks named."""
    spec: dict[str, object] = {"cmd": [PY, "step.py", name, str(seconds), f"out/{name}.txt"],
                               "outs": [f"out/{name}.txt"]}
    if after:
        spec["depends_on"] = [f"Task/{a}" for a in after]
    return json.dumps({"apiVersion": "mlspec/v1", "kind": "Task", "metadata": {"name": name}, "spec": spec})


def make_repo(root: Path, tasks: Iterable[str]) -> Path:
    (root / "specs").mkdir(parents=True)
    (root / "mlspec.yaml").write_text("specs: ['specs/**/*.yaml']\n")
    (root / "step.py").write_text(STEP)
    (root / "specs/tasks.yaml").write_text("\n---\n".join(tasks) + "\n")
    return root


def run(root: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MLSPEC, *args], cwd=root, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def start(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*MLSPEC, *args], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)


def log(root: Path, *, pids: bool = False) -> list[str]:
    """run.log's lines: `start NAME`, `done NAME` (and the command's pid with pids=True)."""
    path = root / "run.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return lines if pids else [line.rsplit(" ", 1)[0] for line in lines]


def started(root: Path) -> list[str]:
    return [line.split()[1] for line in log(root) if line.startswith("start ")]


def wait_for(check: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")  # a zombie is dead


def statuses(root: Path) -> dict[str, str]:
    listed = run(root, "state", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    return {r["address"]: r["status"] for r in json.loads(listed.stdout)["resources"]}


def lock_row(root: Path) -> tuple[str, int] | None:
    """(lock id, pid) of the state's lock holder, read straight from the database."""
    db = sqlite3.connect(f"file:{root / '.mlspec/state.db'}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT id, pid FROM lock").fetchone()
    finally:
        db.close()


def assert_converged(root: Path, names: Iterable[str]) -> None:
    plan = run(root, "plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    for name in names:
        assert (root / f"out/{name}.txt").read_text() == name


# --------------------------------------------------------------------------------------------------
# kill -9


PIPELINE = [task("a", 0.1), task("b", 0.08, ["a"]), task("c", 0.08, ["b"]), task("d", 0.05, ["c"]),
            task("e", 0.1), task("f", 0.08, ["e"])]
NAMES = "abcdef"


@pytest.mark.parametrize("trial", range(3))
def test_kill_9_at_a_random_moment_then_apply_again_finishes(tmp_path: Path, trial: int) -> None:
    rng = random.Random(1234 + trial)
    root = make_repo(tmp_path / "repo", PIPELINE)
    victim = start(root, "apply", "-y")
    if trial == 0:  # anywhere from start-up (planning, opening the state) on
        time.sleep(rng.uniform(0.05, 0.6))
    else:  # while steps run: the lock is held and some steps are in flight
        wait_for(lambda: bool(log(root)), "the first step to start")
        time.sleep(rng.uniform(0.0, 0.35))
    victim.kill()
    victim.wait(timeout=10)

    before = statuses(root)  # the state still loads
    assert set(before.values()) <= {"applied", "interrupted"}, before
    applied_before = {address.split("/")[1] for address, status in before.items() if status == "applied"}

    resumed = run(root, "apply", "-y")
    if resumed.returncode != 0:  # the killed apply left its lock behind
        assert "the state is locked" in resumed.stderr, resumed.stderr
        assert f"pid {victim.pid}" in resumed.stderr and "that process is gone" in resumed.stderr
        lock_id = re.search(r"mlspec force-unlock (\w+)", resumed.stderr)
        assert lock_id is not None, resumed.stderr
        unlocked = run(root, "force-unlock", lock_id[1])
        assert unlocked.returncode == 0, unlocked.stderr
        resumed = run(root, "apply", "-y")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    assert statuses(root) == {f"Task/{n}": "applied" for n in NAMES}
    assert_converged(root, NAMES)
    runs = started(root)
    for name in applied_before:
        assert runs.count(name) == 1, f"{name} was applied before the kill and ran again: {runs}"


# --------------------------------------------------------------------------------------------------
# two applies at once


def test_a_second_apply_waits_for_the_lock_then_names_its_holder(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", [task("a"), task("b", after=["a"])])
    (root / "hold-a").touch()  # the first apply holds the lock until the test lets a finish
    first = start(root, "apply", "-y")
    wait_for(lambda: "start a" in log(root), "the first apply to start a step")
    holder = lock_row(root)
    assert holder is not None and holder[1] == first.pid

    began = time.monotonic()
    second = run(root, "apply", "-y", "--lock-timeout", "1")
    took = time.monotonic() - began
    assert second.returncode == 1, second.stdout + second.stderr
    assert 1 <= took < 10, f"gave up after {took:.1f}s"
    assert f"the state is locked after waiting 1s by {holder[0]} (apply by " in second.stderr
    assert f"pid {first.pid}" in second.stderr and "wait for it" in second.stderr
    assert first.poll() is None, "the second apply did not disturb the first"

    (root / "hold-a").unlink()
    out, err = first.communicate(timeout=20)
    assert first.returncode == 0, out + err
    assert started(root) == ["a", "b"]
    assert statuses(root) == {"Task/a": "applied", "Task/b": "applied"}
    assert lock_row(root) is None
    assert_converged(root, "ab")


# --------------------------------------------------------------------------------------------------
# a failing step


def test_a_failing_step_taints_it_skips_its_dependents_and_the_rest_goes_on(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", [task("a"), task("b", after=["a"]), task("c", after=["a"]),
                                         task("d", after=["b", "c"]), task("e")])
    (root / "fail-b").touch()
    failed = run(root, "apply", "-y")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "failed: Task/b" in failed.stdout and "exit code 3" in failed.stdout
    assert "Task/d: skipped (upstream Task/b failed)" in failed.stderr
    assert statuses(root) == {"Task/a": "applied", "Task/b": "tainted", "Task/c": "applied", "Task/e": "applied"}
    assert sorted(started(root)) == ["a", "b", "c", "e"], "d did not run"

    (root / "fail-b").unlink()
    plan = run(root, "plan")
    assert "-/+ Task/b  replace" in plan.stdout and "because tainted: its last apply failed" in plan.stdout
    runs_before = len(started(root))
    fixed = run(root, "apply", "-y")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert started(root)[runs_before:] == ["b", "d"], "only the failed step and what it blocked ran"
    assert statuses(root) == {f"Task/{n}": "applied" for n in "abcde"}
    assert_converged(root, "abcde")


# --------------------------------------------------------------------------------------------------
# Ctrl-C


def test_ctrl_c_once_lets_the_running_steps_finish_and_starts_nothing_new(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", [task("a"), task("b"), task("c", after=["a"]), task("d", after=["b"])])
    (root / "hold-a").touch()
    (root / "hold-b").touch()
    apply = start(root, "apply", "-y")
    wait_for(lambda: {"a", "b"} <= set(started(root)), "steps a and b to start")
    apply.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert apply.poll() is None, "it waits for the steps in flight"
    (root / "hold-a").unlink()
    (root / "hold-b").unlink()
    out, err = apply.communicate(timeout=20)

    assert apply.returncode == 130, out + err
    assert "no new step will start" in err
    assert sorted(started(root)) == ["a", "b"] and {"done a", "done b"} <= set(log(root))
    assert statuses(root) == {"Task/a": "applied", "Task/b": "applied"}, "the steps in flight were committed"
    assert lock_row(root) is None, "the lock was released"

    again = run(root, "apply", "-y")
    assert again.returncode == 0, again.stdout + again.stderr
    assert sorted(started(root)) == ["a", "b", "c", "d"]
    assert_converged(root, "abcd")


def test_ctrl_c_twice_stops_the_running_step_and_the_next_apply_redoes_it(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", [task("a"), task("b", after=["a"])])
    (root / "hold-a").touch()  # a runs until stopped (or a minute)
    apply = start(root, "apply", "-y")
    wait_for(lambda: "start a" in log(root), "step a to start")
    apply.send_signal(signal.SIGINT)
    time.sleep(0.3)  # two signals at once would be one
    stopped = time.monotonic()
    apply.send_signal(signal.SIGINT)
    out, err = apply.communicate(timeout=30)
    took = time.monotonic() - stopped

    assert apply.returncode == 130, out + err
    assert took < 5, f"the step in flight took {took:.1f}s to stop"
    assert "done a" not in log(root)
    command = int(log(root, pids=True)[0].split()[2])
    wait_for(lambda: not alive(command), "the stopped step's command to exit", timeout=5)
    assert statuses(root) == {"Task/a": "interrupted"}
    assert lock_row(root) is None

    (root / "hold-a").unlink()
    plan = run(root, "plan", "--detailed-exitcode")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "-/+ Task/a  replace" in plan.stdout
    assert "because interrupted" in plan.stdout

    again = run(root, "apply", "-y")
    assert again.returncode == 0, again.stdout + again.stderr
    assert started(root) == ["a", "a", "b"]
    assert_converged(root, "ab")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_stops_the_commands_and_releases_the_lock(tmp_path: Path, sig: signal.Signals) -> None:
    """What `timeout`, a closed terminal or a cancelled CI job sends: no orphan command, no stale lock."""
    root = make_repo(tmp_path / "repo", [task("a")])
    (root / "hold-a").touch()
    apply = start(root, "apply", "-y")
    wait_for(lambda: "start a" in log(root), "step a to start")
    apply.send_signal(sig)
    out, err = apply.communicate(timeout=30)
    assert apply.returncode == 130, out + err
    command = int(log(root, pids=True)[0].split()[2])
    wait_for(lambda: not alive(command), "the step's command to exit", timeout=5)
    assert statuses(root) == {"Task/a": "interrupted"} and lock_row(root) is None


def test_the_subprocess_entry_point_is_the_cli() -> None:
    """Guard for the helpers above: the command they run is this checkout's mlspec."""
    version = subprocess.run([*MLSPEC, "--version"], capture_output=True, text=True, timeout=30,
                             env={**os.environ, "NO_COLOR": "1"})
    assert version.returncode == 0 and version.stdout.startswith("mlspec "), version.stdout + version.stderr
