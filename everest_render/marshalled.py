"""Blocks of template output with the marshalled bytes they were read from, for the emitter.

The line reader gives each block under a document's second-level entry (``spec.replsets``)
that it read before as a copy that ``marshal.loads`` makes of the bytes it remembered
(load/line_reader.py, `_remembered`); the emitter knows each such block it wrote before by
the bytes ``marshal.dumps`` makes of it (emit/yaml_text.py, `_remembered_block`): the same
bytes, for an equal value. The reader leaves them here, by the block's identity, and the
emitter takes them instead of marshalling the block again (a tenth of writing a document).
Nothing changes a rendered object's blocks in place (post-processing makes new mappings for
what it changes), so the bytes still say what the block holds when it is written.
"""

from __future__ import annotations

from typing import Any

# By the block's id, with the block itself (so that id is not another object's meanwhile).
_KNOWN: dict[int, tuple[Any, bytes]] = {}
# Blocks read and never written (their cluster failed a check) are let go by then.
_LIMIT = 4_096


def remember(block: Any, written: bytes) -> None:
    """``block`` is what ``marshal.loads(written)`` gives (or ``written`` is its marshal.dumps)."""
    if len(_KNOWN) >= _LIMIT:
        _KNOWN.clear()
    _KNOWN[id(block)] = (block, written)


def take(block: Any) -> bytes | None:
    """The bytes `remember` was given with ``block``, once; None when it was not."""
    known = _KNOWN.pop(id(block), None)
    if known is None or known[0] is not block:
        return None
    return known[1]
