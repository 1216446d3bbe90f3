"""Linking resources into the dependency graph, and querying it.

Edges run from a dependency to its dependent (Dataset/reviews -> Model/sentiment), so a topological
order is an apply order. Linking (duplicates, references, cycles) is plain dict work with an
iterative Tarjan SCC: `import networkx` alone costs ~200 ms, most of a pre-commit hook's budget.
The networkx view (`SpecGraph.nx`) is built on demand for queries and rendering.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from mlspec.spec import codes
from mlspec.spec.diagnostics import Diagnostic
from mlspec.spec.kinds.base import KIND_NAMES
from mlspec.spec.suggest import closest, did_you_mean
from mlspec.spec.summary import FileSummary, RefUse, ResourceSummary, Site

if TYPE_CHECKING:
    import networkx as nx


@dataclass(frozen=True, slots=True)
class Node:
    address: str
    file: str
    resource: ResourceSummary


@dataclass(frozen=True, slots=True)
class Edge:
    upstream: str
    downstream: str
    field: str
    file: str
    site: Site


@dataclass
class SpecGraph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._nx: nx.DiGraph | None = None

    @property
    def nx(self) -> nx.DiGraph:
        if self._nx is None:
            import networkx as nx

            graph = nx.DiGraph()
            for address, node in self.nodes.items():
                graph.add_node(address, kind=node.resource.kind, name=node.resource.name, file=node.file)
            for edge in self.edges:
                graph.add_edge(edge.upstream, edge.downstream, field=edge.field)
            self._nx = graph
        return self._nx

    def upstream(self, address: str) -> set[str]:
        import networkx as nx

        return set(nx.ancestors(self.nx, address)) | {address}

    def downstream(self, address: str) -> set[str]:
        import networkx as nx

        return set(nx.descendants(self.nx, address)) | {address}

    def subgraph(self, addresses: Iterable[str]) -> SpecGraph:
        keep = set(addresses)
        return SpecGraph(
            {a: n for a, n in self.nodes.items() if a in keep},
            [e for e in self.edges if e.upstream in keep and e.downstream in keep],
        )

    def order(self) -> list[str]:
        """A deterministic topological order (dependencies first; ties by address)."""
        import networkx as nx

        return list(nx.lexicographical_topological_sort(self.nx))

    def resolve(self, text: str) -> str | None:
        """`Model/x` or a bare `x` (when only one kind has that name) -> the address."""
        if "/" in text:
            kind = closest(text.split("/", 1)[0], KIND_NAMES) or text.split("/", 1)[0]
            address = f"{kind}/{text.split('/', 1)[1]}"
            return address if address in self.nodes else None
        matches = [a for a in self.nodes if a.split("/", 1)[1] == text]
        return matches[0] if len(matches) == 1 else None

    @cached_property
    def _by_name(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for address, node in self.nodes.items():
            out.setdefault(node.resource.name, []).append(address)
        return out


def link(files: Mapping[str, FileSummary]) -> tuple[SpecGraph, list[Diagnostic]]:
    graph = SpecGraph()
    diagnostics: list[Diagnostic] = []
    for file, summary in files.items():
        for resource in summary.resources:
            first = graph.nodes.get(resource.address)
            if first is not None:
                where = f"{first.file}:{first.resource.site.line}"
                diagnostics.append(
                    _at(file, resource.site, codes.DUPLICATE_ADDRESS,
                        f"`{resource.address}` is already declared at {where}",
                        hint="rename one of them: an address (Kind/name) must be unique")  # fmt: skip
                )
                continue
            graph.nodes[resource.address] = Node(resource.address, file, resource)
    for address, node in graph.nodes.items():
        for ref in node.resource.refs:
            target = _resolve_ref(graph, node.file, ref, diagnostics)
            if target is not None:
                graph.edges.append(Edge(target, address, ref.site.field, node.file, ref.site))
        for need in node.resource.needs:
            target = graph.resolve(need.ref)
            if target is None:
                continue
            facts = dict(graph.nodes[target].resource.facts)
            if need.fact not in facts:
                continue
            present = need.item in facts[need.fact]
            if need.forbidden and present:
                diagnostics.append(
                    _at(node.file, need.site, codes.BAD_CROSS_REFERENCE,
                        f"`{need.item}` is a PII column of {target}, dropped before training",
                        hint="remove it from the features, or hash it instead of dropping it")  # fmt: skip
                )
            elif not need.forbidden and not present:
                known = list(facts[need.fact])
                noun = need.fact.rstrip("s")
                diagnostics.append(
                    _at(node.file, need.site, codes.BAD_CROSS_REFERENCE,
                        f"{target} has no {noun} `{need.item}`",
                        expected=f"one of {', '.join(known)}" if known else None,
                        hint=did_you_mean(need.item, known))  # fmt: skip
                )
    diagnostics.extend(_cycle_diagnostics(graph))
    return graph, diagnostics


def _resolve_ref(graph: SpecGraph, file: str, ref: RefUse, out: list[Diagnostic]) -> str | None:
    allowed = ref.kinds
    accepts = " or ".join(allowed)
    if "/" in ref.value:
        kind, name = ref.value.split("/", 1)
        if kind not in KIND_NAMES or kind not in allowed:
            out.append(
                _at(file, ref.site, codes.WRONG_KIND_REFERENCE,
                    f"`{ref.field_name}` takes a {accepts}, not a {kind}",
                    expected=accepts, hint=did_you_mean(kind, allowed))  # fmt: skip
            )
            return None
        address = ref.value
        if address in graph.nodes:
            return address
        candidates = [a.split("/", 1)[1] for a in graph.nodes if a.startswith(kind + "/")]
        out.append(
            _at(file, ref.site, codes.DANGLING_REFERENCE, f"no {kind} named `{name}`",
                expected=f"a {kind} declared in the specs", hint=did_you_mean(name, candidates))  # fmt: skip
        )
        return None
    name = ref.value
    owners = graph._by_name.get(name, [])
    matches = [a for a in owners if a.split("/", 1)[0] in allowed]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        out.append(
            _at(file, ref.site, codes.AMBIGUOUS_REFERENCE, f"`{name}` names {' and '.join(sorted(matches))}",
                hint=f"write the kind: {sorted(matches)[0]}")  # fmt: skip
        )
        return None
    if owners:
        out.append(
            _at(file, ref.site, codes.WRONG_KIND_REFERENCE,
                f"`{name}` is a {owners[0].split('/', 1)[0]}, but `{ref.field_name}` takes a {accepts}",
                expected=accepts)  # fmt: skip
        )
        return None
    candidates = [a.split("/", 1)[1] for a in graph.nodes if a.split("/", 1)[0] in allowed]
    out.append(
        _at(file, ref.site, codes.DANGLING_REFERENCE, f"no {accepts} named `{name}`",
            expected=f"a {accepts} declared in the specs", hint=did_you_mean(name, candidates))  # fmt: skip
    )
    return None


def _cycle_diagnostics(graph: SpecGraph) -> Iterator[Diagnostic]:
    successors: dict[str, list[Edge]] = {}
    for edge in graph.edges:
        successors.setdefault(edge.upstream, []).append(edge)
    for component in _strongly_connected(graph.nodes, successors):
        members = set(component)
        if len(component) == 1:
            only = component[0]
            if not any(e.downstream == only for e in successors.get(only, ())):
                continue
        cycle = _cycle_path(min(component), members, successors)
        # Report it where the cycle's first dependency is written (the `dataset:` line, say).
        closing = cycle[-1]
        shown = " -> ".join([cycle[0].downstream, *(e.upstream for e in cycle)])
        yield _at(
            closing.file, closing.site, codes.CYCLE, f"dependency cycle: {shown}",
            hint="break the cycle by removing one of these references",
        )  # fmt: skip


def _cycle_path(start: str, members: set[str], successors: Mapping[str, list[Edge]]) -> list[Edge]:
    """One cycle through `start` inside its strongly connected component, as dependency edges.

    Walks dependent -> dependency (downstream to upstream), which reads as "A needs B needs A".
    """
    predecessors: dict[str, list[Edge]] = {}
    for edges in successors.values():
        for edge in edges:
            if edge.upstream in members and edge.downstream in members:
                predecessors.setdefault(edge.downstream, []).append(edge)
    # BFS from start over "needs" edges until we come back to start.
    parent: dict[str, Edge] = {}
    frontier = [start]
    seen = {start}
    while frontier:
        nxt = []
        for node in frontier:
            for edge in sorted(predecessors.get(node, ()), key=lambda e: e.upstream):
                if edge.upstream == start:
                    path = [edge]
                    cursor = node
                    while cursor != start:
                        path.append(parent[cursor])
                        cursor = parent[cursor].downstream
                    return list(reversed(path))
                if edge.upstream not in seen:
                    seen.add(edge.upstream)
                    parent[edge.upstream] = edge
                    nxt.append(edge.upstream)
        frontier = nxt
    return []  # pragma: no cover - a component of size > 1 always has a cycle


def _strongly_connected(nodes: Iterable[str], successors: Mapping[str, list[Edge]]) -> Iterator[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit on long chains)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[str, Iterator[Edge]]] = [(root, iter(successors.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for edge in children:
                child = edge.downstream
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(successors.get(child, ()))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                yield component


def _at(file: str, site: Site, code: str, message: str, **extra: Any) -> Diagnostic:
    return Diagnostic(code, message, file, site.line, site.col, field=site.field, width=site.width, **extra)
