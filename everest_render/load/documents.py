"""Stage 1, load: source texts -> YAML documents that remember where each value was written.

Positions live beside the data (in `Positions`), never inside it, so later stages see plain
dicts and lists. Reading the files is `load.files`; this module touches no file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from everest_render.diagnostics import Diagnostic, ObjectPath

BUILTIN_PREFIX = "<built-in>/"  # how diagnostics name files shipped inside the package


@dataclass(frozen=True)
class Position:
    line: int
    column: int


@dataclass
class Positions:
    """Where each value (and each mapping key) of one document was written."""

    values: dict[ObjectPath, Position] = field(default_factory=dict)
    keys: dict[ObjectPath, Position] = field(default_factory=dict)
    # Only for a document translated from another kind (eras/): the path in the file
    # that a path of the data came from. A path not listed takes its closest listed ancestor's.
    origins: dict[ObjectPath, ObjectPath] = field(default_factory=dict)

    def value(self, path: ObjectPath) -> Position:
        """The value at ``path``, or the closest ancestor that exists."""
        while path not in self.values and path:
            path = path[:-1]
        return self.values.get(path, Position(1, 1))

    def key(self, path: ObjectPath) -> Position:
        """The key that names ``path`` (for unknown or duplicate fields), else its value."""
        return self.keys.get(path) or self.value(path)

    def mapping(self, path: ObjectPath) -> Position:
        """The mapping at ``path``, pointed at by its own key (for a field it lacks)."""
        return self.keys.get(path) or self.value(path)

    def written(self, path: ObjectPath) -> ObjectPath:
        """``path`` as the file spells it (differs only in a translated document)."""
        if not self.origins:
            return path
        for cut in range(len(path), -1, -1):
            origin = self.origins.get(path[:cut])
            if origin is not None:
                return (*origin, *path[cut:])
        return path


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative to the repository root, with forward slashes
    text: str


@dataclass(frozen=True)
class Document:
    """One YAML document of a source file."""

    source: SourceFile
    index: int
    data: Any
    positions: Positions

    def at(self, path: ObjectPath, message: str, *, key: bool = False) -> Diagnostic:
        """A diagnostic located at ``path`` in this document."""
        pos = self.positions.key(path) if key else self.positions.value(path)
        return Diagnostic(self.source.path, pos.line, pos.column, message, self.positions.written(path))

    def missing(self, path: ObjectPath, message: str) -> Diagnostic:
        pos = self.positions.mapping(path)
        return Diagnostic(self.source.path, pos.line, pos.column, message, self.positions.written(path))


_STR, _INT, _BOOL, _NULL = (f"tag:yaml.org,2002:{t}" for t in ("str", "int", "bool", "null"))


class _InputLoader(yaml.CSafeLoader):
    """YAML 1.1 as PyYAML reads it, minus timestamps: a date-like value stays a string.

    Tag resolution is memoised per plain value: libyaml calls back into Python for every
    scalar, and rendered manifests repeat the same few values thousands of times."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode:
            if not implicit[0]:
                return _STR  # quoted: always a string
            tag = _PLAIN_TAGS.get(value)
            if tag is None:
                tag = _PLAIN_TAGS[value] = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
            return tag
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]


_InputLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
}

_SCALARS = yaml.constructor.SafeConstructor()
_PLAIN_TAGS: dict[str, str] = {}
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_DECIMAL = frozenset("0123456789")


def _scalar(node: yaml.Node) -> Any:
    """A scalar's value. The common tags are built here directly (PyYAML's generic
    constructor is the hot spot of every load); anything unusual goes to PyYAML."""
    tag, value = node.tag, node.value
    if tag == _STR:
        return value
    if tag == _INT and value and set(value) <= _DECIMAL and (value == "0" or value[0] != "0"):
        return int(value)
    if tag == _BOOL and value in _BOOLS:
        return _BOOLS[value]
    if tag == _NULL:
        return None
    return _SCALARS.construct_object(node)


def compose_stream(text: str) -> list[yaml.Node]:
    """The node trees of a YAML stream (libyaml), empty documents dropped."""
    loader = _InputLoader(text)
    try:
        nodes = []
        while loader.check_node():
            node = loader.get_node()
            if node is not None and not _is_empty(node):
                nodes.append(node)
        return nodes
    finally:
        loader.dispose()


def node_value(node: yaml.Node) -> Any:
    """Plain Python data from a node tree, without positions (for trusted, generated YAML)."""
    if isinstance(node, yaml.MappingNode):
        return {_scalar(k) if isinstance(k, yaml.ScalarNode) else node_value(k): node_value(v) for k, v in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [node_value(item) for item in node.value]
    return _scalar(node)


def parse_yaml(source: SourceFile) -> tuple[list[Document], list[Diagnostic]]:
    """Every non-empty document of ``source``; a parse error ends that file, not the run."""
    documents: list[Document] = []
    diagnostics: list[Diagnostic] = []
    loader = _InputLoader(source.text)
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            if node is not None and not _is_empty(node):
                positions = Positions()
                try:
                    data = _construct(node, (), positions, source.path, diagnostics)
                except (_TooLarge, RecursionError) as error:
                    where = _mark(node)
                    too_large = f"document too large: more than {MAX_VALUES} values (aliases expanding?)"
                    message = too_large if isinstance(error, _TooLarge) else "document nested too deeply"
                    diagnostics.append(Diagnostic(source.path, where.line, where.column, message))
                else:
                    documents.append(Document(source, index, data, positions))
            index += 1
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = error.problem or error.context or "invalid YAML"
        diagnostics.append(Diagnostic(source.path, line, column, f"invalid YAML: {problem}"))
    except yaml.YAMLError as error:
        diagnostics.append(Diagnostic(source.path, 1, 1, f"invalid YAML: {error}"))
    finally:
        loader.dispose()
    return documents, diagnostics


def _is_empty(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _mark(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


# A cluster file holds a few hundred values; this many means aliases expanding out of control.
MAX_VALUES = 100_000


class _TooLarge(Exception):
    pass


def _construct(node: yaml.Node, path: ObjectPath, positions: Positions, file: str, diagnostics: list[Diagnostic]) -> Any:
    positions.values[path] = _mark(node)
    if len(positions.values) > MAX_VALUES:
        raise _TooLarge
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        first_seen: dict[Any, Position] = {}
        for key_node, value_node in node.value:
            plain = isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge"
            key = _scalar(key_node) if plain else None
            if not isinstance(key, str | int | bool | float):
                pos = _mark(key_node)
                diagnostics.append(Diagnostic(file, pos.line, pos.column, "mapping keys must be plain scalars", path))
                continue
            child = (*path, str(key))
            if key in first_seen:
                pos, first = _mark(key_node), first_seen[key]
                diagnostics.append(Diagnostic(file, pos.line, pos.column, f"duplicate key {key!r} (first at line {first.line})", child))
                continue
            first_seen[key] = positions.keys[child] = _mark(key_node)
            result[key] = _construct(value_node, child, positions, file, diagnostics)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), positions, file, diagnostics) for i, item in enumerate(node.value)]
    return _scalar(node)


def load_documents(sources: list[SourceFile]) -> tuple[list[Document], list[Diagnostic]]:
    documents: list[Document] = []
    diagnostics: list[Diagnostic] = []
    for source in sources:
        docs, problems = parse_yaml(source)
        documents.extend(docs)
        diagnostics.extend(problems)
    return documents, diagnostics
