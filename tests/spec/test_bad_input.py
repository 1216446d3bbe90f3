"""Bad input, one case each, through `mlspec validate` on a real project: code, line, col, field.

Every test goes through `validate(root)` as the CLI does, so what is checked is what a user sees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mlspec.spec import codes
from mlspec.spec.diagnostics import Diagnostic
from mlspec.validation import validate

Project = Callable[..., Path]

TASK = """\
apiVersion: mlspec/v1
kind: Task
metadata:
  name: {name}
spec:
  cmd: [python, run.py]
"""

DATASET = """\
apiVersion: mlspec/v1
kind: Dataset
metadata:
  name: reviews
spec:
  source: {path: data/reviews.csv, format: csv}
"""

MODEL = """\
apiVersion: mlspec/v1
kind: Model
metadata:
  name: sentiment
spec:
  task: text-classification
  dataset: reviews
  label: label
  architecture:
    family: bert
  hyperparameters:
    learning_rate: 0.001
    epochs: 2
    optimizer: adamw
"""


SERVICE = "apiVersion: mlspec/v1\nkind: Service\nmetadata: {name: api}\nspec:\n  model: m\n"


def diagnostics(root: Path) -> list[Diagnostic]:
    return validate(root, use_cache=False).diagnostics


def only(root: Path) -> Diagnostic:
    """The one diagnostic of the project (fails listing them all when there are more)."""
    found = diagnostics(root)
    assert len(found) == 1, found
    return found[0]


def where(d: Diagnostic) -> tuple[str, str, int | None, int | None]:
    return (d.code, d.file, d.line, d.col)


# --- files and YAML -----------------------------------------------------------------------------


def test_empty_file(project: Project) -> None:
    d = only(project({"specs/empty.yaml": ""}))
    assert where(d) == (codes.EMPTY_FILE, "specs/empty.yaml", 1, 1)
    assert d.is_error and d.hint


def test_document_that_is_not_a_mapping(project: Project) -> None:
    root = project({"specs/list.yaml": "# a list, not a spec\n- apiVersion: mlspec/v1\n- kind: Task\n"})
    d = only(root)
    assert where(d) == (codes.NOT_A_MAPPING, "specs/list.yaml", 2, 1)
    assert "list" in d.message


def test_scalar_document_in_a_multi_document_file(project: Project) -> None:
    root = project({"specs/t.yaml": TASK.format(name="a") + "---\njust some text\n"})
    d = only(root)
    assert (*where(d), d.doc) == (codes.NOT_A_MAPPING, "specs/t.yaml", 8, 1, 1)
    assert validate(root, use_cache=False).resource_count == 1  # the first document still counts


def test_tab_indentation(project: Project) -> None:
    text = TASK.format(name="t").replace("  name: t", "\tname: t")
    d = only(project({"specs/t.yaml": text}))
    assert where(d) == (codes.YAML_TAB, "specs/t.yaml", 4, 1)
    assert d.hint and "spaces" in d.hint


def test_invalid_yaml_with_its_position(project: Project) -> None:
    text = TASK.format(name="t") + "  outs: [model.pt, metrics.json\n  cache: false\n"
    d = only(project({"specs/t.yaml": text}))
    assert where(d) == (codes.YAML_SYNTAX, "specs/t.yaml", 8, 8)
    assert "flow sequence at line 7" in d.message


def test_mapping_value_where_none_is_allowed(project: Project) -> None:
    d = only(project({"specs/t.yaml": "apiVersion: mlspec/v1\nkind: Task: oops\n"}))
    assert where(d) == (codes.YAML_SYNTAX, "specs/t.yaml", 2, 11)


def test_duplicate_keys(project: Project) -> None:
    text = TASK.format(name="t") + "  shell: false\n  cache: true\n  shell: true\n"
    d = only(project({"specs/t.yaml": text}))
    assert where(d) == (codes.DUPLICATE_KEY, "specs/t.yaml", 9, 3)
    assert "`shell`" in d.message and "line 7" in d.message


def test_unknown_api_version(project: Project) -> None:
    d = only(project({"specs/t.yaml": TASK.format(name="t").replace("mlspec/v1", "mlspec/v0")}))
    assert (*where(d), d.field) == (codes.UNKNOWN_API_VERSION, "specs/t.yaml", 1, 13, "apiVersion")
    assert d.expected == "mlspec/v1"


def test_misspelt_api_version_key(project: Project) -> None:
    d = only(project({"specs/t.yaml": TASK.format(name="t").replace("apiVersion", "apiversion")}))
    assert (d.code, d.line, d.col) == (codes.UNKNOWN_API_VERSION, 1, 1)
    assert d.hint == "`apiversion` should be spelt `apiVersion`"


def test_unknown_kind_with_did_you_mean(project: Project) -> None:
    d = only(project({"specs/m.yaml": MODEL.replace("kind: Model", "kind: model")}))
    assert (*where(d), d.field) == (codes.UNKNOWN_KIND, "specs/m.yaml", 2, 7, "kind")
    assert d.hint == "did you mean `Model`?"
    assert d.expected is not None and "Model" in d.expected


def test_misspelt_kind_with_did_you_mean(project: Project) -> None:
    d = only(project({"specs/d.yaml": DATASET.replace("kind: Dataset", "kind: Datset")}))
    assert (d.code, d.line, d.col) == (codes.UNKNOWN_KIND, 2, 7)
    assert d.hint == "did you mean `Dataset`?"


@pytest.mark.parametrize("kind", ["[Model]", "{name: Model}"])
def test_kind_that_is_not_a_string(project: Project, kind: str) -> None:
    d = only(project({"specs/m.yaml": MODEL.replace("kind: Model", f"kind: {kind}")}))
    assert (d.code, d.line, d.col) == (codes.UNKNOWN_KIND, 2, 7)


# --- the schema of a document -------------------------------------------------------------------


def test_unknown_field_with_did_you_mean(project: Project) -> None:
    root = project({"specs/d.yaml": DATASET, "specs/m.yaml": MODEL.replace("learning_rate", "learnin_rate")})
    d = only(root)
    assert (*where(d), d.field) == (
        codes.UNKNOWN_FIELD, "specs/m.yaml", 12, 5, "spec.hyperparameters.learnin_rate",
    )  # fmt: skip
    assert d.hint == "did you mean `learning_rate`?"
    assert d.expected is not None and "learning_rate" in d.expected


def test_missing_required_field(project: Project) -> None:
    root = project({"specs/d.yaml": DATASET, "specs/m.yaml": MODEL.replace("  dataset: reviews\n", "")})
    d = only(root)
    assert (*where(d), d.field) == (codes.MISSING_FIELD, "specs/m.yaml", 5, 1, "spec.dataset")


@pytest.mark.parametrize(
    ("old", "new", "at", "field", "words"),
    [
        (
            "learning_rate: 0.001",
            "learning_rate: fast",
            (12, 20),
            "spec.hyperparameters.learning_rate",
            "expected a number, got the string `fast`",
        ),
        (
            "epochs: 2",
            "epochs: '2'",
            (13, 13),
            "spec.hyperparameters.epochs",
            "expected an integer, got the string `2`",
        ),
        (
            "epochs: 2",
            "epochs: 2.5",
            (13, 13),
            "spec.hyperparameters.epochs",
            "expected an integer, got `2.5`",
        ),
        ("label: label", "label: [label]", (8, 10), "spec.label", "got a list"),
        (
            "architecture:\n    family: bert",
            "architecture: bert",
            (9, 17),
            "spec.architecture",
            "expected a mapping, got the string `bert`",
        ),
    ],
)
def test_wrong_type(
    project: Project, old: str, new: str, at: tuple[int, int], field: str, words: str
) -> None:
    root = project({"specs/d.yaml": DATASET, "specs/m.yaml": MODEL.replace(old, new)})
    d = only(root)
    assert (d.code, d.line, d.col, d.field) == (codes.WRONG_TYPE, *at, field)
    assert words in d.message


def test_quoted_number_gets_a_hint(project: Project) -> None:
    d = only(project({"specs/d.yaml": DATASET, "specs/m.yaml": MODEL.replace("epochs: 2", 'epochs: "2"')}))
    assert d.code == codes.WRONG_TYPE
    assert d.hint == "remove the quotes to write a number"


def test_env_reference_in_a_number_field(project: Project) -> None:
    text = SERVICE + "  port: ${env:PORT}\n"
    found = [d for d in diagnostics(project({"specs/s.yaml": text})) if d.code != codes.DANGLING_REFERENCE]
    [d] = found
    assert (d.code, d.line, d.col, d.field) == (codes.WRONG_TYPE, 6, 9, "spec.port")
    assert d.hint == "${env:...} references are only allowed in string fields"


def test_bad_enum_value_with_did_you_mean(project: Project) -> None:
    root = project(
        {"specs/d.yaml": DATASET, "specs/m.yaml": MODEL.replace("optimizer: adamw", "optimizer: sgdd")}
    )
    d = only(root)
    assert (*where(d), d.field) == (
        codes.INVALID_CHOICE,
        "specs/m.yaml",
        14,
        16,
        "spec.hyperparameters.optimizer",
    )
    assert d.hint == "did you mean `sgd`?"
    assert d.expected == "one of adamw, adam, sgd"


def test_bad_enum_value_in_a_nested_list(project: Project) -> None:
    text = MODEL + "  evaluation:\n    metrics: [accuracy, F1]\n"
    d = only(project({"specs/d.yaml": DATASET, "specs/m.yaml": text}))
    assert (d.code, d.line, d.col, d.field) == (codes.INVALID_CHOICE, 16, 25, "spec.evaluation.metrics[1]")
    assert d.hint == "did you mean `f1`?"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (MODEL + "  evaluation:\n    metrics: [accuracy, F1]\n", "metrics"),
        (MODEL + "  depends_on: [Task/Make_Data]\n", "depends_on"),
    ],
)
def test_message_about_a_list_item_names_the_list(project: Project, text: str, field: str) -> None:
    d = only(project({"specs/d.yaml": DATASET, "specs/m.yaml": text}))
    assert f"`{field}`" in d.message or f"{field}[" in d.message, d.message


@pytest.mark.parametrize(
    ("old", "new", "at", "field", "expected"),
    [
        ("epochs: 2", "epochs: 0", (13, 13), "spec.hyperparameters.epochs", "greater than 0"),
        (
            "learning_rate: 0.001",
            "learning_rate: 11",
            (12, 20),
            "spec.hyperparameters.learning_rate",
            "at most 10",
        ),
    ],
)
def test_out_of_range(
    project: Project, old: str, new: str, at: tuple[int, int], field: str, expected: str
) -> None:
    d = only(project({"specs/d.yaml": DATASET, "specs/m.yaml": MODEL.replace(old, new)}))
    assert (d.code, d.line, d.col, d.field) == (codes.OUT_OF_RANGE, *at, field)
    assert d.expected is not None and d.expected.startswith(expected)


def test_out_of_range_port(project: Project) -> None:
    text = SERVICE + "  port: 70000\n"
    found = [d for d in diagnostics(project({"specs/s.yaml": text})) if d.code != codes.DANGLING_REFERENCE]
    [d] = found
    assert (d.code, d.line, d.col, d.field) == (codes.OUT_OF_RANGE, 6, 9, "spec.port")
    assert d.expected == "at most 65535"


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Sentiment_Model", "sentiment-model"),
        ("my model v2", "my-model-v2"),
        ("-leading-dash", "leading-dash"),
        ("x" * 70, "x" * 63),
    ],
)
def test_invalid_name_with_a_slug_hint(project: Project, name: str, slug: str) -> None:
    d = only(project({"specs/t.yaml": TASK.format(name=name)}))
    assert (*where(d), d.field) == (codes.INVALID_NAME, "specs/t.yaml", 4, 9, "metadata.name")
    assert d.hint == f"try `{slug}`"


def test_invalid_name_without_a_usable_slug(project: Project) -> None:
    d = only(project({"specs/t.yaml": TASK.format(name="'???'")}))
    assert (d.code, d.line, d.col) == (codes.INVALID_NAME, 4, 9)
    assert d.hint is None


# --- links between documents --------------------------------------------------------------------


def test_same_address_in_two_files(project: Project) -> None:
    root = project(
        {
            "specs/a.yaml": TASK.format(name="prepare"),
            "specs/b.yaml": "# copy\n" + TASK.format(name="prepare"),
        }
    )
    d = only(root)
    assert (*where(d), d.field) == (codes.DUPLICATE_ADDRESS, "specs/b.yaml", 5, 9, "metadata.name")
    assert "Task/prepare" in d.message and "specs/a.yaml:4" in d.message


def test_same_name_for_two_kinds_is_not_a_duplicate(project: Project) -> None:
    root = project({"specs/a.yaml": TASK.format(name="reviews"), "specs/b.yaml": DATASET})
    assert diagnostics(root) == []


def test_dangling_reference_with_did_you_mean(project: Project) -> None:
    root = project(
        {"specs/d.yaml": DATASET, "specs/m.yaml": MODEL.replace("dataset: reviews", "dataset: review")}
    )
    d = only(root)
    assert (*where(d), d.field) == (codes.DANGLING_REFERENCE, "specs/m.yaml", 7, 12, "spec.dataset")
    assert d.message == "no Dataset named `review`"
    assert d.hint == "did you mean `reviews`?"


def test_dangling_qualified_reference(project: Project) -> None:
    root = project({"specs/a.yaml": TASK.format(name="prepare"),
                    "specs/b.yaml": TASK.format(name="train") + "  depends_on: [Task/prepar]\n"})  # fmt: skip
    d = only(root)
    assert (*where(d), d.field) == (codes.DANGLING_REFERENCE, "specs/b.yaml", 7, 16, "spec.depends_on[0]")
    assert d.hint == "did you mean `prepare`?"


def test_reference_to_a_resource_of_the_wrong_kind(project: Project) -> None:
    root = project({"specs/a.yaml": TASK.format(name="reviews"), "specs/m.yaml": MODEL})
    d = only(root)
    assert (*where(d), d.field) == (codes.WRONG_KIND_REFERENCE, "specs/m.yaml", 7, 12, "spec.dataset")
    assert "is a Task" in d.message and d.expected == "Dataset"


def test_qualified_reference_to_the_wrong_kind(project: Project) -> None:
    root = project({"specs/a.yaml": TASK.format(name="reviews"),
                    "specs/m.yaml": MODEL.replace("dataset: reviews", "dataset: Task/reviews")})  # fmt: skip
    d = only(root)
    assert (d.code, d.line, d.col) == (codes.WRONG_KIND_REFERENCE, 7, 12)
    assert d.expected == "Dataset"


def test_cycle_is_printed_as_a_path(project: Project) -> None:
    root = project({
        "specs/a.yaml": TASK.format(name="a") + "  depends_on: [b]\n",
        "specs/b.yaml": TASK.format(name="b") + "  depends_on: [a]\n",
    })  # fmt: skip
    d = only(root)
    assert d.code == codes.CYCLE
    assert d.message == "dependency cycle: Task/a -> Task/b -> Task/a"
    assert (d.file, d.line, d.col, d.field) == ("specs/b.yaml", 7, 16, "spec.depends_on[0]")


def test_resource_that_depends_on_itself(project: Project) -> None:
    d = only(project({"specs/a.yaml": TASK.format(name="a") + "  depends_on: [Task/a]\n"}))
    assert (d.code, d.line, d.col) == (codes.CYCLE, 7, 16)
    assert d.message == "dependency cycle: Task/a -> Task/a"


def test_a_resource_with_errors_does_not_make_its_references_dangle(project: Project) -> None:
    broken = MODEL + "  resources: {accelerator: cpu, precision: fp16}\n"
    service = "apiVersion: mlspec/v1\nkind: Service\nmetadata: {name: api}\nspec:\n  model: sentiment\n"
    found = diagnostics(project({"specs/d.yaml": DATASET, "specs/m.yaml": broken, "specs/s.yaml": service}))
    assert [d.code for d in found] == [codes.INVALID_VALUE]


# --- hostile input ------------------------------------------------------------------------------


def billion_laughs(levels: int = 9) -> str:
    names = "abcdefghijklmnopqrstuvwxyz"
    lines = [f'{names[0]}: &{names[0]} ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"{names[i]}: &{names[i]} [{', '.join(['*' + names[i - 1]] * 9)}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_quickly(project: Project) -> None:
    text = billion_laughs(9)
    root = project({"specs/bomb.yaml": text})
    started = time.perf_counter()
    found = diagnostics(root)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"took {elapsed:.2f}s"  # safety bound: 9**9 nodes if expanded
    [d] = found
    assert (d.code, d.file) == (codes.YAML_TOO_COMPLEX, "specs/bomb.yaml")
    assert d.line is not None and 1 <= d.line <= text.count("\n") and d.col is not None and d.col >= 1
    assert "alias" in d.message


def test_aliases_within_the_budget_are_fine(project: Project) -> None:
    text = TASK.format(name="t") + "  params:\n    a: &x {k: [1, 2, 3]}\n    b: *x\n    c: *x\n"
    assert diagnostics(project({"specs/t.yaml": text})) == []


_DEEP_SCRIPT = """
import json, sys
from pathlib import Path
from mlspec.validation import validate
report = validate(Path(sys.argv[1]), use_cache=False)
print(json.dumps([[d.code, d.file, d.line, d.col] for d in report.diagnostics]))
"""


@pytest.mark.parametrize(
    ("text", "at"),
    [
        ("[" * 50_000, (1, 101)),  # unclosed
        ("spec: " + "[" * 50_000 + "]" * 50_000 + "\n", (1, 106)),
        ("spec: " + "{a: " * 50_000 + "1" + "}" * 50_000 + "\n", (1, 403)),
    ],
    ids=["unclosed", "balanced", "flow-mappings"],
)
def test_very_deep_nesting_is_refused_without_crashing(
    project: Project, text: str, at: tuple[int, int]
) -> None:
    # libyaml's composer recurses in C and segfaults near 40k levels: a crash must fail this test,
    # not take pytest down with it.
    root = project({"specs/deep.yaml": text})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", _DEEP_SCRIPT, str(root)], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    assert json.loads(proc.stdout) == [[codes.YAML_TOO_COMPLEX, "specs/deep.yaml", *at]]


def test_deep_block_nesting_is_refused(project: Project) -> None:
    text = "".join(" " * i + "k:\n" for i in range(150)) + " " * 150 + "v: 1\n"
    d = only(project({"specs/deep.yaml": text}))
    assert (d.code, d.line, d.col) == (codes.YAML_TOO_COMPLEX, 101, 101)  # the 101st level


def test_file_over_the_size_limit_is_not_read(project: Project) -> None:
    root = project({"specs/big.yaml": TASK.format(name="big") + "# " + "x" * 200 + "\n",
                    "specs/small.yaml": "a: 1\n"},  # 5 bytes: under the limit, read (and wrong)
                   config="limits: {max_file_bytes: 100}\n")  # fmt: skip
    found = diagnostics(root)
    big = [d for d in found if d.file == "specs/big.yaml"]
    assert [(d.code, d.line, d.col) for d in big] == [(codes.FILE_TOO_LARGE, 1, 1)]
    size = (root / "specs/big.yaml").stat().st_size
    assert f"{size:,} bytes" in big[0].message and "100-byte limit" in big[0].message
    assert any(d.file == "specs/small.yaml" for d in found)


def test_non_utf8_bytes_with_the_position_of_the_bad_byte(project: Project) -> None:
    raw = TASK.format(name="cafe").encode() + b"  description: caf\xe9 au lait\n"
    d = only(project({"specs/t.yaml": raw}))
    assert where(d) == (codes.NOT_UTF8, "specs/t.yaml", 7, 19)
    assert "0xe9" in d.message
    assert d.hint == "re-save the file as UTF-8"


def test_non_utf8_column_counts_characters(project: Project) -> None:
    raw = TASK.format(name="cafe").encode() + "  description: é ".encode() + b"\xff\n"
    d = only(project({"specs/t.yaml": raw}))
    assert (d.code, d.line, d.col) == (codes.NOT_UTF8, 7, 18)


def test_utf16_file(project: Project) -> None:
    d = only(project({"specs/t.yaml": TASK.format(name="t").encode("utf-16")}))
    assert where(d) == (codes.NOT_UTF8, "specs/t.yaml", 1, 1)
    assert "UTF-16" in d.message


_opened: list[str] | None = None  # while a test listens: every path the process opens
_listening = False


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
        _opened.append(os.path.realpath(os.fsdecode(args[0])))


@contextmanager
def files_opened() -> Iterator[list[str]]:
    """Record every file opened inside the block, however it is opened (an audit hook)."""
    global _opened, _listening
    if not _listening:
        sys.addaudithook(_audit)  # cannot be removed: it does nothing outside this block
        _listening = True
    _opened = []
    try:
        yield _opened
    finally:
        _opened = None


def test_symlink_that_leaves_the_repo_is_reported_and_not_read(project: Project, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.yaml"
    secret.write_text("kind: NotASpec\npassword: hunter2\n")
    root = project({"specs/ok.yaml": TASK.format(name="ok")})
    (root / "specs/link.yaml").symlink_to(secret)
    with files_opened() as opened:
        report = validate(root, use_cache=False)
    [d] = report.diagnostics
    assert (d.code, d.file, d.line, d.col) == (codes.SYMLINK_ESCAPES, "specs/link.yaml", None, None)
    assert str(secret) in d.message
    assert any(p.endswith("ok.yaml") for p in opened)  # the listener works
    assert str(secret.resolve()) not in opened
    assert report.resource_count == 1


def test_symlink_inside_the_repo_is_followed(project: Project) -> None:
    root = project(
        {"shared/t.yaml": TASK.format(name="shared").replace("cmd: [python, run.py]", "cmd: python")}
    )
    (root / "specs").mkdir()
    (root / "specs/link.yaml").symlink_to(root / "shared/t.yaml")
    d = only(root)  # read through the link: its (one) mistake is reported under the link's name
    assert (d.code, d.file, d.line, d.col) == (codes.INVALID_VALUE, "specs/link.yaml", 6, 8)


def test_binary_file_matched_by_a_glob(project: Project) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"
    root = project(
        {"specs/t.yaml": TASK.format(name="t"), "specs/logo.png": png}, config='specs: ["specs/**/*"]\n'
    )
    d = only(root)
    assert where(d) == (codes.BINARY_FILE, "specs/logo.png", 1, 1)
    assert d.hint and "specs" in d.hint


@pytest.mark.parametrize(
    ("value", "at", "tag"),
    [
        ("!!python/object:os.system ls", (7, 16), "!!python/object:os.system"),
        ("!!python/object/apply:os.system [rm -rf /]", (7, 16), "!!python/object/apply:os.system"),
        ("!!python/name:os.system ''", (7, 16), "!!python/name:os.system"),
        ("!env HOME", (7, 16), "!env"),
    ],
)
def test_unsupported_tags(project: Project, value: str, at: tuple[int, int], tag: str) -> None:
    text = TASK.format(name="t") + f"  description: {value}\n"
    d = only(project({"specs/t.yaml": text}))
    assert (d.code, d.line, d.col) == (codes.UNSUPPORTED_TAG, *at)
    assert f"`{tag}`" in d.message


# --- all errors of a pass are reported together -------------------------------------------------


def test_three_independent_mistakes_give_three_diagnostics(project: Project) -> None:
    text = MODEL.replace("learning_rate: 0.001", "learnin_rate: 0.001").replace("epochs: 2", "epochs: -1")
    text = text.replace("optimizer: adamw", "optimizer: adamx")
    found = diagnostics(project({"specs/d.yaml": DATASET, "specs/m.yaml": text}))
    assert [(d.code, d.line, d.col) for d in found] == [
        (codes.UNKNOWN_FIELD, 12, 5),
        (codes.OUT_OF_RANGE, 13, 13),
        (codes.INVALID_CHOICE, 14, 16),
    ]


def test_two_bad_files_are_both_reported(project: Project) -> None:
    root = project({
        "specs/a.yaml": TASK.format(name="a").replace("kind: Task", "kind: Tsk"),
        "specs/b.yaml": TASK.format(name="b") + "  shell: maybe\n",
        "specs/c.yaml": "a: [\n",
    })  # fmt: skip
    found = diagnostics(root)
    assert [(d.file, d.code) for d in found] == [
        ("specs/a.yaml", codes.UNKNOWN_KIND),
        ("specs/b.yaml", codes.WRONG_TYPE),
        ("specs/c.yaml", codes.YAML_SYNTAX),
    ]


def test_errors_in_several_documents_of_one_file_are_all_reported(project: Project) -> None:
    text = (
        TASK.format(name="Bad_Name")
        + "---\n"
        + TASK.format(name="b").replace("mlspec/v1", "mlspec/v9")
        + "---\n"
        + TASK.format(name="c")
        + "  cach: false\n"
    )
    found = diagnostics(project({"specs/t.yaml": text}))
    assert [(d.code, d.line, d.doc) for d in found] == [
        (codes.INVALID_NAME, 4, 0),
        (codes.UNKNOWN_API_VERSION, 8, 1),
        (codes.UNKNOWN_FIELD, 21, 2),
    ]


def test_diagnostics_come_sorted_by_file_line_and_column(project: Project) -> None:
    root = project({
        "specs/z.yaml": TASK.format(name="Z"),
        "specs/a.yaml": TASK.format(name="a") + "  shel: true\n  cach: false\n",
    })  # fmt: skip
    found = diagnostics(root)
    assert [(d.file, d.line) for d in found] == [
        ("specs/a.yaml", 7),
        ("specs/a.yaml", 8),
        ("specs/z.yaml", 4),
    ]


def test_a_schema_error_does_not_hide_semantic_errors_in_other_blocks(project: Project) -> None:
    text = MODEL.replace("learning_rate:", "learnin_rate:") + "  evaluation:\n    metrics: [f1]\n    gates: ['accuracy >= 0.9']\n"
    root = project({"specs/d.yaml": DATASET, "specs/m.yaml": text})
    found = sorted((d.code, d.field) for d in validate(root).errors)
    assert found == [("MLS101", "spec.hyperparameters.learnin_rate"), ("MLS106", "spec.evaluation.gates[0]")]
