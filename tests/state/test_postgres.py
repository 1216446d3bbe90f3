"""The PostgreSQL backend against a real server (the pgserver wheel: PostgreSQL 16 on a Unix socket):
a lock the server releases with its holder's connection, states namespaced by key, and the CLI's
whole plan/apply/audit loop on it, with the password never shown."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlspec.errors import StateLockedError, StateMissingError
from tests.cli import Result

pytest.importorskip("psycopg")
pgserver = pytest.importorskip("pgserver")

PY = sys.executable
HOLD = textwrap.dedent(
    """
    import os, signal, sys
    from mlspec.state.postgres import PostgresStateStore
    store = PostgresStateStore(sys.argv[1], sys.argv[2])
    with store.lock("apply") as held:
        print(held.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # as kill -9: the connection drops with the process
    """
)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()


def test_the_server_releases_the_lock_of_a_holder_that_died(url: str) -> None:
    from mlspec.state.postgres import PostgresStateStore

    key = f"k-{uuid.uuid4().hex[:8]}"
    PostgresStateStore(url, key).close()
    holder = subprocess.Popen([PY, "-c", HOLD, url, key], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    lock_id = holder.stdout.readline().strip()
    assert holder.wait(10) == -signal.SIGKILL
    store = PostgresStateStore(url, key)
    try:
        with store.lock("apply", timeout=5) as mine:  # the server noticed the connection drop
            assert mine.replaced is not None and lock_id in mine.replaced
    finally:
        store.close()


def test_states_are_namespaced_by_key(url: str) -> None:
    from mlspec.state.model import ResourceState
    from mlspec.state.postgres import PostgresStateStore

    a, b = PostgresStateStore(url, "team-a"), PostgresStateStore(url, "team-b")
    try:
        with a.lock("apply"), b.lock("apply"):  # one database, two states, two locks
            a.commit(ResourceState("Task/x", "f", {}, {}))
        assert [e.address for e in a.list()] == ["Task/x"] and b.list() == []
        assert a.meta().lineage != b.meta().lineage
        with a.lock("apply"):
            other = PostgresStateStore(url, "team-a")
            try:
                with pytest.raises(StateLockedError, match="the state is locked by"), other.lock("apply"):
                    pass
            finally:
                other.close()
    finally:
        a.close()
        b.close()
    with pytest.raises(StateMissingError):
        PostgresStateStore(url, "never-applied", create=False)


TASK = "apiVersion: mlspec/v1\nkind: Task\nmetadata: {name: a}\nspec: {cmd: ['true'], params: {lr: LR}}\n"
CONFIG = "specs: ['specs/**/*.yaml']\nstate: {backend: postgres, url: '${env:MLSPEC_STATE_URL}', key: KEY}\n"


def test_plan_apply_and_audit_run_on_the_database(
    url: str, project: Callable[..., Path], mlspec: Callable[..., Result], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("MLSPEC_STATE_URL", url)
    key = f"cli-{uuid.uuid4().hex[:8]}"
    root = project({"specs/a.yaml": TASK.replace("LR", "0.1")}, config=CONFIG.replace("KEY", key))
    assert mlspec(root, "apply", "-y").code == 0
    assert not (root / ".mlspec" / "state.db").exists()  # the state is the database's
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0
    # Another checkout (a fresh CI runner) sees the same state: nothing to do.
    other = tmp_path / "clone"
    other.mkdir()
    (other / "specs").mkdir()
    (other / "specs/a.yaml").write_text(TASK.replace("LR", "0.1"))
    (other / "mlspec.yaml").write_text(CONFIG.replace("KEY", key))
    assert mlspec(other, "plan", "--detailed-exitcode").code == 0
    (other / "specs/a.yaml").write_text(TASK.replace("LR", "0.2"))
    assert mlspec(other, "apply", "-y").code == 0
    verified = mlspec(root, "audit", "verify")
    assert verified.code == 0 and "ok: 4 entries" in verified.out, verified.output


def test_a_database_that_cannot_be_reached_is_a_clear_error_without_the_password(
    project: Callable[..., Path], mlspec: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MLSPEC_STATE_URL", f"postgresql://app:hunter2-db-pass@/db?host={tmp_path / 'nowhere'}")
    root = project({"specs/a.yaml": TASK.replace("LR", "0.1")}, config=CONFIG.replace("KEY", "x"))
    for command in (("plan",), ("apply", "-y")):
        result = mlspec(root, *command)
        assert result.code == 1 and "cannot connect to the state database" in result.err, result.output
        assert "hunter2-db-pass" not in result.output


def test_state_migrates_to_postgres_and_back_verified(
    url: str, project: Callable[..., Path], mlspec: Callable[..., Result], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lineage, serial, records and the audit chain move; on the new backend the plan has nothing to do."""
    monkeypatch.setenv("MLSPEC_STATE_URL", url)
    root = project({"specs/a.yaml": TASK.replace("LR", "0.1")}, config="specs: ['specs/**/*.yaml']\n")
    assert mlspec(root, "apply", "-y").code == 0
    before = mlspec(root, "state", "list", "--format", "json").json()
    key = f"moved-{uuid.uuid4().hex[:8]}"
    moved = mlspec(root, "state", "migrate", "--to", "${env:MLSPEC_STATE_URL}", "--key", key, "--format", "json")
    assert moved.code == 0, moved.output
    assert moved.json()["resources"] == 1 and moved.json()["lineage"] == before["lineage"]
    (root / "mlspec.yaml").write_text(CONFIG.replace("KEY", key))
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0
    after = mlspec(root, "state", "list", "--format", "json").json()
    assert (after["lineage"], after["serial"]) == (before["lineage"], before["serial"])
    verified = mlspec(root, "audit", "verify")
    assert verified.code == 0 and "ok: 3 entries" in verified.out, verified.output  # + state.migrated
    again = mlspec(root, "state", "migrate", "--to", "${env:MLSPEC_STATE_URL}", "--key", key)
    assert again.code == 1 and "holds this very state already" in again.err, again.output
    back = mlspec(root, "state", "migrate", "--to", "back/state.db")
    assert back.code == 0, back.output
    assert (root / "back" / "state.db").is_file() and (root / "back" / "audit" / "log.jsonl").is_file()


@pytest.mark.slow
def test_a_database_restarted_mid_apply_fails_the_step_cleanly_and_the_next_apply_finishes(
    tmp_path: Path, project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server goes away while a step runs: the apply says so and stops (nothing half-written);
    the server's restart released the lock with the connection; the next apply finishes the work."""
    data = tmp_path / "pgdata"
    server = pgserver.get_server(data, cleanup_mode="stop")
    url = server.get_uri()
    monkeypatch.setenv("MLSPEC_STATE_URL", url)
    slow = (f"apiVersion: mlspec/v1\nkind: Task\nmetadata: {{name: slow}}\nspec:\n"
            f"  cmd: ['{PY}', -c, \"import time, pathlib; time.sleep(3); pathlib.Path('done.txt').write_text('x')\"]\n"
            "  outs: [done.txt]\n")
    root = project({"specs/a.yaml": slow}, config=CONFIG.replace("KEY", "restart"))
    mlspec_bin = str(Path(PY).parent / "mlspec")
    apply = subprocess.Popen([mlspec_bin, "-C", str(root), "apply", "-y"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    import time

    time.sleep(1.5)  # the step is running
    server.cleanup()  # the database stops ...
    server = pgserver.get_server(data, cleanup_mode="stop")  # ... and comes back
    try:
        _, err = apply.communicate(timeout=60)
        assert apply.returncode == 1, err
        assert "state database" in err or "lock dropped" in err, err
        assert "Traceback" not in err
        again = subprocess.run([mlspec_bin, "-C", str(root), "apply", "-y"], capture_output=True, text=True, timeout=60)
        assert again.returncode == 0, again.stdout + again.stderr
        assert subprocess.run([mlspec_bin, "-C", str(root), "plan", "--detailed-exitcode"], capture_output=True,
                              timeout=60).returncode == 0
    finally:
        server.cleanup()
