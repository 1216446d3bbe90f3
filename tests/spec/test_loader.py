"""The loader: YAML text -> plain values, diagnostics and positions (mlspec/spec/loader.py)."""

from __future__ import annotations

import math

import pytest

from mlspec.spec import codes
from mlspec.spec.diagnostics import Severity
from mlspec.spec.loader import decode, load_text


def load_one(text: str) -> object:
    """The data of the only document in `text`, asserting the loader had nothing to say."""
    loaded = load_text(text, "f.yaml")
    assert loaded.diagnostics == []
    assert len(loaded.documents) == 1
    return loaded.documents[0].data


def codes_at(text: str) -> list[tuple[str, int | None, int | None]]:
    return [(d.code, d.line, d.col) for d in load_text(text, "f.yaml").diagnostics]


# --- multi-document files ---------------------------------------------------------------------


def test_every_document_of_a_stream_is_loaded_in_order() -> None:
    loaded = load_text("a: 1\n---\nb: 2\n---\nc: 3\n", "f.yaml")
    assert [d.data for d in loaded.documents] == [{"a": 1}, {"b": 2}, {"c": 3}]
    assert [d.index for d in loaded.documents] == [0, 1, 2]
    assert loaded.diagnostics == []


def test_positions_in_a_later_document_are_lines_of_the_file() -> None:
    loaded = load_text("a: 1\n---\nb: 2\n---\nc:\n  d: 3\n", "f.yaml")
    third = loaded.documents[2]
    assert (third.position(("c", "d")).line, third.position(("c", "d")).col) == (6, 6)


def test_leading_document_marker_and_document_end_marker() -> None:
    loaded = load_text("---\na: 1\n...\n---\nb: 2\n", "f.yaml")
    assert [d.data for d in loaded.documents] == [{"a": 1}, {"b": 2}]


def test_an_empty_document_between_two_is_a_warning_and_the_others_still_load() -> None:
    loaded = load_text("a: 1\n---\n---\nb: 2\n", "f.yaml")
    assert [d.data for d in loaded.documents] == [{"a": 1}, {"b": 2}]
    [warning] = loaded.diagnostics
    assert (warning.code, warning.severity, warning.doc) == (codes.EMPTY_DOCUMENT, Severity.WARNING, 1)


def test_a_bad_document_does_not_hide_the_good_ones_around_it() -> None:
    loaded = load_text("a: 1\n---\nb: 1\nb: 2\n---\nc: 3\n", "f.yaml")
    # The document with the duplicate is still checked (first definition kept), as are its neighbours.
    assert [d.data for d in loaded.documents] == [{"a": 1}, {"b": 1}, {"c": 3}]
    assert [(d.code, d.line, d.doc) for d in loaded.diagnostics] == [(codes.DUPLICATE_KEY, 4, 1)]


def test_a_file_of_comments_only_is_empty() -> None:
    assert codes_at("# nothing here\n\n") == [(codes.EMPTY_FILE, 1, 1)]


# --- value typing: the YAML 1.2 core schema ---------------------------------------------------


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("0x1F", 31),
        ("0o17", 15),
        ("012", 12),  # 1.2: no octal by leading zero
        ("-7", -7),
        ("+3", 3),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("-.inf", -math.inf),
        (".Inf", math.inf),
        ("~", None),
        ("null", None),
        ("", None),
        ('"12"', "12"),
        ("'3.5'", "3.5"),
        ('"true"', "true"),
        ("'null'", "null"),
        ("0b101", "0b101"),  # not a core-schema int
        ("1.2.3", "1.2.3"),
        ("2024-01-01", "2024-01-01"),  # timestamps stay text
        ("!!str 12", "12"),
        ("!!int '12'", 12),
        ("!!float '1'", 1.0),
        ("!!null ''", None),
    ],
)
def test_scalars_resolve_by_the_yaml_1_2_core_schema(written: str, value: object) -> None:
    data = load_one(f"v: {written}\n")
    assert data == {"v": value}
    assert type(data["v"]) is type(value)  # type: ignore[index]


def test_nan_is_a_float() -> None:
    data = load_one("v: .nan\n")
    assert math.isnan(data["v"])  # type: ignore[index]


def test_keys_are_strings_even_when_they_look_like_numbers() -> None:
    assert load_one("1: a\ntrue: b\n") == {"1": "a", "true": "b"}


def test_block_scalars_keep_their_text() -> None:
    assert load_one("t: |\n  line one\n  {{ x }}\n") == {"t": "line one\n{{ x }}\n"}


def test_explicit_bool_tag_on_non_boolean_text_is_reported() -> None:
    assert codes_at("enabled: !!bool maybe\n") != []


# --- merge keys ---------------------------------------------------------------------------------


def test_merge_key_copies_the_anchored_mapping_and_local_keys_win() -> None:
    data = load_one("base: &b {lr: 0.1, epochs: 3}\nmodel:\n  <<: *b\n  epochs: 5\n")
    assert data == {"base": {"lr": 0.1, "epochs": 3}, "model": {"lr": 0.1, "epochs": 5}}


def test_merge_key_with_a_list_takes_the_first_mapping_that_has_a_key() -> None:
    data = load_one("x: &x {a: 1}\ny: &y {a: 2, b: 3}\nz:\n  <<: [*x, *y]\n")
    assert data["z"] == {"a": 1, "b": 3}  # type: ignore[index]


def test_merge_key_of_a_scalar_is_an_error() -> None:
    assert [c for c, _, _ in codes_at("a: &x 1\nb:\n  <<: *x\n")] == [codes.YAML_SYNTAX]


def test_merged_value_position_is_where_it_is_written() -> None:
    doc = load_text("base: &b\n  lr: 0.1\nmodel:\n  <<: *b\n  epochs: 5\n", "f.yaml").documents[0]
    assert (doc.position(("model", "lr")).line, doc.position(("model", "lr")).col) == (2, 7)
    assert (doc.position(("model", "epochs")).line, doc.position(("model", "epochs")).col) == (5, 11)


def test_a_mapping_that_merges_itself_is_reported_where_it_is_merged() -> None:
    [d] = load_text("a: &x {<<: *x}\n", "f.yaml").diagnostics
    assert d.code == codes.YAML_TOO_COMPLEX
    assert d.line == 1 and d.col > 1


# --- positions ----------------------------------------------------------------------------------

POSITIONS = """\
apiVersion: mlspec/v1
spec:
  hyperparameters:
    learning_rate: 0.1
  features: [text, label]
  items:
    - name: a
    - {name: b, size: 2}
"""


@pytest.mark.parametrize(
    ("loc", "value_at", "key_at"),
    [
        (("apiVersion",), (1, 13), (1, 1)),
        (("spec", "hyperparameters", "learning_rate"), (4, 20), (4, 5)),
        (("spec", "features", 1), (5, 20), (5, 20)),  # a list item has no key: its own position
        (("spec", "items", 0, "name"), (7, 13), (7, 7)),
        (("spec", "items", 1, "size"), (8, 23), (8, 17)),
    ],
)
def test_position_of_values_and_keys_is_1_based(
    loc: tuple[str | int, ...], value_at: tuple[int, int], key_at: tuple[int, int]
) -> None:
    doc = load_text(POSITIONS, "f.yaml").documents[0]
    value, key = doc.position(loc), doc.position(loc, key=True)
    assert (value.line, value.col) == value_at
    assert (key.line, key.col) == key_at


def test_position_width_covers_the_value_on_its_line() -> None:
    doc = load_text(POSITIONS, "f.yaml").documents[0]
    assert doc.position(("apiVersion",)).width == len("mlspec/v1")
    assert doc.position(("spec", "hyperparameters", "learning_rate"), key=True).width == len("learning_rate")


def test_position_of_a_missing_field_is_the_deepest_existing_node() -> None:
    doc = load_text(POSITIONS, "f.yaml").documents[0]
    hyper = doc.position(("spec", "hyperparameters", "epochs"))
    assert (hyper.line, hyper.col) == (4, 5)  # where the user has to add it
    key = doc.position(("spec", "hyperparameters", "epochs"), key=True)
    assert (key.line, key.col) == (3, 3)  # the `hyperparameters:` key
    beyond = doc.position(("spec", "items", 9, "name"))
    assert (beyond.line, beyond.col) == (7, 5)


def test_position_of_the_document_itself() -> None:
    doc = load_text("# a comment\n\nkind: Task\n", "f.yaml").documents[0]
    assert (doc.position(()).line, doc.position(()).col) == (3, 1)


def test_columns_count_characters_not_bytes() -> None:
    [d] = load_text("é: 😀\né: 2\n", "f.yaml").diagnostics
    assert (d.code, d.line, d.col) == (codes.DUPLICATE_KEY, 2, 1)
    doc = load_text("ü: 😀😀\nb: [x, y]\nc: {ü: 😀, v: 1}\n", "f.yaml").documents[0]
    assert (doc.position(("c", "v")).line, doc.position(("c", "v")).col) == (3, 14)
    assert (doc.position(("c", "v"), key=True).line, doc.position(("c", "v"), key=True).col) == (3, 11)


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_line_numbers_with_every_line_ending(newline: str) -> None:
    text = newline.join(["a: 1", "b:", "  c: 2", "a: 3", ""])
    [d] = load_text(text, "f.yaml").diagnostics
    assert (d.code, d.line, d.col) == (codes.DUPLICATE_KEY, 4, 1)


@pytest.mark.parametrize(
    ("text", "col"), [("a: 1\rb: 2\r", 5), ("a: 1\nb: x\x85y\n", 5), ("a: 1\nb: 'x\u2028y'\n", 6)]
)
def test_line_breaks_yaml_tools_disagree_on_are_refused_with_their_position(text: str, col: int) -> None:
    # libyaml counts CR, NEL, LS and PS as line breaks in some places and not in others: no position
    # after one could be trusted, so the file is refused at the first one.
    [d] = load_text(text, "f.yaml").diagnostics
    assert d.code == codes.AMBIGUOUS_LINE_BREAK
    assert (d.line, d.col) == (1 if "\r" in text else 2, col)


def test_a_byte_order_mark_does_not_shift_positions() -> None:
    text, problem = decode("\ufeffa: 1\nb: x\nb: y\n".encode(), "f.yaml")
    assert problem is None and text is not None and not text.startswith("\ufeff")
    [d] = load_text(text, "f.yaml").diagnostics
    assert (d.line, d.col) == (3, 1)


def test_syntax_error_at_end_of_file_is_on_a_line_of_the_file() -> None:
    text = "a: [1, 2"  # no final newline: the file has one line
    [d] = load_text(text, "f.yaml").diagnostics
    assert d.code == codes.YAML_SYNTAX
    assert d.line == 1


# --- ${env:NAME} interpolation ----------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "${env:HOME}",
        '"${env:PII_SALT}"',
        "'${env:_X1}'",
        "prefix-${env:A}-${env:B_2}",
        "plain $HOME and $ signs",
    ],
)
def test_env_references_are_kept_as_written(written: str) -> None:
    data = load_one(f"v: {written}\n")
    expected = written.strip("\"'")
    assert data == {"v": expected}


def test_doubled_dollar_is_a_literal_interpolation_start() -> None:
    assert load_one('v: "$${not_a_ref} and $${env:X}"\n') == {"v": "${not_a_ref} and ${env:X}"}


def test_env_reference_is_never_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSPEC_TEST_SECRET", "hunter2")
    assert load_one("salt: ${env:MLSPEC_TEST_SECRET}\n") == {"salt": "${env:MLSPEC_TEST_SECRET}"}


@pytest.mark.parametrize(
    ("written", "snippet"),
    [
        ("${HOME}", "${HOME}"),
        ("${env:}", "${env:}"),
        ("${env:1BAD}", "${env:1BAD}"),
        ("${env:A-B}", "${env:A-B}"),
        ("${env:NAME", "${env:NAME"),
        ("${secret:X}", "${secret:X}"),
        ("ok ${env:A} then ${oops}", "${oops}"),
    ],
)
def test_malformed_interpolation_is_reported_at_its_value(written: str, snippet: str) -> None:
    loaded = load_text(f"apiVersion: mlspec/v1\nspec:\n  salt: '{written}'\n", "f.yaml")
    [d] = loaded.diagnostics
    assert (d.code, d.line, d.col) == (codes.BAD_INTERPOLATION, 3, 9)
    assert snippet in d.message
    assert d.expected is not None and "${env:NAME}" in d.expected
    assert len(loaded.documents) == 1  # still checked, so its other errors show in the same pass


def test_interpolation_in_a_key_is_not_interpreted() -> None:
    assert load_one("'${x}': 1\n") == {"${x}": 1}


def test_malformed_interpolation_and_duplicate_key_in_one_document_are_both_reported() -> None:
    found = codes_at("a: ${nope}\nb: 1\nb: 2\n")
    assert sorted(found) == sorted([(codes.BAD_INTERPOLATION, 1, 4), (codes.DUPLICATE_KEY, 3, 1)])


# --- what the loader refuses ------------------------------------------------------------------


def test_duplicate_key_names_the_first_definition() -> None:
    [d] = load_text("spec:\n  a: 1\n  b: 2\n  a: 3\n", "f.yaml").diagnostics
    assert (d.code, d.line, d.col) == (codes.DUPLICATE_KEY, 4, 3)
    assert "`a`" in d.message and "line 2" in d.message


def test_duplicate_keys_in_nested_mappings_are_all_reported() -> None:
    found = codes_at("a:\n  x: 1\n  x: 2\nb:\n  - y: 1\n    y: 2\n")
    assert found == [(codes.DUPLICATE_KEY, 3, 3), (codes.DUPLICATE_KEY, 6, 5)]


def test_same_key_in_sibling_mappings_is_not_a_duplicate() -> None:
    assert load_one("a: {x: 1}\nb: {x: 2}\n") == {"a": {"x": 1}, "b": {"x": 2}}


def test_complex_keys_are_refused() -> None:
    assert codes_at("? [a, b]\n: 1\n") == [(codes.NON_STRING_KEY, 1, 3)]


@pytest.mark.parametrize(
    ("text", "at"),
    [
        ("a: !!python/object:os.system x\n", (1, 4)),
        ("a:\n  b: !!python/object/apply:os.system [ls]\n", (2, 6)),
        ("a: !!binary aGVsbG8=\n", (1, 4)),
        ("a: !custom {x: 1}\n", (1, 4)),
        ("a: !!set {x}\n", (1, 4)),
    ],
)
def test_tags_that_construct_objects_are_refused(text: str, at: tuple[int, int]) -> None:
    [d] = load_text(text, "f.yaml").diagnostics
    assert (d.code, d.line, d.col) == (codes.UNSUPPORTED_TAG, *at)


def test_undefined_alias_is_a_syntax_error_at_the_alias() -> None:
    assert codes_at("a: 1\nb: *nope\n") == [(codes.YAML_SYNTAX, 2, 4)]


def test_recursive_alias_is_refused_not_followed_forever() -> None:
    [d] = load_text("a: &x [*x]\n", "f.yaml").diagnostics
    assert d.code == codes.YAML_TOO_COMPLEX


@pytest.mark.parametrize("levels", [99, 100])
def test_nesting_limit_does_not_depend_on_the_length_of_the_file(levels: int) -> None:
    # Short files are checked while building values, long ones on parser events first: same limit.
    doc = "a: " + "[" * levels + "]" * levels + "\n"
    padded = doc + "# " + "x" * 1200 + "\n"
    assert codes_at(doc) == codes_at(padded)
    assert codes_at(doc) == ([] if levels < 100 else [(codes.YAML_TOO_COMPLEX, 1, 103)])


def test_decode_reports_the_bad_byte() -> None:
    text, problem = decode(b"a: 1\nb: \xff\n", "f.yaml")
    assert text is None and problem is not None
    assert (problem.code, problem.line, problem.col) == (codes.NOT_UTF8, 2, 4)
    assert "0xff" in problem.message
