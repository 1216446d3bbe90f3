"""Properties of the loader and checker over generated input (hypothesis).

Whatever a user writes, `load_text` + `check_document` answer with diagnostics that point into the
file, never with an exception; and the order of keys never changes the verdict.
"""

from __future__ import annotations

import copy
import io
import re
from functools import cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from mlspec.spec.check import check_document
from mlspec.spec.diagnostics import Diagnostic
from mlspec.spec.kinds import KIND_NAMES
from mlspec.spec.loader import load_text
from tests.spec.test_kinds import VALID

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_LINE_BREAK = re.compile(r"\n")  # libyaml's marks count `\n` only (not \r, NEL, LS or PS)


def assert_points_into(text: str, diagnostics: list[Diagnostic]) -> None:
    lines = _LINE_BREAK.split(text)  # a final break leaves an empty last line: the end of the file
    for d in diagnostics:
        assert d.line is not None and d.col is not None, d
        assert 1 <= d.line <= len(lines), (d, len(lines))
        assert 1 <= d.col <= len(lines[d.line - 1]) + 1, (d, lines[d.line - 1])


def load_and_check(text: str) -> list[Diagnostic]:
    loaded = load_text(text, "spec.yaml")
    found = list(loaded.diagnostics)
    for doc in loaded.documents:
        found.extend(check_document(doc, "spec.yaml").diagnostics)
    assert_points_into(text, found)
    return found


def dump(data: Any, flow: bool | None = False) -> str:
    yaml = YAML(typ="safe")  # libyaml's emitter: several times faster than the pure one
    yaml.default_flow_style = flow
    yaml.allow_unicode = True
    yaml.representer.sort_base_mapping_type_on_output = False  # keep the order we give it
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


PARSED = {kind: load_text(text, "spec.yaml").documents[0].data for kind, text in VALID.items()}

# --- generated values ---------------------------------------------------------------------------

_chars = st.characters(blacklist_categories=("Cs",))
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(_chars, max_size=12)
    | st.sampled_from(["yes", "no", "0x1F", "${env:X}", "${bad", "Model", "reviews", "", "~", "1e3", "a:b"])
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(_chars, max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
_yamlish = [
    "a",
    "kind",
    "spec",
    ":",
    ": ",
    " ",
    "  ",
    "\n",
    "\r\n",
    "\t",
    "- ",
    "-",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&x ",
    "*x",
    "*y",
    "<<: ",
    "!!str ",
    "!!int ",
    "!!python/object:os.system ",
    "!t ",
    "'",
    '"',
    "\\",
    "#",
    "---\n",
    "...\n",
    "? ",
    "|",
    ">",
    "%YAML 1.2\n",
    "%TAG ! tag:x:\n",
    "\ufeff",
    "${env:",
    "${",
    "$$",
    "é",
    "😀",
    "\x00",
    "\x85",
    "\u2028",
    "0x1F",
    "yes",
    "~",
    "@",
    "`",
    "%",
]
yamlish = st.lists(st.sampled_from(_yamlish), max_size=40).map("".join)


def paths(node: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a document: the path of each value below the root."""
    out = []
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        out.append((*here, key))
        out.extend(paths(child, (*here, key)))
    return out


def parent_of(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


@st.composite
def mutated_spec(draw: st.DrawFn) -> str:
    data = copy.deepcopy(PARSED[draw(st.sampled_from(KIND_NAMES))])
    for _ in range(draw(st.integers(1, 4))):
        places = paths(data)
        if not places:
            break
        path = draw(st.sampled_from(places))
        parent, last = parent_of(data, path), path[-1]
        op = draw(
            st.sampled_from(
                ["drop", "rename", "swap", "swap"] if isinstance(parent, dict) else ["drop", "swap"]
            )
        )
        if op == "drop":
            del parent[last]
        elif op == "rename":
            new = draw(
                st.text(_chars, max_size=10)
                | st.sampled_from([str(last).upper(), str(last)[:-1], f"{last}s"])
            )
            parent[new] = parent.pop(last)
        else:
            parent[last] = draw(values)
    text = dump(data, draw(st.sampled_from([False, None])))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(_chars, max_size=10) | yamlish) + text[at:]
    return text


# --- (1) mutated valid specs --------------------------------------------------------------------


@FAST
@given(mutated_spec())
def test_mutated_specs_give_diagnostics_not_exceptions(text: str) -> None:
    load_and_check(text)


@FAST
@given(st.sampled_from(KIND_NAMES), st.data())
def test_a_mutated_spec_that_still_checks_clean_is_a_valid_resource(kind: str, data: st.DataObject) -> None:
    spec = copy.deepcopy(PARSED[kind])
    place = data.draw(st.sampled_from(paths(spec)))
    parent_of(spec, place)[place[-1]] = data.draw(values)
    text = dump(spec)
    loaded = load_text(text, "spec.yaml")
    for doc in loaded.documents:
        if isinstance(doc.data.get("kind"), list | dict):
            continue
        checked = check_document(doc, "spec.yaml")
        assert (checked.resource is None) == bool(checked.diagnostics)
        assert_points_into(text, checked.diagnostics)


# --- (2) random text ------------------------------------------------------------------------------


@FAST
@given(st.text(_chars, max_size=200))
def test_random_text_never_raises(text: str) -> None:
    load_and_check(text)


@FAST
@given(yamlish)
def test_yaml_like_text_never_raises(text: str) -> None:
    load_and_check(text)


@FAST
@given(st.sampled_from(list(VALID.values())), st.data())
def test_valid_spec_with_yaml_like_text_spliced_in_never_raises(text: str, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(text)))
    load_and_check(text[:at] + data.draw(yamlish) + text[at:])


@FAST
@given(st.sampled_from(list(VALID.values())), st.data())
def test_valid_spec_cut_short_never_raises(text: str, data: st.DataObject) -> None:
    load_and_check(text[: data.draw(st.integers(0, len(text)))])


# --- (3) key order ------------------------------------------------------------------------------


def shuffled(node: Any, draw: st.DrawFn) -> Any:
    if isinstance(node, dict):
        keys = draw(st.permutations(list(node)))
        return {k: shuffled(node[k], draw) for k in keys}
    if isinstance(node, list):
        return [shuffled(item, draw) for item in node]
    return node


def verdict(text: str) -> tuple[list[Any], list[tuple[str, str | None, str]]]:
    resources, found = [], []
    loaded = load_text(text, "spec.yaml")
    found.extend((d.code, d.field, d.message) for d in loaded.diagnostics)
    for doc in loaded.documents:
        checked = check_document(doc, "spec.yaml")
        found.extend((d.code, d.field, d.message) for d in checked.diagnostics)
        resources.append(None if checked.resource is None else checked.resource.model_dump(by_alias=True))
    assert_points_into(text, [*loaded.diagnostics])
    return resources, sorted(found, key=repr)


@cache
def verdict_of(text: str) -> tuple[dict[str, Any], tuple[list[Any], list[tuple[str, str | None, str]]]]:
    """The parsed data of `text` and the verdict on it written out in the order it came."""
    data = load_text(text, "spec.yaml").documents[0].data
    return data, verdict(dump(data))


@FAST
@given(st.sampled_from(KIND_NAMES), st.data())
def test_reordering_keys_of_a_valid_spec_changes_nothing(kind: str, data: st.DataObject) -> None:
    original, (resources, found) = verdict_of(VALID[kind])
    assert found == [] and resources[0] is not None
    assert verdict(dump(shuffled(original, data.draw))) == (resources, found)


BROKEN = {
    "Model": VALID["Model"].replace("learning_rate", "learnin_rate").replace("epochs: 2", "epochs: 0"),
    "Dataset": VALID["Dataset"].replace("test: 0.1}", "test: 0.3}").replace("format: csv", "format: tsv"),
    "Service": VALID["Service"].replace("    canary: {traffic: 0.1, duration_s: 120}\n", ""),
    "Prompt": VALID["Prompt"].replace("{{review}}", "{{ reveiw }}"),
    "Task": VALID["Task"].replace("timeout_s: 600", "timeout_s: -1\n  shel: true"),
}


@FAST
@given(st.sampled_from(list(BROKEN)), st.data())
def test_reordering_keys_of_a_broken_spec_gives_the_same_diagnostics(kind: str, data: st.DataObject) -> None:
    original, (resources, found) = verdict_of(BROKEN[kind])
    assert found != [] and resources == [None]
    assert verdict(dump(shuffled(original, data.draw))) == (resources, found)
