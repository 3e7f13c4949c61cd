"""The walk by stat: the read stage's folder listings known unchanged by the folders' stat.

The read stage walks every input folder (a listing per folder, a look at each entry) before
the stat reader (cache/snapshot.py) asks about each file; on a 10,000-cluster fleet the walk
was most of a no-change run. What the walk finds is a function of the listings of the folders
it looks in, the kinds of their entries, and what the files it reads hold. Creating, removing
or renaming an entry changes its folder's mtime; a change of permissions changes its ctime. So,
like git's untracked cache, a read is recorded with the stat of every folder under the input
folders (and of each root, and of its ignore file): when every one of them is unchanged, the
walk would find the same files under the same names, and only the files themselves are asked
about, by the stat reader, as the walk would (a changed file is read and digested). A folder
whose stat changed is listed again, alone: when it holds just what the record knows in it (a
file renamed over another, as git's checkout and editors write, or a hidden file), the record
stands, with the folder's new stat; anything else, and the repository is walked.

Kept only when nothing can change behind a folder's stat: a read without any problem, input
trees without symbolic links (a link's target can change while its folder does not), and
folders last changed at least `RACY_NS` before the run that records them (the racy rule).
Anything else, and the next run walks as without a cache.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import itertools
import marshal
import operator
import os
import stat
import struct
from collections.abc import Callable, Collection, Iterable
from dataclasses import replace
from operator import itemgetter
from pathlib import Path
from typing import Any, cast

from everest_render.cache import snapshot
from everest_render.cache.store import Store
from everest_render.load.files import (
    EXTENSIONS_FOLDER,
    IGNORE_FILE,
    INPUT_FOLDERS,
    SETTINGS_FILE,
    SETTINGS_FILE_MISSPELT,
    ExtensionFolder,
    ProviderAssets,
    RepositoryFiles,
    SourceSet,
    builtin_root,
)
from everest_render.load.text import SourceFile

# 3: with the fingerprint of its shape; 4: the files' stats packed whole, the rest decoded when
# needed; 5: the rest named by an id it holds (not hashed again), files changed since it apart.
FORMAT = 5
# Files whose tokens changed since the rest was kept, held by the record itself (a change of a
# few files writes the record alone: the rest is a fleet's 3.5 MB); beyond, the rest anew.
OVERLAY_LIMIT = 64
REST_ID_BYTES = 16
Stat = bytes  # snapshot.FOLDER_STAT-packed
# Each root's names that the read stage looks at: a link among them is never recorded.
_ROOT_NAMES = frozenset({*INPUT_FOLDERS, EXTENSIONS_FOLDER, SETTINGS_FILE, SETTINGS_FILE_MISSPELT, IGNORE_FILE})
Where = dict[str, tuple[str, str]]  # name -> the file asked about (absolute) and its token
CLUSTERS = "clusters/"
_PATH, _TEXT = operator.attrgetter("path"), operator.attrgetter("text")


class Quick:
    """Every file of a record at once: the files, absolute, and the signature each had when
    the stat reader knew it to hold its token's bytes (snapshot.SIGNATURE, one after the
    other, in the same order): a run compares one packed string with one, no Python step
    per file, and reads nothing else of the record when they are equal."""

    def __init__(self, files: str, signatures: bytes, ask: bytes) -> None:
        self.files = files  # NUL-separated (no path holds NUL)
        self.signatures = signatures
        # Per file, 1: none recorded (read within the racy window): asked about by every run.
        self.ask = ask

    def unchanged(self) -> bool | list[bytes | None]:
        """True when every file has its signature and is a regular file (links followed, as
        the stat reader looks); else each file's signature now, None for one that is no
        regular file (False: a file gone, or a stat out of the packed range)."""
        try:
            signatures, regular = snapshot.signatures(self.files.split("\0"))
        except (OSError, struct.error):  # a file gone, or a stat field out of range: asked one by one
            return False
        if b"".join(signatures) == self.signatures and all(regular) and 1 not in self.ask:
            return True
        return [signature if is_regular else None for signature, is_regular in zip(signatures, regular, strict=True)]

    def recorded(self) -> list[bytes]:
        """Each file's signature as recorded."""
        size = snapshot.SIGNATURE_BYTES
        return [self.signatures[start : start + size] for start in range(0, len(self.signatures), size)]


class Tree:
    """A recorded read: ``watched``, each folder (and ignore file) with how it is looked at
    (True: links followed, for a root) and its stat; ``shape``, the stat reader's answer (texts
    are its tokens); ``where``: each file's name, the path it was asked about and its token;
    ``inputs``: the shape's fingerprint (snapshot.fingerprint); ``quick``: its files' stats
    at once, when the stat reader knew every one. A record read from the cache makes its
    ``where`` and shape only when asked for: a run after no change needs only the stats and
    the fingerprint."""

    def __init__(
        self,
        watched: dict[str, tuple[bool, Stat]],
        shape: RepositoryFiles | Callable[[], RepositoryFiles],
        where: Where | Callable[[], Where | None],
        inputs: str | None = None,
        quick: Quick | None = None,
        kept_rest: bytes | None = None,
        overlay: dict[str, str] | None = None,
        quick_now: Quick | None = None,
        since: tuple[str, dict[str, str]] | None = None,
        world: Callable[[], RepositoryFiles] | None = None,
        own: Callable[[], list[tuple[str, str]]] | None = None,
    ) -> None:
        self.watched = watched
        self._shape = shape
        # The shape but for clusters/ (``world``), and the repository's own files as (name,
        # token) pairs (``own``), when they are made without the whole shape: what a change of
        # a few clusters/ files needs, not a fleet's 14,000 `SourceFile`s.
        self._world = world
        self._own = own
        self._where = where
        self._inputs = inputs
        self.quick = quick
        # The id of the rest (files and shape) kept in the cache, when this record's are those
        # with the tokens of ``overlay`` (name -> token): saving it again writes the record alone.
        self.kept_rest = kept_rest
        self.overlay = overlay or {}
        # Its files' signatures as the stat reader knows them now, when `quick_read` made them
        # from the record's own and the few files it asked about (else made from the reader's).
        self.quick_now = quick_now
        # When `quick_read` made it from a record: that record's inputs, and the files whose
        # tokens changed since (name -> token now): what changed since a render of those inputs.
        self.since = since

    @property
    def shape(self) -> RepositoryFiles:
        if not isinstance(self._shape, RepositoryFiles):
            self._shape = self._shape()
        return self._shape

    @property
    def where(self) -> Where:
        found = self.where_or_none()
        if found is None:
            raise ValueError("a walk record whose files do not decode")  # `_decode` checked them: cannot happen
        return found

    def where_or_none(self) -> Where | None:
        """``where``; None for a record read from the cache whose files do not decode."""
        if callable(self._where):
            found = self._where()
            if found is None:
                return None
            self._where = found
        return self._where

    @property
    def inputs(self) -> str:
        if self._inputs is None:
            if self._own is not None and not isinstance(self._shape, RepositoryFiles):
                self._inputs = snapshot.fingerprint(self.world_shape, snapshot.token_digest, self._own())
            else:
                self._inputs = snapshot.fingerprint(self.shape, snapshot.token_digest)
        return self._inputs

    @property
    def world_shape(self) -> RepositoryFiles:
        """The shape with the repository's own files outside clusters/ alone."""
        if self._world is not None and not isinstance(self._shape, RepositoryFiles):
            return self._world()  # made once (functools.cache)
        shape = self.shape
        own = shape.own.sources
        outside = itertools.compress(own, map(operator.not_, map(str.startswith, map(_PATH, own), itertools.repeat(CLUSTERS))))
        return replace(shape, own=replace(shape.own, sources=list(outside)))

    def own_pairs(self) -> list[tuple[str, str]]:
        """The repository's own files as (name, token) pairs."""
        if self._own is not None and not isinstance(self._shape, RepositoryFiles):
            return self._own()
        own = self.shape.own.sources
        return list(zip(map(_PATH, own), map(_TEXT, own), strict=True))


def load_tree(store: Store, key: str) -> Tree | None:
    return _decode(store.load(key), lambda: store.load(_rest_key(key)))


def save_tree(store: Store, key: str, tree: Tree, before: Tree | None, known: dict[str, bytes] | None = None) -> None:
    """Keep ``tree`` (``known``: the stat reader's records, snapshot.StatReader.seen, for its
    files' stats at once): its files and shape in an entry of their own, which the record
    names by an id the entry holds (a run after no change reads only the record; two runs
    saving at once leave a record that names the other's rest, which is then no record)."""
    if tree is not before:  # `quick_read` gives the record itself when nothing changed
        if tree.kept_rest is not None:  # its files and shape as kept, but the overlay's: the record alone, anew
            quick = _quick_of(tree, known or {})
            try:
                store.save(key, marshal.dumps((FORMAT, tree.watched, tree.kept_rest, tree.inputs, quick, tree.overlay)))
            except ValueError:
                pass
            return
        encoded = _encode(tree, known or {})
        if encoded is not None:
            record, rest = encoded
            store.save(_rest_key(key), rest)
            store.save(key, record)


def _rest_key(key: str) -> str:
    return hashlib.sha256(b"tree rest\0" + key.encode()).hexdigest()


def tree_key(identity: bytes, root: Path, out_dir: Path) -> str:
    place = f"{os.path.abspath(root)}\0{os.path.abspath(out_dir)}".encode()
    return hashlib.sha256(identity + b"tree\0" + place).hexdigest()


def quick_read(tree: Tree, reader: snapshot.StatReader) -> Tree | None:
    """``tree`` with the shape `read_repository_files` gives with ``reader``, when no folder
    it watches changed, or each that did lists what the record knows in it (`_listed_again`,
    whose new stats the tree then watches): each file asked about as the walk would; None
    when a listing differs or a file cannot be read now (then the caller walks)."""
    changed_folders = _changed(tree.watched)
    if changed_folders is None:
        return None
    if changed_folders:
        watched = _listed_again(tree, changed_folders, reader.started)
        if watched is None:
            return None
        tree.watched = watched
    now = tree.quick.unchanged() if tree.quick is not None else False
    if now is True:
        reader.known_unchanged(lambda: tree.where)  # every file as its record says: nothing read
        return tree
    where = tree.where_or_none()
    if where is None:
        return None
    # The files' stats taken once (``now``) with the record they are known by, when its files
    # are these: those as recorded are known so, the others asked about.
    taken: tuple[Quick, list[bytes | None]] | None = None
    if tree.quick is not None and not isinstance(now, bool) and "\0".join(map(itemgetter(0), where.values())) == tree.quick.files:
        taken = (tree.quick, now)
    asking = reader.known_by(where, taken[1], taken[0].recorded(), taken[0].ask) if taken is not None else reader.changed(where)
    changed: dict[str, str] = {}
    for name in asking:  # the rest known by their stat, with the digests the shape holds
        token, problem = reader(Path(where[name][0]), name)
        if token is None or problem is not None:
            return None
        changed[name] = token
    if not changed:
        return tree
    asked = dict(where)  # a copy in C, the few changed put in
    asked.update((name, (where[name][0], token)) for name, token in changed.items())
    fresh = _quick_now(*taken, reader.asked_at, [asked[name] for name in asking], reader.seen) if taken is not None else None
    if all(where[name][1] == token for name, token in changed.items()):
        # Read again (its record too new, or only its stat changed) but holding what it did:
        # the same shape, files and fingerprint (made only if asked for), kept anew for its stats.
        same: tuple[str, dict[str, str]] = (tree.inputs, {})
        world = functools.cache(lambda: tree.world_shape)
        kept, overlay = tree.kept_rest, tree.overlay
        return Tree(tree.watched, lambda: tree.shape, asked, tree.inputs, None, kept, overlay, fresh, same, world, tree.own_pairs)
    since = (tree.inputs, {name: token for name, token in changed.items() if where[name][1] != token})
    swaps = {where[name][1]: token for name, token in changed.items()}
    # Made when asked for: a change of a few clusters/ files renders from the world's shape
    # and is fingerprinted from each file's name and token, the fleet never made whole.
    world = functools.cache(lambda: _swapped(tree.world_shape, swaps))
    own = functools.cache(lambda: _swapped_pairs(tree.own_pairs(), swaps))
    shape = functools.cache(lambda: _swapped(tree.shape, swaps))
    overlay, kept = {**tree.overlay, **changed}, tree.kept_rest  # the rest as kept, but the overlay's
    if kept is None or len(overlay) > OVERLAY_LIMIT:
        overlay, kept = {}, None  # the rest kept anew
    return Tree(tree.watched, shape, asked, None, None, kept, overlay, fresh, since, world, own)


def _swapped_pairs(pairs: list[tuple[str, str]], swaps: dict[str, str]) -> list[tuple[str, str]]:
    """(name, token) ``pairs`` with the tokens of ``swaps`` replaced, in C loops."""
    tokens = list(map(itemgetter(1), pairs))
    return list(zip(map(itemgetter(0), pairs), map(swaps.get, tokens, tokens), strict=True))


def _changed(watched: dict[str, tuple[bool, Stat]]) -> list[str] | None:
    """The folders of ``watched`` whose stat is not the recorded one (a fleet's thousands of
    folders, each pass one C loop: stat, the fields, packed, compared); None when one is gone."""
    folders = list(watched)
    follows = list(map(itemgetter(0), watched.values()))
    order = [*itertools.compress(folders, follows), *itertools.compress(folders, map(operator.not_, follows))]
    try:
        found = list(itertools.chain(
            map(os.stat, itertools.compress(folders, follows)),
            map(os.lstat, itertools.compress(folders, map(operator.not_, follows))),
        ))
    except OSError:
        return None
    stats = snapshot.folder_stats(found)
    recorded = [watched[folder][1] for folder in order]
    if stats == recorded:
        return []
    return [folder for folder, now, then in zip(order, stats, recorded, strict=True) if now != then]


def _listed_again(tree: Tree, folders: list[str], started: int) -> dict[str, tuple[bool, Stat]] | None:
    """``tree``'s watched folders, when each of ``folders`` (changed since recorded) still
    lists exactly the files and folders the record knows in it, besides hidden files the walk
    skips: the walk would find what the record holds. An edit that writes a new file and
    renames it over the old one (git's checkout, most editors, `sed -i`) changes its folder's
    stat, and a walk of a fleet's 14,000 files was most of such a one-change run. Each folder's
    new stat is kept when settled (the racy rule). None when a root or the ignore file changed
    (their names decide what is read), or a folder holds anything else (an entry added or
    removed, a link, an ignored name): then the caller walks."""
    where = tree.where_or_none()
    if where is None:
        return None
    files = set(map(itemgetter(0), where.values()))
    # Entries a folder should hold, by folder: names are absolute and normalised, so a name's
    # folder is what precedes its last slash (str.rpartition in C, not a Python step a file).
    inner = [folder for folder, (follows, _) in tree.watched.items() if not follows]
    expected = collections.Counter(map(itemgetter(0), map(str.rpartition, itertools.chain(files, inner), itertools.repeat("/"))))
    watched = dict(tree.watched)
    for folder in folders:
        if watched[folder][0]:
            return None  # a root
        try:
            found = os.lstat(folder)
            if not stat.S_ISDIR(found.st_mode):
                return None  # the ignore file, or a folder no longer one
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError:
            return None
        known = 0
        for entry in entries:
            if entry.is_symlink():
                return None
            if entry.is_dir(follow_symlinks=False):
                if entry.path not in watched:
                    return None  # a folder added
            elif not entry.is_file(follow_symlinks=False):
                return None
            elif entry.path not in files:
                if not entry.name.startswith("."):
                    return None  # a file added, or one the walk skips but for its name (ignored, not YAML)
                continue  # hidden: the walk never looks at it
            known += 1
        if known != expected[folder]:
            return None  # an entry removed
        if snapshot.settled(found, started):
            watched[folder] = (False, snapshot.folder_stat(found))
    return watched


def _swapped(shape: RepositoryFiles, swaps: dict[str, str]) -> RepositoryFiles:
    """``shape`` with the tokens of ``swaps`` replaced (a few changed files of a fleet: each
    other file's SourceFile kept as it is, not made again)."""

    def source(found: SourceFile) -> SourceFile:
        return SourceFile(found.path, swaps[found.text]) if found.text in swaps else found

    def assets(found: ProviderAssets) -> ProviderAssets:
        templates = {k: swaps.get(v, v) for k, v in found.templates.items()}
        schemas = {k: swaps.get(v, v) for k, v in found.schemas.items()}
        return ProviderAssets(templates, schemas, found.unreadable)

    def source_set(found: SourceSet) -> SourceSet:
        sources = [s if s.text not in swaps else source(s) for s in found.sources]
        return replace(found, sources=sources, assets={k: assets(v) for k, v in found.assets.items()})

    return replace(
        shape,
        builtin=source_set(shape.builtin),
        own=source_set(shape.own),
        settings=source(shape.settings) if shape.settings is not None else None,
        extensions=tuple(ExtensionFolder(e.folder, source(e.manifest), assets(e.assets), e.builtin) for e in shape.extensions),
    )


def record_tree(shape: RepositoryFiles, root: Path, out_dir: Path, reader: snapshot.StatReader) -> Tree | None:
    """The record of a read that ``reader`` answered, or None when it cannot be trusted later
    (a problem, a link, a file the reader did not answer, a folder changed too recently)."""
    if _problems(shape):
        return None
    tokens = {snapshot.token_name(text): text for text in _texts(shape)}
    if any(name is None or name not in reader.where for name in tokens):
        return None
    watched: dict[str, tuple[bool, Stat]] = {}
    skip = os.path.realpath(out_dir)
    roots = [(root, (*INPUT_FOLDERS, EXTENSIONS_FOLDER)), (builtin_root(), ("definitions", "providers", EXTENSIONS_FOLDER))]
    for base, folders in roots:
        if not _watch_root(base, folders, skip, reader.started, watched):
            return None
    return Tree(watched, shape, {name: (reader.where[name], token) for name, token in tokens.items() if name is not None})


def _watch_root(base: Path, folders: Iterable[str], skip: str, started: int, watched: dict[str, tuple[bool, Stat]]) -> bool:
    try:
        found = os.stat(base)
        real = os.path.realpath(base)
        with os.scandir(real) as listing:
            entries = {entry.name: entry for entry in listing}
    except OSError:
        return False
    if not snapshot.settled(found, started) or any(entries[name].is_symlink() for name in _ROOT_NAMES & entries.keys()):
        return False
    watched[os.path.abspath(base)] = (True, snapshot.folder_stat(found))
    if IGNORE_FILE in entries:
        ignore = entries[IGNORE_FILE]
        try:
            ignore_stat = os.lstat(ignore.path)
        except OSError:
            return False
        if not snapshot.settled(ignore_stat, started):
            return False
        watched[ignore.path] = (False, snapshot.folder_stat(ignore_stat))
    pending = [entries[name].path for name in folders if name in entries and entries[name].is_dir(follow_symlinks=False)]
    while pending:
        folder = pending.pop()
        if folder == skip:
            continue
        try:
            found = os.lstat(folder)
            with os.scandir(folder) as listing:
                inside = list(listing)
        except OSError:
            return False
        if not snapshot.settled(found, started):
            return False
        watched[folder] = (False, snapshot.folder_stat(found))
        for entry in inside:
            if entry.is_symlink():
                return False
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
    return True


# --- the record as plain data -------------------------------------------------------------


def _problems(shape: RepositoryFiles) -> bool:
    sets = (shape.builtin, shape.own)
    assets = [*(a for s in sets for a in s.assets.values()), *(e.assets for e in shape.extensions)]
    return bool(
        any(s.unreadable for s in sets)
        or shape.settings_unreadable
        or shape.extensions_unreadable
        or any(a.unreadable for a in assets)
    )


def _texts(shape: RepositoryFiles) -> list[str]:
    found: list[str] = []
    for each in (shape.builtin, shape.own):
        found += [s.text for s in each.sources]
        for assets in each.assets.values():
            found += [*assets.templates.values(), *assets.schemas.values()]
    if shape.settings is not None:
        found.append(shape.settings.text)
    for extension in shape.extensions:
        found += [extension.manifest.text, *extension.assets.templates.values(), *extension.assets.schemas.values()]
    return found


def _encode(tree: Tree, known: dict[str, bytes]) -> tuple[bytes, bytes] | None:
    def source_set(found: SourceSet) -> Any:
        assets = {k: (dict(a.templates), dict(a.schemas)) for k, a in found.assets.items()}
        return ([(s.path, s.text) for s in found.sources], assets, found.builtin)

    shape = tree.shape
    settings = (shape.settings.path, shape.settings.text) if shape.settings is not None else None
    extensions = [
        (e.folder, (e.manifest.path, e.manifest.text), (dict(e.assets.templates), dict(e.assets.schemas)), e.builtin)
        for e in shape.extensions
    ]
    plain = (source_set(shape.builtin), source_set(shape.own), settings, extensions)
    # Named by an id of its own, not by its digest: the store checks an entry's bytes when it
    # reads them, so a rest holding the id its record names is the one saved with it.
    rest_id = os.urandom(REST_ID_BYTES)
    try:
        rest = marshal.dumps((rest_id, plain, tree.where))
        return marshal.dumps((FORMAT, tree.watched, rest_id, tree.inputs, _quick_of(tree, known), {})), rest
    except ValueError:
        return None


def _quick_of(tree: Tree, known: dict[str, bytes]) -> tuple[str, bytes, bytes] | None:
    """`_quick` of ``tree``'s files, or as `quick_read` made it."""
    if tree.quick_now is not None:
        return tree.quick_now.files, tree.quick_now.signatures, tree.quick_now.ask
    return _quick(tree.where, known)


def _quick_now(quick: Quick, now: list[bytes | None], at: list[int], asked: list[tuple[str, str]], seen: dict[str, bytes]) -> Quick | None:
    """`_quick` after `StatReader.known_by` told which files to ask about (``at``, by place in
    ``quick``'s files; ``asked``: each one's file and token once read), without a Python step per
    file of a fleet: every other file's signature ``now`` is the one recorded; each asked about
    has the reader's record of it, else (too new to record) is asked about by the next run."""
    signatures = list(now)
    ask = bytearray(len(signatures))
    for index, (path, token) in zip(at, asked, strict=True):
        record = seen.get(path)
        if record is not None and record[snapshot.SIGNATURE_BYTES :].hex() == snapshot.token_digest(token):
            signatures[index] = record[: snapshot.SIGNATURE_BYTES]
        else:
            signatures[index], ask[index] = bytes(snapshot.SIGNATURE_BYTES), 1
    if None in signatures:
        return None  # cannot be: a file that is no regular file is asked about
    return Quick(quick.files, b"".join(cast("list[bytes]", signatures)), bytes(ask))


def _quick(where: Where, known: dict[str, bytes]) -> tuple[str, bytes, bytes] | None:
    """Every file's signature as the stat reader recorded it (snapshot.record_of) with the
    digest its token names, and which it did not record (a file too new, read by the next
    run again: the racy rule); None when a record names another digest, or no file."""
    files = list(map(itemgetter(0), where.values()))
    records = list(map(known.get, files))
    if not files:
        return None
    ask = bytes(record is None for record in records)
    recorded = [record for record in records if record is not None]
    digests = itertools.compress(snapshot.token_digests(list(map(itemgetter(1), where.values()))), map(operator.not_, ask))
    if b"".join(r[snapshot.SIGNATURE_BYTES :] for r in recorded).hex() != "".join(digests):
        return None
    none = bytes(snapshot.SIGNATURE_BYTES)
    return "\0".join(files), b"".join(r[: snapshot.SIGNATURE_BYTES] if r is not None else none for r in records), ask


def _decode(payload: bytes | None, load_rest: Callable[[], bytes | None]) -> Tree | None:
    """The record, checked for its shape now but for its files and shape (a record of another
    shape is none), which ``load_rest`` reads and are checked whole when first asked for
    (`Tree.where`): none unless they are those the record names by id, each file of its
    overlay among them."""
    if payload is None:
        return None
    try:
        version, watched, rest_id, inputs, quick, overlay = marshal.loads(payload)
        if version != FORMAT or type(inputs) is not str or type(rest_id) is not bytes or len(rest_id) != REST_ID_BYTES:
            return None
        if type(overlay) is not dict or len(overlay) > OVERLAY_LIMIT or not _text_map(overlay):
            return None
        if type(watched) is not dict or set(map(type, watched)) - {str}:
            return None
        if set(map(type, watched.values())) - {tuple} or set(map(len, watched.values())) - {2}:
            return None
        follows, stats = list(map(itemgetter(0), watched.values())), list(map(itemgetter(1), watched.values()))
        if set(map(type, follows)) - {bool} or set(map(type, stats)) - {bytes} or set(map(len, stats)) - {snapshot.FOLDER_STAT.size}:
            return None
        if quick is not None and not _quick_shape(quick):
            return None
    except (ValueError, TypeError, EOFError, IndexError, AttributeError):
        return None
    decoded = functools.cache(lambda: _decoded_rest(load_rest(), rest_id))

    @functools.cache
    def where() -> Where | None:
        found = decoded()
        if found is None or not overlay.keys() <= found[1].keys():
            return None
        files = found[1]
        if overlay:
            files = dict(files)
            files.update((name, (files[name][0], token)) for name, token in overlay.items())
        return files

    def plain() -> tuple[Any, dict[str, str]]:
        """The shape as kept, and the tokens the overlay swaps (the kept one -> the one now)."""
        found = decoded()
        if found is None:
            raise ValueError("a walk record whose shape does not decode")  # asked only once `where` decoded
        return found[0], {found[1][name][1]: token for name, token in overlay.items()}

    def shape() -> RepositoryFiles:
        kept, swaps = plain()
        return _swapped(_shape(kept), swaps)

    @functools.cache
    def world() -> RepositoryFiles:
        kept, swaps = plain()
        own = kept[1][0]
        outside = itertools.compress(own, map(operator.not_, map(str.startswith, map(itemgetter(0), own), itertools.repeat(CLUSTERS))))
        return _swapped(_shape((kept[0], (list(outside), *kept[1][1:]), *kept[2:])), swaps)

    @functools.cache
    def own() -> list[tuple[str, str]]:
        kept, swaps = plain()
        return _swapped_pairs(kept[1][0], swaps)

    quick_files = Quick(*quick) if quick is not None else None
    return Tree(watched, shape, where, inputs, quick_files, kept_rest=rest_id, overlay=overlay, world=world, own=own)


def _quick_shape(quick: Any) -> bool:
    if type(quick) is not tuple or len(quick) != 3 or not all(map(isinstance, quick, (str, bytes, bytes))):
        return False
    files, signatures, ask = quick
    count = files.count("\0") + 1
    return bool(files) and len(signatures) == snapshot.SIGNATURE_BYTES * count and len(ask) == count and not set(ask) - {0, 1}


def _decoded_rest(rest: bytes | None, rest_id: bytes) -> tuple[Any, Where] | None:
    """The record's shape (plain) and files, checked whole; None when they are not what
    `_encode` made for the record (``rest_id``: the id they were kept with)."""
    if rest is None:
        return None
    try:
        found_id, plain, where = marshal.loads(rest)
        if found_id != rest_id or not _plain_shape(plain):
            return None
        if type(where) is not dict or set(map(type, where)) - {str} or not _text_pairs(where.values()):
            return None
    except (ValueError, TypeError, EOFError, IndexError, AttributeError):
        return None
    return plain, where


def _plain_shape(plain: Any) -> bool:
    """Whether ``plain`` is what `_encode` makes of a shape (so that `_shape` cannot fail)."""

    def source_set(found: Any) -> bool:
        if type(found) is not tuple or len(found) != 3 or type(found[0]) is not list or type(found[1]) is not dict:
            return False
        sources, assets, is_builtin = found
        return _text_pairs(sources) and type(is_builtin) is bool and all(type(k) is str and _assets(a) for k, a in assets.items())

    def _assets(found: Any) -> bool:
        return type(found) is tuple and len(found) == 2 and all(type(d) is dict and _text_map(d) for d in found)

    def source(found: Any) -> bool:
        return type(found) is tuple and _text_pairs([found])

    if type(plain) is not tuple or len(plain) != 4:
        return False
    builtin, own, settings, extensions = plain
    if not source_set(builtin) or not source_set(own) or not (settings is None or source(settings)) or type(extensions) is not list:
        return False
    return all(
        type(e) is tuple and len(e) == 4 and type(e[0]) is str and source(e[1]) and _assets(e[2]) and type(e[3]) is bool
        for e in extensions
    )


def _text_map(found: dict[Any, Any]) -> bool:
    return not set(map(type, found)) - {str} and not set(map(type, found.values())) - {str}


def _shape(plain: Any) -> RepositoryFiles:
    """The shape `_encode` made ``plain`` of (checked by `_plain_shape`)."""
    builtin, own, settings, extensions = plain

    def source_set(found: tuple[list[tuple[str, str]], dict[str, tuple[dict[str, str], dict[str, str]]], bool]) -> SourceSet:
        sources, assets, is_builtin = found
        return SourceSet(
            list(itertools.starmap(SourceFile, sources)),  # one C loop
            {k: ProviderAssets(dict(t), dict(s)) for k, (t, s) in assets.items()},
            is_builtin,
        )

    return RepositoryFiles(
        source_set(builtin),
        source_set(own),
        SourceFile(*settings) if settings is not None else None,
        (),
        tuple(ExtensionFolder(f, SourceFile(*m), ProviderAssets(dict(a[0]), dict(a[1])), b) for f, m, a, b in extensions),
        (),
    )


def _text_pairs(values: Collection[object]) -> bool:
    """Whether every one of ``values`` is a pair of texts (checked whole, not file by file)."""
    if set(map(type, values)) - {tuple} or set(map(len, values)) - {2}:  # type: ignore[arg-type]
        return False
    return not set(map(type, itertools.chain.from_iterable(values))) - {str}  # type: ignore[arg-type]
