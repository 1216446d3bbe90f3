"""The state store: per-step commits, serial and lineage, the lock, and damage that is never overwritten.

Semantics are checked on both backends; what needs real processes (a second apply, kill -9) on the
local SQLite one.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlspec.cli import main
from mlspec.errors import StateCorruptError, StateError, StateLockedError
from mlspec.state import ResourceState, StateStore, Status
from mlspec.state.local import LocalStateStore
from mlspec.state.memory import MemoryStateStore

REPO = Path(__file__).resolve().parents[2]


def entry(address: str, fingerprint: str = "f1", **kw: object) -> ResourceState:
    return ResourceState(address, fingerprint, {"spec": address}, {"uri": f"artifact://{address}"}, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL 16 on a Unix socket (the pgserver wheel), for the whole session."""
    pgserver = pytest.importorskip("pgserver")
    pytest.importorskip("psycopg")
    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture(params=["local", "memory", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    made: StateStore
    if request.param == "postgres":
        from mlspec.state.postgres import PostgresStateStore

        made = PostgresStateStore(request.getfixturevalue("postgres"), f"test-{uuid.uuid4().hex[:8]}")
    else:
        made = LocalStateStore(tmp_path / "state.db") if request.param == "local" else MemoryStateStore()
    yield made
    made.close()


def test_a_new_state_is_empty_with_a_lineage_and_serial_zero(store: StateStore) -> None:
    meta = store.meta()
    assert meta.serial == 0 and len(meta.lineage) == 32
    assert store.list() == []


def test_each_step_is_committed_on_its_own_and_bumps_the_serial(store: StateStore) -> None:
    lineage = store.meta().lineage
    with store.lock("apply"):
        assert store.commit(entry("Dataset/reviews")) == 1
        assert store.commit(entry("Model/sentiment", status=Status.TAINTED)) == 2
        assert store.commit(entry("Dataset/reviews", "f2")) == 3
    assert [e.address for e in store.list()] == ["Dataset/reviews", "Model/sentiment"]
    reviews = store.get("Dataset/reviews")
    assert reviews is not None and reviews.fingerprint == "f2" and reviews.outputs == {"uri": "artifact://Dataset/reviews"}
    assert store.get("Model/sentiment").status is Status.TAINTED  # type: ignore[union-attr]
    assert store.meta().lineage == lineage and store.meta().serial == 3


def test_an_update_keeps_when_the_address_was_created(store: StateStore) -> None:
    with store.lock("apply"):
        store.commit(entry("Task/a", created_at="2020-01-01T00:00:00.000+00:00"))
        store.commit(entry("Task/a", "f2"))
    updated = store.get("Task/a")
    assert updated is not None and updated.created_at.startswith("2020") and not updated.updated_at.startswith("2020")


def test_writes_need_the_lock(store: StateStore) -> None:
    with pytest.raises(StateError, match="lock"):
        store.commit(entry("Task/a"))


def test_rm_and_mv(store: StateStore) -> None:
    with store.lock("state"):
        store.commit(entry("Model/a"))
        store.commit(entry("Model/b"))
        store.move("Model/a", "Model/c")
        with pytest.raises(StateError, match="already in the state"):
            store.move("Model/c", "Model/b")
        store.remove("Model/b")
        with pytest.raises(StateError, match="not in the state"):
            store.remove("Model/b")
    assert [e.address for e in store.list()] == ["Model/c"]
    assert store.meta().serial == 4


def test_the_lock_is_exclusive_and_released(store: StateStore) -> None:
    with store.lock("apply") as held:
        assert store.lock_info() == held
        with pytest.raises(StateLockedError, match=held.id), store.lock("apply"):
            pass
    assert store.lock_info() is None
    with store.lock("apply"):
        pass


def test_force_unlock_takes_only_the_exact_id(store: StateStore) -> None:
    with store.lock("apply") as held:
        with pytest.raises(StateError):
            store.force_unlock("not-the-id")
        assert store.force_unlock(held.id) == held
        with pytest.raises(StateError):  # this run's lock is gone: it must not write any more
            store.commit(entry("Task/a"))


# --- the local backend, with real processes -----------------------------------------------------------

HOLD = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    from mlspec.state.local import LocalStateStore
    store = LocalStateStore(Path(sys.argv[1]))
    with store.lock("apply") as held:
        print(held.id, flush=True)
        if sys.argv[2] == "die":
            os.kill(os.getpid(), signal.SIGKILL)  # as kill -9: no cleanup at all
        time.sleep(float(sys.argv[2]))
    """
)


def hold(path: Path, how: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), how], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def test_a_second_apply_waits_then_names_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    LocalStateStore(path).close()
    holder, lock_id = hold(path, "1.5")
    try:
        store = LocalStateStore(path)
        started = time.monotonic()
        with pytest.raises(StateLockedError) as err, store.lock("apply", timeout=0.3):
            pass
        assert time.monotonic() - started >= 0.3
        assert lock_id in str(err.value) and f"pid {holder.pid}" in str(err.value) and "waiting 0.3s" in str(err.value)
        with store.lock("apply", timeout=10):  # the holder finishes within its 1.5 s: then we get it
            pass
    finally:
        holder.wait(10)


def test_the_lock_of_a_holder_killed_with_sigkill_dies_with_it(tmp_path: Path) -> None:
    """The kernel releases the OS lock of a dead process: the next run takes the lock over, without
    force-unlock, and says whose it was."""
    path = tmp_path / "state.db"
    LocalStateStore(path).close()
    holder, lock_id = hold(path, "die")
    assert holder.wait(10) == -signal.SIGKILL
    store = LocalStateStore(path)
    assert store.lock_info() is not None and store.lock_info().id == lock_id  # type: ignore[union-attr]
    with store.lock("apply") as mine:
        assert mine.replaced is not None and lock_id in mine.replaced and f"pid {holder.pid}" in mine.replaced
        assert store.lock_info().id == mine.id  # type: ignore[union-attr]
    assert store.lock_info() is None


def test_a_row_from_another_host_is_not_taken_over(tmp_path: Path) -> None:
    """On a shared filesystem another machine's run cannot be judged from here: it is named, and
    force-unlock stays the way out."""
    path = tmp_path / "state.db"
    LocalStateStore(path).close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO lock VALUES (1, 'abc123', 'apply', 'ci', 'elsewhere', 1, 'then')")
    db.commit()
    db.close()
    store = LocalStateStore(path)
    with pytest.raises(StateLockedError, match=r"by abc123 \(apply by ci on elsewhere"), store.lock("apply"):
        pass
    store.force_unlock("abc123")
    with store.lock("apply"):
        pass


COMMIT_FOREVER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from mlspec.state import ResourceState
    from mlspec.state.local import LocalStateStore
    store = LocalStateStore(Path(sys.argv[1]))
    with store.lock("apply"):
        i = 0
        while True:
            store.commit(ResourceState(f"Task/t{i}", "f", {"i": i}, {"n": i}))
            i += 1
            if i == 20:
                print("going", flush=True)
    """
)


@pytest.mark.parametrize("after", [0.05, 0.2, 0.5])
def test_kill_9_between_or_during_commits_loses_at_most_the_step_in_flight(tmp_path: Path, after: float) -> None:
    path = tmp_path / "state.db"
    proc = subprocess.Popen([sys.executable, "-c", COMMIT_FOREVER, str(path)], stdout=subprocess.PIPE, text=True,
                            cwd=REPO)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "going"
    time.sleep(after)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    store = LocalStateStore(path)
    entries = store.list()
    # Every committed step is whole, the serial counts exactly those steps, and none is missing in between.
    assert len(entries) >= 20 and store.meta().serial == len(entries)
    assert {e.address for e in entries} == {f"Task/t{i}" for i in range(len(entries))}
    assert all(e.outputs == {"n": int(e.address[6:])} for e in entries)


def test_a_corrupt_state_is_reported_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    garbage = b"this is not a database\x00" * 100
    path.write_bytes(garbage)
    with pytest.raises(StateCorruptError, match="left untouched"):
        LocalStateStore(path)
    assert path.read_bytes() == garbage


def test_a_foreign_sqlite_database_is_not_taken_for_a_state(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (x)")
    before = path.read_bytes()
    with pytest.raises(StateCorruptError, match="not an mlspec state"):
        LocalStateStore(path)
    assert path.read_bytes() == before


def test_a_state_from_a_newer_mlspec_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    LocalStateStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE name = 'format_version'")
    before = path.read_bytes()
    with pytest.raises(StateCorruptError, match="newer mlspec"):
        LocalStateStore(path)
    assert path.read_bytes() == before


# --- the CLI --------------------------------------------------------------------------------------------


@pytest.fixture
def applied(tmp_path: Path) -> Callable[..., tuple[int, str]]:
    root = tmp_path / "repo"
    (root / "specs").mkdir(parents=True)
    store = LocalStateStore(root / ".mlspec" / "state.db")
    with store.lock("apply"):
        store.commit(entry("Dataset/reviews"))
        store.commit(entry("Model/sentiment"))
    store.close()

    def run(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
        code = main(["-C", str(root), *args])
        out, err = capsys.readouterr()
        return code, out + err

    return run


def test_state_commands(applied: Callable[..., tuple[int, str]], capsys: pytest.CaptureFixture[str]) -> None:
    assert applied("state", "list", capsys=capsys) == (0, "Dataset/reviews\nModel/sentiment\n")
    code, out = applied("state", "show", "Model/sentiment", "--format", "json", capsys=capsys)
    assert code == 0 and '"fingerprint": "f1"' in out
    code, out = applied("state", "show", "Model/sentimnt", capsys=capsys)
    assert code == 1 and "did you mean `Model/sentiment`?" in out
    assert applied("state", "mv", "Model/sentiment", "Model/s2", capsys=capsys)[0] == 0
    assert applied("state", "rm", "Dataset/reviews", capsys=capsys)[0] == 0
    code, out = applied("state", "list", "--format", "json", capsys=capsys)
    assert code == 0 and '"serial": 4' in out and "Model/s2" in out and "Dataset/reviews" not in out


def test_reading_a_project_without_state_creates_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-C", str(tmp_path), "state", "list"]) == 0
    assert not (tmp_path / ".mlspec").exists()
    assert main(["-C", str(tmp_path), "state", "rm", "Model/x"]) == 1
    assert "nothing has been applied" in capsys.readouterr().err


def test_a_creation_killed_half_way_is_no_state_and_the_next_run_creates_it(tmp_path: Path) -> None:
    """Found by benchmarks/stress_kill.py: a kill after SQLite wrote its WAL header, before the tables."""
    path = tmp_path / ".mlspec" / "state.db"
    path.parent.mkdir()
    half = sqlite3.connect(path)
    half.execute("PRAGMA journal_mode=WAL")
    half.close()
    from mlspec.errors import StateMissingError

    with pytest.raises(StateMissingError):
        LocalStateStore(path, create=False)  # reading never writes a state
    assert sqlite3.connect(path).execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    store = LocalStateStore(path)
    with store.lock("apply"):
        store.commit(entry("Task/a"))
    store.close()
    assert [e.address for e in LocalStateStore(path, create=False).list()] == ["Task/a"]


def test_a_new_state_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    LocalStateStore(path).close()
    assert sorted(p.name for p in tmp_path.iterdir() if "creating" in p.name) == []
    assert {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")} >= {"meta", "resources"}


def _first_apply(path: str, name: str) -> None:
    store = LocalStateStore(Path(path))
    with store.lock("apply", timeout=10):
        store.commit(entry(f"Task/{name}"))
    store.close()


def test_two_first_applies_at_once_keep_both_results(tmp_path: Path) -> None:
    """Found in review: both saw no state, both created one, the second rename replaced the first's."""
    import multiprocessing

    for trial in range(5):
        path = str(tmp_path / str(trial) / ".mlspec" / "state.db")
        workers = [multiprocessing.Process(target=_first_apply, args=(path, n)) for n in ("a", "b")]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert [e.address for e in LocalStateStore(Path(path), create=False).list()] == ["Task/a", "Task/b"]


# --------------------------------------------------------------------------------------------------
# The registry and the audit chain as operations of the store


def test_registry_versions_and_moves_commit_with_the_row_and_read_back(store: StateStore) -> None:
    from mlspec import registry

    write, outputs = registry.registered(None, "Model/m", {"digest": "w1"}, ("champion",), {}, "f1", None)
    with store.lock("apply"):
        store.commit(ResourceState("Model/m", "f1", {}, outputs), registry=write)
        entry = store.registry()["Model/m"]
        entry.add({"digest": "w2", "fingerprint": "f2"})
        entry.point("champion", 2, "promote")
        store.register(entry.since("Model/m", 1, 1))
    found = store.registry()["Model/m"]
    assert [v["version"] for v in found.versions] == [1, 2] and found.aliases == {"champion": 2}
    assert [m["how"] for m in found.history] == ["apply", "promote"]


def test_audit_entries_move_the_head_of_the_chain(store: StateStore) -> None:
    assert store.audit_head() is None
    with store.lock("apply"):
        first = store.append_audit("apply.started", {"who": "me"})
        second = store.append_audit("apply.finished", {"who": "me"})
    assert (first["seq"], second["seq"]) == (1, 2) and store.audit_head() == second


def test_a_format_1_state_is_upgraded_in_place_with_its_registry(tmp_path: Path) -> None:
    """Before format 2 the registry was one JSON document in a note; opening turns it into rows."""
    import json

    path = tmp_path / "state.db"
    LocalStateStore(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE registry_versions")
    db.execute("DROP TABLE registry_moves")
    document = {"Model/m": {"versions": [{"version": 1, "digest": "w1"}, {"version": 2, "digest": "w2"}],
                            "aliases": {"champion": 2},
                            "history": [{"alias": "champion", "from": None, "to": 1, "how": "apply", "at": "t"},
                                        {"alias": "champion", "from": 1, "to": 2, "how": "apply", "at": "t"}]}}
    db.execute("INSERT INTO meta VALUES ('note:registry', ?)", (json.dumps(document),))
    db.execute("UPDATE meta SET value = '1' WHERE name = 'format_version'")
    db.commit()
    db.close()
    store = LocalStateStore(path)
    try:
        assert store.meta().format_version == 2 and store.note("registry") is None
        entry = store.registry()["Model/m"]
        assert entry.aliases == {"champion": 2} and len(entry.versions) == 2 and len(entry.history) == 2
    finally:
        store.close()


def test_a_batched_commit_reaches_the_disk_without_another_commit(tmp_path: Path) -> None:
    """Group commit: the second commit inside the interval is not flushed at once, but a timer puts it
    on disk within the interval even when no later commit comes (a long step is running)."""
    from mlspec.state import local

    store = LocalStateStore(tmp_path / "state.db")
    try:
        with store.lock("apply"):
            store.commit(entry("Task/a"))
            store.commit(entry("Task/b"))  # within the interval: batched
            deadline = time.monotonic() + local.SYNC_INTERVAL_S * 6
            while store._unsynced_since is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert store._unsynced_since is None
    finally:
        store.close()


def test_a_full_disk_is_a_clear_error_and_the_lock_is_released(tmp_path: Path) -> None:
    """SQLite's max_page_count makes the database as full as a full disk would: the commit is refused
    with the file named, nothing half-written, and the lock goes with the run."""
    store = LocalStateStore(tmp_path / "state.db")
    try:
        with store.lock("apply"):
            store.commit(entry("Task/a"))
            pages = store._db.execute("PRAGMA page_count").fetchone()[0]
            store._db.execute(f"PRAGMA max_page_count = {pages}")
            big = ResourceState("Task/b", "f", {}, {"blob": "x" * 1_000_000})
            with pytest.raises(StateError, match=r"cannot write the state .*full"):
                store.commit(big)
    finally:
        store.close()
    again = LocalStateStore(tmp_path / "state.db")
    try:
        with again.lock("apply"):  # the row may stay on a full disk; the next run takes the lock all the same
            assert [e.address for e in again.list()] == ["Task/a"]
    finally:
        again.close()


def test_a_snapshot_copies_whole_into_an_empty_store_only(tmp_path: Path) -> None:
    from mlspec import registry
    from mlspec.state.snapshot import copy, take

    source = LocalStateStore(tmp_path / "a" / "state.db")
    write, outputs = registry.registered(None, "Model/m", {"digest": "w1"}, ("champion",), {}, "f1", None)
    with source.lock("apply"):
        source.commit(ResourceState("Model/m", "f1", {}, outputs), registry=write)
        source.append_audit("apply.finished", {"ok": True})
    target, full = MemoryStateStore(), LocalStateStore(tmp_path / "b" / "state.db")
    try:
        with target.lock("migrate"):
            copied = copy(source, target)
        assert take(target).to_json() == copied.to_json() == take(source).to_json()
        with full.lock("apply"):
            full.commit(entry("Task/x"))
            with pytest.raises(StateError, match="holds a state already"):
                copy(source, full)
    finally:
        source.close()
        full.close()
