"""The fast path (yaml_rs pre-screen + quick_check) never changes a verdict.

`summarize` first tries `load_plain`, a ~10x faster parse used only where it agrees with
`load_text`. These tests hold it to that: wherever it answers, it gives the same data, and a file's
summary (its diagnostics and resources) is the same with the fast path as without it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlspec.spec import loader
from mlspec.spec.loader import load_plain, load_text
from mlspec.spec.summary import FileSummary, summarize
from tests.conftest import REPO
from tests.spec.test_kinds import VALID
from tests.spec.test_properties import FAST, mutated_spec, yamlish

pytestmark = pytest.mark.skipif(loader._fast is None, reason="yaml_rs (the fast path) is not installed")

BUNDLED = sorted((REPO / "specs").rglob("*.yaml"))


def slow_summary(raw: bytes, rel: str, monkeypatch: pytest.MonkeyPatch) -> FileSummary:
    with monkeypatch.context() as patch:
        patch.setattr(loader, "_fast", None)
        return summarize(raw, rel)


def is_plain(value: object) -> bool:
    """JSON-like with string keys: the data on which the two parsers must agree exactly. Anything
    else (a date, a null or numeric key) is refused by validation, whichever parser read it."""
    if isinstance(value, dict):
        return all(type(k) is str and is_plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(is_plain(v) for v in value)
    return value is None or isinstance(value, str | int | float)


def as_json(value: object) -> str:
    """Equality that holds for NaN too (nan != nan, but both render as NaN)."""
    return json.dumps(value, sort_keys=True)


def assert_same(text: str) -> None:
    plain = load_plain(text)
    if plain is not None and is_plain(plain):
        docs = load_text(text, "f.yaml").documents
        assert as_json([d.data for d in docs]) == as_json([plain])


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: str(p.relative_to(REPO)))
def test_bundled_specs_read_the_same_both_ways(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = path.read_bytes()
    assert_same(raw.decode())
    assert summarize(raw, "f.yaml") == slow_summary(raw, "f.yaml", monkeypatch)


@pytest.mark.parametrize("kind", ["Model", "Optimization"])
def test_plain_specs_take_the_fast_path(kind: str) -> None:
    assert load_plain(VALID[kind]) is not None, "plain specs should not need the slow path"


def test_the_fast_path_ignores_comments_but_not_what_they_hide() -> None:
    assert load_plain("# yaml-language-server: $schema=x.json\na: [b, c]  # note: | @ $\n") == {"a": ["b", "c"]}
    assert load_plain("a: {:0}\n") is None  # flow corner cases go the slow way
    assert load_plain("a: |\n  text\n") is None  # block scalars too


@pytest.mark.parametrize(
    "text",
    [
        "a: &x 1\nb: *x\n",  # aliases: the loader's budget applies
        "a: !!str 1\n",  # tags
        "<<: {a: 1}\nb: 2\n",  # merge keys (yaml_rs keeps `<<` as a key)
        "a: ${env:X}\n",  # interpolation is checked by the loader
        "a: 1\n---\nb: 2\n",  # several documents
        "%YAML 1.2\n---\na: 1\n",  # directives
        "- a\n",  # not a mapping
        "a: 1\na: 2\n",  # duplicate keys
    ],
)
def test_constructs_the_parsers_disagree_on_go_the_slow_way(text: str) -> None:
    assert load_plain(text) is None


def test_a_date_is_refused_the_same_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    # yaml_rs reads 2024-01-01 as a date, the loader as a string: a string field refuses neither
    # silently, because validation is strict and the fast path gives up on any error.
    text = VALID["Task"].replace("spec:", "spec:\n  description: 2024-01-01", 1).encode()
    assert summarize(text, "f.yaml") == slow_summary(text, "f.yaml", monkeypatch)


@FAST
@given(mutated_spec())
def test_mutated_specs_summarize_the_same_both_ways(text: str) -> None:
    assert_same(text)
    raw = text.encode()
    with pytest.MonkeyPatch.context() as patch:
        slow = slow_summary(raw, "f.yaml", patch)
    assert summarize(raw, "f.yaml") == slow


@FAST
@given(yamlish)
def test_yaml_like_text_reads_the_same_both_ways(text: str) -> None:
    assert_same(text)


@FAST
@given(st.text(alphabet="abcxyz019 \n_.,:/'\"=<>+-[]{}#()", max_size=60))
def test_text_in_the_fast_alphabet_reads_the_same_both_ways(text: str) -> None:
    # The alphabet the fast path accepts: where the parsers could disagree, it must decline.
    plain = load_plain(text)
    if plain is not None and is_plain(plain):
        loaded = load_text(text, "f.yaml")
        assert [d.data for d in loaded.documents] == [plain]
        assert not [d for d in loaded.diagnostics if d.is_error]


@FAST
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=20))  # fmt: skip
def test_plain_values_read_the_same_both_ways(value: object) -> None:
    assert_same(json.dumps({"v": value}))  # JSON is YAML: flow style, quoted strings
