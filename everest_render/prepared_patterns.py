"""Regular expressions compiled at build time, so a cold process does not compile them again.

Importing the render path compiles some 130 regular expressions (PyYAML's reader alone builds
one whose character class spans all of Unicode: 58 million instructions, a tenth of a
one-cluster `argocd generate`). Their compiled form depends only on the pattern, its flags and
the Python running it, so `python -m everest_render.prepare` stores, for every pattern compiled
while it imports and uses the package, what `re` compiles it to (the same steps as
`re._compiler.compile`), and the executable's entry point (`install`) puts the patterns built
from that into `re`'s own cache before anything compiles them; `re.compile` then finds them
there, as it finds any pattern compiled before in the same process.

What is used is what compiling gives: the prepare step rebuilds each pattern from what it
stores and keeps it only if it equals (CPython compares the pattern, the flags and the whole
compiled program) and groups as what `re.compile` returns; a file made by another Python
(bytecode magic, version, regular expression engine) is not used; a pattern not in the file is
compiled as always. Like the other prepared files, this one is read only from the package
folder. It leans on `re`'s private cache and compiler: the prepare step checks that the cache
serves what is put in it and writes nothing if not, and dropping the file changes only the time.
"""

from __future__ import annotations

import _sre  # type: ignore[import-not-found]  # the engine behind `re`, unstubbed
import marshal
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

from everest_render import prepared_file

PREPARED_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_prepared", "patterns.marshal")
FORMAT = 1
# Flags whose patterns are left to `re`: DEBUG prints while compiling and is never cached,
# TEMPLATE warns, LOCALE (bytes only) is rare and not worth a question.
_LEFT_ALONE = re.DEBUG | re.TEMPLATE | re.LOCALE

Key = tuple[str | bytes, int]
# pattern, flags asked, flags compiled, program, groups - 1, group index, index group
Entry = tuple[str | bytes, int, int, list[int], int, dict[str, int], tuple[str | None, ...]]
ENTRY_FIELDS = 7


def record() -> tuple[dict[Key, None], Callable[[], None]]:
    """From now on, every pattern `re` is asked to compile, in order (for `prepare`); and the
    function that stops recording."""
    # What this process compiled before is in `re`'s cache: the start of a run compiles it too.
    cache = getattr(re, "_cache", {})
    seen: dict[Key, None] = {(p, f): None for _, p, f in list(cache) if isinstance(f, int) and not f & _LEFT_ALONE}
    original = re._compile  # type: ignore[attr-defined]

    def recording(pattern: Any, flags: Any) -> Any:
        value = flags.value if isinstance(flags, re.RegexFlag) else flags
        if isinstance(pattern, (str, bytes)) and isinstance(value, int) and not value & _LEFT_ALONE:
            seen.setdefault((pattern, value), None)
        return original(pattern, flags)

    def stop() -> None:
        re._compile = original  # type: ignore[attr-defined]

    re._compile = recording  # type: ignore[attr-defined]
    return seen, stop


def entry(pattern: str | bytes, flags: int) -> Entry | None:
    """What `re._compiler.compile` builds the pattern from, if rebuilding it gives exactly
    the pattern `re` compiles (else None: that pattern is left to `re`)."""
    from re import _compiler, _parser  # type: ignore[attr-defined]

    flags = int(flags)  # a RegexFlag is an int to `re`'s cache, not to marshal
    try:
        parsed = _parser.parse(pattern, flags)
        program = [int(op) for op in _compiler._code(parsed, flags)]
    except (re.error, RecursionError, OverflowError, ValueError, TypeError):
        return None
    groupindex = dict(parsed.state.groupdict)
    indexgroup: list[str | None] = [None] * parsed.state.groups
    for name, index in groupindex.items():
        indexgroup[index] = name
    found: Entry = (pattern, flags, int(flags | parsed.state.flags), program, parsed.state.groups - 1, groupindex, tuple(indexgroup))
    built, compiled = _build(found), _compiler.compile(pattern, flags)
    same = built == compiled and (built.groups, built.groupindex, built.flags) == (compiled.groups, compiled.groupindex, compiled.flags)
    return found if same else None


def _build(found: Entry) -> re.Pattern[Any]:
    pattern, _, flags, program, groups, groupindex, indexgroup = found
    built: re.Pattern[Any] = _sre.compile(pattern, flags, program, groups, groupindex, indexgroup)
    return built


def cache_serves_prepared_patterns() -> bool:
    """Whether `re.compile` returns a pattern put in `re`'s cache (true of the Pythons this
    package supports; checked when preparing, for the very Python that will use the file)."""
    cache = getattr(re, "_cache", None)
    probe = "everest-render prepared pattern probe (?P<n>x)"
    found = entry(probe, 0)
    if type(cache) is not dict or found is None:
        return False
    built = _build(found)
    cache[(str, probe, 0)] = built
    try:
        return re.compile(probe) is built
    finally:
        cache.pop((str, probe, 0), None)


def write(keys: Iterable[Key], path: str = PREPARED_FILE) -> int:
    """Store the patterns of ``keys`` that rebuild exactly; how many. Nothing is written when
    this Python's `re` would not use them."""
    if not cache_serves_prepared_patterns():
        return 0
    entries = [found for found in (entry(pattern, flags) for pattern, flags in keys) if found is not None]
    prepared_file.write(path, marshal.dumps(entries), _identity())
    return len(entries)


def _identity() -> dict[str, Any]:
    return {"format": FORMAT, "engine": (_sre.MAGIC, _sre.CODESIZE)}


def load(path: str = PREPARED_FILE) -> list[Entry] | None:
    """The prepared patterns, if the file was made by this very Python; else None."""
    entries = prepared_file.read_value(path, _identity)
    if not isinstance(entries, list) or not all(isinstance(e, tuple) and len(e) == ENTRY_FIELDS for e in entries):
        return None
    return entries


def install(path: str = PREPARED_FILE) -> int:
    """Put the prepared patterns into `re`'s cache (those not there already); how many."""
    entries = load(path)
    cache = getattr(re, "_cache", None)
    if not entries or type(cache) is not dict:
        return 0
    room = getattr(re, "_MAXCACHE", 0) // 2  # leave `re` room for what it compiles itself
    installed = 0
    for found in entries[:room]:
        key = (type(found[0]), found[0], found[1])
        if key not in cache:
            try:
                cache[key] = _build(found)
            except (RuntimeError, TypeError, ValueError, OverflowError):  # _sre refuses a program it cannot run
                continue
            installed += 1
    return installed
