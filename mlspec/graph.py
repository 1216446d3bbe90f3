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

from mlspec.address import Address
from mlspec.spec import codes
from mlspec.spec.diagnostics import Diagnostic, Locate, format_field, located
from mlspec.spec.suggest import did_you_mean
from mlspec.spec.summary import NAME_LOC, FileSummary, Loc, RefUse, ResourceSummary
from mlspec.spec.vocabulary import KIND_NAMES

if TYPE_CHECKING:
    import networkx as nx

# (file, document index, loc, key?) -> (line, col, width): positions are looked up only for errors.
Exports = tuple[tuple[str, str, int, tuple[tuple[str, tuple[str, ...]], ...]], ...]


def no_positions(file: str, doc: int, loc: Loc, key: bool) -> tuple[int | None, int | None, int]:
    return None, None, 1


@dataclass(frozen=True, slots=True)
class Node:
    address: str
    file: str
    resource: ResourceSummary


@dataclass(frozen=True, slots=True)
class Edge:
    upstream: str
    downstream: str
    file: str
    doc: int
    loc: Loc

    @property
    def field(self) -> str:
        return format_field(self.loc)


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

    def direct_upstream(self) -> dict[str, tuple[str, ...]]:
        """Every address -> the addresses it references directly (sorted; no networkx)."""
        found: dict[str, set[str]] = {address: set() for address in self.nodes}
        for edge in self.edges:
            if edge.downstream in found:
                found[edge.downstream].add(edge.upstream)
        return {address: tuple(sorted(deps)) for address, deps in found.items()}

    def subgraph(self, addresses: Iterable[str]) -> SpecGraph:
        keep = set(addresses)
        return SpecGraph(
            {a: n for a, n in self.nodes.items() if a in keep},
            [e for e in self.edges if e.upstream in keep and e.downstream in keep],
        )

    def order(self) -> list[str]:
        """A deterministic topological order (dependencies first; ties by address).

        networkx's lexicographical sort gives the same order, but importing networkx alone costs
        more than sorting 10,000 nodes.
        """
        after: dict[str, list[str]] = {}
        for edge in self.edges:
            if edge.upstream in self.nodes and edge.downstream in self.nodes:
                after.setdefault(edge.upstream, []).append(edge.downstream)
        return topological(self.nodes, after)

    def resolve(self, text: str) -> str | None:
        """`Model/x` or a bare `x` (when only one kind has that name) -> the address."""
        if "/" in text:
            kind, name = Address.pair(text)
            kind = next((k for k in KIND_NAMES if k.lower() == kind.lower()), kind)  # `model/x` is fine
            return f"{kind}/{name}" if f"{kind}/{name}" in self.nodes else None
        matches = self._by_name.get(text, ())
        return matches[0] if len(matches) == 1 else None

    @cached_property
    def _by_name(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for address, node in self.nodes.items():
            out.setdefault(node.resource.name, []).append(address)
        return out


def topological(nodes: Iterable[str], after: Mapping[str, Iterable[str]]) -> list[str]:
    """Kahn's algorithm with a heap: every node after those that must come before it (`after[a]`
    lists what follows a), ties by name. Nodes on a cycle are left out; callers add them back."""
    import heapq

    waiting = dict.fromkeys(nodes, 0)
    for source, targets in after.items():
        for target in targets:
            if target in waiting and target != source:
                waiting[target] += 1
    ready = [node for node, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    out: list[str] = []
    while ready:
        node = heapq.heappop(ready)
        out.append(node)
        for target in after.get(node, ()):
            if target in waiting and target != node:
                waiting[target] -= 1
                if waiting[target] == 0:
                    heapq.heappush(ready, target)
    return out


def link(files: Mapping[str, FileSummary], locate: Locate = no_positions) -> tuple[SpecGraph, list[Diagnostic]]:
    """The whole graph: duplicates, references, cross-resource needs and cycles."""
    linker = _Linker(SpecGraph(), locate)
    for file, summary in files.items():
        for resource in summary.resources:
            linker.add(file, resource)
    for node in list(linker.graph.nodes.values()):
        linker.check(node, keep_edges=True)
    linker.diagnostics.extend(_cycle_diagnostics(linker.graph, locate))
    return linker.graph, linker.diagnostics


def relink(
    exports: Mapping[str, Exports], changed: Mapping[str, FileSummary], locate: Locate = no_positions
) -> list[Diagnostic]:
    """Re-check only the resources of `changed` files against what every file exports.

    Exact when the changed files export the same addresses and facts, and reference the same
    names, as before (the caller checks that): nothing another file sees has moved, and the edges,
    hence the cycles, are the same.
    """
    linker = _Linker(SpecGraph(), locate)
    mine: list[Node | None] = []
    # In file order, as `link` adds them: which node came first decides messages and hints.
    for file, items in exports.items():
        if file in changed:
            mine.extend(linker.add(file, resource) for resource in changed[file].resources)
        else:
            for kind, name, doc, facts in items:
                linker.add(file, ResourceSummary(kind, name, doc, (), (), facts))
    for file, summary in changed.items():
        if file not in exports:
            mine.extend(linker.add(file, resource) for resource in summary.resources)
    for node in mine:
        if node is not None:
            linker.check(node, keep_edges=False)
    return linker.diagnostics


class _Linker:
    def __init__(self, graph: SpecGraph, locate: Locate) -> None:
        self.graph = graph
        self.locate = locate
        self.diagnostics: list[Diagnostic] = []
        self._facts: dict[str, dict[str, tuple[str, ...]]] = {}  # per target, built once

    def add(self, file: str, resource: ResourceSummary) -> Node | None:
        nodes = self.graph.nodes
        first = nodes.get(resource.address)
        if first is not None:
            line = self.locate(first.file, first.resource.doc, NAME_LOC, False)[0]
            where = f"{first.file}:{line}" if line else first.file
            self.report(file, resource.doc, NAME_LOC, codes.DUPLICATE_ADDRESS,
                        f"`{resource.address}` is already declared at {where}",
                        hint="rename one of them: an address (Kind/name) must be unique")
            return None
        node = nodes[resource.address] = Node(resource.address, file, resource)
        return node

    def check(self, node: Node, *, keep_edges: bool) -> None:
        resource = node.resource
        for ref in resource.refs:
            target = self.resolve_ref(node, ref)
            if target is not None and keep_edges:
                self.graph.edges.append(Edge(target, node.address, node.file, resource.doc, ref.loc))
        resolved: dict[str, str | None] = {}  # a Model's needs all name its one Dataset
        for need in resource.needs:
            if need.ref not in resolved:
                resolved[need.ref] = self.graph.resolve(need.ref)
            target = resolved[need.ref]
            if target is None:
                continue
            facts = self._facts.get(target)
            if facts is None:
                facts = self._facts[target] = dict(self.graph.nodes[target].resource.facts)
            if need.fact not in facts:
                continue
            present = need.item in facts[need.fact]
            if need.forbidden and present:
                self.report(node.file, resource.doc, need.loc, codes.BAD_CROSS_REFERENCE,
                            f"`{need.item}` is a PII column of {target}: no model may use it as a feature",
                            hint="remove it from the features (the dataset drops or hashes it before training)")
            elif not need.forbidden and not present:
                known = list(facts[need.fact])
                self.report(node.file, resource.doc, need.loc, codes.BAD_CROSS_REFERENCE,
                            f"{target} has no {need.fact.rstrip('s')} `{need.item}`",
                            expected=f"one of {', '.join(known)}" if known else None,
                            hint=did_you_mean(need.item, known))

    def resolve_ref(self, node: Node, ref: RefUse) -> str | None:
        graph, allowed = self.graph, ref.kinds
        accepts = "resource" if len(allowed) == len(KIND_NAMES) else " or ".join(allowed)
        file, doc = node.file, node.resource.doc
        if "/" in ref.value:
            kind, name = Address.pair(ref.value)
            if kind not in KIND_NAMES or kind not in allowed:
                self.report(file, doc, ref.loc, codes.WRONG_KIND_REFERENCE,
                            f"`{ref.field_name}` takes a {accepts}, not a {kind}",
                            expected=accepts, hint=did_you_mean(kind, allowed))
                return None
            if ref.value in graph.nodes:
                return ref.value
            candidates = [Address(a).name for a in graph.nodes if a.startswith(kind + "/")]
            self.report(file, doc, ref.loc, codes.DANGLING_REFERENCE, f"no {kind} named `{name}`",
                        expected=f"a {kind} declared in the specs", hint=did_you_mean(name, candidates))
            return None
        name = ref.value
        owners = sorted(graph._by_name.get(name, []))
        matches = [a for a in owners if Address(a).kind in allowed]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            self.report(file, doc, ref.loc, codes.AMBIGUOUS_REFERENCE,
                        f"`{name}` names {' and '.join(sorted(matches))}",
                        hint=f"write the kind: {sorted(matches)[0]}")
            return None
        if owners:
            self.report(file, doc, ref.loc, codes.WRONG_KIND_REFERENCE,
                        f"`{name}` is a {owners[0].split('/', 1)[0]}, but `{ref.field_name}` takes a {accepts}",
                        expected=accepts)
            return None
        candidates = [Address(a).name for a in graph.nodes if Address(a).kind in allowed]
        self.report(file, doc, ref.loc, codes.DANGLING_REFERENCE, f"no {accepts} named `{name}`",
                    expected=f"a {accepts} declared in the specs", hint=did_you_mean(name, candidates))
        return None

    def report(self, file: str, doc: int, loc: Loc, code: str, message: str, **extra: Any) -> None:
        self.diagnostics.append(located(self.locate, file, doc, loc, code, message, **extra))


def _cycle_diagnostics(graph: SpecGraph, locate: Locate) -> Iterator[Diagnostic]:
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
        chain = [cycle[0].downstream, *(e.upstream for e in cycle)]
        if len(chain) > 12:  # a long cycle: its ends say where; the count says how long
            chain = [*chain[:6], f"... {len(chain) - 11} more ...", *chain[-5:]]
        shown = " -> ".join(chain)
        yield located(
            locate, closing.file, closing.doc, closing.loc, codes.CYCLE, f"dependency cycle: {shown}",
            hint="break the cycle by removing one of these references",
        )


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
