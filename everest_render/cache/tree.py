"""The walk by stat: the read stage's folder listings known unchanged by the folders' stat.

The read stage walks every input folder (a listing per folder, a look at each entry) before
the stat reader (cache/snapshot.py) asks about each file; on a 10,000-cluster fleet the walk
was most of a no-change run. What the walk finds is a function of the listings of the folders
it looks in, the kinds of their entries, and what the files it reads hold. Creating, removing
or renaming an entry changes its folder's mtime; a change of permissions changes its ctime. So,
like git's untracked cache, a read is recorded with the stat of every folder under the input
folders (and of each root, and of its ignore file): when every one of them is unchanged, the
walk would find the same files under the same names, and only the files themselves are asked
about, by the stat reader, as the walk would (a changed file is read and digested).

Kept only when nothing can change behind a folder's stat: a read without any problem, input
trees without symbolic links (a link's target can change while its folder does not), and
folders last changed at least `RACY_NS` before the run that records them (the racy rule).
Anything else, and the next run walks as without a cache.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import marshal
import operator
import os
import struct
from collections.abc import Callable, Collection, Iterable
from dataclasses import replace
from operator import itemgetter
from pathlib import Path
from typing import Any

from everest_render.cache import snapshot
from everest_render.cache.store import Store
from everest_render.load.documents import SourceFile
from everest_render.load.files import (
    EXTENSIONS_FOLDER,
    IGNORE_FILE,
    INPUT_FOLDERS,
    SETTINGS_FILE,
    SETTINGS_FILE_MISSPELT,
    ExtensionFolder,
    RepositoryFiles,
    SourceSet,
    builtin_root,
)
from everest_render.model import ProviderAssets

FORMAT = 3  # 2: stats packed, the record checked whole; 3: with the fingerprint of its shape
_STAT = struct.Struct("<6Q")  # mode, dev, ino, size, mtime_ns, ctime_ns, each modulo 2**64 (snapshot.packed_signature)
_STAT_FIELDS = operator.attrgetter("st_mode", "st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns")
Stat = bytes  # `_STAT`-packed
# Each root's names that the read stage looks at: a link among them is never recorded.
_ROOT_NAMES = frozenset({*INPUT_FOLDERS, EXTENSIONS_FOLDER, SETTINGS_FILE, SETTINGS_FILE_MISSPELT, IGNORE_FILE})


class Tree:
    """A recorded read: ``watched``, each folder (and ignore file) with how it is looked at
    (True: links followed, for a root) and its stat; ``shape``, the stat reader's answer (texts
    are its tokens); ``where``: each file's name, the path it was asked about and its token;
    ``inputs``: the shape's fingerprint (snapshot.fingerprint). A record read from the cache
    makes its shape only when asked for: a run after no change needs only the stats, the
    names and the fingerprint."""

    def __init__(
        self,
        watched: dict[str, tuple[bool, Stat]],
        shape: RepositoryFiles | Callable[[], RepositoryFiles],
        where: dict[str, tuple[str, str]],
        inputs: str | None = None,
    ) -> None:
        self.watched = watched
        self._shape = shape
        self.where = where
        self._inputs = inputs

    @property
    def shape(self) -> RepositoryFiles:
        if not isinstance(self._shape, RepositoryFiles):
            self._shape = self._shape()
        return self._shape

    @property
    def inputs(self) -> str:
        if self._inputs is None:
            self._inputs = snapshot.fingerprint(self.shape, snapshot.token_digest)
        return self._inputs


def load_tree(store: Store, key: str) -> Tree | None:
    return _decode(store.load(key))


def save_tree(store: Store, key: str, tree: Tree, before: Tree | None) -> None:
    if tree is not before:  # `quick_read` gives the record itself when nothing changed
        payload = _encode(tree)
        if payload is not None:
            store.save(key, payload)


def tree_key(identity: bytes, root: Path, out_dir: Path) -> str:
    place = f"{os.path.abspath(root)}\0{os.path.abspath(out_dir)}".encode()
    return hashlib.sha256(identity + b"tree\0" + place).hexdigest()


def quick_read(tree: Tree, reader: snapshot.StatReader) -> Tree | None:
    """``tree`` with the shape `read_repository_files` gives with ``reader``, when no folder
    it watches changed: each file asked about as the walk would; None when one changed or a
    file cannot be read now (then the caller walks)."""
    if not _unchanged(tree.watched):
        return None
    changed: dict[str, str] = {}
    for name in reader.changed(tree.where):  # the rest known by their stat, with the digests the shape holds
        token, problem = reader(Path(tree.where[name][0]), name)
        if token is None or problem is not None:
            return None
        changed[name] = token
    if not changed:
        return tree
    shape = _swapped(tree.shape, {tree.where[name][1]: token for name, token in changed.items()})
    asked = {name: (path, changed.get(name, was)) for name, (path, was) in tree.where.items()}
    return Tree(tree.watched, shape, asked)


def _unchanged(watched: dict[str, tuple[bool, Stat]]) -> bool:
    """Whether every folder of ``watched`` has its recorded stat (a fleet's thousands of
    folders, each pass one C loop: stat, the fields, packed, compared)."""
    folders = list(watched)
    follows = list(map(itemgetter(0), watched.values()))
    try:
        found = list(itertools.chain(
            map(os.stat, itertools.compress(folders, follows)),
            map(os.lstat, itertools.compress(folders, map(operator.not_, follows))),
        ))
        stats = list(itertools.starmap(_STAT.pack, map(_STAT_FIELDS, found)))
    except OSError:
        return False
    except struct.error:  # a field out of range unmasked: one by one, as recorded
        stats = list(map(_stat, found))
    recorded = [*itertools.compress(watched.values(), follows), *itertools.compress(watched.values(), map(operator.not_, follows))]
    return stats == list(map(itemgetter(1), recorded))


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
    watched[os.path.abspath(base)] = (True, _stat(found))
    if IGNORE_FILE in entries:
        ignore = entries[IGNORE_FILE]
        try:
            ignore_stat = os.lstat(ignore.path)
        except OSError:
            return False
        if not snapshot.settled(ignore_stat, started):
            return False
        watched[ignore.path] = (False, _stat(ignore_stat))
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
        watched[folder] = (False, _stat(found))
        for entry in inside:
            if entry.is_symlink():
                return False
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
    return True


def _stat(found: os.stat_result) -> Stat:
    mask = (1 << 64) - 1
    return _STAT.pack(*(n & mask for n in (found.st_mode, found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)))


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


def _encode(tree: Tree) -> bytes | None:
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
    try:
        return marshal.dumps((FORMAT, tree.watched, plain, tree.where, tree.inputs))
    except ValueError:
        return None


def _decode(payload: bytes | None) -> Tree | None:
    """The record, checked whole for its shape now (a record of another shape is none); its
    shape's objects made when first asked for (`Tree.shape`)."""
    if payload is None:
        return None
    try:
        version, watched, plain, where, inputs = marshal.loads(payload)
        if version != FORMAT or type(inputs) is not str or not _plain_shape(plain):
            return None
        if type(where) is not dict or set(map(type, where)) - {str} or not _text_pairs(where.values()):
            return None
        if type(watched) is not dict or set(map(type, watched)) - {str}:
            return None
        if set(map(type, watched.values())) - {tuple} or set(map(len, watched.values())) - {2}:
            return None
        follows, stats = list(map(itemgetter(0), watched.values())), list(map(itemgetter(1), watched.values()))
        if set(map(type, follows)) - {bool} or set(map(type, stats)) - {bytes} or set(map(len, stats)) - {_STAT.size}:
            return None
        return Tree(watched, functools.partial(_shape, plain), where, inputs)
    except (ValueError, TypeError, EOFError, IndexError, AttributeError):
        return None


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
