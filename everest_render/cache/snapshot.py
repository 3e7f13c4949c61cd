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
before (through the entries of loaded files and clusters), texts read while fingerprinting reused.
A repository holding anything that may be secret has no run entry (its plan would hold it).
The plan's files are kept beside the entry in buckets by namespace (cache/kept.py), each named
by the SHA-256 of its content, so a change that touches one namespace writes one bucket and the
entry; the entry holds each file's digest, so a replay reads a bucket only for what it writes.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import marshal
import operator
import os
import stat
import struct
import time
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from dataclasses import dataclass, field, replace
from operator import itemgetter
from pathlib import Path
from typing import TypeVar

from everest_render.cache.kept import KeptFiles, buckets_of, digest_of
from everest_render.cache.layout import Layout, Part, Space, decode_layout, decode_spaces, spaces_key
from everest_render.cache.store import Store
from everest_render.diagnostics import Diagnostic, Severity
from everest_render.load.files import ExtensionFolder, ProviderAssets, RepositoryFiles, SourceSet, read_text
from everest_render.load.text import SourceFile

FORMAT = 2  # 2: each record packed (`record_of`)
# The run entry's: 2, its out/ files kept in bucket entries of their own, by namespace, named
# by their content: a change rewrites the few it touches, not the whole render (26 MB at 10k);
# 3, each file's digest in the entry, its bytes read from its bucket only when asked for; 4, its
# parts one text a file and its spaces in buckets by namespace (cache/layout.py); 5, 256 buckets;
# 6, the layout in an entry of its own, named by an id both hold: a run after no change does not
# read it (1.6 MB of a 2.2 MB entry at 10,000 clusters, read and hashed by every replay).
RUN_FORMAT = 6
LAYOUT_ID_BYTES = 16
# Coarser than any file system's timestamps (FAT: 2 s; ext4, XFS: the kernel's tick) and than
# the lag of the clock the kernel stamps files with behind the one read here.
RACY_NS = 2_000_000_000
_TOKEN = "\0everest-render digest "  # stands for a file's text while fingerprinting (no text holds NUL)

# A file's dev, ino, size, mtime_ns and ctime_ns, packed: a stat record (the manifest, out/'s
# record) holds, per file, these bytes and the SHA-256 of the file's bytes, as one value: a
# record of a fleet decodes and is checked for its shape without a Python step per file.
# Each field taken modulo 2**64 (a timestamp beyond 2262 or before 1678 still packs); ctime,
# which only the kernel sets, to now, tells changes apart whatever mtime says.
SIGNATURE = struct.Struct("<5Q")
SIGNATURE_FIELDS = operator.attrgetter("st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns")  # unmasked: see `changed`
_MODE = operator.attrgetter("st_mode")
_PATH, _TEXT = operator.attrgetter("path"), operator.attrgetter("text")
SIGNATURE_BYTES = SIGNATURE.size
RECORD_BYTES = SIGNATURE_BYTES + 32
_MASK = (1 << 64) - 1

# A folder's (or a root's) stat, packed: its mode too (a link in a folder's place is no folder)
# and the signature's fields, each modulo 2**64 (cache/tree.py's walk record, out/'s record).
FOLDER_STAT = struct.Struct("<6Q")
_FOLDER_FIELDS = operator.attrgetter("st_mode", "st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns")


def now() -> int:
    """The clock records are judged by (a test moves it on to see stat-trusted reads)."""
    return time.time_ns()


def packed_signature(found: os.stat_result) -> bytes:
    """`package_files.stat_signature`'s fields (what a file's stat says of its identity), packed."""
    return SIGNATURE.pack(
        found.st_dev & _MASK, found.st_ino & _MASK, found.st_size & _MASK, found.st_mtime_ns & _MASK, found.st_ctime_ns & _MASK
    )


def folder_stat(found: os.stat_result) -> bytes:
    try:
        return FOLDER_STAT.pack(*_FOLDER_FIELDS(found))  # the fields as they are: one out of range is rare
    except struct.error:
        return FOLDER_STAT.pack(*(n & _MASK for n in _FOLDER_FIELDS(found)))


def folder_stats(found: list[os.stat_result]) -> list[bytes]:
    """`folder_stat` of each, in one C loop (a fleet's thousands of folders)."""
    try:
        return list(itertools.starmap(FOLDER_STAT.pack, map(_FOLDER_FIELDS, found)))
    except struct.error:  # a field out of range unmasked: one by one, as recorded
        return list(map(folder_stat, found))


def signatures(paths: Iterable[str], look: Callable[[str], os.stat_result] | None = None) -> tuple[list[bytes], list[bool]]:
    """Each file's signature (`SIGNATURE`, unmasked: see `changed`) and whether it is a regular
    file, looked at by ``look``: each pass one C loop over a fleet's files. Raises OSError for a
    file gone and struct.error for a field out of range (the caller asks one by one then).
    ``look``: os.stat unless told, looked up when called."""
    found = list(map(look or os.stat, paths))
    return list(itertools.starmap(SIGNATURE.pack, map(SIGNATURE_FIELDS, found))), list(map(stat.S_ISREG, map(_MODE, found)))


def settled(found: os.stat_result, started: int) -> bool:
    """The racy rule: whether a file (or folder) last changed at least `RACY_NS` before the run
    that began at ``started``, so that its stat may stand for its content in a record."""
    return max(found.st_mtime_ns, found.st_ctime_ns) < started - RACY_NS


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def record_of(found: os.stat_result, digest: bytes) -> bytes:
    """A stat record's value: the file's signature and the SHA-256 of its bytes."""
    return packed_signature(found) + digest


@dataclass
class StatReader:
    """The read stage's `TextReader` while fingerprinting: a file whose stat matches its record
    is answered by a token naming its digest, unread; any other is read (its text kept for the
    render that may follow) and answered by the token of what it read."""

    recorded: dict[str, bytes]  # absolute path -> `record_of` the file
    seen: dict[str, bytes] = field(default_factory=dict)  # the next manifest
    # What ``recorded`` is read from, when first needed (a run whose walk record says no file
    # changed never reads the manifest); None: ``recorded`` is all there is.
    load_recorded: Callable[[], dict[str, bytes]] | None = None
    texts: dict[str, str] = field(default_factory=dict)  # token -> text, for what was read
    paths: dict[str, Path | str] = field(default_factory=dict)  # token -> file, for what was not
    where: dict[str, str] = field(default_factory=dict)  # name -> the file asked about, absolute
    unread: int = 0
    # Whether a file known by its stat held other bytes when `text` read it (changed since):
    # until one did, the texts given are those the tokens name, and share their fingerprint.
    moved: bool = False

    def __post_init__(self) -> None:
        self.started = now()
        self.cwd = os.getcwd()
        # Files known unchanged by their stat all at once (cache/tree.py), as name -> (file,
        # token): each told to this reader only if a render goes on to read them.
        self._known_later: Callable[[], Mapping[str, tuple[str, str]]] | None = None
        self.untouched = False  # every file known so: the manifest stays as it is
        self.by_signatures = False  # files known by `known_by`: the others are read, the manifest unread
        self.asked_at: list[int] = []  # where the names `known_by` gave are among those it was told
        # What `known_by` was told (files, the names it gave to ask about, which were known
        # unchanged, their signatures as recorded), until `seen_all` makes their records.
        self._known_by: tuple[Mapping[str, tuple[str, str]], frozenset[str], list[bool], list[bytes]] | None = None

    def _records(self) -> dict[str, bytes]:
        if self.load_recorded is not None:
            self.recorded.update(self.load_recorded())
            self.load_recorded = None
        return self.recorded

    def known_unchanged(self, files: Callable[[], Mapping[str, tuple[str, str]]]) -> None:
        """Every file of ``files`` (name -> the file, absolute, and its token) is known by its
        stat to hold its token's bytes (checked by the caller, all at once); the mapping is
        made only if a render goes on to read them. Nothing else is asked of this reader."""
        self._known_later = files
        self.untouched = True

    def _told(self) -> None:
        if self._known_later is not None:
            files, self._known_later = self._known_later(), None
            wheres = list(map(itemgetter(0), files.values()))
            self.paths.update(zip(map(itemgetter(1), files.values()), wheres, strict=True))
            self.where.update(zip(files, wheres, strict=True))

    def __call__(self, path: Path, name: str) -> tuple[str | None, Diagnostic | None]:
        # Absolute, but not normalised (abspath asks for the working folder every time): any
        # stable spelling names the file, and its record holds its device and inode anyway.
        where = os.fspath(path)
        where = where if os.path.isabs(where) else os.path.join(self.cwd, where)
        try:
            found = os.stat(where)
        except OSError:
            return read_text(path, name)  # it says why
        signature = packed_signature(found)
        # Asked about after `known_by`: a file its walk record did not know, read whatever the manifest says.
        known = (self.recorded if self.by_signatures else self._records()).get(where)
        if known is not None and known.startswith(signature) and stat.S_ISREG(found.st_mode):
            return self._trusted(where, name, known, path), None
        text, problem = read_text(path, name)
        if text is None:
            return None, problem
        digest = hashlib.sha256(text.encode()).digest()
        if settled(found, self.started):
            self.seen[where] = signature + digest
        token = f"{_TOKEN}{digest.hex()} {name}"
        self.texts[token] = text
        self.where[name] = where
        return token, None

    def changed(self, files: Mapping[str, tuple[str, str]]) -> list[str]:
        """Of ``files`` (name -> the file, absolute, and the token it was answered by before),
        those not known by their stat to hold that token's bytes, to be asked about by a call;
        the others are answered as the call would, unread (cache/tree.py: a no-change run asks
        this of every file, so it takes no Path, reads nothing, and takes no Python step per
        file: each pass below is one C loop over the fleet's files)."""
        names = list(files)
        wheres = list(map(itemgetter(0), files.values()))
        tokens = list(map(itemgetter(1), files.values()))
        try:
            now, regular = signatures(wheres)
        except (OSError, struct.error):  # a file gone, or a stat field out of range: one by one
            return self._changed_one_by_one(names, wheres, tokens)
        start = len(_TOKEN)
        # What the record of each file must be for it to be trusted: its signature now and the
        # digest its token names (a token's digest is 64 hex digits after `_TOKEN`).
        digests = [bytes.fromhex(token[start : start + 64]) for token in tokens]
        expected = list(map(operator.add, now, digests))
        known = list(map(self._records().get, wheres))
        trusted = list(map(operator.and_, map(operator.eq, known, expected), regular))
        self.seen.update(zip(itertools.compress(wheres, trusted), itertools.compress(expected, trusted), strict=True))
        self.paths.update(zip(itertools.compress(tokens, trusted), itertools.compress(wheres, trusted), strict=True))
        self.where.update(zip(itertools.compress(names, trusted), itertools.compress(wheres, trusted), strict=True))
        self.unread += sum(trusted)
        return list(itertools.compress(names, map(operator.not_, trusted)))

    def known_by(self, files: Mapping[str, tuple[str, str]], now: list[bytes | None], recorded: list[bytes], ask: bytes) -> list[str]:
        """`changed`, from each file's signature ``now`` (None: no regular file) and as
        ``recorded`` when this reader knew the file to hold its token's bytes (cache/tree.py,
        in the order of ``files``; ``ask``: 1 for a file it did not know so): no file looked at
        again, no manifest read. The files known so are told to this reader only when asked for
        (`text` finds each in ``files``; `seen_all` makes their records): a run after one change
        of a fleet's 10,000 files reads a few of them."""
        names = list(files)
        trusted = list(map(operator.and_, map(operator.eq, now, recorded), map(operator.not_, ask)))
        self.by_signatures = True
        self.asked_at = list(itertools.compress(range(len(names)), map(operator.not_, trusted)))
        asking = list(itertools.compress(names, map(operator.not_, trusted)))
        self._known_by = (files, frozenset(asking), trusted, recorded)
        self.unread += len(names) - len(asking)
        return asking

    def _known_path(self, token: str) -> str | None:
        """The file a token names, when `known_by` knew it unchanged (None: it did not)."""
        if self._known_by is None:
            return None
        files, asked, _, _ = self._known_by
        name = token_name(token)
        found = files.get(name) if name is not None and name not in asked else None
        return found[0] if found is not None and found[1] == token else None

    def seen_all(self) -> dict[str, bytes]:
        """``seen`` with the record of every file `known_by` knew unchanged (its signature as
        recorded and the digest its token names): the next manifest, whole."""
        if self._known_by is not None:
            files, _, trusted, recorded = self._known_by
            self._known_by = None
            wheres = list(map(itemgetter(0), files.values()))
            kept = list(itertools.compress(map(itemgetter(1), files.values()), trusted))
            start = len(_TOKEN)
            digests = map(bytes.fromhex, map(operator.getitem, kept, itertools.repeat(slice(start, start + 64))))  # type: ignore[arg-type]
            records = map(operator.add, itertools.compress(recorded, trusted), digests)
            # A file read since holds what it was found to hold then.
            self.seen = {**dict(zip(itertools.compress(wheres, trusted), records, strict=True)), **self.seen}
        return self.seen

    def _changed_one_by_one(self, names: list[str], wheres: list[str], tokens: list[str]) -> list[str]:
        asked = []
        start = len(_TOKEN)
        for name, where, was in zip(names, wheres, tokens, strict=True):
            known = self._records().get(where)
            try:
                found = os.stat(where)
            except OSError:
                asked.append(name)
                continue
            if (
                known is None
                or not known.startswith(packed_signature(found))
                or not stat.S_ISREG(found.st_mode)
                or known[SIGNATURE_BYTES:].hex() != was[start : start + 64]
            ):
                asked.append(name)
            else:
                self.seen[where] = known
                self.paths[was] = where
                self.where[name] = where
                self.unread += 1
        return asked

    def _trusted(self, where: str, name: str, known: bytes, path: Path | str) -> str:
        """The token of a file known by its stat, unread (``path``: how to read it if asked)."""
        self.seen[where] = known
        self.unread += 1
        token = f"{_TOKEN}{known[SIGNATURE_BYTES:].hex()} {name}"
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
        path: Path | str | None = self.paths.get(token) or self._known_path(token)
        if path is None:
            self._told()
            path = self.paths[token]
        text, _ = read_text(Path(path) if isinstance(path, str) else path, token[len(_TOKEN) :].split(" ", 1)[1])
        if text is not None and _sha(text) != token_digest(token):
            self.moved = True
        return text


def fingerprint(files: RepositoryFiles, digest: Callable[[str], str], own: Iterable[tuple[str, str]] | None = None) -> str:
    """The SHA-256 of everything the read stage gave: names, each text's ``digest``, problems.
    ``own``: the repository's own files as (name, text) pairs, in place of ``files.own.sources``
    (a walk record's fleet of 14,000 is not made into `SourceFile`s to be fingerprinted)."""
    # Every part followed by NUL, hashed at once (a fleet has some 40,000 parts).
    parts: list[str] = []
    put = parts.extend

    def source(found: SourceFile | None) -> None:
        if found is None:
            parts.append("file")
        else:
            parts.extend(("file", found.path, digest(found.text)))

    def assets(found: ProviderAssets) -> None:
        for kind, texts in (("template", found.templates), ("schema", found.schemas)):
            for name in sorted(texts):
                put((kind, name, digest(texts[name])))
        put(("unreadable", *sorted(found.unreadable)))

    def problems(found: tuple[Diagnostic, ...] | list[Diagnostic]) -> None:
        put(("problems", *(repr(d) for d in found)))

    def source_set(found: SourceSet, pairs: Iterable[tuple[str, str]] | None = None) -> None:
        put(("set", str(found.builtin)))
        # As `source` of each, in path order: C loops over a fleet's 10,000 files.
        pairs = pairs if pairs is not None else zip(map(_PATH, found.sources), map(_TEXT, found.sources), strict=True)
        ordered = sorted(pairs, key=itemgetter(0))
        texts = list(map(itemgetter(1), ordered))
        digests = token_digests(texts) if digest is token_digest else list(map(digest, texts))
        put(itertools.chain.from_iterable(zip(itertools.repeat("file"), map(itemgetter(0), ordered), digests)))
        for folder in sorted(found.assets):
            put(("assets", folder))
            assets(found.assets[folder])
        problems(found.unreadable)

    source_set(files.builtin)
    source_set(files.own, own)
    source(files.settings)
    problems(files.settings_unreadable)
    for extension in files.extensions:
        put(("extension", extension.folder, str(extension.builtin)))
        source(extension.manifest)
        assets(extension.assets)
    problems(files.extensions_unreadable)
    parts.append("")  # the last part's NUL
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def token_digest(text: str) -> str:
    """A fingerprinting token's digest (what `StatReader` answered)."""
    return text[len(_TOKEN) :].split(" ", 1)[0] if text.startswith(_TOKEN) else _sha(text)


def token_digests(texts: list[str]) -> list[str]:
    """`token_digest` of each of ``texts`` (in one C loop when all are tokens, as the stat
    reader answers)."""
    if all(map(str.startswith, texts, itertools.repeat(_TOKEN))):
        start = len(_TOKEN)
        return list(map(operator.getitem, texts, itertools.repeat(slice(start, start + 64))))
    return list(map(token_digest, texts))


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
class Replay:
    """A whole render as the run entry keeps it; ``world``, ``parts`` and ``spaces``: its
    parts, when it can be taken apart (else ``parts`` is empty). From the entry, ``files`` are
    `KeptFiles` (read when asked for) and ``parts`` and ``spaces`` are decoded when first asked
    for (a run after no change needs neither), from its layout (cache/layout.py: ``kept``,
    decoded when first asked for; else made of ``parts`` and ``spaces``)."""

    clusters: int
    files: Mapping[str, bytes]
    diagnostics: tuple[Diagnostic, ...]
    world: str = ""
    parts: Mapping[str, Part] = field(default_factory=dict)
    spaces: Mapping[str, Space] = field(default_factory=dict)
    kept: Callable[[], Layout | None] | None = None

    def layout(self) -> Layout | None:
        """The parts and spaces as the run entry keeps them; None when the render cannot be taken apart."""
        if self.kept is not None:
            return self.kept()
        return Layout.of(self.parts, self.spaces) if self.parts else None


class Snapshot:
    """The manifest and run entry of one repository, output folder and selection, in ``store``."""

    def __init__(self, store: Store, identity: bytes, root: Path, out_dir: Path, selection: str):
        place = f"{os.path.abspath(root)}\0{os.path.abspath(out_dir)}".encode()
        self.store = store
        self.identity = identity
        self.manifest_key = hashlib.sha256(identity + b"manifest\0" + place).hexdigest()
        self.run_key = hashlib.sha256(identity + b"run\0" + place + b"\0" + selection.encode()).hexdigest()
        # The run entry's layout, in place like the entry (a fleet's is 1.6 MB: one kept per
        # change would grow the cache by as much), paired with it by an id both hold.
        self.layout_key = hashlib.sha256(b"run layout\0" + self.run_key.encode()).hexdigest()
        self.recorded: dict[str, bytes] | None = None  # the manifest, read when first needed
        self.reader = StatReader({}, load_recorded=self._manifest)
        # The run entry read: its buckets' keys by number, and each out/ file's digest.
        self.buckets: dict[int, str] = {}
        self.digests: dict[str, bytes] = {}
        self.lost: set[int] = set()  # buckets that could not be read

    def last(self, recover: Callable[[], Mapping[str, bytes]]) -> tuple[str, Replay] | None:
        """The run entry: the fingerprint of the inputs it was made from, and the render (its
        files read from their buckets when asked for; ``recover``: the same render's files
        made afresh, for a bucket that cannot be read then)."""
        found = _decode_run(self.store.load(self.run_key), self._spaces, lambda: self.store.load(self.layout_key))
        if found is None:
            return None
        inputs, render, buckets, digests = found
        self.buckets, self.digests = buckets, digests
        return inputs, replace(render, files=KeptFiles(digests, {}, self._bucket, recover, self._memo))

    def _memo(self, name: str, make: Callable[[], bytes]) -> bytes:
        """What ``make`` gives, kept under ``name`` and this renderer (whose code makes it)."""
        key = hashlib.sha256(self.identity + b"made\0" + name.encode()).hexdigest()
        found = self.store.load(key)
        if found is not None:
            return found
        made = make()
        self.store.save(key, made)
        return made

    def _spaces(self, key: str) -> dict[str, Space] | None:
        return decode_spaces(key, self.store.load(key))

    def _kept_spaces(self, payload: bytes) -> str:
        """The key of a bucket of spaces (cache/layout.py), kept unless it is already."""
        key = spaces_key(payload)
        if not self.store.has(key):
            self.store.save(key, payload)
        return key

    def _bucket(self, number: int) -> dict[str, bytes] | None:
        key = self.buckets.get(number)
        found = _decode_bucket(key, self.store.load(key)) if key is not None else None
        if found is None:
            self.lost.add(number)  # to be kept anew, not named again
        return found

    def keep(self, inputs: str, render: Replay) -> None:
        files = render.files
        digests = files.digests if isinstance(files, KeptFiles) else {path: digest_of(content) for path, content in files.items()}
        # The buckets holding a file added, removed or of other bytes, found by set operations
        # in C over a fleet's 10,000 files: only those are made again.
        numbers = list(buckets_of(digests))
        moved = {path for path, _ in digests.items() ^ self.digests.items()}
        touched = set(buckets_of(moved)) | self.lost
        buckets: dict[int, str] = {}
        for number in sorted(set(numbers)):
            if number not in touched and number in self.buckets and self.store.has(self.buckets[number]):
                buckets[number] = self.buckets[number]  # as kept last time (named by its content)
                continue
            paths = list(itertools.compress(digests, map(number.__eq__, numbers)))
            try:
                payload = marshal.dumps({path: files[path] for path in paths})
            except ValueError:
                return
            buckets[number] = _bucket_key(payload)
            self.store.save(buckets[number], payload)
        try:
            layout = render.layout()
            plain = layout.plain(self._kept_spaces) if layout is not None else None
            layout_id = os.urandom(LAYOUT_ID_BYTES)
            apart = marshal.dumps((layout_id, plain))
        except ValueError:
            return
        entry = _encode_run(inputs, render, buckets, digests, layout_id)
        if entry is not None:
            self.store.save(self.layout_key, apart)  # first: a run entry never names a layout not kept yet
            self.store.save(self.run_key, entry)

    def _manifest(self) -> dict[str, bytes]:
        if self.recorded is None:
            self.recorded = _decode_manifest(self.store.load(self.manifest_key))
        return dict(self.recorded)

    def save_manifest(self) -> None:
        if self.reader.untouched or self.reader.by_signatures:
            # Files known by the walk record, which is saved with their records: the manifest
            # (for a walk) keeps its own, each still true of a file whose stat is unchanged.
            return
        if self.recorded is None or self.reader.seen != self.recorded:
            self.store.save(self.manifest_key, marshal.dumps((FORMAT, self.reader.seen)))


def _decode_manifest(payload: bytes | None) -> dict[str, bytes]:
    return decode_records(payload, FORMAT)


def decode_records(payload: bytes | None, version: int) -> dict[str, bytes]:
    """A marshalled ``(version, {path: record_of(...)})`` record, checked for its shape:
    anything else (another format, a damaged entry) is no record, so nothing is trusted."""
    if payload is None:
        return {}
    try:
        found, recorded = marshal.loads(payload)
    except (ValueError, TypeError, EOFError):
        return {}
    return checked_records(recorded) if found == version else {}


def checked_records(recorded: object) -> dict[str, bytes]:
    """``recorded`` when it is ``{path: record_of(...)}``, else no record (empty)."""
    if type(recorded) is not dict:
        return {}
    # Whole: one bad entry and none is trusted (set(map(...)): no Python step per file).
    if set(map(type, recorded)) - {str} or set(map(type, recorded.values())) - {bytes}:
        return {}
    if set(map(len, recorded.values())) - {RECORD_BYTES}:
        return {}
    return recorded


def _encode_run(
    inputs: str,
    render: Replay,
    buckets: dict[int, str],
    digests: dict[str, bytes],
    layout_id: bytes,
) -> bytes | None:
    try:
        found = [(d.file, d.line, d.column, d.message, d.path, d.severity.value) for d in render.diagnostics]
        return marshal.dumps((RUN_FORMAT, inputs, render.clusters, buckets, digests, found, render.world, layout_id))
    except ValueError:
        return None


def _decode_run(
    payload: bytes | None, read_spaces: Callable[[str], dict[str, Space] | None], read_layout: Callable[[], bytes | None]
) -> tuple[str, Replay, dict[int, str], dict[str, bytes]] | None:
    """The run entry without its files: the inputs' fingerprint, the render, its buckets' keys
    by number, and each out/ file's digest (``read_spaces``: a bucket of its layout's spaces;
    ``read_layout``: its layout's entry, read when first asked for)."""
    if payload is None:
        return None
    try:
        version, inputs, clusters, buckets, digests, diagnostics, world, layout_id = marshal.loads(payload)
        if version != RUN_FORMAT or not isinstance(inputs, str) or not isinstance(clusters, int) or not isinstance(buckets, dict):
            return None
        found = tuple(Diagnostic(f, line, col, text, tuple(at), Severity(level)) for f, line, col, text, at, level in diagnostics)
    except (ValueError, TypeError, EOFError):
        return None
    if not isinstance(world, str) or not isinstance(layout_id, bytes) or not isinstance(digests, dict):
        return None
    if not all(isinstance(n, int) and isinstance(key, str) and len(key) == 64 for n, key in buckets.items()):
        return None
    # Checked whole: a fleet's out/ has 10,000 files (no Python step per file).
    if set(map(type, digests)) - {str} or set(map(type, digests.values())) - {bytes} or set(map(len, digests.values())) - {32}:
        return None
    layout = _Layout(layout_id, read_layout, read_spaces)
    render = Replay(clusters, {}, found, world, _Later(layout.parts), _Later(layout.spaces), layout._decoded)
    return inputs, render, buckets, digests


class _Layout:
    """A run entry's layout (cache/layout.py), read from its entry (``read``) and decoded once,
    when first asked for; none (so the render cannot be taken apart) when that entry cannot be
    read, does not decode or holds another id than ``layout_id`` (another run's, saved between
    this one's layout and entry), or, for its parts and spaces whole, when a bucket of its
    spaces cannot be read."""

    def __init__(
        self, layout_id: bytes, read: Callable[[], bytes | None], read_spaces: Callable[[str], dict[str, Space] | None]
    ) -> None:
        self.layout_id = layout_id
        self.read = read
        self.read_spaces = read_spaces
        self.decoded: tuple[Layout | None] | None = None
        self.whole: tuple[dict[str, Part], dict[str, Space]] | None = None

    def parts(self) -> dict[str, Part]:
        return self._whole()[0]

    def spaces(self) -> dict[str, Space]:
        return self._whole()[1]

    def _whole(self) -> tuple[dict[str, Part], dict[str, Space]]:
        if self.whole is None:
            layout = self._decoded()
            spaces = layout.every_space() if layout is not None else None
            self.whole = (layout.every_part(), spaces) if layout is not None and spaces is not None else ({}, {})
        return self.whole

    def _decoded(self) -> Layout | None:
        if self.decoded is None:
            apart = self.read()
            try:
                found_id, plain = marshal.loads(apart) if apart is not None else (None, None)
            except (ValueError, TypeError, EOFError):
                found_id = plain = None
            plain = plain if found_id == self.layout_id else None
            self.decoded = (decode_layout(plain, self.read_spaces) if plain is not None else None,)
        return self.decoded[0]


T = TypeVar("T")


class _Later(Mapping[str, T]):
    """A mapping decoded when first used."""

    def __init__(self, decode: Callable[[], dict[str, T]]) -> None:
        self._decode = decode

    @functools.cached_property
    def _found(self) -> dict[str, T]:
        return self._decode()

    def __getitem__(self, key: str) -> T:
        return self._found[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._found)

    def __len__(self) -> int:
        return len(self._found)

    # The dict's own: Mapping's would take a Python step per item (a fleet's 10,000 files).
    def __contains__(self, key: object) -> bool:
        return key in self._found

    def keys(self) -> KeysView[str]:
        return self._found.keys()

    def values(self) -> ValuesView[T]:
        return self._found.values()

    def items(self) -> ItemsView[str, T]:
        return self._found.items()


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
