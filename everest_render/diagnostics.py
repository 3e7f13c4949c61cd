"""Diagnostics: the one value every stage uses to report a problem in the user's input.

User mistakes are never raised; stages return them beside their result and the command
prints them all at once (sorted), in the format API.md fixes:

    clusters/shop/orders.yaml:12:7: replicas must be at least 1 (at spec.instances.engine.replicas)
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


ObjectPath = tuple[str | int, ...]


def format_path(path: ObjectPath) -> str:
    """``("spec", "sourceRanges", 1)`` -> ``spec.sourceRanges[1]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_path(text: str) -> ObjectPath:
    """``spec.sourceRanges[1]`` -> ``("spec", "sourceRanges", 1)`` (the inverse of format_path)."""
    return tuple(int(index) if index else name for name, index in _PATH_PART.findall(text))


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem, located in a repository file (relative path) at a line and column (1-based)."""

    file: str
    line: int
    column: int
    message: str
    path: ObjectPath = ()
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        prefix = "warning: " if self.severity is Severity.WARNING else ""
        where = f" (at {format_path(self.path)})" if self.path else ""
        return f"{self.file}:{self.line}:{self.column}: {prefix}{self.message}{where}"

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.is_error for d in diagnostics)


def sorted_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """A stable order for printing: by file, position, then message; duplicates dropped."""
    return sorted(set(diagnostics), key=lambda d: (d.file, d.line, d.column, d.message, str(d)))


def candidates(known: Iterable[str], near: str | None = None) -> str:
    """The one wording for 'here is what you could have written' (sorted, comma separated),
    with a suggestion when ``near``, what was written, is close to one of them."""
    names = sorted(set(known))
    listed = ", ".join(names) if names else "(none)"
    return listed + (did_you_mean(near, names) if near is not None else "")


def did_you_mean(wanted: str, known: Iterable[str], *, quote: bool = True) -> str:
    """``; did you mean "replicas"?`` when a known name is close to ``wanted``, else "".

    difflib's ratio, as Python's own "Did you mean" and click use: a typo or a missing letter
    is close, an unrelated name is not. ``quote=False`` for names that read as paths
    (``did you mean shop/orders?``)."""
    near = closest(wanted, known)
    if near is None:
        return ""
    return f'; did you mean "{near}"?' if quote else f"; did you mean {near}?"


def closest(wanted: str, known: Iterable[str]) -> str | None:
    """The known name nearest to ``wanted`` if it is near enough (and not ``wanted`` itself)."""
    import difflib  # only when there is a mistake to name: a clean run does not load it

    close = difflib.get_close_matches(wanted, sorted(set(known)), n=1, cutoff=0.6)
    return close[0] if close and close[0] != wanted else None
