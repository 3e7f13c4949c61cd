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
import itertools
import marshal
import operator
import os
import stat
import struct
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import cast

from everest_render.cache import snapshot
from everest_render.cache.store import Store

FORMAT = 3  # 2: each record packed (snapshot.record_of); 3: with out/'s folders found clean


class OutputRecord:
    """The record of one output folder in ``store``: `holds` answers from it, `saw` makes the
    next one, `save` keeps it. What emit/output.py asks of a `Trust`."""

    def __init__(self, store: Store, identity: bytes, out_dir: Path) -> None:
        self.store = store
        self.key = hashlib.sha256(identity + b"out\0" + os.path.abspath(out_dir).encode()).hexdigest()
        self.recorded, self.recorded_folders = _decode(store.load(self.key))
        self.seen: dict[str, bytes] = {}
        self.folders: dict[str, tuple[bytes, tuple[str, ...]]] = {}
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

    def held(self, out_dir: Path, paths: Sequence[str], digest: Callable[[str], bytes]) -> set[str]:
        """Of ``paths``, those `holds` would say out/ holds, each a regular file itself (no
        link: looked at with lstat): a fleet's files at once, each pass one C loop over them
        (a Python step per file was most of a no-change run's look at out/). A file this does
        not name is for the caller to look at one by one."""
        prefix = f"{out_dir}/"
        try:
            signatures, regular = snapshot.signatures(map(prefix.__add__, paths), os.lstat)
        except (OSError, struct.error):  # a file missing, or a stat out of the packed range
            return set()
        expected = list(map(operator.add, signatures, map(digest, paths)))
        known = list(map({**self.recorded, **self.seen}.get, paths))
        trusted = list(map(operator.and_, map(operator.eq, known, expected), regular))
        self.seen.update(zip(itertools.compress(paths, trusted), itertools.compress(expected, trusted), strict=True))
        return set(itertools.compress(paths, trusted))

    def saw(self, path: str, found: os.stat_result, digest: bytes) -> None:
        """out/``path`` was read and held the bytes whose SHA-256 is ``digest``; ``found``: its
        stat taken before the read."""
        if stat.S_ISREG(found.st_mode) and snapshot.settled(found, self.started):
            self.seen[path] = snapshot.record_of(found, digest)

    def clean_folder(self, folder: str, found: os.stat_result) -> tuple[str, ...] | None:
        """When out/``folder`` (``found``: its lstat) is known to hold no old writer's temporary
        file (emit/output.py), the names of its folders; else None (then it is listed)."""
        known = self.folders.get(folder) or self.recorded_folders.get(folder)
        if known is None or known[0] != snapshot.folder_stat(found):
            return None
        self.folders[folder] = known
        return known[1]

    def clean_everywhere(self, out_dir: str, looked: Mapping[str, os.stat_result | None]) -> bool:
        """Whether every folder of out/ is known to hold no old writer's temporary file, all at
        once, as `clean_folder` would know each: out/ and every folder the record names have
        the stat recorded, and each folder they hold is among them (so the record names every
        folder of out/). ``looked``: folders' lstats taken since out/ was locked, by name (out/
        itself is always looked at: this run may have changed it); else all are looked at in one
        C loop. A fleet's out/ has thousands of folders: a Python step each was a tenth of a
        no-change run."""
        recorded = self.recorded_folders
        if "" not in recorded:
            return False
        inside = {f"{folder}{name}/" for folder, (_, names) in recorded.items() for name in names}
        if not inside <= recorded.keys():
            return False
        folders = [folder for folder in recorded if folder]
        names = [folder[:-1] for folder in folders]  # "ns/" -> "ns" (a trailing slash would follow a link)
        taken = list(map(looked.get, names))
        try:
            found = [os.lstat(out_dir)]
            found += cast("list[os.stat_result]", taken) if None not in taken else map(os.lstat, map(f"{out_dir}/".__add__, names))
        except OSError:  # a folder gone: each is looked at as it comes
            return False
        if snapshot.folder_stats(found) != [recorded[""][0], *(recorded[folder][0] for folder in folders)]:
            return False
        self.folders.update(recorded)
        return True

    def scanned(self, folder: str, found: os.stat_result, folders: Sequence[str]) -> None:
        """out/``folder``, lstat ``found`` taken before it was listed, holds no temporary file
        and these ``folders``: kept when it last changed long enough ago (the racy rule), so
        that a later listing would find the same names (an entry made, removed or renamed
        changes its folder's mtime and ctime)."""
        if stat.S_ISDIR(found.st_mode) and snapshot.settled(found, self.started):
            self.folders[folder] = (snapshot.folder_stat(found), tuple(folders))

    def save(self) -> None:
        """Keep what this run saw (only the files it found holding what it planned)."""
        if self.seen != self.recorded or self.folders != self.recorded_folders:
            self.store.save(self.key, marshal.dumps((FORMAT, self.seen, self.folders)))


def open_record(store: Store | None, out_dir: Path) -> OutputRecord | None:
    """The record of ``out_dir`` in ``store``; None without a cache (then every file is read)."""
    if store is None or not store.enabled:
        return None
    from everest_render.cache.store import renderer_identity

    return OutputRecord(store, renderer_identity(), out_dir)


def _decode(payload: bytes | None) -> tuple[dict[str, bytes], dict[str, tuple[bytes, tuple[str, ...]]]]:
    """The files' records (snapshot.decode_records) and the folders', each checked whole: a
    record of any other shape is none."""
    if payload is None:
        return {}, {}
    try:
        version, files, folders = marshal.loads(payload)
    except (ValueError, TypeError, EOFError):
        return {}, {}
    if version != FORMAT:
        return {}, {}
    return snapshot.checked_records(files), folders if _folder_records(folders) else {}


def _folder_records(found: object) -> bool:
    if type(found) is not dict or set(map(type, found)) - {str}:
        return False
    values = list(found.values())
    if set(map(type, values)) - {tuple} or set(map(len, values)) - {2}:
        return False
    stats, names = list(map(operator.itemgetter(0), values)), list(map(operator.itemgetter(1), values))
    if set(map(type, stats)) - {bytes} or set(map(len, stats)) - {snapshot.FOLDER_STAT.size} or set(map(type, names)) - {tuple}:
        return False
    return not set(map(type, itertools.chain.from_iterable(names))) - {str}


