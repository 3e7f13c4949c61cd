"""Plain scalars YAML readers disagree on: one list for the reader and the writer.

PyYAML reads YAML 1.1 as it implements it; Kubernetes' own reader (go-yaml v2) also takes
`y`/`n` as booleans and `1e3` as a number, and YAML 1.2 readers take `0o17` as an integer and
`on`/`yes` as strings. The writer quotes every string in this set so each reader reads it back
as that string; the loader refuses a plain mapping key in it, since two such keys may be
different in one reader and the same in another (`y` and `"true"`, `0o10` and `"8"`).
"""

from __future__ import annotations

import re

_BOOLEAN = r"y|yes|n|no|true|false|on|off"
_NULL = r"null|~"
_NUMBER = r"""
    [-+]?[0-9][0-9_]*(\.[0-9_]*)?([e][-+]?[0-9]+)?     # 1, 1_000, 3.10, 1e3
    |[-+]?0[xob][0-9a-f_]+                             # 0x1f, 0o17, 0b101
    |[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?      # 1:20 (YAML 1.1 sexagesimal)
"""
_TIMESTAMP = r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?"
_FLAGS = re.IGNORECASE | re.VERBOSE
_READINGS = tuple(
    (re.compile(pattern, _FLAGS), what)
    for pattern, what in ((_BOOLEAN, "a boolean"), (_NULL, "null"), (_NUMBER, "a number"), (_TIMESTAMP, "a timestamp"))
)
# One pattern for the writer's hot path.
_AMBIGUOUS = re.compile("|".join(f"(?:{p})" for p in (_BOOLEAN, _NULL, _NUMBER, _TIMESTAMP)), _FLAGS)


def other_reading(text: str) -> str | None:
    """What some YAML reader takes the plain scalar ``text`` for, when that is not a string."""
    for pattern, what in _READINGS:
        if pattern.fullmatch(text):
            return what
    return None


def is_ambiguous(text: str) -> bool:
    """Whether some YAML 1.1 or 1.2 reader would not read the plain scalar ``text`` as that string."""
    return _AMBIGUOUS.fullmatch(text) is not None
