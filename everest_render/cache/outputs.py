"""Stat before read for out/: what each file of an output folder held when a run last looked.

A render compares every planned file with out/ (to write only what changed, for `--check`, and
for the guardrails); on a fleet that is reading the whole of out/ on every run. The record is
the inputs' manifest rule (cache/snapshot.py) applied to out/: per file, its device, inode,
size, mtime_ns and ctime_ns and the SHA-256 of the bytes it was found to hold, made only when
the file was last changed at least `RACY_NS` before the run began. A file whose stat matches
its record, and whose planned bytes have the recorded digest, is known to hold them unread.
Any other file is read and compared, as without a cache. An edit behind the renderer's back
changes ctime (which user space cannot set), so it is read, whatever size and mtime it keeps.

The record only ever says "this file, with this stat, held these bytes": a stale record (out/
written by another run since, by hand, or restored from a backup) has a different stat and is
not used; concurrent runs that save their records in turn leave true ones. A file written by
this run is not recorded by it (it is racy by construction): the next run reads it once.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import stat
from pathlib import Path

from everest_render.cache import snapshot
from everest_render.cache.store import Store

FORMAT = 2  # 2: each record packed (snapshot.record_of)


class OutputRecord:
    """The record of one output folder in ``store``: `holds` answers from it, `saw` makes the
    next one, `save` keeps it. What emit/output.py asks of a `Trust`."""

    def __init__(self, store: Store, identity: bytes, out_dir: Path) -> None:
        self.store = store
        self.key = hashlib.sha256(identity + b"out\0" + os.path.abspath(out_dir).encode()).hexdigest()
        self.recorded = _decode(store.load(self.key))
        self.seen: dict[str, bytes] = {}
        self.started = snapshot.now()

    def holds(self, path: str, found: os.stat_result, digest: bytes) -> bool:
        """Whether out/``path``, stat ``found`` (links followed), is known to hold the bytes
        whose SHA-256 is ``digest``."""
        known = self.seen.get(path) or self.recorded.get(path)  # seen: found so earlier this run
        if known is None or not known.endswith(digest) or not known.startswith(snapshot.packed_signature(found)):
            return False
        if not stat.S_ISREG(found.st_mode):
            return False
        self.seen[path] = known
        return True

    def saw(self, path: str, found: os.stat_result, content: bytes) -> None:
        """out/``path`` was read and held ``content``; ``found``: its stat taken before the read."""
        if stat.S_ISREG(found.st_mode) and snapshot.settled(found, self.started):
            self.seen[path] = snapshot.record_of(found, hashlib.sha256(content).digest())

    def save(self) -> None:
        """Keep what this run saw (only the files it found holding what it planned)."""
        if self.seen != self.recorded:
            self.store.save(self.key, marshal.dumps((FORMAT, self.seen)))


def open_record(store: Store | None, out_dir: Path) -> OutputRecord | None:
    """The record of ``out_dir`` in ``store``; None without a cache (then every file is read)."""
    if store is None or not store.enabled:
        return None
    from everest_render.cache.store import renderer_identity

    return OutputRecord(store, renderer_identity(), out_dir)


def _decode(payload: bytes | None) -> dict[str, bytes]:
    return snapshot.decode_records(payload, FORMAT)
