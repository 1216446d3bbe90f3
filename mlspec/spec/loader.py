"""Reading YAML spec files into plain values, with a source position for every value.

The only module that imports ruamel.yaml. Speed is the design constraint: a pre-commit hook reads
thousands of files. ruamel's round-trip loader keeps positions but parses ~150 documents/s here;
its C composer (libyaml, via ruamel.yaml.clib) builds the node tree, marks included, at ~4,500/s.
So we compose with C and build plain values from the nodes ourselves, which also lets us reject
what a spec must never contain (duplicate keys, arbitrary tags, alias bombs) in the same walk.
Positions cost nothing until a diagnostic asks: `Document.position(loc)` walks the node tree.

`load_plain` is a pre-screen for the common case, a valid single-document spec in plain YAML: the
Rust parser yaml_rs reads it ~10x faster. It is used only on text without anchors, aliases, tags,
merge keys, interpolation or directives, and only when the result is plain data, on which both
parsers agree (tests/spec/test_fast_path.py checks that); the caller still validates it, and any
file with any problem goes through `load_text`, the authority on values and positions.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml.cyaml import CParser  # type: ignore[attr-defined]
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import BaseResolver
from ruamel.yaml.tag import Tag

from mlspec.spec import codes
from mlspec.spec.diagnostics import Diagnostic, Severity, format_field

_fast: Any
try:
    import yaml_rs as _fast
except ImportError:  # optional accelerator: everything works without it, slower
    _fast = None

MAX_DEPTH = 100  # nesting levels; real specs use about ten
MAX_ALIAS_EXPANSION = 10_000  # nodes reached again through aliases, per document
# libyaml's composer recurses in C: very deep input (~40k levels) crashes the process, so input that
# *could* be that deep is measured with the (iterative) event parser before it is composed.
_COMPOSE_DEPTH_GUARD = 2_000

_T = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = _T + "str", _T + "int", _T + "float", _T + "bool", _T + "null"
_MAP, _SEQ, _MERGE, _TIMESTAMP = _T + "map", _T + "seq", _T + "merge", _T + "timestamp"
# Untagged nodes, as our resolver marks them: implicit typing happens in `_Walk.scalar`.
_PLAIN, _QUOTED, _IMPLICIT_MAP, _IMPLICIT_SEQ = "?plain", "?quoted", "?map", "?seq"

# YAML 1.2 core schema, the resolution ruamel.yaml applies by default (`yes` stays a string).
_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT_RE = re.compile(r"[-+]?[0-9][0-9_]*|0o[0-7_]+|0x[0-9a-fA-F_]+")
_FLOAT_RE = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)
_MAYBE_TYPED = frozenset("0123456789+-.~nNtTfF")


class _Loader(CParser, BaseResolver):  # type: ignore[misc]
    """libyaml's composer with a resolver that only records plain/quoted.

    ruamel's own resolver runs Python regexes and builds Tag objects for every scalar; resolving
    the core schema ourselves, only for plain scalars that can be typed, is several times cheaper.
    """

    def __init__(self, stream: str) -> None:
        CParser.__init__(self, stream)
        BaseResolver.__init__(self)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Tag:
        # Shared Tag objects: ruamel's Node.__init__ builds a new Tag for anything that is not one.
        if kind is ScalarNode:
            return _PLAIN_TAG if implicit[0] else _QUOTED_TAG
        return _MAP_TAG if kind is MappingNode else _SEQ_TAG


_PLAIN_TAG, _QUOTED_TAG = Tag(suffix=_PLAIN), Tag(suffix=_QUOTED)
_MAP_TAG, _SEQ_TAG = Tag(suffix=_IMPLICIT_MAP), Tag(suffix=_IMPLICIT_SEQ)


def _tag(node: Node) -> str:
    return str(node.ctag.suffix) if node.ctag.handle is None else str(node.ctag)

ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
_INTERPOLATION_START = re.compile(r"(?<!\$)\$\{")

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Position:
    line: int  # 1-based
    col: int  # 1-based
    width: int = 1


@dataclass(slots=True)
class Document:
    """One YAML document: its plain value and the node tree that knows where each value came from."""

    index: int
    data: Any
    node: Node
    # id(mapping node) -> its keys: built on the first lookup in a mapping, so that positioning every
    # one of 20,000 diagnostics in one mapping costs a dict lookup each, not a scan of the mapping.
    _keys: dict[int, dict[str, tuple[Node, Node]]] = field(default_factory=dict, repr=False, compare=False)
    text: str = field(default="", repr=False, compare=False)  # the file's text (shared, not copied)

    def position(self, loc: Loc, *, key: bool = False) -> Position:
        """Where the value at `loc` is written; with `key=True`, where its key is.

        When `loc` goes further than the document does (a missing field), the deepest existing
        node on the way is the answer: the user has to add the field there.
        """
        node, key_node = self.node, None
        for part in loc:
            found = self._child(node, part)
            if found is None:
                break
            key_node, node = found
        target = key_node if (key and key_node is not None) else node
        return _position(target)

    def inside(self, loc: Loc, line: int, col: int) -> Position:
        """Where (line, col) of the string at `loc` is in the file: a problem inside an inline template.
        A block scalar (`|`, `>`) starts on the line after its indicator, at the indentation of its
        first line; a quoted scalar one column after its quote."""
        node = self.node
        for part in loc:
            found = self._child(node, part)
            if found is None:
                return _position(node)
            node = found[1]
        if not isinstance(node, ScalarNode):
            return _position(node)
        start, rows = node.start_mark, self.text.split("\n")
        if node.style in ("|", ">") and start.line + line < len(rows):
            first = start.line + 1  # 0-based: the block's first line
            indent = next((len(r) - len(r.lstrip(" ")) for r in rows[first:first + 200] if r.strip()), start.column)
            row, at = first + line, indent + col
        elif line == 1 and node.style != ">":
            row, at = start.line + 1, start.column + col + (1 if node.style in ("'", '"') else 0)
        else:  # a quoted or plain scalar over several lines: its lines are not the template's
            return _position(node)
        return Position(row, min(at, len(rows[row - 1]) + 1)) if 0 < row <= len(rows) else _position(node)

    def _child(self, node: Node, part: str | int) -> tuple[Node | None, Node] | None:
        if not isinstance(node, MappingNode) or not isinstance(part, str):
            return _child(node, part)
        keys = self._keys.get(id(node))
        if keys is None:
            keys = {}
            for key_node, value_node in node.value:
                if isinstance(key_node, ScalarNode) and not _is_merge_key(key_node):
                    keys.setdefault(str(key_node.value), (key_node, value_node))
            self._keys[id(node)] = keys
        found = keys.get(part)
        return found if found is not None else _child(node, part)  # through merge keys, as before


@dataclass(slots=True)
class LoadedFile:
    documents: list[Document] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


class _Reject(Exception):
    """A value the walk refuses; carries the diagnostic for it."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic


def decode(raw: bytes, file: str) -> tuple[str | None, Diagnostic | None]:
    """Bytes to text, or the reason a file is not a spec (binary, not UTF-8)."""
    if b"\x00" in raw[:8192]:
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            return None, Diagnostic(
                codes.NOT_UTF8, "file is UTF-16, not UTF-8", file, 1, 1,
                hint="re-save the file as UTF-8",
            )
        return None, Diagnostic(
            codes.BINARY_FILE, "binary file matched by the spec globs", file, 1, 1,
            severity=Severity.ERROR, hint="narrow `specs` in mlspec.yaml or move the file out of the spec tree",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        line_start = raw.rfind(b"\n", 0, err.start) + 1
        col = len(raw[line_start : err.start].decode("utf-8", errors="replace")) + 1  # characters, not bytes
        return None, Diagnostic(
            codes.NOT_UTF8, f"invalid UTF-8 byte 0x{raw[err.start]:02x}", file, line, col,
            expected="UTF-8 text", hint="re-save the file as UTF-8",
        )
    return text.removeprefix("\ufeff"), None


def _line_break_diagnostic(text: str, file: str) -> Diagnostic | None:
    odd = _odd_line_break(text)
    if odd is None:
        return None
    line = text.count("\n", 0, odd) + 1
    col = odd - (text.rfind("\n", 0, odd) + 1) + 1
    name = {"\r": "a carriage return without a newline", "\x85": "U+0085 (NEL)",
            "\u2028": "U+2028 (LINE SEPARATOR)", "\u2029": "U+2029 (PARAGRAPH SEPARATOR)"}[text[odd]]
    return Diagnostic(
        codes.AMBIGUOUS_LINE_BREAK, f"{name}: YAML tools disagree on whether it ends a line", file, line, col,
        expected="\\n or \\r\\n line endings",
        hint="convert the line endings to \\n; inside a quoted string, write the escape instead",
    )


def _odd_line_break(text: str) -> int | None:
    """Offset of the first line break other than \\n and \\r\\n, or None (the usual case, cheaply)."""
    offsets = [i for i in (text.find("\x85"), text.find("\u2028"), text.find("\u2029")) if i != -1]
    if "\r" in text:
        start = 0
        while (i := text.find("\r", start)) != -1:
            if not text.startswith("\n", i + 1):
                offsets.append(i)
                break
            start = i + 2
    return min(offsets) if offsets else None


# Constructs where yaml_rs and this loader differ (merge keys, tags), or that need this loader's
# limits and checks (aliases, interpolation), or several documents: all go to load_text.
_ANCHOR_ALIAS_TAG = re.compile(r"(?:^|[\s\[{,])[&*!]", re.MULTILINE)
# Escapes (libyaml refuses surrogate pairs that yaml_rs joins), tabs (libyaml refuses some that
# yaml_rs allows) and characters YAML does not allow in a document also go the slow way.
_OTHER_MARKERS = ("<<", "${", "\n%", "\n...", "\\", "\t")
# Fast-path text is written in this alphabet only (anything else, e.g. `|`, `@`, `?`, `&`, `*`, `!`,
# `%`, `\`, tabs, non-ASCII, goes the slow way), and its flow collections follow a small grammar:
# simple keys, word-like or simply quoted scalars, one level of nesting. The two parsers disagree
# on corner cases of flow style (`{:0}`, `{|}`, a flow mapping across lines); not on these.
# Numerals the parsers read differently (yaml_rs: `0b101`, `_5`, `1__0` are ints; YAML 1.2 core: strings).
_ODD_NUMERAL = re.compile(r"\d_|_\d|0[bB]")
_COMMENT = re.compile(r"(?:^|(?<= ))#[^\n]*", re.MULTILINE)  # checked without comments: any text goes there
_FAST_ALPHABET = re.compile(r"[A-Za-z0-9 \n_.,:/'\"=<>+\-\[\]{}#()]*")
_SCALAR = r"""(?:"[^"\\\n]*"|'[^'\n]*'|[A-Za-z0-9_][A-Za-z0-9_.+\-/ =<>()]*)"""
_LIST = rf"\[ *(?:{_SCALAR} *(?:, *{_SCALAR} *)*)?\]"
_PAIR = rf"[A-Za-z_][A-Za-z0-9_.\-]*: +(?:{_SCALAR}|{_LIST})"
_MAP = rf"\{{ *(?:{_PAIR} *(?:, *{_PAIR} *)*)?\}}"
_ITEM = rf"(?:{_SCALAR}|{_MAP})"
_SIMPLE_FLOW = re.compile(rf"(?<=: )(?:{_MAP}|\[ *(?:{_ITEM} *(?:, *{_ITEM} *)*)?\]) *(?:#[^\n]*)?$", re.MULTILINE)
_NOT_PRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufeff\ufffe\uffff]")


def load_plain(text: str) -> dict[str, Any] | None:
    """The one mapping document of `text`, read fast, or None where yaml_rs and `load_text` might
    disagree (then use `load_text`). Where it answers, its data is `load_text`'s, except values that
    validation refuses from either (dates, non-string keys): so the verdict is the same."""
    if _fast is None or text.startswith(("%", "...")) or any(m in text for m in _OTHER_MARKERS):
        return None
    if ("&" in text or "*" in text or "!" in text) and _ANCHOR_ALIAS_TAG.search(text):
        return None
    if _NOT_PRINTABLE.search(text) or _odd_line_break(text) is not None:
        return None
    content = _COMMENT.sub("", text) if "#" in text else text
    if not _FAST_ALPHABET.fullmatch(content) or _ODD_NUMERAL.search(content):
        return None
    if ("{" in content or "[" in content) and any(c in _SIMPLE_FLOW.sub("", content) for c in "{}[]"):
        return None
    try:
        data = _fast.loads(text)
    except Exception:
        return None
    # Dates, non-string keys and deep nesting are left for validation to refuse (strict types and
    # FreeForm's depth bound), exactly as it refuses them from load_text.
    return data if isinstance(data, dict) else None


def load_text(text: str, file: str) -> LoadedFile:
    """Parse every document of a YAML stream. Never raises for bad input: it becomes diagnostics."""
    out = LoadedFile()
    # libyaml counts these as line breaks in some places and not in others, so no position after
    # one could be trusted; they are never written on purpose.
    odd = _line_break_diagnostic(text, file)
    if odd is not None:
        out.diagnostics.append(odd)
        return out
    too_deep = _nesting_beyond_limit(text, file)
    if too_deep is not None:
        out.diagnostics.append(too_deep)
        return out
    loader = _Loader(text)  # no dispose(): it only matters to the pure-Python parser, and costs 30%
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - defensive; check_node said there is one
                break
            _load_document(node, index, file, out, text)
            index += 1
    except MarkedYAMLError as err:
        out.diagnostics.append(_syntax_diagnostic(err, text, file))
    except (YAMLError, RecursionError, ValueError) as err:  # unmarked parser failures
        out.diagnostics.append(Diagnostic(codes.YAML_SYNTAX, f"invalid YAML: {err}", file, 1, 1))
    out.diagnostics = [_clamped(d, text) for d in out.diagnostics]
    if index == 0 and not out.diagnostics:
        out.diagnostics.append(
            Diagnostic(
                codes.EMPTY_FILE, "file holds no YAML document", file, 1, 1,
                expected="a document such as `apiVersion: mlspec/v1`, `kind: ...`",
                hint="delete the file or add a spec to it",
            )
        )
    return out


def _load_document(node: Node, index: int, file: str, out: LoadedFile, text: str = "") -> None:
    pos = _position(node)
    if isinstance(node, ScalarNode) and _tag(node) in (_PLAIN, _NULL) and node.value in _NULLS:
        out.diagnostics.append(
            Diagnostic(
                codes.EMPTY_DOCUMENT, "empty document", file, pos.line, pos.col,
                severity=Severity.WARNING, doc=index, hint="remove the extra `---`",
            )
        )
        return
    if not isinstance(node, MappingNode):
        what = "a list" if isinstance(node, SequenceNode) else f"the scalar {str(node.value)[:40]!r}"
        out.diagnostics.append(
            Diagnostic(
                codes.NOT_A_MAPPING, f"document is {what}, not a mapping", file, pos.line, pos.col,
                expected="a mapping with apiVersion, kind, metadata and spec", doc=index,
            )
        )
        return
    walk = _Walk(file, index, node)
    try:
        data = walk.value(node, 0, False)
    except _Reject as rejected:
        out.diagnostics.append(rejected.diagnostic)
        return
    # Recoverable findings (duplicate keys, bad interpolation) are reported, and the document is
    # still checked, so its other errors show in the same pass.
    out.diagnostics.extend(walk.diagnostics)
    out.documents.append(Document(index, data, node, text=text))


class _Walk:
    """Builds plain values from one document's nodes, collecting every recoverable problem."""

    __slots__ = ("alias_budget", "diagnostics", "doc", "file", "root", "seen")

    def __init__(self, file: str, doc: int, root: Node | None = None) -> None:
        self.file, self.doc, self.root = file, doc, root
        self.seen: set[int] = set()
        self.alias_budget = MAX_ALIAS_EXPANSION
        self.diagnostics: list[Diagnostic] = []

    def value(self, node: Node, depth: int, via_alias: bool) -> Any:
        if depth >= MAX_DEPTH and not isinstance(node, ScalarNode):  # same count as the event scan
            raise _Reject(self._diag(node, codes.YAML_TOO_COMPLEX, f"nesting deeper than {MAX_DEPTH} levels"))
        ident = id(node)
        if ident in self.seen:
            via_alias = True
        else:
            self.seen.add(ident)
        if via_alias:
            self.alias_budget -= 1
            if self.alias_budget < 0:
                raise _Reject(
                    self._diag(
                        node, codes.YAML_TOO_COMPLEX,
                        f"aliases expand to more than {MAX_ALIAS_EXPANSION:,} nodes (a YAML alias bomb?)",
                        hint="write the values out, or use fewer nested aliases",
                    )
                )
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if isinstance(node, MappingNode):
            if _tag(node) not in (_IMPLICIT_MAP, _MAP):
                raise _Reject(self._unsupported_tag(node))
            return self.mapping(node, depth, via_alias)
        if isinstance(node, SequenceNode):
            if _tag(node) not in (_IMPLICIT_SEQ, _SEQ):
                raise _Reject(self._unsupported_tag(node))
            return [self.value(item, depth + 1, via_alias) for item in node.value]
        raise _Reject(self._diag(node, codes.YAML_SYNTAX, "unexpected YAML node"))  # pragma: no cover

    def mapping(self, node: MappingNode, depth: int, via_alias: bool) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        first_seen: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if _is_merge_key(key_node):
                for source in self._merge_sources(value_node):
                    # through value(): a mapping that merges itself must hit the depth limit
                    for k, v in self.value(source, depth + 1, True).items():
                        merged.setdefault(k, v)
                continue
            if not isinstance(key_node, ScalarNode):
                raise _Reject(
                    self._diag(
                        key_node, codes.NON_STRING_KEY, "a mapping key must be a plain string",
                        hint="complex keys (`? [a, b]`) are not supported in specs",
                    )
                )
            key = str(key_node.value)
            if key in first_seen:
                first = _position(first_seen[key])
                self.diagnostics.append(
                    self._diag(
                        key_node, codes.DUPLICATE_KEY, f"duplicate key `{key}` (first defined at line {first.line})",
                        hint="remove one of them; YAML would silently keep only the last",
                    )
                )
                continue
            first_seen[key] = key_node
            result[key] = self.value(value_node, depth + 1, via_alias)
        if merged:
            for k, v in result.items():
                merged[k] = v
            return merged
        return result

    def _merge_sources(self, node: Node) -> Iterator[MappingNode]:
        if isinstance(node, MappingNode):
            yield node
            return
        if isinstance(node, SequenceNode) and all(isinstance(n, MappingNode) for n in node.value):
            yield from node.value
            return
        raise _Reject(self._diag(node, codes.YAML_SYNTAX, "`<<` merges a mapping or a list of mappings"))

    def scalar(self, node: ScalarNode) -> Any:
        tag, text = _tag(node), node.value
        if tag == _PLAIN:
            if not text:
                return None
            if text[0] in _MAYBE_TYPED:
                typed = _plain_typed(text)
                if typed is not _UNTYPED:
                    return typed
            tag = _STR
        if tag in (_QUOTED, _STR):
            if "${" in text:
                self._check_interpolation(node, text)
                return text.replace("$${", "${")  # `$${` is the escape for a literal `${`
            return text
        return self._tagged(node, tag, text)

    def _tagged(self, node: ScalarNode, tag: str, text: str) -> Any:
        """A scalar with an explicit core-schema tag (`!!int 3`): its value, or why it has none."""
        if tag == _INT:
            return _int(text)
        if tag == _FLOAT:
            return _float(text)
        if tag == _BOOL:
            lowered = text.lower()
            if lowered in ("true", "yes", "on", "y", "false", "no", "off", "n"):
                return lowered in ("true", "yes", "on", "y")
            raise _Reject(self._diag(node, codes.WRONG_TYPE, f"`{text}` is not a boolean",
                                     expected="true or false"))
        if tag == _NULL:
            return None
        if tag == _TIMESTAMP:
            return text  # kept as written; fields that want dates parse them
        raise _Reject(self._unsupported_tag(node))

    def _check_interpolation(self, node: ScalarNode, text: str) -> None:
        for match in _INTERPOLATION_START.finditer(text):
            if ENV_REF.match(text, match.start()) is None:
                end = text.find("}", match.start())
                snippet = text[match.start() : end + 1 if end != -1 else len(text)]
                self.diagnostics.append(
                    self._diag(
                        node, codes.BAD_INTERPOLATION, f"malformed reference `{snippet}`",
                        expected="${env:NAME} with NAME made of letters, digits and _",
                        hint="write `$${` for a literal `${`",
                    )
                )
                return

    def _unsupported_tag(self, node: Node) -> Diagnostic:
        tag = _tag(node).replace(_T, "!!")
        return self._diag(
            node, codes.UNSUPPORTED_TAG, f"unsupported YAML tag `{tag}`",
            expected="plain YAML values (strings, numbers, booleans, null, lists, mappings)",
            hint="remove the tag; specs never construct objects",
        )

    def _diag(self, node: Node, code: str, message: str, **extra: Any) -> Diagnostic:
        pos = _position(node)
        path = _path_to(self.root, node) if self.root is not None else None
        field = format_field(path) if path else None
        return Diagnostic(code, message, self.file, pos.line, pos.col, field=field, doc=self.doc,
                          width=pos.width, **extra)


_UNTYPED = object()  # a plain scalar that resolves to no null, bool, int or float: a string


def _plain_typed(text: str) -> Any:
    """A plain scalar that may be a null, a bool, an int or a float (YAML 1.2 core schema), or _UNTYPED."""
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if _INT_RE.fullmatch(text):
        return _int(text)
    if _FLOAT_RE.fullmatch(text):
        return _float(text)
    return _UNTYPED


def _int(text: str) -> int | str:
    digits = text.replace("_", "")
    try:
        body = digits.lstrip("+-")
        if body[:2].lower() in ("0x", "0o", "0b"):
            return int(digits, 0)
        return int(digits, 10)
    except ValueError:
        return text


def _float(text: str) -> float | str:
    lowered = text.replace("_", "").lower()
    if lowered.endswith((".inf", ".nan")):
        sign = -1.0 if lowered.startswith("-") else 1.0
        return sign * float("inf") if lowered.endswith("inf") else float("nan")
    try:
        return float(lowered)
    except ValueError:
        return text


def _path_to(root: Node, target: Node) -> Loc | None:
    """The field path of `target` (a key's path is its own): only computed for a diagnostic."""
    stack: list[tuple[Node, Loc]] = [(root, ())]
    seen: set[int] = set()
    while stack:
        node, loc = stack.pop()
        if node is target:
            return loc
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                key = str(key_node.value) if isinstance(key_node, ScalarNode) else "?"
                if key_node is target:
                    return (*loc, key)
                stack.append((value_node, (*loc, key)))
        elif isinstance(node, SequenceNode):
            stack.extend((item, (*loc, i)) for i, item in enumerate(node.value))
    return None


def _is_merge_key(node: Node) -> bool:
    tag = _tag(node)
    return (tag == _PLAIN and node.value == "<<") or tag == _MERGE


def _child(node: Node, part: str | int) -> tuple[Node | None, Node] | None:
    """The (key node, value node) under `node` at `part`, following merge keys."""
    if isinstance(node, MappingNode) and isinstance(part, str):
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if _is_merge_key(key_node):
                merges.append(value_node)
            elif isinstance(key_node, ScalarNode) and str(key_node.value) == part:
                return key_node, value_node
        for merge in merges:
            sources = merge.value if isinstance(merge, SequenceNode) else [merge]
            for source in sources:
                found = _child(source, part)
                if found is not None:
                    return found
        return None
    if isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return None, node.value[part]
    return None


def _position(node: Node) -> Position:
    start, end = node.start_mark, node.end_mark
    width = end.column - start.column if end.line == start.line and end.column > start.column else 1
    return Position(start.line + 1, start.column + 1, width)


def _syntax_diagnostic(err: MarkedYAMLError, text: str, file: str) -> Diagnostic:
    mark = err.problem_mark or err.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = err.problem or "invalid YAML"
    offending = _char_at(text, line, col)
    if offending == "\t":
        return Diagnostic(
            codes.YAML_TAB, "tab character where YAML needs spaces", file, line, col,
            expected="spaces for indentation", hint="replace tabs with spaces (set your editor to insert spaces)",
        )
    context = f" ({err.context} at line {err.context_mark.line + 1})" if err.context and err.context_mark else ""
    return Diagnostic(codes.YAML_SYNTAX, f"invalid YAML: {problem}{context}", file, line, col)


def _clamped(d: Diagnostic, text: str) -> Diagnostic:
    """libyaml marks the end of input one line past the last: show it at the end of the last line."""
    if d.line is None:
        return d
    rows = text.split("\n")
    if len(rows) > 1 and rows[-1] == "":
        rows.pop()
    if d.line <= len(rows):
        return d
    last = len(rows)
    return dataclasses.replace(d, line=last, col=len(rows[-1]) + 1 if rows else 1)


def _char_at(text: str, line: int, col: int) -> str:
    lines = text.split("\n", line)
    if len(lines) < line:
        return ""
    row = lines[line - 1]
    return row[col - 1] if 0 < col <= len(row) else ""


def _nesting_beyond_limit(text: str, file: str) -> Diagnostic | None:
    """Measure nesting with the event parser when the text could nest deep enough to crash libyaml."""
    if len(text) < _COMPOSE_DEPTH_GUARD // 3:
        return None
    widest = max(map(len, text.splitlines()), default=0)
    if text.count("[") + text.count("{") + 2 * widest < _COMPOSE_DEPTH_GUARD:
        return None
    loader = _Loader(text)
    depth = 0
    try:
        while True:
            event = loader.get_event()
            name = type(event).__name__
            if name in ("MappingStartEvent", "SequenceStartEvent"):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    return Diagnostic(
                        codes.YAML_TOO_COMPLEX, f"nesting deeper than {MAX_DEPTH} levels", file,
                        mark.line + 1, mark.column + 1,
                    )
            elif name in ("MappingEndEvent", "SequenceEndEvent"):
                depth -= 1
            elif name == "StreamEndEvent":
                return None
    except YAMLError:
        return None  # the composer will report the syntax error with its position
