"""An input file as the read stage gives it: its name and text, and what no input text may hold.

Apart from `load.documents` (which parses texts as YAML with PyYAML) so that what only names
and reads files (`load.files`, the cache's stat reader and walk record) loads no YAML library:
a render that replays its last result reads no file at all and parses nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from everest_render.diagnostics import Diagnostic

BUILTIN_PREFIX = "<built-in>/"  # how diagnostics name files shipped inside the package

# What YAML does not allow as text (its "printable" set): C0 controls but tab, newline and
# carriage return; DEL; C1 controls but NEL; U+FFFE and U+FFFF; and lone surrogates (only an
# escape such as "\ud800" makes one, and no UTF-8 file or JSON API can hold it).
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")
# What CONTROL allows of ASCII: most files are ASCII, and deleting these bytes in C is ten
# times faster than the regex's scan (a megabyte of built-in schemas is read in every run).
_CLEAN_ASCII = bytes([0x09, 0x0A, 0x0D, *range(0x20, 0x7F)])


@dataclass(frozen=True)
class SourceFile:
    """One input file's text, by its name in the repository."""

    path: str  # relative to the repository root, with forward slashes
    text: str


def character_problem(text: str) -> str | None:
    """Why ``text`` cannot appear in a manifest (a control character, a lone surrogate), or None."""
    found = CONTROL.search(text)
    if found is None:
        return None
    if 0xD800 <= ord(found.group()) <= 0xDFFF:
        return "invalid Unicode (a lone surrogate)"
    return f"{_character(found.group())} is not allowed"


def _character(char: str) -> str:
    kind = "control character" if ord(char) <= 0x9F else "non-character"
    return f"{kind} U+{ord(char):04X}"


def text_problems(text: str, name: str) -> list[Diagnostic]:
    """A raw control character in a file's text, located (YAML, templates, ignore files)."""
    if text.isascii() and not text.encode("ascii").translate(None, _CLEAN_ASCII):
        return []
    found = CONTROL.search(text)
    if found is None:
        return []
    before = text[: found.start()]
    line, column = before.count("\n") + 1, found.start() - (before.rfind("\n") + 1) + 1
    what = "a lone surrogate" if 0xD800 <= ord(found.group()) <= 0xDFFF else _character(found.group())
    return [Diagnostic(name, line, column, f"{what} is not allowed in text")]
