"""The audit log: a hash-chained JSON-lines record of every apply, and `mlspec audit verify|log`.

The library (`mlspec.audit.log.AuditLog`) is tested directly for the chain, torn-write repair and
concurrent appends; the command line is tested on real applies in a real git repository, then on
the same log tampered with in each way the chain (and the state's `audit_head` note) must catch.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlspec.audit.log import GENESIS, LOG_PATH, AuditLog
from tests.cli import Result
from tests.repo.gitrepo import EMAIL, NAME, Repo, make_repo, task

Mlspec = Callable[..., Result]
ME = f"{NAME} <{EMAIL}>"




def raw_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def entries_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in raw_lines(path)]


def sha(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def assert_chained(path: Path) -> None:
    """seq 1, 2, ...; each `prev` the SHA-256 of the line before (without its newline)."""
    lines = raw_lines(path)
    assert all(line.endswith(b"\n") for line in lines)
    entries = [json.loads(line) for line in lines]
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert [e["prev"] for e in entries] == [GENESIS, *(sha(line) for line in lines[:-1])]


# --------------------------------------------------------------------------------------------------
# the library


def test_appends_are_chained_and_verify(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    assert log.verify(None) == (0, [])
    heads = [log.append("test.event", {"n": n, "steps": []}) for n in range(3)]
    assert log.path == tmp_path / LOG_PATH
    assert [h["seq"] for h in heads] == [1, 2, 3]
    assert_chained(log.path)
    assert heads[-1]["hash"] == sha(raw_lines(log.path)[-1])
    assert [e["n"] for e in log.entries()] == [0, 1, 2]
    assert log.verify(heads[-1]) == (3, [])


def test_a_torn_last_line_is_repaired_by_the_next_append(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    log.append("one", {})
    head = log.append("two", {})
    whole = log.path.read_bytes()
    torn = b'{"at":"2026-11-01T12:00:00.000+00:00","event":"three","pr'  # the process died mid-write
    log.path.write_bytes(whole + torn)
    count, problems = log.verify(head)
    assert count == 2 and [p.line for p in problems] == [3]
    assert "incomplete" in problems[0].message and "interrupted" in problems[0].message

    new_head = log.append("three", {})
    assert new_head["seq"] == 3
    data = log.path.read_bytes()
    assert data.startswith(whole) and torn not in data, "the torn bytes are gone, the whole lines kept"
    entries = entries_of(log.path)
    assert entries[-1]["repaired_bytes"] == len(torn) and "repaired_bytes" not in entries[0]
    assert_chained(log.path)
    assert log.verify(new_head) == (3, [])
    log.append("four", {})
    assert "repaired_bytes" not in entries_of(log.path)[-1], "only the append that repaired says so"


def test_a_log_that_is_only_a_torn_line_starts_again(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    log.path.parent.mkdir(parents=True)
    log.path.write_bytes(b'{"seq":1,"ev')
    head = log.append("first", {})
    assert head["seq"] == 1
    (entry,) = entries_of(log.path)
    assert (entry["prev"], entry["repaired_bytes"]) == (GENESIS, 12)
    assert log.verify(head) == (1, [])


def test_concurrent_appends_never_interleave_or_fork_the_chain(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    errors: list[BaseException] = []

    def writer(thread: int) -> None:
        try:
            for n in range(25):
                log.append("test.concurrent", {"thread": thread, "n": n, "pad": "x" * 200})
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    entries = entries_of(log.path)
    assert len(entries) == 200
    assert_chained(log.path)
    assert log.verify({"seq": 200, "hash": sha(raw_lines(log.path)[-1])}) == (200, [])
    for thread in range(8):  # each writer's entries are in its own order
        assert [e["n"] for e in entries if e["thread"] == thread] == list(range(25))


# --------------------------------------------------------------------------------------------------
# what apply records


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return make_repo(tmp_path / "repo", {"specs/a.yaml": task("a"), "specs/b.yaml": task("b")})


def log_path(repo: Repo) -> Path:
    return repo.root / LOG_PATH


def test_each_apply_with_changes_appends_started_and_finished(mlspec: Mlspec, repo: Repo) -> None:
    assert mlspec(repo.root, "apply", "-y").code == 0
    started, finished = entries_of(log_path(repo))
    assert_chained(log_path(repo))
    assert (started["event"], finished["event"]) == ("apply.started", "apply.finished")
    for entry in (started, finished):
        assert (entry["who"], entry["commit"], entry["branch"], entry["dirty"]) == (ME, repo.head(), "main", False)
    assert re.fullmatch(r"[0-9a-f]{64}", started["plan"]) and finished["plan"] == started["plan"]
    assert started["steps"] == [{"address": "Task/a", "action": "create"}, {"address": "Task/b", "action": "create"}]
    assert started["summary"]["create"] == 2
    assert finished["ok"] is True and finished["cancelled"] is False
    assert [(s["address"], s["outcome"]) for s in finished["steps"]] == [("Task/a", "done"), ("Task/b", "done")]

    before = log_path(repo).read_bytes()
    assert mlspec(repo.root, "apply", "-y").code == 0
    assert log_path(repo).read_bytes() == before, "an apply with nothing to do appends nothing"

    repo.commit({"specs/b.yaml": task("b", params={"lr": 0.2})})
    assert mlspec(repo.root, "apply", "-y").code == 0
    third, fourth = entries_of(log_path(repo))[2:]
    assert_chained(log_path(repo))
    assert third["steps"] == [{"address": "Task/b", "action": "replace"}] and third["commit"] == repo.head()
    assert [(s["address"], s["outcome"]) for s in fourth["steps"]] == [("Task/b", "done")]
    assert third["plan"] != started["plan"]
    assert mlspec(repo.root, "audit", "verify").code == 0


def test_failed_and_skipped_steps_are_recorded(mlspec: Mlspec, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {
        "specs/a.yaml": task("a", cmd=["false"]),
        "specs/b.yaml": task("b", depends_on=["Task/a"]),
        "specs/c.yaml": task("c"),
    })
    assert mlspec(repo.root, "apply", "-y").code == 1
    finished = entries_of(log_path(repo))[-1]
    assert finished["event"] == "apply.finished" and finished["ok"] is False
    steps = {s["address"]: s for s in finished["steps"]}
    assert {a: s["outcome"] for a, s in steps.items()} == {"Task/a": "failed", "Task/b": "skipped", "Task/c": "done"}
    assert "exit code 1" in steps["Task/a"]["error"]
    assert "Task/a" in steps["Task/b"]["why"]
    assert mlspec(repo.root, "audit", "verify").code == 0


SECRET = "s3cr3t-value-do-not-log-4242"
LEAK = ("import os, sys; print('token is', os.environ['TOKEN']); "
        "print('rejected token', os.environ['TOKEN'], file=sys.stderr); sys.exit(2)")


def test_secrets_never_reach_the_log(mlspec: Mlspec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_X", SECRET)
    repo = make_repo(tmp_path / "repo", {
        "specs/a.yaml": task("a", cmd=[sys.executable, "-c", LEAK], env={"TOKEN": "${env:SECRET_X}"}),
    })
    applied = mlspec(repo.root, "apply", "-y")
    assert applied.code == 1, applied.output
    assert SECRET not in applied.output
    data = log_path(repo).read_bytes()
    assert SECRET.encode() not in data
    failed = entries_of(log_path(repo))[-1]["steps"][0]
    # The outcome, not what the command printed (that stays in .mlspec/logs/, masked).
    assert failed["outcome"] == "failed" and failed["error"] == "Task/a: exit code 2"
    assert "rejected token (sensitive)" in applied.output
    for fmt in ("text", "json"):
        assert SECRET not in mlspec(repo.root, "audit", "log", "--format", fmt).output


# --------------------------------------------------------------------------------------------------
# verify: an intact log, and every way to tamper with it


@pytest.fixture
def applied(mlspec: Mlspec, repo: Repo) -> Repo:
    """Three applies: six entries, the state's audit_head at entry 6."""
    assert mlspec(repo.root, "apply", "-y").code == 0
    for lr in (0.2, 0.3):
        repo.commit({"specs/a.yaml": task("a", params={"lr": lr})})
        assert mlspec(repo.root, "apply", "-y").code == 0
    assert len(raw_lines(log_path(repo))) == 6
    return repo


def test_verify_passes_an_intact_log(mlspec: Mlspec, applied: Repo) -> None:
    result = mlspec(applied.root, "audit", "verify")
    assert result.code == 0, result.output
    assert result.out.startswith("ok: 6 entries")
    data = mlspec(applied.root, "audit", "verify", "--format", "json").json()
    assert (data["ok"], data["entries"], data["problems"]) == (True, 6, [])


def test_verify_passes_when_nothing_was_applied_yet(mlspec: Mlspec, repo: Repo) -> None:
    result = mlspec(repo.root, "audit", "verify")
    assert result.code == 0 and result.out.startswith("ok: 0 entries"), result.output


def _swap(lines: list[bytes]) -> bytes:
    lines[2], lines[3] = lines[3], lines[2]
    return b"".join(lines)


def _edit_last(lines: list[bytes]) -> bytes:
    assert b'"ok":true' in lines[-1]
    return b"".join(lines[:-1]) + lines[-1].replace(b'"ok":true', b'"ok":false')


def _rechain_from_second(lines: list[bytes]) -> bytes:
    """A careful forger: edit entry 2 and recompute every hash after it; only the state's note catches it."""
    out = [lines[0]]
    for n, line in enumerate(lines[1:], 2):
        entry = json.loads(line)
        if n == 2:
            entry["who"] = "Mallory <m@example.com>"
        entry["prev"] = sha(out[-1])
        out.append((json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode())
    return b"".join(out)


TAMPERING: dict[str, tuple[Callable[[list[bytes]], bytes], int, tuple[str, ...]]] = {
    # name: (tamper, the line verify names, words its message has)
    "an entry edited": (lambda ls: b"".join([*ls[:1], ls[1].replace(NAME.encode(), b"Mallory"), *ls[2:]]),
                        3, ("line 2 was edited",)),
    "an entry dropped in the middle": (lambda ls: b"".join(ls[:2] + ls[3:]), 3, ("dropped",)),
    "two entries swapped": (_swap, 3, ("reordered",)),
    "entries dropped from the end": (lambda ls: b"".join(ls[:4]), 4, ("removed from the end",)),
    "the last entry edited": (_edit_last, 6, ("edited",)),
    "the whole chain rewritten after an edit": (_rechain_from_second, 6, ("edited",)),
    "truncated mid-line": (lambda ls: b"".join(ls)[:-60], 6, ("incomplete", "interrupted")),
    "a line that is not an entry": (lambda ls: b"".join([*ls[:2], b"hello\n", *ls[2:]]), 3, ("not an audit entry",)),
    "emptied": (lambda ls: b"", 0, ("missing or empty", "entry 6")),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_verify_names_the_line_where_the_log_was_tampered_with(mlspec: Mlspec, applied: Repo, case: str) -> None:
    tamper, line, words = TAMPERING[case]
    path = log_path(applied)
    path.write_bytes(tamper(raw_lines(path)))
    result = mlspec(applied.root, "audit", "verify")
    assert result.code == 1, result.output
    assert f"log.jsonl:{line}: broken: " in result.out, result.out
    assert all(word in result.out for word in words), result.out
    assert "The audit log has been tampered with or damaged" in result.out
    data = mlspec(applied.root, "audit", "verify", "--format", "json")
    assert data.code == 1 and data.json()["ok"] is False
    assert line in [p["line"] for p in data.json()["problems"]]


def test_verify_fails_when_the_log_was_deleted(mlspec: Mlspec, applied: Repo) -> None:
    log_path(applied).unlink()
    result = mlspec(applied.root, "audit", "verify")
    assert result.code == 1, result.output
    assert "the log is missing or empty, but the state recorded entry 6" in result.out


@pytest.mark.parametrize("case", ["entries dropped from the end", "the last entry edited", "truncated mid-line"])
def test_a_later_apply_does_not_hide_tampering(mlspec: Mlspec, applied: Repo, case: str) -> None:
    """After the log stops matching the state's audit_head, appending more must not make it verify again.

    (Truncating entry 6, which the state recorded, is not a crash: a crash can only tear a line the
    state never recorded, the case the next test repairs.)
    """
    tamper = TAMPERING[case][0]
    path = log_path(applied)
    path.write_bytes(tamper(raw_lines(path)))
    assert mlspec(applied.root, "audit", "verify").code == 1
    applied.commit({"specs/b.yaml": task("b", params={"lr": 0.7})})
    mlspec(applied.root, "apply", "-y")  # may refuse, or apply and record the break: either way
    result = mlspec(applied.root, "audit", "verify")
    assert result.code == 1, f"{case}, then an apply: the tampering is no longer detected:\n{result.output}"


def test_an_interrupted_append_is_repaired_by_the_next_apply(mlspec: Mlspec, applied: Repo) -> None:
    """A crash mid-append leaves a partial line the state never recorded; the next apply removes it."""
    path = log_path(applied)
    intact = path.read_bytes()
    torn = b'{"at":"2026-11-01T12:00:00.000+00:00","author":"Ada'
    path.write_bytes(intact + torn)
    broken = mlspec(applied.root, "audit", "verify")
    assert broken.code == 1 and "log.jsonl:7: broken: incomplete" in broken.out, broken.output

    applied.commit({"specs/b.yaml": task("b", params={"lr": 0.7})})
    assert mlspec(applied.root, "apply", "-y").code == 0
    data = path.read_bytes()
    assert data.startswith(intact) and torn not in data
    entries = entries_of(path)
    assert [e["seq"] for e in entries] == list(range(1, 9))
    assert entries[6]["repaired_bytes"] == len(torn) and entries[6]["event"] == "apply.started"
    assert_chained(path)
    result = mlspec(applied.root, "audit", "verify")
    assert result.code == 0 and result.out.startswith("ok: 8 entries"), result.output


# --------------------------------------------------------------------------------------------------
# audit log: reading it back, filtered


@pytest.fixture
def two_applies(mlspec: Mlspec, repo: Repo) -> Repo:
    """Entries 1-2 create Task/a and Task/b; entries 3-4 replace Task/b only."""
    assert mlspec(repo.root, "apply", "-y").code == 0
    repo.commit({"specs/b.yaml": task("b", params={"lr": 0.2})})
    assert mlspec(repo.root, "apply", "-y").code == 0
    return repo


def seqs(result: Result) -> list[int]:
    assert result.code == 0, result.output
    return [e["seq"] for e in result.json()["entries"]]


def test_audit_log_shows_every_entry_oldest_first(mlspec: Mlspec, two_applies: Repo) -> None:
    text = mlspec(two_applies.root, "audit", "log")
    assert text.code == 0, text.output
    lines = text.out.splitlines()
    assert [line.split()[1] for line in lines if not line.startswith(" ")] == ["#1", "#2", "#3", "#4"]
    assert f"apply.started  by {ME}  commit {two_applies.head()[:8]} (main)" in text.out
    assert "    replace Task/b -> done" in text.out and "    create Task/a" in text.out
    data = mlspec(two_applies.root, "audit", "log", "--format", "json").json()
    assert data["format_version"] == "1" and [e["event"] for e in data["entries"]] == [
        "apply.started", "apply.finished", "apply.started", "apply.finished"]


def test_audit_log_by_address(mlspec: Mlspec, two_applies: Repo) -> None:
    assert seqs(mlspec(two_applies.root, "audit", "log", "--address", "Task/a", "--format", "json")) == [1, 2]
    assert seqs(mlspec(two_applies.root, "audit", "log", "--address", "Task/b", "--format", "json")) == [1, 2, 3, 4]
    text = mlspec(two_applies.root, "audit", "log", "--address", "Task/a")
    assert "#1" in text.out and "#3" not in text.out and "Task/b" not in text.out, text.out
    none = mlspec(two_applies.root, "audit", "log", "--address", "Task/zzz")
    assert none.code == 0 and none.out == "" and "no audit entries match" in none.err


def test_audit_log_since(mlspec: Mlspec, two_applies: Repo) -> None:
    root = two_applies.root
    for since in ("1h", "7d", "2000-01-01", "2000-01-01T12:00"):
        assert seqs(mlspec(root, "audit", "log", "--since", since, "--format", "json")) == [1, 2, 3, 4], since
    assert seqs(mlspec(root, "audit", "log", "--since", "2999-01-01", "--format", "json")) == []
    future = mlspec(root, "audit", "log", "--since", "2999-01-01")
    assert future.code == 0 and "no audit entries match" in future.err

    path = log_path(two_applies)  # back-date the first entry (the chain breaks; `audit log` only reads)
    lines = raw_lines(path)
    first = json.loads(lines[0]) | {"at": "2001-06-01T00:00:00.000+00:00"}
    path.write_bytes(json.dumps(first).encode() + b"\n" + b"".join(lines[1:]))
    assert seqs(mlspec(root, "audit", "log", "--since", "2020-01-01", "--format", "json")) == [2, 3, 4]
    assert seqs(mlspec(root, "audit", "log", "--since", "30d", "--format", "json")) == [2, 3, 4]
    assert seqs(mlspec(root, "audit", "log", "--since", "2001-01-01", "--format", "json")) == [1, 2, 3, 4]


@pytest.mark.parametrize("since", ["yesterday", "5x", "2026-13-45"])
def test_a_bad_since_is_a_clear_error(mlspec: Mlspec, two_applies: Repo, since: str) -> None:
    result = mlspec(two_applies.root, "audit", "log", "--since", since)
    assert result.code == 1, result.output
    assert f"--since {since}: expected a date" in result.err, result.err
    assert result.out == ""


def test_audit_log_before_any_apply(mlspec: Mlspec, repo: Repo) -> None:
    result = mlspec(repo.root, "audit", "log")
    assert result.code == 0 and result.out == "" and "no audit entries yet" in result.err
    assert mlspec(repo.root, "audit", "log", "--format", "json").json()["entries"] == []


def test_an_entry_written_just_before_a_kill_is_adopted_not_refused(tmp_path: Path) -> None:
    """The entry reached the disk, the state's note of it did not: the next append chains on."""
    log = AuditLog(tmp_path)
    head = log.append("apply.started", {"n": 1})
    log.append("apply.finished", {"n": 2})  # the process died before the state noted this head
    log.append("apply.started", {"n": 3}, head=head)
    assert log.verify(None)[1] == []


def test_an_entry_over_a_megabyte_is_read_whole(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    steps = [{"address": f"Task/t{i}", "outcome": "done"} for i in range(40_000)]
    head = log.append("apply.finished", {"steps": steps})
    assert log.path.stat().st_size > 1 << 20
    log.append("apply.started", {}, head=head)
    assert log.verify(None) == (2, [])
