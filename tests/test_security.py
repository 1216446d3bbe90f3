"""Safe by default, tried as an attacker, a careless user and a crashing machine would try it:
no secret in anything mlspec writes or prints, no path that leaves the repo, a lock that dies with
its holder, and an apply that always stops."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from tests.cli import Result

PY = sys.executable
SECRET = "hunter2-s3cr3t/p@ss=word"  # a slash, an @ and an = : its URL and base64 forms differ from it
FORMS = {SECRET, quote(SECRET, safe=""), quote_plus(SECRET), base64.b64encode(SECRET.encode()).decode(),
         base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("=")}
CONFIG = "specs: ['specs/**/*.yaml']\n"
Mlspec = Callable[..., Result]


def task(name: str, code: str, *, outs: list[str] | None = None, extra: str = "") -> str:
    body = {"cmd": [PY, "-c", code], "outs": outs or []}
    spec = json.dumps(body)[1:-1]
    return f"apiVersion: mlspec/v1\nkind: Task\nmetadata: {{name: {name}}}\nspec: {{{spec}{extra}}}\n"


def leaked(root: Path, *texts: str) -> list[str]:
    """Where any form of the secret appears: every file under .mlspec/, and the texts given."""
    found = [f"output {i}" for i, text in enumerate(texts) for form in FORMS if form in text]
    for path in (root / ".mlspec").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.relative_to(root)}" for form in FORMS if form.encode() in data]
    return sorted(set(found))


# --------------------------------------------------------------------------------------------------
# Secrets


PRINTS = ("import base64, os, sys, urllib.parse as u; s = os.environ['TOKEN']; "
          "print(s, u.quote(s, safe=''), u.quote_plus(s), base64.b64encode(s.encode()).decode()); "
          "print('err', base64.urlsafe_b64encode(s.encode()).decode(), file=sys.stderr); sys.exit(3)")
SNOOPS = "import os, sys; print([v for k, v in os.environ.items()], file=sys.stderr); sys.exit(1)"


def test_no_form_of_a_secret_reaches_state_logs_or_output(
    mlspec: Mlspec, project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_SECRET", SECRET)
    root = project({"specs/a.yaml": task("prints", PRINTS, extra=', "env": {"TOKEN": "${env:AUDIT_SECRET}"}'),
                    "specs/b.yaml": task("snoops", SNOOPS)}, config=CONFIG)
    plan = mlspec(root, "plan")
    assert "note: its command gets the secret AUDIT_SECRET in its environment" in plan.out, plan.out
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 1 and "exit code 3" in applied.output and "(sensitive)" in applied.output
    as_json = mlspec(root, "apply", "-y", "--format", "json")
    assert leaked(root, plan.output, applied.output, as_json.output) == []


def test_a_task_inherits_only_what_it_may_and_what_it_declares(
    mlspec: Mlspec, project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_SECRET", SECRET)
    monkeypatch.setenv("TEAM_REGION", "eu-west-1")
    dump = "import json, os; open('env.json', 'w').write(json.dumps(dict(os.environ)))"
    root = project({"specs/a.yaml": task("dump", dump, outs=["env.json"])},
                   config=CONFIG + "plugins: {task: {inherit_env: ['TEAM_*']}}\n")
    assert mlspec(root, "apply", "-y").code == 0
    env = json.loads((root / "env.json").read_text())
    assert "AUDIT_SECRET" not in env and env["TEAM_REGION"] == "eu-west-1" and "PATH" in env
    assert env["MLSPEC_RUN"] and env["MLSPEC_STEP"].endswith("/Task/dump")


def test_the_audit_log_records_outcomes_not_what_a_command_printed(
    mlspec: Mlspec, project: Callable[..., Path]
) -> None:
    from mlspec.audit.log import AuditLog

    noisy = "import sys; print('line one of a long story', file=sys.stderr); sys.exit(4)"
    root = project({"specs/a.yaml": task("noisy", noisy)}, config=CONFIG)
    assert mlspec(root, "apply", "-y").code == 1
    finished = [e for e in AuditLog(root).entries() if e["event"] == "apply.finished"][-1]
    assert finished["steps"][0]["error"] == "Task/noisy: exit code 4"


# --------------------------------------------------------------------------------------------------
# Paths stay inside the repo


@pytest.mark.parametrize(("deps", "message"), [
    (["/etc/hostname"], "dep `/etc/hostname` leaves the spec repo"),
    (["../outside/secret.txt"], "dep `../outside/secret.txt` leaves the spec repo"),
])
def test_deps_outside_the_repo_are_refused_with_their_position(
    mlspec: Mlspec, project: Callable[..., Path], deps: list[str], message: str
) -> None:
    root = project({"specs/a.yaml": task("a", "pass", extra=f', "deps": {json.dumps(deps)}')}, config=CONFIG)
    plan = mlspec(root, "plan")
    assert plan.code == 1 and message in plan.err and "specs/a.yaml:4:" in plan.err, plan.output


def test_a_symlinked_out_never_writes_or_deletes_outside(
    mlspec: Mlspec, project: Callable[..., Path], tmp_path: Path
) -> None:
    outside = tmp_path / "victim"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    write = "import pathlib; p = pathlib.Path('victim/precious.txt'); p.write_text('overwritten')"
    root = project({"specs/a.yaml": task("a", write, outs=["victim/precious.txt"])}, config=CONFIG)
    (root / "victim").symlink_to(outside)
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 1 and "resolves outside the spec repo" in applied.output, applied.output
    assert (outside / "precious.txt").read_text() == "keep me"


def test_a_symlink_swapped_in_after_apply_does_not_redirect_a_delete(
    mlspec: Mlspec, project: Callable[..., Path], tmp_path: Path
) -> None:
    outside = tmp_path / "victim"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    write = "import pathlib; p = pathlib.Path('data/precious.txt'); p.parent.mkdir(exist_ok=True); p.write_text('x')"
    root = project({"specs/a.yaml": task("a", write, outs=["data/precious.txt"])}, config=CONFIG + "prune: true\n")
    assert mlspec(root, "apply", "-y").code == 0
    import shutil

    shutil.rmtree(root / "data")
    (root / "data").symlink_to(outside)  # after the plan: the out now leads outside
    (root / "specs/a.yaml").unlink()
    pruned = mlspec(root, "apply", "-y", "--no-refresh")  # no refresh to catch it first: the delete itself must
    assert (outside / "precious.txt").read_text() == "keep me", pruned.output
    assert "resolves outside the spec repo" in pruned.output


def test_a_cwd_that_a_symlink_takes_outside_is_refused(
    mlspec: Mlspec, project: Callable[..., Path], tmp_path: Path
) -> None:
    (tmp_path / "elsewhere").mkdir()
    root = project({"specs/a.yaml": task("a", "open('x', 'w').write('x')", extra=', "cwd": "work"')}, config=CONFIG)
    (root / "work").symlink_to(tmp_path / "elsewhere")
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 1 and "cwd `work` resolves outside the spec repo" in applied.output, applied.output
    assert not (tmp_path / "elsewhere" / "x").exists()


def test_a_real_run_starts_from_empty_outs(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    """A stale file in a directory out is not kept, stored in state or in the run cache (DVC clears too)."""
    make = "import os, pathlib; p = pathlib.Path('features'); p.mkdir(exist_ok=True); (p / 'a.txt').write_text(os.environ['MLSPEC_PARAM_N'])"
    spec = task("f", make, outs=["features"], extra=', "params": {"n": 1}')
    root = project({"specs/a.yaml": spec}, config=CONFIG)
    assert mlspec(root, "apply", "-y").code == 0
    (root / "features" / "stale.txt").write_text("x")
    (root / "specs/a.yaml").write_text(spec.replace('"n": 1', '"n": 2'))
    assert mlspec(root, "apply", "-y").code == 0
    assert sorted(p.name for p in (root / "features").iterdir()) == ["a.txt"]


# --------------------------------------------------------------------------------------------------
# The lock and the processes die with their holder; an apply always stops


DAEMON = (
    "import os, sys, time\n"
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    if os.fork() == 0:\n"
    "        import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "        open('daemon.pid', 'w').write(str(os.getpid()))\n"
    "        time.sleep(60)\n"
    "    os._exit(0)\n"
    "time.sleep(60)\n"
)


def mlspec_process(root: Path, *args: str) -> subprocess.Popen[str]:
    bin_dir = Path(sys.executable).parent
    return subprocess.Popen([str(bin_dir / "mlspec"), "-C", str(root), *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def alive(pid: int) -> bool:
    from mlspec.sdk.processes import alive as running

    return running(pid)


def wait_for(path: Path, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)
    return int(path.read_text())


@pytest.mark.slow
def test_a_timeout_stops_a_daemon_that_left_the_group_and_ignores_sigterm(
    mlspec: Mlspec, project: Callable[..., Path]
) -> None:
    root = project({"specs/a.yaml": task("d", DAEMON, extra=', "timeout_s": 1')}, config=CONFIG)
    started = time.monotonic()
    applied = mlspec(root, "apply", "-y")
    took = time.monotonic() - started
    assert applied.code == 1 and "timed out after 1s" in applied.output, applied.output
    assert took < 6, f"the apply took {took:.1f}s to stop"
    assert not alive(int((root / "daemon.pid").read_text()))


@pytest.mark.slow
def test_a_second_ctrl_c_stops_the_apply_within_two_seconds(project: Callable[..., Path]) -> None:
    root = project({"specs/a.yaml": task("d", DAEMON)}, config=CONFIG)
    proc = mlspec_process(root, "apply", "-y", "--allow-dirty")
    daemon = wait_for(root / "daemon.pid")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    proc.communicate(timeout=10)
    assert time.monotonic() - started < 2.0 and proc.returncode == 130
    assert not alive(daemon)


@pytest.mark.slow
def test_after_kill_9_a_plain_apply_takes_the_lock_and_stops_what_was_left(project: Callable[..., Path]) -> None:
    root = project({"specs/a.yaml": task("d", DAEMON)}, config=CONFIG)
    proc = mlspec_process(root, "apply", "-y")
    daemon = wait_for(root / "daemon.pid")
    proc.kill()
    proc.communicate(timeout=10)
    assert alive(daemon), "the daemon outlived its apply (what the next apply must clean up)"
    (root / "specs/a.yaml").write_text(task("d", "pass"))
    again = subprocess.run([str(Path(sys.executable).parent / "mlspec"), "-C", str(root), "apply", "-y"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "The last holder of the state's lock is gone" in again.stderr
    deadline = time.monotonic() + 5
    while alive(daemon) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(daemon)


# --------------------------------------------------------------------------------------------------
# Nothing lost silently


def test_a_lost_state_is_refused_while_the_audit_log_remembers_it(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    root = project({"specs/a.yaml": task("a", "pass")}, config=CONFIG)
    assert mlspec(root, "apply", "-y").code == 0
    (root / ".mlspec" / "state.db").write_bytes(b"")  # truncated
    for command in (("plan",), ("apply", "-y")):
        refused = mlspec(root, *command)
        assert refused.code == 1 and "the state was lost" in refused.err, refused.output


def test_an_audit_log_deleted_behind_the_state_fails_verify(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    root = project({"specs/a.yaml": task("a", "pass")}, config=CONFIG)
    assert mlspec(root, "apply", "-y").code == 0
    (root / ".mlspec" / "audit" / "log.jsonl").unlink()
    (root / "specs/a.yaml").write_text(task("a", "print(1)"))
    assert mlspec(root, "apply", "-y").code == 0
    verified = mlspec(root, "audit", "verify")
    assert verified.code == 1 and "the log was started anew" in verified.out, verified.output


def test_a_damaged_state_row_is_a_clear_error(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    import sqlite3

    root = project({"specs/a.yaml": task("a", "pass")}, config=CONFIG)
    assert mlspec(root, "apply", "-y").code == 0
    db = sqlite3.connect(root / ".mlspec" / "state.db")
    db.execute("UPDATE resources SET outputs = '{broken', status = 'weird'")
    db.commit()
    db.close()
    plan = mlspec(root, "plan")
    assert plan.code == 1 and "the state's record of Task/a is damaged" in plan.err, plan.output
    assert mlspec(root, "state", "rm", "Task/a").code == 0
    assert mlspec(root, "apply", "-y").code == 0


def test_dep_paths_are_normalised_so_order_is_kept(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    """`data/prepared/` and `./data/prepared` are the path another Task writes: it must be upstream."""
    write = "import pathlib; p = pathlib.Path('data/prepared'); p.mkdir(parents=True, exist_ok=True); (p / 'x').write_text('1')"
    root = project({"specs/a.yaml": task("prep", write, outs=["data/prepared"]),
                    "specs/b.yaml": task("use", "pass", extra=', "deps": ["./data/prepared/"]')}, config=CONFIG)
    plan = mlspec(root, "plan")
    assert plan.code == 1 and "Task/use reads `data/prepared`, which Task/prep writes" in plan.err, plan.output


@pytest.mark.parametrize(("extra", "message"), [
    (', "env": {"A=B": "x"}', "`A=B` is not an environment variable name"),
    (', "params": {"a-b": 1, "a_b": 2}', "params `a-b` and `a_b` both reach the command as MLSPEC_PARAM_A_B"),
])
def test_task_specs_that_would_fail_at_apply_fail_at_validate(
    mlspec: Mlspec, project: Callable[..., Path], extra: str, message: str
) -> None:
    root = project({"specs/a.yaml": task("a", "pass", extra=extra)}, config=CONFIG)
    found = mlspec(root, "validate")
    assert found.code == 1 and message in found.out, found.output


def test_a_missing_cwd_is_named(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    root = project({"specs/a.yaml": task("a", "pass", extra=', "cwd": "nowhere"')}, config=CONFIG)
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 1 and "cwd `nowhere` is not a directory of the spec repo" in applied.output


def test_shell_items_stay_one_word_each(mlspec: Mlspec, project: Callable[..., Path]) -> None:
    spec = ('apiVersion: mlspec/v1\nkind: Task\nmetadata: {name: s}\nspec:\n  shell: true\n'
            f'  cmd: [{PY}, -c, "import sys; open(\'args\', \'w\').write(repr(sys.argv[1:]))", "two words", "$(echo no)"]\n')
    root = project({"specs/a.yaml": spec}, config=CONFIG)
    assert mlspec(root, "apply", "-y").code == 0
    assert (root / "args").read_text() == "['two words', '$(echo no)']"



def test_a_directory_mlspec_yaml_allows_may_be_read_and_the_plan_says_so(
    mlspec: Mlspec, project: Callable[..., Path], tmp_path: Path
) -> None:
    shared = tmp_path / "shared-models"
    shared.mkdir()
    (shared / "weights.bin").write_text("w1")
    dep = str(shared / "weights.bin")
    spec = task("uses", "pass", extra=f', "deps": ["{dep}"]')
    refused = mlspec(project({"specs/a.yaml": spec}, config=CONFIG), "plan")
    assert refused.code == 1 and "leaves the spec repo" in refused.err and "paths.outside" in refused.err
    root = project({"specs/a.yaml": spec}, config=CONFIG + f"paths: {{outside: ['{shared}']}}\n")
    plan = mlspec(root, "plan")
    assert plan.code == 0, plan.output
    assert f"note: reads {shared}, outside the repo (mlspec.yaml `paths.outside` allows it)" in plan.out
    assert mlspec(root, "apply", "-y").code == 0
    (shared / "weights.bin").write_text("w2")  # read, fingerprinted: a change there replans the Task
    assert f"inputs changed: {dep} changed" in mlspec(root, "plan").out
