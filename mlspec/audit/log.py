"""An append-only log of JSON lines, each carrying the SHA-256 of the line before it.

Editing, dropping or reordering an entry breaks the chain at that point, and `mlspec audit verify`
says where. Dropping entries from the end leaves a valid chain, so the state keeps the head (last
sequence number and hash) and verify compares against it. A line that was being written when the
process died (no final newline) was never acknowledged: the next append truncates it and says so
in its own entry (`repaired_bytes`), as a database discards a torn write-ahead-log tail.

Each append is one write() of a whole line to a file opened for appending, under an exclusive
flock, then fsync: concurrent writers cannot interleave, and a crash leaves whole lines only.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mlspec.errors import AuditError, MlspecError

GENESIS = "0" * 64
LOG_PATH = Path(".mlspec") / "audit" / "log.jsonl"
TAIL_BYTES = 1 << 20  # an entry is far smaller; reading the tail keeps appends O(1)


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def digest(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


class AuditLog:
    def __init__(self, root: Path) -> None:
        self.path = root / LOG_PATH

    @classmethod
    def at(cls, path: Path) -> AuditLog:
        log = cls.__new__(cls)
        log.path = path
        return log

    def append(self, event: str, fields: dict[str, Any], head: dict[str, Any] | None = None) -> dict[str, Any]:
        """Add one entry; returns the new head {seq, hash} for the state to keep.

        `head`: where the state says the log ends. A log that ends elsewhere was edited or cut, and
        chaining onto it would launder that: refused. A log that is gone starts a new chain whose
        first entry records where the old one ended, so the break stays on record.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last, torn = _tail(fd)
            _check_head(self.path, last, head)
            if torn:  # never acknowledged (the state's head is written after the fsync): discard it
                os.ftruncate(fd, os.fstat(fd).st_size - torn)
            seq, prev = (1, GENESIS) if last is None else (_seq(last) + 1, digest(last))
            entry = {"seq": seq, "at": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": event,
                     **fields, "prev": prev}
            if torn:
                entry["repaired_bytes"] = torn
            if last is None and head:
                entry["restarted_after"] = head
            line = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
            data = (line + "\n").encode()
            if os.write(fd, data) != len(data):
                raise AuditError(f"{self.path}: short write; the entry was not recorded")
            os.fsync(fd)
            return {"seq": seq, "hash": digest(data)}
        except OSError as err:
            raise AuditError(f"cannot write the audit log {self.path}: {err.strerror}") from err
        finally:
            os.close(fd)

    def lines(self) -> Iterator[tuple[int, bytes]]:
        try:
            with open(self.path, "rb") as fh:
                yield from enumerate(fh, 1)
        except FileNotFoundError:
            return

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every whole entry, skipping what does not parse (verify reports those)."""
        for _, line in self.lines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                yield entry

    def verify(self, head: dict[str, Any] | None) -> tuple[int, list[Problem]]:
        """(entries checked, problems): every break of the chain, in order."""
        problems: list[Problem] = []
        expected, prev, count, last_line = 1, GENESIS, 0, 0
        last_hash = None
        for number, line in self.lines():
            last_line = number
            if not line.endswith(b"\n"):
                problems.append(Problem(number, "incomplete: a write was interrupted here (the next append "
                                                "removes it)"))
                break
            try:
                entry = json.loads(line)
                seq, stored = int(entry["seq"]), str(entry["prev"])
            except (ValueError, KeyError, TypeError):
                problems.append(Problem(number, "not an audit entry (edited by hand, or damaged)"))
                prev, expected = digest(line), expected + 1
                continue
            if number == 1 and isinstance(entry.get("restarted_after"), dict):
                gone = entry["restarted_after"].get("seq")
                problems.append(Problem(number, f"the log was started anew: the {gone} entries before it are gone "
                                                "(the file was deleted or replaced)"))
            if stored != prev:
                problems.append(Problem(number, f"does not follow line {number - 1}: line {number - 1} was edited, "
                                                "or an entry before this one was removed or moved"
                                        if number > 1 else "the first entry does not start the chain"))
            if seq != expected:
                what = "dropped" if seq > expected else "reordered or duplicated"
                problems.append(Problem(number, f"holds entry {seq} where entry {expected} belongs: entries "
                                                f"were {what}"))
            count += 1
            expected, prev = seq + 1, digest(line)
            last_hash = prev
        if head:
            if count == 0 and last_line == 0:
                problems.append(Problem(0, f"the log is missing or empty, but the state recorded entry {head['seq']}"))
            elif expected - 1 < int(head["seq"]):
                problems.append(Problem(last_line, f"the log ends at entry {expected - 1} but the state recorded "
                                                   f"entry {head['seq']}: entries were removed from the end"))
            elif expected - 1 == int(head["seq"]) and last_hash != head["hash"]:
                problems.append(Problem(last_line, "the last entry differs from the one the state recorded: "
                                                   "it was edited"))
        return count, problems


class LinesLog(AuditLog):
    """An audit chain read out of somewhere else (a database), held in memory: read and verified as the
    file form is, never appended to (the state store appends)."""

    def __init__(self, lines: list[bytes], where: str) -> None:
        self._lines = lines
        self.path = where  # type: ignore[assignment]

    def lines(self) -> Iterator[tuple[int, bytes]]:
        yield from enumerate(self._lines, 1)

    def append(self, event: str, fields: dict[str, Any], head: dict[str, Any] | None = None) -> dict[str, Any]:
        raise AuditError(f"{self.path} is appended through the state store")


def _tail(fd: int) -> tuple[bytes | None, int]:
    """(the last whole line or None, the length of a torn partial line after it).

    Reads backwards in growing chunks until it has a whole line: one entry may be megabytes (an
    apply of many thousand steps), and a fixed window would cut it.
    """
    size = os.fstat(fd).st_size
    if size == 0:
        return None, 0
    window = TAIL_BYTES
    while True:
        start = max(0, size - window)
        chunk = os.pread(fd, size - start, start)
        torn = 0 if chunk.endswith(b"\n") else len(chunk) - (chunk.rfind(b"\n") + 1)
        whole = chunk[: len(chunk) - torn]
        body = whole[:-1]
        cut = body.rfind(b"\n")
        if cut >= 0 or start == 0:
            if not whole:
                return None, torn
            return body[cut + 1 :] + b"\n", torn
        window *= 4


def _check_head(path: Path, last: bytes | None, head: dict[str, Any] | None) -> None:
    if not head or last is None:
        return
    try:
        entry = json.loads(last)
        seq, prev = int(entry["seq"]), str(entry.get("prev"))
    except (ValueError, KeyError, TypeError):
        seq, prev = -1, ""
    if seq == int(head["seq"]) + 1 and prev == head["hash"]:
        return  # the entry after the head was written, and the process died before the state noted it
    if seq != int(head["seq"]) or digest(last) != head["hash"]:
        raise AuditError(
            f"{path} does not end at entry {head['seq']}, where the state recorded it: it was edited or cut. "
            "Nothing was applied. `mlspec audit verify` says where; restore the file from a backup, or move it "
            "aside to start a new chain that records the break"
        )


def _seq(line: bytes) -> int:
    try:
        return int(json.loads(line)["seq"])
    except (ValueError, KeyError, TypeError):
        raise AuditError("the last audit entry is damaged: run `mlspec audit verify`") from None


_RELATIVE = re.compile(r"^(\d+)([smhdw])$")


def parse_since(text: str) -> datetime:
    """`2026-11-01`, `2026-11-01T12:00`, or relative: `30m`, `12h`, `7d`, `2w`."""
    match = _RELATIVE.match(text.strip())
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[match.group(2)]
        try:
            return datetime.now(UTC) - timedelta(**{unit: int(match.group(1))})
        except OverflowError:
            return datetime.min.replace(tzinfo=UTC)  # longer ago than a date can say: everything
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise MlspecError(f"--since {text}: expected a date (2026-11-01), a time (2026-11-01T12:00) or an age "
                          "(30m, 12h, 7d)") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
