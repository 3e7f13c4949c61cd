"""Stat before read, and a whole render taken from the cache when no input changed.

The manifest (like git's index): for one repository and output folder, every input file read
last time, by absolute path: its device, inode, size, mtime_ns and ctime_ns, and the SHA-256 of
its bytes. A file whose stat matches its record is known by that digest without being read. A
record is made only for a file last changed at least `RACY_NS` before the run that records it
began: a file written again within the file system's timestamp granularity of its record could
keep every stat field (the racy case), so such a file is read by every run until it is older.
ctime cannot be set from user space, so an edit that restores size and mtime (``os.utime``)
still changes the stat; what is trusted is exactly "an unchanged (dev, ino, size, mtime_ns,
ctime_ns), recorded when the file was older than RACY_NS, means unchanged bytes".

The run entry: what the last render of that repository gave (its plan, diagnostics and cluster
count) and the fingerprint of its inputs: every name the read stage read, the digest of each,
what it could not read. A run whose fingerprint, from stats alone, equals the entry's takes the
render from it: no file is read, parsed or resolved. Any difference, and the render runs as
before (through the per-file and per-cluster entries), texts read while fingerprinting reused.
A repository holding anything that may be secret has no run entry (its plan would hold it).
The plan's files are kept beside the entry in `BUCKETS` entries by namespace, each named by the
SHA-256 of its content, so a change that touches one namespace writes one bucket and the entry.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import stat
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from everest_render.cache.store import Store
from everest_render.diagnostics import Diagnostic, Severity
from everest_render.load.documents import SourceFile
from everest_render.load.files import ExtensionFolder, RepositoryFiles, SourceSet, read_text
from everest_render.model import ProviderAssets
from everest_render.package_files import Signature, stat_signature  # one stat identity, the checkout's stat record's too

FORMAT = 1
# The run entry's: 2, its out/ files kept in `BUCKETS` entries of their own, by namespace, named
# by their content: a change rewrites the few it touches, not the whole render (26 MB at 10k).
RUN_FORMAT = 2
BUCKETS = 64
# Coarser than any file system's timestamps (FAT: 2 s; ext4, XFS: the kernel's tick) and than
# the lag of the clock the kernel stamps files with behind the one read here.
RACY_NS = 2_000_000_000
_TOKEN = "\0everest-render digest "  # stands for a file's text while fingerprinting (no text holds NUL)

V = TypeVar("V", str, bytes)  # what a stat record holds per file: a digest, as text or bytes


def now() -> int:
    """The clock records are judged by (a test moves it on to see stat-trusted reads)."""
    return time.time_ns()


def settled(found: os.stat_result, started: int) -> bool:
    """The racy rule: whether a file (or folder) last changed at least `RACY_NS` before the run
    that began at ``started``, so that its stat may stand for its content in a record."""
    return max(found.st_mtime_ns, found.st_ctime_ns) < started - RACY_NS


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class StatReader:
    """The read stage's `TextReader` while fingerprinting: a file whose stat matches its record
    is answered by a token naming its digest, unread; any other is read (its text kept for the
    render that may follow) and answered by the token of what it read."""

    recorded: dict[str, tuple[Signature, str]]
    seen: dict[str, tuple[Signature, str]] = field(default_factory=dict)  # the next manifest
    texts: dict[str, str] = field(default_factory=dict)  # token -> text, for what was read
    paths: dict[str, Path | str] = field(default_factory=dict)  # token -> file, for what was not
    where: dict[str, str] = field(default_factory=dict)  # name -> the file asked about, absolute
    unread: int = 0

    def __post_init__(self) -> None:
        self.started = now()
        self.cwd = os.getcwd()

    def __call__(self, path: Path, name: str) -> tuple[str | None, Diagnostic | None]:
        # Absolute, but not normalised (abspath asks for the working folder every time): any
        # stable spelling names the file, and its record holds its device and inode anyway.
        where = os.fspath(path)
        where = where if os.path.isabs(where) else os.path.join(self.cwd, where)
        try:
            found = os.stat(where)
        except OSError:
            return read_text(path, name)  # it says why
        signature = stat_signature(found)
        known = self.recorded.get(where)
        if known is not None and known[0] == signature and stat.S_ISREG(found.st_mode):
            return self._trusted(where, name, known, path), None
        text, problem = read_text(path, name)
        if text is None:
            return None, problem
        digest = _sha(text)
        if settled(found, self.started):
            self.seen[where] = (signature, digest)
        token = f"{_TOKEN}{digest} {name}"
        self.texts[token] = text
        self.where[name] = where
        return token, None

    def unchanged(self, where: str, name: str) -> str | None:
        """The token of file ``where`` (absolute) when its stat matches its record, as the
        call would answer it; None when it must be asked about by a call (cache/tree.py: a
        no-change run asks this of every file, so it takes no Path and reads nothing)."""
        known = self.recorded.get(where)
        if known is None:
            return None
        try:
            found = os.stat(where)
        except OSError:
            return None
        if known[0] != stat_signature(found) or not stat.S_ISREG(found.st_mode):
            return None
        return self._trusted(where, name, known, where)

    def _trusted(self, where: str, name: str, known: tuple[Signature, str], path: Path | str) -> str:
        """The token of a file known by its stat, unread (``path``: how to read it if asked)."""
        self.seen[where] = known
        self.unread += 1
        token = f"{_TOKEN}{known[1]} {name}"
        self.paths[token] = path
        self.where[name] = where
        return token

    def text(self, token: str) -> str | None:
        """The text a token stands for: as read while fingerprinting, else read now; None when
        the file can no longer be read (the caller reads the repository again)."""
        if not token.startswith(_TOKEN):
            return token
        if token in self.texts:
            return self.texts[token]
        path = self.paths[token]
        text, _ = read_text(Path(path) if isinstance(path, str) else path, token[len(_TOKEN) :].split(" ", 1)[1])
        return text


def fingerprint(files: RepositoryFiles, digest: Callable[[str], str]) -> str:
    """The SHA-256 of everything the read stage gave: names, each text's ``digest``, problems."""
    h = hashlib.sha256()

    def put(*parts: str) -> None:
        for part in parts:
            h.update(part.encode())
            h.update(b"\0")

    def source(found: SourceFile | None) -> None:
        put("file", *(() if found is None else (found.path, digest(found.text))))

    def assets(found: ProviderAssets) -> None:
        for kind, texts in (("template", found.templates), ("schema", found.schemas)):
            for name in sorted(texts):
                put(kind, name, digest(texts[name]))
        put("unreadable", *sorted(found.unreadable))

    def problems(found: tuple[Diagnostic, ...] | list[Diagnostic]) -> None:
        put("problems", *(repr(d) for d in found))

    def source_set(found: SourceSet) -> None:
        put("set", str(found.builtin))
        for item in sorted(found.sources, key=lambda s: s.path):
            source(item)
        for folder in sorted(found.assets):
            put("assets", folder)
            assets(found.assets[folder])
        problems(found.unreadable)

    source_set(files.builtin)
    source_set(files.own)
    source(files.settings)
    problems(files.settings_unreadable)
    for extension in files.extensions:
        put("extension", extension.folder, str(extension.builtin))
        source(extension.manifest)
        assets(extension.assets)
    problems(files.extensions_unreadable)
    return h.hexdigest()


def token_digest(text: str) -> str:
    """A fingerprinting token's digest (what `StatReader` answered)."""
    return text[len(_TOKEN) :].split(" ", 1)[0] if text.startswith(_TOKEN) else _sha(text)


def token_name(text: str) -> str | None:
    """The name a fingerprinting token was answered for; None for a text that is no token."""
    return text[len(_TOKEN) :].split(" ", 1)[1] if text.startswith(_TOKEN) else None


def with_texts(files: RepositoryFiles, text: Callable[[str], str | None]) -> RepositoryFiles | None:
    """The fingerprinting pass's files with each token replaced by its text; None when some
    file can no longer be read (then the repository is read again, as without a cache)."""
    missing = False

    def real(found: str) -> str:
        nonlocal missing
        value = text(found)
        if value is None:
            missing = True
            return ""
        return value

    def source(found: SourceFile) -> SourceFile:
        return SourceFile(found.path, real(found.text))

    def assets(found: ProviderAssets) -> ProviderAssets:
        return ProviderAssets(
            {k: real(v) for k, v in found.templates.items()}, {k: real(v) for k, v in found.schemas.items()}, found.unreadable
        )

    def source_set(found: SourceSet) -> SourceSet:
        return replace(found, sources=[source(s) for s in found.sources], assets={k: assets(v) for k, v in found.assets.items()})

    extensions = tuple(
        ExtensionFolder(e.folder, source(e.manifest), assets(e.assets), e.builtin) for e in files.extensions
    )
    result = replace(
        files,
        builtin=source_set(files.builtin),
        own=source_set(files.own),
        settings=source(files.settings) if files.settings is not None else None,
        extensions=extensions,
    )
    return None if missing else result


# --- entries -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """A clusters/ file, as a render that can be taken apart (incremental.py) saw it: its
    digest and the namespaces (out/ folders) its documents belong to."""

    digest: str
    namespaces: tuple[str, ...]


@dataclass(frozen=True)
class Space:
    """One namespace (out/ folder) of such a render: its clusters' names, its objects' identities."""

    clusters: tuple[str, ...]
    identities: tuple[tuple[str, str, str, str], ...]


@dataclass(frozen=True)
class Replay:
    """A whole render as the run entry keeps it; ``world``, ``parts`` and ``spaces``: its
    parts, when it can be taken apart (else ``parts`` is empty)."""

    clusters: int
    files: dict[str, bytes]
    diagnostics: tuple[Diagnostic, ...]
    world: str = ""
    parts: dict[str, Part] = field(default_factory=dict)
    spaces: dict[str, Space] = field(default_factory=dict)


class Snapshot:
    """The manifest and run entry of one repository, output folder and selection, in ``store``."""

    def __init__(self, store: Store, identity: bytes, root: Path, out_dir: Path, selection: str):
        place = f"{os.path.abspath(root)}\0{os.path.abspath(out_dir)}".encode()
        self.store = store
        self.manifest_key = hashlib.sha256(identity + b"manifest\0" + place).hexdigest()
        self.run_key = hashlib.sha256(identity + b"run\0" + place + b"\0" + selection.encode()).hexdigest()
        self.recorded = _decode_manifest(store.load(self.manifest_key))
        self.reader = StatReader(dict(self.recorded))
        self.buckets: set[str] = set()  # the bucket entries of the run entry read

    def last(self) -> tuple[str, Replay] | None:
        """The run entry: the fingerprint of the inputs it was made from, and the render."""
        found = _decode_run(self.store.load(self.run_key))
        if found is None:
            return None
        inputs, render, buckets = found
        files: dict[str, bytes] = {}
        for key in buckets:
            part = _decode_bucket(key, self.store.load(key))
            if part is None:
                return None  # deleted or corrupt: no replay
            files.update(part)
        self.buckets = set(buckets)
        return inputs, replace(render, files=dict(sorted(files.items())))

    def keep(self, inputs: str, render: Replay) -> None:
        buckets = _encode_buckets(render.files)
        payload = _encode_run(inputs, render, list(buckets)) if buckets is not None else None
        if buckets is None or payload is None:
            return
        for key, part in buckets.items():
            if key not in self.buckets:  # named by content: one kept last time is there as it is
                self.store.save(key, part)
        self.store.save(self.run_key, payload)

    def save_manifest(self) -> None:
        if self.reader.seen != self.recorded:
            self.store.save(self.manifest_key, marshal.dumps((FORMAT, self.reader.seen)))


def _decode_manifest(payload: bytes | None) -> dict[str, tuple[Signature, str]]:
    return decode_records(payload, FORMAT, str)


def decode_records(payload: bytes | None, version: int, value_type: type[V]) -> dict[str, tuple[Signature, V]]:
    """A marshalled ``(version, {path: (signature, value)})`` record, each entry checked for its
    shape: anything else (another format, a damaged entry) is no record, so nothing is trusted."""
    if payload is None:
        return {}
    try:
        found, recorded = marshal.loads(payload)
    except (ValueError, TypeError, EOFError):
        return {}
    if found != version or not isinstance(recorded, dict):
        return {}
    good: dict[str, tuple[Signature, V]] = {}
    for where, record in recorded.items():
        if (
            isinstance(where, str)
            and isinstance(record, tuple)
            and len(record) == 2
            and isinstance(record[1], value_type)
            and isinstance(record[0], tuple)
            and len(record[0]) == 5
            and all(isinstance(n, int) for n in record[0])
        ):
            good[where] = (record[0], record[1])
    return good


def _encode_run(inputs: str, render: Replay, buckets: list[str]) -> bytes | None:
    try:
        found = [(d.file, d.line, d.column, d.message, d.path, d.severity.value) for d in render.diagnostics]
        parts = {name: (part.digest, part.namespaces) for name, part in render.parts.items()}
        spaces = {name: (space.clusters, space.identities) for name, space in render.spaces.items()}
        return marshal.dumps((RUN_FORMAT, inputs, render.clusters, buckets, found, render.world, parts, spaces))
    except ValueError:
        return None


def _decode_run(payload: bytes | None) -> tuple[str, Replay, list[str]] | None:
    """The run entry without its files: the inputs' fingerprint, the render, its buckets' keys."""
    if payload is None:
        return None
    try:
        version, inputs, clusters, buckets, diagnostics, world, parts, spaces = marshal.loads(payload)
        if version != RUN_FORMAT or not isinstance(inputs, str) or not isinstance(clusters, int) or not isinstance(buckets, list):
            return None
        found = tuple(Diagnostic(f, line, col, text, tuple(at), Severity(level)) for f, line, col, text, at, level in diagnostics)
        kept_parts = {str(name): Part(str(digest), tuple(str(n) for n in namespaces)) for name, (digest, namespaces) in parts.items()}
        kept_spaces = {str(name): _space(*space) for name, space in spaces.items()}
    except (ValueError, TypeError, EOFError):
        return None
    if not isinstance(world, str) or not all(isinstance(key, str) and len(key) == 64 for key in buckets):
        return None
    return inputs, Replay(clusters, {}, found, world, kept_parts, kept_spaces), buckets


def _encode_buckets(files: dict[str, bytes]) -> dict[str, bytes] | None:
    """The render's out/ files in `BUCKETS` payloads by namespace (out/ folder), each by the
    SHA-256 of its content (its key: equal contents, one entry)."""
    grouped: dict[int, dict[str, bytes]] = {}
    for path, content in files.items():
        grouped.setdefault(zlib.crc32(path.split("/", 1)[0].encode()) % BUCKETS, {})[path] = content
    try:
        payloads = [marshal.dumps(grouped[number]) for number in sorted(grouped)]
    except ValueError:
        return None
    return {_bucket_key(payload): payload for payload in payloads}


def _bucket_key(payload: bytes) -> str:
    return hashlib.sha256(b"run files\0" + payload).hexdigest()


def _decode_bucket(key: str, payload: bytes | None) -> dict[str, bytes] | None:
    if payload is None or _bucket_key(payload) != key:
        return None
    try:
        files = marshal.loads(payload)
    except (ValueError, TypeError, EOFError):
        return None
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, bytes) for k, v in files.items()):
        return None
    return files


def _space(clusters: list[str], ids: list[tuple[str, str, str, str]]) -> Space:
    return Space(tuple(str(c) for c in clusters), tuple((str(g), str(k), str(n), str(m)) for g, k, n, m in ids))
