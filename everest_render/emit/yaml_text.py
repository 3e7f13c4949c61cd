"""Canonical YAML text: the one place that decides how a value is written.

Block style, two-space indent, sequences not indented under their key (as kubectl writes
them); `apiVersion, kind, metadata, spec` first, every other key sorted; multi-line strings
as literal blocks; and any string that YAML 1.1 *or* 1.2 would read as something else
(`on`, `1e3`, `0755`, `2024-01-01`, `8.0`) double-quoted. Written by hand rather than with
PyYAML's dumper: it is the hot path of every render, and 3-4x faster this way.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

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


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.scalars: dict[str, str] = {}  # text of each string seen, once decided

    def scalar(self, value: Any) -> str:
        if isinstance(value, str):
            cached = self.scalars.get(value)
            if cached is None:
                cached = self.scalars[value] = value if _is_plain(value) else _quoted(value)
            return cached
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

    def mapping(self, value: Mapping[Any, Any], indent: str) -> None:
        for key in _ordered_keys(value):
            item = value[key]
            head = f"{indent}{self.scalar(key if isinstance(key, str) else str(key))}:"
            self.entry(head, item, indent)

    def sequence(self, value: Iterable[Any], indent: str) -> None:
        for item in value:
            if isinstance(item, Mapping) and item:
                start = len(self.lines)
                self.mapping(item, indent + "  ")
                # "- " takes the place of the first key's indentation.
                self.lines[start] = f"{indent}- {self.lines[start][len(indent) + 2 :]}"
            elif isinstance(item, list) and item:
                start = len(self.lines)
                self.sequence(item, indent + "  ")
                self.lines[start] = f"{indent}- {self.lines[start][len(indent) + 2 :]}"
            elif isinstance(item, str) and "\n" in item:
                self.lines.append(f"{indent}- {_quoted(item)}")
            else:
                self.lines.append(f"{indent}- {self.inline(item)}")

    def entry(self, head: str, item: Any, indent: str) -> None:
        if isinstance(item, Mapping) and item:
            self.lines.append(head)
            self.mapping(item, indent + "  ")
        elif isinstance(item, list) and item:
            self.lines.append(head)
            self.sequence(item, indent)
        elif isinstance(item, str) and "\n" in item:
            block = _literal(item, indent + "  ")
            self.lines.append(f"{head} {block}" if block else f"{head} {_quoted(item)}")
        else:
            self.lines.append(f"{head} {self.inline(item)}")

    def inline(self, item: Any) -> str:
        if isinstance(item, Mapping):
            return "{}"
        if isinstance(item, list):
            return "[]"
        return self.scalar(item)


def _ordered_keys(value: Mapping[Any, Any]) -> list[Any]:
    first = [k for k in _FIRST_KEYS if k in value]
    rest = sorted((k for k in value if k not in _FIRST_KEYS), key=str)
    return first + rest


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


def _literal(text: str, indent: str) -> str | None:
    """A literal block for ``text``, or None when a literal cannot carry it exactly."""
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
    # Belt and braces: a literal must read back as exactly the text it stands for.
    try:
        probe = yaml.load("k: " + block.replace("\n" + indent, "\n  ") + "\n", Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        return None
    return block if probe == {"k": text} else None


def dump_document(obj: Mapping[str, Any]) -> str:
    """One object as a YAML document, starting with ``---``."""
    writer = _Writer()
    writer.mapping(obj, "")
    return "---\n" + ("\n".join(writer.lines) if writer.lines else "{}") + "\n"


def dump_documents(objects: Iterable[Mapping[str, Any]]) -> str:
    return "".join(dump_document(obj) for obj in objects)
