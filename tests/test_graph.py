"""Linking resources into the dependency graph, and querying it (mlspec/graph.py).

The graph is built from real YAML (`summarize` then `link`); where a diagnostic's position matters,
the test goes through `validate`, which is what places link errors in their files.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mlspec.graph import SpecGraph, link
from mlspec.spec import codes
from mlspec.spec.diagnostics import Diagnostic
from mlspec.spec.summary import FileSummary, summarize
from mlspec.validation import validate
from tests.spec.test_kinds import VALID

Project = Callable[..., Path]


def summaries(files: dict[str, str]) -> dict[str, FileSummary]:
    out = {rel: summarize(text.encode(), rel) for rel, text in files.items()}
    for rel, summary in out.items():
        assert summary.diagnostics == (), (rel, summary.diagnostics)
    return out


def linked(files: dict[str, str]) -> tuple[SpecGraph, list[Diagnostic]]:
    """Summarize each YAML text as the file it is keyed by, then link them all."""
    return link(summaries(files))


def located(project: Project, files: dict[str, str]) -> list[Diagnostic]:
    return validate(project(files), use_cache=False).diagnostics


HEADER = "apiVersion: mlspec/v1\n"


def task(name: str, *deps: str) -> str:
    depends = f"\n  depends_on: [{', '.join(deps)}]" if deps else ""
    return f"{HEADER}kind: Task\nmetadata:\n  name: {name}\nspec:\n  cmd: [run, {name}]{depends}\n"


def dataset(name: str) -> str:
    return (
        f"{HEADER}kind: Dataset\nmetadata:\n  name: {name}\nspec:\n  source: {{path: a.csv, format: csv}}\n"
    )


EXAMPLE = {f"specs/{kind.lower()}.yaml": text for kind, text in VALID.items()}


@pytest.fixture(scope="module")
def example() -> SpecGraph:
    graph, diagnostics = linked(EXAMPLE)
    assert diagnostics == []
    return graph


# --- edges ----------------------------------------------------------------------------------------


def test_edges_run_from_dependency_to_dependent(example: SpecGraph) -> None:
    edges = {(e.upstream, e.downstream, e.field) for e in example.edges}
    assert edges == {
        ("Task/make-data", "Dataset/reviews", "spec.depends_on[0]"),
        ("Dataset/reviews", "Model/sentiment", "spec.dataset"),
        ("Model/sentiment", "Optimization/sentiment-onnx", "spec.model"),
        ("Dataset/reviews", "Optimization/sentiment-onnx", "spec.calibration.dataset"),
        ("Optimization/sentiment-onnx", "Service/sentiment-api", "spec.model"),
        ("Service/sentiment-api", "Prompt/review-triage", "spec.target.service"),
        ("Service/sentiment-api", "Monitor/sentiment-drift", "spec.service"),
        ("Dataset/reviews", "Monitor/sentiment-drift", "spec.reference.dataset"),
        ("Model/sentiment", "Monitor/sentiment-drift", "spec.on_drift.model"),
    }


def test_an_edge_belongs_to_the_file_of_its_dependent(example: SpecGraph) -> None:
    [edge] = [e for e in example.edges if e.downstream == "Model/sentiment"]
    assert edge.file == "specs/model.yaml"
    assert example.nodes["Model/sentiment"].file == "specs/model.yaml"


def test_order_puts_dependencies_first(example: SpecGraph) -> None:
    order = example.order()
    assert sorted(order) == sorted(example.nodes)
    for edge in example.edges:
        assert order.index(edge.upstream) < order.index(edge.downstream), edge
    assert order[0] == "Task/make-data"


def test_order_is_deterministic() -> None:
    files = {"specs/a.yaml": task("c") + "---\n" + task("a"), "specs/b.yaml": task("b", "a", "c")}
    first, _ = linked(files)
    again, _ = linked(dict(reversed(list(files.items()))))
    assert first.order() == again.order() == ["Task/a", "Task/c", "Task/b"]  # ties by address


def test_a_reference_written_twice_is_one_dependency() -> None:
    graph, diagnostics = linked({"specs/t.yaml": task("a") + "---\n" + task("b", "a", "Task/a")})
    assert diagnostics == []
    assert graph.upstream("Task/b") == {"Task/a", "Task/b"}


# --- queries --------------------------------------------------------------------------------------


def test_upstream_is_everything_a_resource_needs(example: SpecGraph) -> None:
    assert example.upstream("Service/sentiment-api") == {
        "Service/sentiment-api", "Optimization/sentiment-onnx", "Model/sentiment", "Dataset/reviews",
        "Task/make-data",
    }  # fmt: skip
    assert example.upstream("Task/make-data") == {"Task/make-data"}


def test_downstream_is_everything_a_change_affects(example: SpecGraph) -> None:
    assert example.downstream("Model/sentiment") == {
        "Model/sentiment", "Optimization/sentiment-onnx", "Service/sentiment-api", "Prompt/review-triage",
        "Monitor/sentiment-drift",
    }  # fmt: skip
    assert example.downstream("Prompt/review-triage") == {"Prompt/review-triage"}
    assert example.downstream("Task/make-data") == set(example.nodes)


def test_subgraph_keeps_only_edges_inside_it(example: SpecGraph) -> None:
    sub = example.subgraph(example.upstream("Optimization/sentiment-onnx"))
    assert set(sub.nodes) == {
        "Optimization/sentiment-onnx",
        "Model/sentiment",
        "Dataset/reviews",
        "Task/make-data",
    }
    assert {(e.upstream, e.downstream) for e in sub.edges} == {
        ("Task/make-data", "Dataset/reviews"),
        ("Dataset/reviews", "Model/sentiment"),
        ("Model/sentiment", "Optimization/sentiment-onnx"),
        ("Dataset/reviews", "Optimization/sentiment-onnx"),
    }


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("Model/sentiment", "Model/sentiment"),
        ("model/sentiment", "Model/sentiment"),
        ("sentiment", "Model/sentiment"),
        ("reviews", "Dataset/reviews"),
        ("Model/nope", None),
        ("nope", None),
    ],
)
def test_resolve_an_address_typed_by_a_user(example: SpecGraph, text: str, address: str | None) -> None:
    assert example.resolve(text) == address


def test_resolve_a_bare_name_shared_by_two_kinds_is_none() -> None:
    graph, _ = linked({"specs/a.yaml": task("x"), "specs/b.yaml": dataset("x")})
    assert graph.resolve("x") is None
    assert graph.resolve("Task/x") == "Task/x"


# --- reference errors -----------------------------------------------------------------------------


def test_ambiguous_bare_name_across_kinds(project: Project) -> None:
    files = {"specs/a.yaml": task("x"), "specs/b.yaml": dataset("x"), "specs/c.yaml": task("c", "x")}
    [d] = located(project, files)
    assert (d.code, d.file, d.line, d.col, d.field) == (
        codes.AMBIGUOUS_REFERENCE, "specs/c.yaml", 7, 16, "spec.depends_on[0]",
    )  # fmt: skip
    assert d.message == "`x` names Dataset/x and Task/x"
    assert d.hint == "write the kind: Dataset/x"
    graph, _ = linked(files)
    assert graph.upstream("Task/c") == {"Task/c"}  # no guessed edge


def test_a_bare_name_is_not_ambiguous_where_the_field_takes_one_kind() -> None:
    model = VALID["Model"].replace("dataset: reviews", "dataset: x")
    graph, diagnostics = linked(
        {"specs/a.yaml": task("x"), "specs/b.yaml": dataset("x"), "specs/m.yaml": model}
    )
    assert diagnostics == []
    assert graph.upstream("Model/sentiment") == {"Model/sentiment", "Dataset/x"}


def test_qualified_name_settles_the_ambiguity() -> None:
    graph, diagnostics = linked({
        "specs/a.yaml": task("x"), "specs/b.yaml": dataset("x"), "specs/c.yaml": task("c", "Dataset/x"),
    })  # fmt: skip
    assert diagnostics == []
    assert graph.upstream("Task/c") == {"Task/c", "Dataset/x"}


def test_duplicate_address_keeps_the_first_declaration(project: Project) -> None:
    files = {"specs/a.yaml": task("t"), "specs/b.yaml": task("t")}
    graph, diagnostics = linked(files)
    assert [(d.code, d.file) for d in diagnostics] == [(codes.DUPLICATE_ADDRESS, "specs/b.yaml")]
    assert graph.nodes["Task/t"].file == "specs/a.yaml"
    [d] = located(project, files)
    assert (d.code, d.file, d.line, d.col) == (codes.DUPLICATE_ADDRESS, "specs/b.yaml", 4, 9)


def test_duplicate_address_within_one_file(project: Project) -> None:
    [d] = located(project, {"specs/a.yaml": task("t") + "---\n" + task("t")})
    assert (d.code, d.line, d.col, d.doc) == (codes.DUPLICATE_ADDRESS, 11, 9, 1)
    assert "specs/a.yaml:4" in d.message


# --- cycles ---------------------------------------------------------------------------------------


def test_three_cycle_message(project: Project) -> None:
    files = {"specs/a.yaml": task("a", "b"), "specs/b.yaml": task("b", "c"), "specs/c.yaml": task("c", "a")}
    [d] = located(project, files)
    assert d.code == codes.CYCLE
    assert d.message == "dependency cycle: Task/a -> Task/b -> Task/c -> Task/a"
    assert (d.file, d.line, d.col, d.field) == ("specs/c.yaml", 7, 16, "spec.depends_on[0]")
    assert d.hint is not None
    _, diagnostics = linked(files)
    assert [x.message for x in diagnostics] == [d.message]


def test_cycle_through_different_kinds() -> None:
    looped = VALID["Dataset"].replace(
        "depends_on: [Task/make-data]", "depends_on: [Task/make-data, Model/sentiment]"
    )
    _, diagnostics = linked({**EXAMPLE, "specs/dataset.yaml": looped})
    [d] = diagnostics
    assert d.code == codes.CYCLE
    assert d.message == "dependency cycle: Dataset/reviews -> Model/sentiment -> Dataset/reviews"


def test_two_separate_cycles_are_two_diagnostics() -> None:
    _, diagnostics = linked({
        "specs/a.yaml": task("a", "b") + "---\n" + task("b", "a"),
        "specs/c.yaml": task("c", "d") + "---\n" + task("d", "c"),
    })  # fmt: skip
    assert sorted(d.message for d in diagnostics) == [
        "dependency cycle: Task/a -> Task/b -> Task/a",
        "dependency cycle: Task/c -> Task/d -> Task/c",
    ]


def test_a_diamond_is_not_a_cycle() -> None:
    graph, diagnostics = linked({"specs/t.yaml": "---\n".join([
        task("top"), task("left", "top"), task("right", "top"), task("bottom", "left", "right"),
    ])})  # fmt: skip
    assert diagnostics == []
    assert graph.order() == ["Task/top", "Task/left", "Task/right", "Task/bottom"]


# --- scale ----------------------------------------------------------------------------------------

CHAIN = 5_000


@pytest.fixture(scope="module")
def chain_tail() -> FileSummary:
    """Tasks t1 .. t4999, each depending on the one before; t0 is in a file of its own."""
    docs = (
        f"{HEADER}kind: Task\nmetadata: {{name: t{i}}}\nspec: {{cmd: [run], depends_on: [t{i - 1}]}}\n"
        for i in range(1, CHAIN)
    )
    summary = summarize("---\n".join(docs).encode(), "specs/chain.yaml")
    assert summary.diagnostics == ()
    return summary


def head(*deps: str) -> FileSummary:
    return summaries({"specs/head.yaml": task("t0", *deps)})["specs/head.yaml"]


def test_a_long_chain_links_without_recursion(chain_tail: FileSummary) -> None:
    assert sys.getrecursionlimit() < CHAIN  # a recursive walk would fail here
    graph, diagnostics = link({"specs/head.yaml": head(), "specs/chain.yaml": chain_tail})
    assert diagnostics == []
    assert len(graph.nodes) == CHAIN and len(graph.edges) == CHAIN - 1
    assert graph.upstream(f"Task/t{CHAIN - 1}") == set(graph.nodes)
    assert graph.downstream("Task/t0") == set(graph.nodes)
    order = graph.order()
    assert order == [f"Task/t{i}" for i in range(CHAIN)]


def test_a_long_cycle_is_found_without_recursion(chain_tail: FileSummary) -> None:
    _, diagnostics = link({"specs/head.yaml": head(f"t{CHAIN - 1}"), "specs/chain.yaml": chain_tail})
    [d] = diagnostics
    assert d.code == codes.CYCLE
    path = d.message.removeprefix("dependency cycle: ").split(" -> ")
    # A long cycle is abbreviated: its two ends, and how many resources the middle holds.
    assert path[0] == path[-1] and len(path) == 12
    assert path[6] == f"... {CHAIN + 1 - 11} more ..."
    assert all(p.startswith("Task/t") for p in path[:6] + path[7:])
