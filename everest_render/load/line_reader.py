"""A fast reader for the YAML that templates write and people mostly write: line by line.

Every rendered object is Jinja text read back as YAML, and every input file is YAML too;
reading them through libyaml costs a node object and a Python callback per scalar (as much as
the templates themselves). Most of that YAML is a small part of the language: block mappings
and sequences, one line per value, plain scalars, quoted strings, flow collections on one
line, literal and folded blocks, comments. This reader takes exactly that part, line by line,
and answers None for anything else: then libyaml reads the text, as before, and reports
whatever is wrong with it. So it never decides an error, and what it accepts it reads as
libyaml does: plain scalars and keys are resolved *by* libyaml (once per distinct spelling),
quoted and flow values by ``json`` only where JSON and YAML agree (no exponent floats, no
surrogate escapes, no duplicate keys), and any other one-line value (a flow collection of
plain scalars, a single-quoted string, a value followed by a comment) and every block scalar
by libyaml too, read alone once per spelling (one line or one block reads the same alone as
in place: neither depends on what is around it, but an explicit indentation indicator, which
is left to libyaml with the whole text). tests/test_line_reader.py compares the two readers
on every template output and input file of a fleet covering every built-in provider and
feature, and on texts at the edges of the subset.

Provider authors and users write YAML as before: nothing here is a rule for them.
"""

from __future__ import annotations

import json
import marshal
import re
import sys
from typing import Any

import yaml

from everest_render import marshalled
from everest_render.load.documents import MAX_VALUES, Refused, compose_stream, node_value
from everest_render.load.text import character_problem


class _Outside(Exception):
    """The text leaves the subset this reader takes: libyaml reads it instead."""


class _Lines(list[tuple[int, str]]):
    """A document's lines as (indentation, content), blank lines and comments left out; with
    the whole text's lines and their shapes (`_shape`), for block scalars, which need each
    line's number in ``raw`` (counted only then: most documents have no block scalar)."""

    def __init__(self, raw: list[str], shapes: list[Any], start: int, end: int, remember: bool = False) -> None:
        super().__init__([shape for shape in shapes[start:end] if shape is not _SKIP])
        self.raw = raw
        self._shapes = shapes
        self._start, self._end = start, end
        self._numbers: list[int] | None = None
        self.remember = remember  # template output: its blocks are `_remembered`

    def number(self, index: int) -> int:
        """The number in ``raw`` of line ``index``."""
        if self._numbers is None:
            self._numbers = [at for at in range(self._start, self._end) if self._shapes[at] is not _SKIP]
        return self._numbers[index]


# A plain key (anything else, e.g. `y` or `123`, is read by libyaml below and may be refused).
_PLAIN_KEY = r"[A-Za-z0-9_][A-Za-z0-9_./-]*"
# A quoted key as JSON writes it.
_QUOTED_KEY = r'"(?:[^"\\]|\\.)*"'
_ENTRY = re.compile(rf"({_PLAIN_KEY}|{_QUOTED_KEY}):(?: +(.*))?")
_PLAIN_KEY_TEXT = re.compile(_PLAIN_KEY)
# A plain scalar of one line that YAML reads the same in a block mapping and a sequence: no
# indicator first, no `: `, ` #` or quote inside (what the canonical writer writes plainly).
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_/.+-][A-Za-z0-9_./:@%+=~$^(),* -]*")
# A block scalar's header without an indentation indicator (that one counts from the parent's
# indentation, which a block read alone does not have), and maybe a comment.
_BLOCK_HEADER = re.compile(r"[|>][-+]?(?: +#.*)?")
# Escapes JSON and YAML read alike; any other (\/, \b, \f, \r and UTF-16 surrogates, which
# libyaml refuses) leaves the subset.
_OTHER_ESCAPE = re.compile(r'\\(?:[^"\\ntu]|u[dD][89abAB])')
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
# Line breaks YAML knows besides \n, the BOM, and tabs (indentation YAML does not allow).
_OTHER_BREAKS = re.compile("[\t\r\x85\u2028\u2029\ufeff]")
_FLOAT = re.compile(r"-?[0-9]+\.[0-9]+")

# Plain scalars and keys as libyaml reads them, by spelling (manifests repeat a few thousand
# spellings; bounded so a huge fleet's names do not pile up); other values read alone, by
# spelling (collections among them are copied for each use: no two documents share one).
# Each memo here (lines, entries, values) gains two or three names a cluster rendered, so at
# 50,000 spellings they held 16 MB at the end of a 10,000-cluster render, most of them names
# never read again; at 10,000, 6 MB at most, for 2% more spellings read again after a clearing.
_PLAIN: dict[str, Any] = {}
_KEYS: dict[str, Any] = {}
_ALONE: dict[str, Any] = {}
_REMEMBERED = 10_000
_REFUSED = object()
# A flow value nested this deep at most (by its brackets): JSON's decoder nests in C, and the
# loader's reading refuses a document nested deeper than the interpreter's recursion allows.
_FLOW_DEPTH = 32


def read_rendered(text: str) -> list[Any] | None:
    """The documents of ``text`` (empty ones dropped), or None when it leaves the subset."""
    # Each value takes a character at least: no text this short can hold more than MAX_VALUES.
    known = _TEXTS.get(text)
    if known is not None:
        return _rebuilt(known)
    if len(text) > MAX_VALUES or _other_breaks(text):
        return None
    try:
        documents = [_document(lines) for lines in _split(text, remember=True) if lines]
    except (_Outside, RecursionError):
        return None
    if len(text) <= _TEXT_CHARACTERS:
        # Kept the second time a text is read (its hash, cached by the string, says so): most
        # texts are read once (a provider's objects name their cluster), and those are not
        # marshalled for nothing.
        seen = hash(text)
        if seen in _SEEN:
            try:
                stored = _stored(documents)
            except ValueError:  # nested too deeply for marshal: read each time
                return documents
            if len(_TEXTS) >= _TEXTS_REMEMBERED:
                _TEXTS.clear()
            _TEXTS[text] = stored
        else:
            if len(_SEEN) >= _REMEMBERED:
                _SEEN.clear()
            _SEEN.add(seen)
    return documents


# Whole texts of template output read twice, by text, with their documents as `_stored` holds
# them: an extension's output is the same for every cluster of the same name and engine
# (NetworkPolicy, PodMonitor: names, not namespaces, which post-processing adds), and a
# namespace's clusters render the same shared ExternalSecrets.
_TEXTS: dict[str, tuple[Any, ...]] = {}
_TEXTS_REMEMBERED = 512
_TEXT_CHARACTERS = 16_384
_SEEN: set[int] = set()
_AS_IS, _MARSHALLED, _LEVEL = 0, 1, 2


def _stored(documents: list[Any]) -> tuple[Any, ...]:
    """``documents`` as `_rebuilt` makes them again, each a tuple of its entries (key, how,
    what): a value no one can change as it is, a collection as marshal's bytes (version 2, as
    `_remembered`), and a mapping's entries (but metadata's) the same way one level down: the
    emitter takes the bytes of those blocks rather than marshalling them (marshalled.py)."""

    def entry(key: Any, value: Any) -> tuple[Any, int, Any]:
        if type(value) in _SHARED:
            return key, _AS_IS, value
        return key, _MARSHALLED, marshal.dumps(value, 2)

    return tuple(
        tuple(
            (key, _LEVEL, tuple(entry(child, item) for child, item in value.items()))
            if type(value) is dict and value and key != "metadata"
            else entry(key, value)
            for key, value in document.items()
        )
        for document in documents
    )


def _rebuilt(stored: tuple[Any, ...]) -> list[Any]:
    """The documents `_stored` keeps, each new (no two documents share a collection)."""
    documents = []
    for entries in stored:
        document = {}
        for key, how, what in entries:
            if how == _LEVEL:
                level = {}
                for child, child_how, written in what:
                    if child_how == _MARSHALLED:
                        block = level[child] = marshal.loads(written)
                        marshalled.remember(block, written)
                    else:
                        level[child] = written
                document[key] = level
            else:
                document[key] = what if how == _AS_IS else marshal.loads(what)
        documents.append(document)
    return documents


def read_input(text: str) -> list[tuple[int, Any]] | None:
    """An input file's documents, each with its index in the stream as libyaml counts them
    (empty ones count, and are dropped), or None when it leaves the subset. Stricter than
    `read_rendered` where the input loader is: a key that is not ASCII is left to libyaml
    (the loader compares keys Unicode-normalised), and so is a document that may hold more
    than MAX_VALUES values (the loader says so, at the document)."""
    if _other_breaks(text):
        return None
    try:
        documents = _split(text)
        if not documents[0]:
            documents = documents[1:]  # nothing before the first `---`: no document there
        if len(text) > MAX_VALUES and any(sum(len(line[1]) for line in lines) + 1 > MAX_VALUES for lines in documents):
            return None
        read = [(index, _document(lines)) for index, lines in enumerate(documents) if lines]
    except (_Outside, RecursionError):
        return None
    if not text.isascii() and not all(_ascii_keys(value) for _, value in read):
        return None
    return read


def _ascii_keys(value: Any) -> bool:
    if type(value) is dict:
        return all(key.isascii() and _ascii_keys(item) for key, item in value.items())
    if type(value) is list:
        return all(_ascii_keys(item) for item in value)
    return True


def _other_breaks(text: str) -> bool:
    # Of _OTHER_BREAKS, ASCII text (most output) can hold only tab and carriage return: two
    # scans in C instead of the regex's over every character.
    if text.isascii():
        return "\t" in text or "\r" in text
    return _OTHER_BREAKS.search(text) is not None


def _split(text: str, remember: bool = False) -> list[_Lines]:
    """Each document's lines (the first: what comes before any ``---``, maybe nothing)."""
    raw_lines = text.split("\n")
    known = _SHAPES.get
    shapes = [known(raw) or _shape(raw) for raw in raw_lines]
    documents = []
    start = 0
    if _SEPARATOR in shapes:
        while True:
            try:
                end = shapes.index(_SEPARATOR, start)
            except ValueError:
                break
            documents.append(_Lines(raw_lines, shapes, start, end, remember))
            start = end + 1
    documents.append(_Lines(raw_lines, shapes, start, len(shapes), remember))
    return documents


def _shape(raw: str) -> Any:
    """What line ``raw`` is to `_split` (once per spelling: a fleet's files repeat their lines):
    nothing (blank, a comment), a document's end, or its (indentation, content)."""
    content = raw.lstrip(" ")  # once, for the indentation and the content both
    if not content or content[0] == "#":
        shape: Any = _SKIP
    elif raw[0] in "-.%" and raw.startswith(("---", "...", "%")):
        if raw.rstrip(" ") != "---":
            raise _Outside
        shape = _SEPARATOR
    else:
        shape = (len(raw) - len(content), content.rstrip(" ") if content[-1] == " " else content)
    if len(_SHAPES) >= _REMEMBERED:
        _SHAPES.clear()
    _SHAPES[raw] = shape
    return shape


def _document(lines: _Lines) -> Any:
    if _is_item(lines[0][1]):
        raise _Outside  # a list is no object: libyaml's reading goes on to say so
    value, end = _mapping(lines, 0, lines[0][0])
    if end != len(lines):
        raise _Outside
    return value


def _is_item(content: str) -> bool:
    return content == "-" or content.startswith("- ")


def _block(lines: _Lines, index: int) -> tuple[Any, int]:
    indent, content = lines[index]
    if _is_item(content):
        return _sequence(lines, index, indent)
    return _mapping(lines, index, indent)


def _mapping(lines: _Lines, index: int, indent: int) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {}
    count = len(lines)
    known = _ENTRIES.get
    while index < count:
        at, content = lines[index]
        if at != indent:
            if at < indent:
                break
            raise _Outside
        key, rest, value = known(content) or _entry_of(content)
        if key is _REFUSED or key in result:
            raise _Outside
        index += 1
        if value is _EMPTY:
            # What the next lines hold: _block and _is_item written out (a call each, saved).
            if index < count:
                deeper, first = lines[index]
                if deeper > indent:
                    if indent == _REMEMBERED_UNDER and lines.remember:
                        result[key], index = _remembered(lines, index, indent)
                    elif first == "-" or first.startswith("- "):
                        result[key], index = _sequence(lines, index, deeper)
                    else:
                        result[key], index = _mapping(lines, index, deeper)
                    continue
                if deeper == indent and (first == "-" or first.startswith("- ")):
                    result[key], index = _sequence(lines, index, indent)  # kubectl's style: not indented
                    continue
            result[key] = None
            continue
        if value is _BLOCK:
            result[key], index = _block_scalar(lines, index, indent, index - 1, rest)
            continue
        if type(value) is _Fresh:
            value = _copy(value.value)
        elif value is _NOT_READ:
            raise _Outside
        result[key] = value
        if index < count and lines[index][0] > indent:
            raise _Outside  # a plain scalar going on over lines, or a stray line
    return result, index


def _remembered(lines: _Lines, index: int, parent: int) -> tuple[Any, int]:
    """The block of lines from ``index`` indented deeper than ``parent``, as `_block` reads it;
    read once per spelling of its lines (a fleet's documents repeat the blocks under their
    ``spec`` in most clusters), then given back as a copy of what was read (marshal's, made in C).

    A block's value is a function of its lines' shapes alone, but for a block scalar, which
    reads the text itself (blank lines, comment-like lines and trailing spaces, which shapes
    leave out): a block holding one is never remembered."""
    end = index + 1
    count = len(lines)
    while end < count and lines[end][0] > parent:
        end += 1
    spelling = tuple(lines[index:end])
    known = _BLOCKS.get(spelling)
    if known is not None:
        value = marshal.loads(known)
        marshalled.remember(value, known)  # the emitter would marshal it again (everest_render/marshalled.py)
        return value, end
    scalars = _BLOCK_SCALARS_READ[0]
    value, after = _block(lines, index)
    if after == end and _BLOCK_SCALARS_READ[0] == scalars:
        try:
            written = marshal.dumps(value, 2)
        except ValueError:  # nested too deeply for marshal: read each time
            return value, after
        if len(written) <= _BLOCK_BYTES:
            if len(_BLOCKS) >= _BLOCKS_REMEMBERED:
                _BLOCKS.clear()
            _BLOCKS[spelling] = written
            marshalled.remember(value, written)
    return value, after


# The indentation of a document's second level (two spaces, as templates and people write it):
# the blocks under its entries are `_remembered`, by their lines (a tuple of shapes), as
# marshalled bytes (version 2: no references, so no two values share an object). Template
# output only: an input file's documents are held for the whole run, and a copy's strings
# that are not interned would be each document's own (+19 MB at 10,000 clusters).
_REMEMBERED_UNDER = 2
_BLOCKS: dict[tuple[tuple[int, str], ...], bytes] = {}
_BLOCKS_REMEMBERED = 1_024
_BLOCK_BYTES = 16_384
_BLOCK_SCALARS_READ = [0]  # how many block scalars were read: a block holding one is not remembered


def _sequence(lines: _Lines, index: int, indent: int) -> tuple[list[Any], int]:
    items: list[Any] = []
    count = len(lines)
    known = _ITEMS.get
    while index < count:
        at, content = lines[index]
        if at < indent or (at == indent and content != "-" and not content.startswith("- ")):
            break  # not an item (`_is_item`): the list ends
        if at > indent:
            raise _Outside
        nested, rest, value = known(content) or _item_of(content)
        index += 1
        if value is _EMPTY:
            if index < count and lines[index][0] > indent:
                value, index = _block(lines, index)
            else:
                value = None
        elif nested:
            # "- " stands for the indentation of the item's first line.
            index -= 1
            lines[index] = (indent + nested, rest)
            value, index = _block(lines, index)
        elif value is _BLOCK:
            value, index = _block_scalar(lines, index, indent, index - 1, rest)
        else:
            if type(value) is _Fresh:
                value = _copy(value.value)
            elif value is _NOT_READ:
                raise _Outside
            if index < count and lines[index][0] > indent:
                raise _Outside
        items.append(value)
    return items, index


def _entry_of(content: str) -> tuple[Any, str, Any]:
    """A mapping's line ``content`` as `_mapping` takes it, once per spelling: (its key, or
    _REFUSED when it is no ``key: value`` line that this reader takes; the value as written;
    the value, or what stands for it: _EMPTY, _BLOCK, a _Fresh, _NOT_READ)."""
    entry = _entry(content)
    if entry is None:
        found: tuple[Any, str, Any] = (_REFUSED, "", _NOT_READ)
    else:
        written, rest = entry
        try:
            key: Any = _key(written)
        except _Outside:
            key = _REFUSED
        if rest and rest[0] == "#":
            rest = ""  # a comment after the key
        found = (key, rest, _value_of(rest))
    if len(_ENTRIES) >= _REMEMBERED:
        _ENTRIES.clear()
    _ENTRIES[content] = found
    return found


def _item_of(content: str) -> tuple[int, str, Any]:
    """A sequence's line ``content`` (``- ...``) as `_sequence` takes it, once per spelling:
    (where a mapping or sequence starting on it is indented, from the dash, or 0; what
    follows the dash; its value, or what stands for it, as in `_entry_of`)."""
    rest = content[1:].lstrip(" ")
    if rest and rest[0] == "#":
        rest = ""  # a comment after the dash
    if rest and (_is_item(rest) or _entry(rest) is not None):
        found: tuple[int, str, Any] = (len(content) - len(rest), rest, None)
    else:
        found = (0, rest, _value_of(rest))
    if len(_ITEMS) >= _REMEMBERED:
        _ITEMS.clear()
    _ITEMS[content] = found
    return found


def _value_of(rest: str) -> Any:
    """The value written as ``rest`` after a key or a dash, or what stands for it: _EMPTY
    (nothing: what the next lines hold), _BLOCK (a block scalar's header), a _Fresh (a collection:
    each use copies it), _NOT_READ (outside the subset)."""
    if not rest:
        return _EMPTY
    if rest[0] in "|>":
        return _BLOCK
    try:
        value = _scalar(rest)
    except _Outside:
        return _NOT_READ
    return value if type(value) in _SHARED else _Fresh(value)


class _Fresh:
    """A collection written on one line (a flow mapping or sequence): each use takes a copy,
    as no two documents share one."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


# What _split, _mapping and _sequence make of each line, by spelling (see _REMEMBERED).
_SHAPES: dict[str, Any] = {}
_ENTRIES: dict[str, tuple[Any, str, Any]] = {}
_ITEMS: dict[str, tuple[int, str, Any]] = {}
_SKIP = (-1, "")  # a blank or comment line (truthy, as every shape)
_SEPARATOR = (-2, "---")
_EMPTY = object()
_BLOCK = object()
_NOT_READ = object()
# Values that many documents may share: none can be changed.
_SHARED = frozenset({str, int, float, bool, type(None)})


def _block_scalar(lines: _Lines, index: int, indent: int, header_at: int, header: str) -> tuple[str, int]:
    """A literal or folded block whose header ends line ``header_at`` of a mapping or sequence
    at ``indent``: read by libyaml alone, the header and every line after it up to the first
    that is neither blank nor indented deeper (any line of the block is, and a comment line
    not indented deeper ends the block too); then the index of the first line after it."""
    if _BLOCK_HEADER.fullmatch(header) is None:
        raise _Outside  # an indentation indicator, or not a block scalar header
    _BLOCK_SCALARS_READ[0] += 1
    raw = lines.raw
    number = lines.number(header_at)
    end = number + 1
    while end < len(raw) and (not raw[end].strip(" ") or len(raw[end]) - len(raw[end].lstrip(" ")) > indent):
        end += 1
    # The text as it is, to the line break before the first line after the block (the last
    # of ``raw`` is what follows the text's last line break: nothing, or a line without one).
    body = "\n".join(raw[number + 1 : end])
    value = _alone(f"{header}\n{body}" + ("\n" if end < len(raw) else ""), block=True)
    if not isinstance(value, str):
        raise _Outside
    count = len(lines)
    while index < count and lines.number(index) < end:
        index += 1
    return value, index


def _entry(content: str) -> tuple[str, str] | None:
    """A ``key: value`` or ``key:`` line as `_ENTRY` reads it: (the key as written, the value
    or ""), or None. Most lines without the regex (its ``.*`` ran over every value): a plain
    key holds no colon, so it is the text before the first one, and a key read before (in
    `_KEYS`) matched the pattern then."""
    if content[0] == '"':
        entry = _ENTRY.fullmatch(content)
        return None if entry is None else (entry.group(1), entry.group(2) or "")
    written, colon, rest = content.partition(":")
    if not colon or (rest and rest[0] != " "):
        return None
    if written not in _KEYS and _PLAIN_KEY_TEXT.fullmatch(written) is None:
        return None
    return written, rest.lstrip(" ")


def _key(written: str) -> str:
    key = _KEYS.get(written)
    if key is None:
        if len(_KEYS) >= _REMEMBERED:
            _KEYS.clear()
        key = _KEYS[written] = _read_key(written)
    if key is _REFUSED:
        raise _Outside
    return str(key)


def _read_key(written: str) -> Any:
    if written[0] == '"':
        try:
            key = _json_text(written)
        except _Outside:
            return _REFUSED
        return sys.intern(key) if isinstance(key, str) else _REFUSED
    try:
        (mapping,) = [node_value(node) for node in compose_stream(f"{written}: 0")]
        (key,) = mapping
    except (Refused, ValueError, yaml.YAMLError):
        return _REFUSED
    return key


def _scalar(written: str) -> Any:
    value = _PLAIN.get(written, _REFUSED)
    if value is not _REFUSED:
        return value
    first = written[0]
    if first == '"' or first == "{" or first == "[":
        if written.count("[") + written.count("{") > _FLOW_DEPTH:
            raise _Outside  # deeper maybe than libyaml's reading goes before it says so
        try:
            value = _json_text(written)
        except _Outside:
            return _copy(_alone(written))
        if type(value) is str:
            value = sys.intern(value)
            _remember(written, value)  # a quoted name, again and again: one string for all
        return value
    if first == "'":
        return _copy(_alone(written))
    if " #" in written:
        value = _scalar(written[: written.index(" #")].rstrip(" "))  # a comment after the value
        _remember(written, value)
        return value
    if (
        _PLAIN_VALUE.fullmatch(written) is None
        or ": " in written
        or written.endswith(":")
        or written.startswith(("- ", "---", "..."))
    ):
        raise _Outside
    try:
        (mapping,) = [node_value(node) for node in compose_stream(f"k: {written}")]
        value = mapping["k"]
    except (Refused, ValueError, KeyError, yaml.YAMLError):
        raise _Outside from None
    _remember(written, sys.intern(value) if type(value) is str else value)
    return value


def _remember(written: str, value: Any) -> None:
    if len(_PLAIN) >= _REMEMBERED:
        _PLAIN.clear()
    _PLAIN[written] = value


def _alone(written: str, block: bool = False) -> Any:
    """The value of ``written`` (one line; or a block scalar's header and lines, each line
    break kept), as libyaml reads it as the value of a key by itself; once per spelling."""
    value = _ALONE.get(written, _REFUSED)
    if value is _REFUSED:
        try:
            (mapping,) = [node_value(node) for node in compose_stream(f"k: {written}" if block else f"k: {written}\n")]
            value = mapping["k"]
        except (Refused, ValueError, KeyError, TypeError, yaml.YAMLError):
            value = _OUTSIDE
        if len(_ALONE) >= _REMEMBERED:
            _ALONE.clear()
        _ALONE[written] = value
    if value is _OUTSIDE:
        raise _Outside
    return value


_OUTSIDE = object()


def _copy(value: Any) -> Any:
    if type(value) is dict:
        return {key: _copy(item) for key, item in value.items()}
    if type(value) is list:
        return [_copy(item) for item in value]
    return value


def _json_text(written: str) -> Any:
    """A JSON value (``tojson``'s output) where YAML reads it the same."""
    if len(written) > 1 and written[0] == '"' and written[-1] == '"' and '"' not in written[1:-1] and "\\" not in written:
        return written[1:-1]  # most are names: nothing to decode
    if "\\" in written:
        if _OTHER_ESCAPE.search(written):
            raise _Outside
        for code in _UNICODE_ESCAPE.findall(written):
            if character_problem(chr(int(code, 16))) is not None:
                raise _Outside  # libyaml's reading refuses the character, and says where
    try:
        return _DECODER.decode(written)
    except ValueError:
        raise _Outside from None


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _Outside
    return result


def _float(written: str) -> float:
    if _FLOAT.fullmatch(written) is None:
        raise _Outside  # YAML 1.1 reads 1e3 as text
    return float(written)


def _int(written: str) -> int:
    if len(written) > 18:
        raise _Outside  # beyond 64 bits, maybe: libyaml's reading says
    return int(written)


def _constant(written: str) -> Any:
    raise _Outside  # NaN, Infinity


_DECODER = json.JSONDecoder(object_pairs_hook=_unique, parse_float=_float, parse_int=_int, parse_constant=_constant)
