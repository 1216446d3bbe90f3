"""The Monitor's log reader on whatever a log may hold: it never raises, counts what it skips, and
reads the same rows whether pyarrow's fast path or the line-by-line fallback takes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlspec_monitor import window

KINDS = {"a": "numeric", "b": "categorical", "t": "text"}
VALUES = st.one_of(st.none(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                   st.text(max_size=12), st.booleans(), st.lists(st.integers(), max_size=2))
LINES = st.one_of(
    st.builds(lambda a, b, t: json.dumps({"ts": 1.0, "features": {"a": a, "b": b, "t": t}, "prediction": "x"}),
              VALUES, VALUES, VALUES),
    st.text(max_size=30),  # not JSON at all
    st.just("[1, 2, 3]"), st.just('{"features": 3}'), st.just(""),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(LINES, max_size=30), st.booleans())
def test_any_log_is_read_without_raising_and_every_line_is_accounted_for(tmp_path: Path, lines: list[str],
                                                                          truncated: bool) -> None:
    path = tmp_path / "requests.jsonl"
    text = "\n".join(line.replace("\n", " ") for line in lines)
    path.write_bytes(text.encode("utf-8", "replace") + (b"" if truncated or not text else b"\n"))
    found = window.from_logs([path], KINDS, frozenset({"word"}), None, None)
    for sample in found.samples.values():
        assert sample.rows + sample.nulls <= found.rows or sample.kind == "text"
        assert len(sample.values) <= 10_000
    assert found.rows == found.read
    assert found.read + sum(found.skipped.values()) >= 0


def test_the_fast_path_and_the_fallback_read_the_same_rows(tmp_path: Path) -> None:
    good = [json.dumps({"ts": 1.0, "features": {"a": i, "b": f"c{i % 3}", "t": "word " * (i % 4)}, "prediction": "p"})
            for i in range(50)]
    clean = tmp_path / "clean.jsonl"
    clean.write_text("\n".join(good) + "\n")
    dirty = tmp_path / "dirty.jsonl"
    dirty.write_text("\n".join([*good[:20], "not json {", *good[20:]]) + "\n")
    fast = window.from_logs([clean], KINDS, frozenset({"word"}), None, None)
    careful = window.from_logs([dirty], KINDS, frozenset({"word"}), None, None)
    assert careful.skipped == {"unreadable line": 1}
    assert (fast.rows, careful.rows) == (50, 50)
    assert sorted(fast.samples["a"].values) == sorted(careful.samples["a"].values)
    assert fast.samples["b"].counts == careful.samples["b"].counts
    assert fast.predictions == careful.predictions


@pytest.mark.parametrize("content", [b"", b"\n\n", b'{"ts": 1, "features": {"a": 1', b"\xff\xfe garbage\n"])
def test_degenerate_logs_are_empty_windows(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_bytes(content)
    found = window.from_logs([path], KINDS, None, None, None)
    assert found.rows == 0


def test_a_bad_line_costs_only_itself(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    lines = [b'{"ts": 5, "features": {"a": 1, "b": "x", "t": "word"}}', b'{"ts": 5, "features": {"a": "oops", "b": 2}}',
             b'{"ts": 5, "features": {"a": 2.5, "b": "\xff\xfe", "t": null}}', b"", b'{"features": null}',
             b'{"ts": "yesterday", "features": {"a": 4}}']
    path.write_bytes(b"\n".join(lines) + b"\n")
    found = window.from_logs([path], KINDS, None, None, None)
    assert found.skipped == {"unreadable line": 1, "line without features": 1}  # the bad UTF-8, the null features
    numbers = sorted(found.samples["a"].values.tolist())
    assert numbers == [1.0, 4.0] and found.samples["a"].nulls == 1  # "oops" is no number; the others count
    recent = window.from_logs([path], KINDS, None, since=1.0, last=None)
    assert recent.skipped["rows without a numeric ts"] >= 1


def test_the_last_rows_are_the_last_rows_whatever_the_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    rows = [json.dumps({"ts": 1.0, "features": {"a": i}}) for i in range(3)]
    path.write_text("\n\n".join(rows) + "\n\n")
    found = window.from_logs([path], KINDS, None, None, last=2)
    assert found.rows == 2 and sorted(found.samples["a"].values.tolist()) == [1.0, 2.0]
