"""Stage 1, load: source texts -> YAML documents that remember where each value was written.

Positions live beside the data (in `Positions`), never inside it, so later stages see plain
dicts and lists. Reading the files is `load.files`; this module touches no file. A file's
name and text (`SourceFile`) and the characters no text may hold are `load.text`'s, which
loads no YAML library; they are named here too, where most of the package finds them.
"""

from __future__ import annotations

import math
import sys
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import yaml

from everest_render.diagnostics import Diagnostic, ObjectPath
from everest_render.load.text import CONTROL, SourceFile, character_problem, text_problems
from everest_render.yaml_readings import other_reading


@dataclass(frozen=True)
class Position:
    """A line and column in a file, from 1."""

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


class DeferredPositions(Positions):
    """Positions found only when first asked for, by `find`: most documents are never asked
    (a problem, a pinned release or a translation asks), and the positions of a fleet's
    documents held from load to the end would be a third of a large render's memory."""

    def __init__(self, origins: dict[ObjectPath, ObjectPath] | None = None) -> None:
        self.origins = origins if origins is not None else {}

    def find(self) -> Positions:
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        # Called only for an attribute not set yet: ``values`` and ``keys`` before the first use.
        if name not in ("values", "keys"):
            raise AttributeError(name)
        found = self.find()
        self.values, self.keys = found.values, found.keys
        return getattr(self, name)


class ReloadedPositions(DeferredPositions):
    """A loaded document's positions, found by loading its file's text again: the same text
    through the same code gives the same positions."""

    def __init__(self, source: SourceFile, index: int) -> None:
        super().__init__()
        self.source, self.index = source, index

    def find(self) -> Positions:
        return positions_of(self.source, self.index)


@dataclass(frozen=True)
class Document:
    """One YAML document of a source file."""

    source: SourceFile
    index: int
    data: Any
    positions: Positions
    # Some value could not be loaded (reported by load): later stages skip the document
    # rather than report what its placeholder lacks.
    refused: bool = False

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
_FLOAT, _MAP, _SEQ = (f"tag:yaml.org,2002:{t}" for t in ("float", "map", "seq"))
# Plain `<<` and `=` resolve to these YAML 1.1 tags; as values they mean the text itself.
_AS_TEXT = frozenset({"tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"})
_TYPE_NAMES = {_INT: "an integer", _BOOL: "a boolean", _NULL: "null", _FLOAT: "a number"}
# Kubernetes integers are int64; a longer literal is refused before Python converts it.
MAX_INTEGER = 2**63 - 1


class _Resolver(yaml.resolver.Resolver):
    """What a plain scalar means without a tag (the loader's rules, without timestamps)."""


_Resolver.yaml_implicit_resolvers = {}  # set below, with the loader's
_RESOLVER: _Resolver


def _implicit_tag(value: str) -> str:
    tag = _PLAIN_TAGS.get(value)
    if tag is None:
        tag = _PLAIN_TAGS[value] = _RESOLVER.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    return tag


class Refused(Exception):
    """A value YAML can write but the model cannot hold; the message says which and why."""


def _short(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


def _scalar(node: yaml.Node) -> Any:
    """A scalar's value. The common tags are built here directly (PyYAML's generic
    constructor is the hot spot of every load); anything unusual goes to PyYAML, after the
    checks that keep out what the model cannot hold (raises Refused)."""
    tag, value = node.tag, node.value
    plain = getattr(node, "style", "") == ""
    if tag == _STR:
        if not plain and CONTROL.search(value):
            raise Refused(character_problem(value) or "")
        return value
    if tag == _INT and plain and value and set(value) <= _DECIMAL and (value == "0" or value[0] != "0") and len(value) < 19:
        return int(value)
    if tag == _BOOL and plain and value in _BOOLS:
        return _BOOLS[value]
    if tag == _NULL and plain:
        return None
    implicit = _implicit_tag(value) if plain else _STR
    if tag != implicit:
        raise Refused(f"explicit tag {_short(tag)} is not supported: write the value without a tag (quoted, for a string)")
    if tag in _AS_TEXT:
        return value
    if tag == _INT:
        if len(value.replace("_", "")) > 25:
            raise Refused(f"integer {value[:20]}... does not fit in 64 bits")
        number = _SCALARS.construct_object(node)
        if not -MAX_INTEGER - 1 <= number <= MAX_INTEGER:
            raise Refused(f"integer {value} does not fit in 64 bits")
        return number
    result = _SCALARS.construct_object(node)
    if isinstance(result, float) and not math.isfinite(result):
        raise Refused(f"{value} is not a finite number")
    return result


# Keys by (tag, spelling, style), or why each is refused: an input fleet writes the same few
# hundred keys again and again (bounded, so that a huge fleet's keys do not pile up).
_KEYS: dict[tuple[str, str, Any], str | Refused] = {}
_KEYS_REMEMBERED = 50_000


def _key(node: yaml.Node) -> str:
    """A mapping key: a string, written plainly or quoted (raises Refused)."""
    if not isinstance(node, yaml.ScalarNode):
        raise Refused("mapping keys must be plain strings (no merge keys, no collections)")
    spelling = (node.tag, node.value, getattr(node, "style", ""))
    key = _KEYS.get(spelling)
    if key is None:
        if len(_KEYS) >= _KEYS_REMEMBERED:
            _KEYS.clear()
        try:
            # Interned too: marshal then keeps them one string each when the cache gives them back.
            key = _KEYS[spelling] = sys.intern(_read_key(node))
        except Refused as refused:
            key = _KEYS[spelling] = refused
    if isinstance(key, Refused):
        raise Refused(*key.args)
    return key


def _read_key(node: yaml.ScalarNode) -> str:
    if node.tag == "tag:yaml.org,2002:merge":
        raise Refused("mapping keys must be plain strings (no merge keys, no collections)")
    key = _scalar(node)
    if not isinstance(key, str):
        written = node.value
        what = _TYPE_NAMES.get(node.tag, type(key).__name__)
        raise Refused(f"mapping key {written!r} is read as {what}, not a string; quote it")
    other = other_reading(key) if getattr(node, "style", "") == "" else None
    if other is not None:
        # PyYAML reads it as a string, another reader would not: two keys may be two in one
        # reader and one in the other (`y` and "true"), so a plain spelling is not guessed.
        readers = "other YAML readers (YAML 1.2, or Kubernetes' YAML 1.1)"
        raise Refused(f"mapping key {key!r} is read as {other} by {readers}, not a string; quote it")
    return key


def _check_collection(node: yaml.Node) -> None:
    expected = _MAP if isinstance(node, yaml.MappingNode) else _SEQ
    if node.tag != expected:
        raise Refused(f"explicit tag {_short(node.tag)} is not supported on a {'mapping' if expected == _MAP else 'list'}")


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


def node_value(node: yaml.Node, budget: list[int] | None = None) -> Any:
    """Plain Python data from a node tree, without positions (for generated YAML: template
    output). The same checks as for input (raises Refused), and at most MAX_VALUES values,
    so aliases cannot expand without bound."""
    budget = budget if budget is not None else [MAX_VALUES]
    budget[0] -= 1
    if budget[0] < 0:
        raise Refused(f"more than {MAX_VALUES} values (aliases expanding?)")
    if isinstance(node, yaml.MappingNode):
        _check_collection(node)
        result: dict[str, Any] = {}
        for k, v in node.value:
            key = _key(k)
            if key in result:
                raise Refused(f"duplicate key {key!r}")
            result[key] = node_value(v, budget)
        return result
    if isinstance(node, yaml.SequenceNode):
        _check_collection(node)
        return [node_value(item, budget) for item in node.value]
    return _scalar(node)


def parse_yaml(source: SourceFile) -> tuple[list[Document], list[Diagnostic]]:
    """Every non-empty document of ``source``; a parse error ends that file, not the run."""
    documents: list[Document] = []
    diagnostics: list[Diagnostic] = text_problems(source.text, source.path)
    if diagnostics:
        return documents, diagnostics
    from everest_render.load.line_reader import read_input  # it reads through this module

    # Most files, line by line (load/line_reader.py: what libyaml reads, or None); the rest,
    # and anything wrong, through libyaml below, which locates each problem.
    read = read_input(source.text)
    if read is not None:
        return [Document(source, index, data, ReloadedPositions(source, index)) for index, data in read], diagnostics
    loader = _InputLoader(source.text)
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            if node is not None and not _is_empty(node):
                before = len(diagnostics)
                try:
                    data = _construct(node, (), None, source.path, diagnostics, [MAX_VALUES])
                except (_TooLarge, RecursionError) as error:
                    where = _mark(node)
                    too_large = f"document too large: more than {MAX_VALUES} values (aliases expanding?)"
                    message = too_large if isinstance(error, _TooLarge) else "document nested too deeply"
                    diagnostics.append(Diagnostic(source.path, where.line, where.column, message))
                else:
                    documents.append(Document(source, index, data, ReloadedPositions(source, index), refused=len(diagnostics) > before))
            index += 1
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = error.problem or error.context or "invalid YAML"
        diagnostics.append(Diagnostic(source.path, line, column, f"invalid YAML: {problem}"))
    except yaml.YAMLError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        diagnostics.append(Diagnostic(source.path, 1, 1, f"invalid YAML: {first}"))
    finally:
        loader.dispose()
    return documents, diagnostics


def positions_of(source: SourceFile, index: int) -> Positions:
    """Where each value and key of document ``index`` of ``source`` was written (as
    `parse_yaml` numbers documents: empty ones count); none for a document it did not load."""
    positions = Positions()
    loader = _InputLoader(source.text)
    try:
        at = 0
        while loader.check_node():
            node = loader.get_node()
            if at == index:
                if node is not None and not _is_empty(node):
                    _construct(node, (), positions, source.path, [], [MAX_VALUES])
                break
            at += 1
    except (yaml.YAMLError, _TooLarge, RecursionError):
        return Positions()  # not a document parse_yaml loaded: nothing of it is reported
    finally:
        loader.dispose()
    return positions


def _is_empty(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _mark(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


# A cluster file holds a few hundred values; this many means aliases expanding out of control.
MAX_VALUES = 100_000


class _TooLarge(Exception):
    pass


def _construct(
    node: yaml.Node, path: ObjectPath, positions: Positions | None, file: str, diagnostics: list[Diagnostic], budget: list[int]
) -> Any:
    """The value of ``node``, its problems appended to ``diagnostics``; where each value and
    key was written recorded in ``positions`` when given (`positions_of`: only when asked)."""
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooLarge
    if positions is not None:
        positions.values[path] = _mark(node)
    try:
        if isinstance(node, yaml.ScalarNode):  # most nodes: tested first
            value = _scalar(node)
            # Interned (keys are one string each by _KEYS): a fleet repeats the same few values
            # (`standard`, `LoadBalancer`) in every file, and libyaml makes a new string of each
            # (a tenth of a 10,000-cluster fleet's loaded memory).
            return sys.intern(value) if type(value) is str else value
        _check_collection(node)
    except Refused as refused:
        pos = _mark(node)
        diagnostics.append(Diagnostic(file, pos.line, pos.column, str(refused), path))
        return None
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        first_seen: dict[str, yaml.Node] = {}
        normalised: dict[str, str] = {}
        for key_node, value_node in node.value:
            try:
                key = _key(key_node)
            except Refused as refused:
                pos = _mark(key_node)
                diagnostics.append(Diagnostic(file, pos.line, pos.column, str(refused), path))
                continue
            child = (*path, key)
            same = key if key.isascii() else normalised.get(unicodedata.normalize("NFC", key), key)
            if same in first_seen:
                pos, first = _mark(key_node), _mark(first_seen[same])
                if same == key:
                    message = f"duplicate key {key!r} (first at line {first.line})"
                else:  # escaped: the two spellings look the same on screen
                    message = f"duplicate key {key!a}: the same as {same!a} once Unicode-normalised (first at line {first.line})"
                diagnostics.append(Diagnostic(file, pos.line, pos.column, message, child))
                continue
            if not key.isascii():
                normalised[unicodedata.normalize("NFC", key)] = key
            first_seen[key] = key_node
            if positions is not None:
                positions.keys[child] = _mark(key_node)
            result[key] = _construct(value_node, child, positions, file, diagnostics, budget)
        return result
    return [_construct(item, (*path, i), positions, file, diagnostics, budget) for i, item in enumerate(node.value)]


def load_documents(sources: list[SourceFile]) -> tuple[list[Document], list[Diagnostic]]:
    documents: list[Document] = []
    diagnostics: list[Diagnostic] = []
    for source in sources:
        docs, problems = parse_yaml(source)
        documents.extend(docs)
        diagnostics.extend(problems)
    return documents, diagnostics


_Resolver.yaml_implicit_resolvers = _InputLoader.yaml_implicit_resolvers
_RESOLVER = _Resolver()
