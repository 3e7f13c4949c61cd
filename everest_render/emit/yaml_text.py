"""Canonical YAML text: the one place that decides how a value is written.

Block style, two-space indent, sequences not indented under their key (as kubectl writes
them); `apiVersion, kind, metadata, spec` first, every other key sorted; multi-line strings
as literal blocks; and any string that YAML 1.1 *or* 1.2 would read as something else
(`on`, `1e3`, `0755`, `2024-01-01`, `8.0`) double-quoted. Written by hand rather than with
PyYAML's dumper: it is the hot path of every render, and 3-4x faster this way; and since a
fleet's manifests repeat the same strings, keys and configuration blocks, what each is written
as is decided once per text.
"""

from __future__ import annotations

import json
import marshal
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from everest_render import marshalled
from everest_render.yaml_readings import is_ambiguous

_FIRST_KEYS = ("apiVersion", "kind", "metadata", "spec")
_PLAIN = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_./:@%+=~$^(),* -]*")
_SAFE_MULTILINE = re.compile(r"[^\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\r]*")


def _is_plain(text: str) -> bool:
    return _PLAIN.fullmatch(text) is not None and not text.endswith((" ", ":")) and ": " not in text and not is_ambiguous(text)


def _quoted(text: str) -> str:
    """A double-quoted scalar. JSON's escapes are YAML's; characters YAML would not keep as
    they are (NEL, line and paragraph separators, BOM, unassigned code points) are escaped too,
    astral ones with YAML's 8-digit form, which libyaml reads where JSON's surrogate pairs fail."""
    quoted = json.dumps(text, ensure_ascii=False)
    if quoted.isprintable():
        return quoted
    return "".join(c if c.isprintable() else (f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}") for c in quoted)


# The written form of each string (plain or quoted) and each key ("name:"), by text: a fleet's
# manifests repeat a few thousand of them. Bounded, so a huge fleet's names do not pile up,
# and only short texts (a long one is rarely repeated).
_WRITTEN: dict[str, str] = {}
_NEWLINE = "\n"
_KEYS: dict[str, str] = {}
_REMEMBERED = 50_000
_SHORT = 200


def _string(text: str) -> str:
    written = _WRITTEN.get(text)
    if written is None:
        written = text if _is_plain(text) else _quoted(text)
        if len(text) <= _SHORT:
            if len(_WRITTEN) >= _REMEMBERED:
                _WRITTEN.clear()
            _WRITTEN[text] = written
    return written


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return _string(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _key(key: Any) -> str:
    """``key:``, the key written as a scalar (a key that is not a string, as its text)."""
    text = key if isinstance(key, str) else str(key)
    written = _KEYS.get(text)
    if written is None:
        if len(_KEYS) >= _REMEMBERED:
            _KEYS.clear()
        written = _KEYS[text] = _string(text) + ":"
    return written


def _mapping(value: Mapping[Any, Any], indent: str, lines: list[str], lead: str) -> None:
    """The entries of a non-empty mapping, one a line at ``indent``; the first line starts with
    ``lead`` instead (``- `` in its place for a list item). The types read from YAML first,
    each by its type alone (most values of a manifest are these); any other as `_other`."""
    inner = indent + "  "
    for key, written in _ORDERS.get(tuple(value)) or _ordered_keys(value):
        item = value[key]
        head = lead + written
        lead = indent
        kind = type(item)
        if kind is str:
            if "\n" in item:
                block = _literal(item, inner)
                lines.append(f"{head} {block}" if block else f"{head} {_quoted(item)}")
            else:
                lines.append(f"{head} {_WRITTEN.get(item) or _string(item)}")
        elif kind is dict:
            if item:
                lines.append(head)
                _mapping(item, inner, lines, inner)
            else:
                lines.append(f"{head} {{}}")
        elif kind is list:
            if item:
                lines.append(head)
                _sequence(item, indent, lines, indent)
            else:
                lines.append(f"{head} []")
        elif kind is bool:
            lines.append(f"{head} true" if item else f"{head} false")
        elif kind is int:
            lines.append(f"{head} {item}")
        elif item is None:
            lines.append(f"{head} null")
        else:
            _other(item, head, indent, inner, lines)


def _other(item: Any, head: str, indent: str, inner: str, lines: list[str]) -> None:
    """The entry ``head`` of a value of any other type (a float, a str, dict or list subclass, a Mapping)."""
    if isinstance(item, str):
        if "\n" in item:
            block = _literal(item, inner)
            lines.append(f"{head} {block}" if block else f"{head} {_quoted(item)}")
        else:
            lines.append(f"{head} {_string(item)}")
    elif isinstance(item, Mapping) and item:
        lines.append(head)
        _mapping(item, inner, lines, inner)
    elif isinstance(item, list) and item:
        lines.append(head)
        _sequence(item, indent, lines, indent)
    else:
        lines.append(f"{head} {_inline(item)}")


def _sequence(value: list[Any], indent: str, lines: list[str], lead: str) -> None:
    """The items of a non-empty list at ``indent`` (the first line starting with ``lead``)."""
    inner = indent + "  "
    for item in value:
        dash = lead + "- "
        lead = indent
        if isinstance(item, str):
            lines.append(f"{dash}{_quoted(item) if _NEWLINE in item else _string(item)}")
        elif (type(item) is dict or isinstance(item, Mapping)) and item:
            _mapping(item, inner, lines, dash)
        elif isinstance(item, list) and item:
            _sequence(item, inner, lines, dash)
        else:
            lines.append(f"{dash}{_inline(item)}")


def _inline(item: Any) -> str:
    if isinstance(item, Mapping):
        return "{}"
    if isinstance(item, list):
        return "[]"
    return _scalar(item)


def _ordered_keys(value: Mapping[Any, Any]) -> list[tuple[Any, str]]:
    """The keys of ``value`` in the order they are written, each with its written form."""
    if "apiVersion" in value or "kind" in value or "metadata" in value or "spec" in value:
        first = [k for k in _FIRST_KEYS if k in value]
        ordered = first + sorted((k for k in value if k not in _FIRST_KEYS), key=str)
    else:
        ordered = sorted(value, key=str)
    written = [(key, _key(key)) for key in ordered]
    # Remembered by the keys in their order in the mapping, only when all are strings: no
    # other key equals a string (1 == True would take one's order for the other's).
    if all(type(k) is str for k in ordered):
        if len(_ORDERS) >= _REMEMBERED:
            _ORDERS.clear()
        _ORDERS[tuple(value)] = written
    return written


# The keys of each mapping in their written order, each with its written form ("name:"), by
# its keys as they come (a fleet's objects have a few thousand shapes).
_ORDERS: dict[tuple[Any, ...], list[tuple[Any, str]]] = {}


def _float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    if "e" in text and "." not in text:  # YAML 1.1 needs the dot: 1e+20 -> 1.0e+20
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


_LITERALS: dict[tuple[str, str], str | None] = {}
_LITERALS_REMEMBERED = 1_000  # these are long


def _literal(text: str, indent: str) -> str | None:
    """A literal block for ``text``, or None when a literal cannot carry it exactly (once per
    text and indentation: configuration presets repeat in every cluster of their size)."""
    key = (text, indent)
    if key not in _LITERALS:
        if len(_LITERALS) >= _LITERALS_REMEMBERED:
            _LITERALS.clear()
        _LITERALS[key] = _written_literal(text, indent)
    return _LITERALS[key]


def _written_literal(text: str, indent: str) -> str | None:
    if _SAFE_MULTILINE.fullmatch(text) is None:
        return None
    body = text.rstrip("\n")
    trailing = len(text) - len(body)
    chomp = "-" if trailing == 0 else ("" if trailing == 1 else "+")
    lines = body.split("\n")
    first = next((line for line in lines if line.strip()), "")
    if not first or any(line.strip() == "" and line for line in lines[: lines.index(first)]):
        return None  # all-space lines before the content confuse indentation detection
    indicator = "2" if first.startswith(" ") else ""
    rendered = [indent + line if line else "" for line in lines] + [""] * (trailing - 1 if trailing > 1 else 0)
    block = f"|{indicator}{chomp}\n" + "\n".join(rendered)
    # Belt and braces: a literal must read back as exactly the text it stands for. (PyYAML only
    # here, once per text: writing out/ from a replay of the last render loads no YAML library.)
    import yaml

    try:
        probe = yaml.load("k: " + block.replace("\n" + indent, "\n  ") + "\n", Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        return None
    return block if probe == {"k": text} else None


def dump_document(obj: Mapping[str, Any]) -> str:
    """One object as a YAML document, starting with ``---``."""
    lines: list[str] = []
    if type(obj) is dict and obj:
        _document(obj, lines)
    elif obj:
        _mapping(obj, "", lines, "")
    return "---\n" + ("\n".join(lines) if lines else "{}") + "\n"


def _document(obj: dict[str, Any], lines: list[str]) -> None:
    """A document's entries, as `_mapping` writes them; each collection one level below one of
    them (``spec.replsets``, ``spec.backup``) written once per value and then remembered: a
    fleet's objects repeat these blocks in most of their clusters (but their metadata, whose
    labels name the cluster, differ in each: not remembered)."""
    for key, written in _ORDERS.get(tuple(obj)) or _ordered_keys(obj):
        item = obj[key]
        if type(item) is not dict or not item or key == "metadata":
            _mapping({key: item}, "", lines, "")
            continue
        lines.append(written)
        for child, child_written in _ORDERS.get(tuple(item)) or _ordered_keys(item):
            value = item[child]
            kind = type(value)
            if (kind is dict or kind is list) and value:
                block = _remembered_block(child, child_written, value)
                if block is not None:
                    lines.extend(block)
                    continue
            _mapping({child: value}, "  ", lines, "  ")


def _remembered_block(key: Any, written: str, value: dict[str, Any] | list[Any]) -> list[str] | None:
    """The lines of entry ``key: value`` at the second level, written once per value: known by
    its marshalled bytes, which name each type exactly (marshal refuses subclasses: 1, True and
    1.0 differ, and so do a list and a tuple) and read back as the value, so equal bytes are an
    equal value. None: not marshallable (the caller writes it, or says what is wrong)."""
    read = marshalled.take(value)  # the bytes the line reader made it from, when it did
    try:
        known = (written, read if read is not None else marshal.dumps(value, _MARSHAL_VERSION))
    except ValueError:
        return None
    if len(known[1]) > _BLOCK_BYTES:
        return None
    block = _BLOCKS.get(known)
    if block is None:
        block = []
        _mapping({key: value}, "  ", block, "  ")
        if len(_BLOCKS) >= _BLOCKS_REMEMBERED:
            _BLOCKS.clear()
        _BLOCKS[known] = block
    return block


# The second-level blocks written, by key and marshalled value (`_remembered_block`). Version 2:
# no references between objects, so the bytes depend on the value, not on which of its strings
# happen to be one object.
_BLOCKS: dict[tuple[str, bytes], list[str]] = {}
_BLOCKS_REMEMBERED = 1_024  # ~3 MB at most (a fleet of 10,000 fills it every few thousand clusters)
_BLOCK_BYTES = 16_384
_MARSHAL_VERSION = 2


def dump_documents(objects: Iterable[Mapping[str, Any]]) -> str:
    return "".join(dump_document(obj) for obj in objects)
