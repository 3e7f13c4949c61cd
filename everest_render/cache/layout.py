"""A render's parts and spaces as the run entry keeps them (cache/snapshot.py): what lets a
change under clusters/ render only the namespaces it touches (incremental.py).

Per clusters/ file, its part (digest and namespaces) as one text; per namespace, its space
(clusters and object identities), in buckets by namespace (kept.bucket_of_namespace, as out/'s
files are), each bucket an entry of its own named by its content and read when asked for; and
apart, every object identity named in another namespace than its space's (``foreign``: only
such an object can repeat one of another space, so a change checks the spaces it renders, the
foreign ones and the spaces they name, not a fleet's 50,000 objects). A change of one namespace
reads and writes one bucket, not the whole fleet's spaces (2 MB at 10,000 clusters), and
decodes its files' parts as one text each (a tuple each was most of decoding the entry).

A bucket that cannot be read when asked for (deleted, damaged) makes the render one that
cannot be taken apart: the whole repository renders, as without the entry.
"""

from __future__ import annotations

import hashlib
import itertools
import marshal
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from operator import itemgetter
from typing import Any, NamedTuple

from everest_render.cache.kept import bucket_of_namespace

Identity = tuple[str, str, str, str]
Foreign = tuple[tuple[str, Identity], ...]  # (space, identity named in another namespace)


class Part(NamedTuple):
    """A clusters/ file, as a render that can be taken apart (incremental.py) saw it: its
    digest and the namespaces (out/ folders) its documents belong to."""

    digest: str
    namespaces: tuple[str, ...]


class Space(NamedTuple):
    """One namespace (out/ folder) of such a render: its clusters' names, its objects' identities."""

    clusters: tuple[str, ...]
    identities: tuple[Identity, ...]


def part_text(part: Part) -> str:
    """A part as one text: its digest, then each namespace, NUL-separated (no name holds NUL)."""
    return "\0".join((part.digest, *part.namespaces))


def part_of(text: str) -> Part:
    digest, *namespaces = text.split("\0")
    return Part(digest, tuple(namespaces))


def foreign_of(spaces: Mapping[str, Space]) -> Foreign:
    """Every identity of ``spaces`` whose namespace is not its space's."""
    return tuple((name, found) for name, space in spaces.items() for found in space.identities if found[2] != name)


SpacesReader = Callable[[str], "dict[str, Space] | None"]  # a bucket's spaces by its key; None: cannot be read


class Layout:
    """Parts (``parts``: path -> `part_text`) and spaces, the spaces of each bucket kept under
    ``keys`` (bucket -> entry key, read by ``read``) or made by this run (``made``, kept with
    the entry)."""

    def __init__(
        self,
        parts: dict[str, str],
        keys: dict[int, str],
        foreign: Foreign,
        read: SpacesReader,
        made: dict[int, dict[str, Space]] | None = None,
    ) -> None:
        self.parts = parts
        self.keys = keys
        self.foreign = foreign
        self._read = read
        self.made = made if made is not None else {}
        self._buckets: dict[int, dict[str, Space] | None] = {}

    @classmethod
    def of(cls, parts: Mapping[str, Part], spaces: Mapping[str, Space]) -> Layout:
        """The layout of a render's parts and spaces, every bucket made anew."""
        made: dict[int, dict[str, Space]] = defaultdict(dict)
        for name in sorted(spaces):
            made[bucket_of_namespace(name)][name] = spaces[name]
        texts = dict(zip(parts, map(part_text, parts.values()), strict=True))
        return cls(texts, {}, foreign_of(spaces), _unread, dict(made))

    def bucket(self, number: int) -> dict[str, Space] | None:
        """The spaces of bucket ``number``; None when they cannot be read."""
        if number in self.made:
            return self.made[number]
        key = self.keys.get(number)
        if key is None:
            return {}
        if number not in self._buckets:
            self._buckets[number] = self._read(key)
        return self._buckets[number]

    def spaces(self, names: Iterable[str]) -> dict[str, Space] | None:
        """The spaces there are of ``names``; None when a bucket holding one cannot be read."""
        names = set(names)
        found: dict[str, Space] = {}
        for number in sorted(set(map(bucket_of_namespace, names))):
            bucket = self.bucket(number)
            if bucket is None:
                return None
            found.update((name, bucket[name]) for name in names & bucket.keys())
        return found

    def every_space(self) -> dict[str, Space] | None:
        """Every space; None when a bucket cannot be read."""
        found: dict[str, Space] = {}
        for number in sorted({*self.keys, *self.made}):
            bucket = self.bucket(number)
            if bucket is None:
                return None
            found.update(bucket)
        return found

    def every_part(self) -> dict[str, Part]:
        return dict(zip(self.parts, map(part_of, self.parts.values()), strict=True))

    def replaced(self, parts: Mapping[str, str], spaces: Mapping[str, Space], names: Collection[str]) -> Layout | None:
        """This layout with ``parts`` put in (path -> `part_text`) and the spaces of ``names``
        replaced by those of ``spaces`` (each of them one of ``names``); None when a bucket
        holding one cannot be read. Only those buckets are made anew."""
        numbers = set(map(bucket_of_namespace, names))
        made = {number: bucket for number, bucket in self.made.items() if number not in numbers}
        for number in sorted(numbers):
            bucket = self.bucket(number)
            if bucket is None:
                return None
            kept = {name: space for name, space in bucket.items() if name not in names}
            kept.update((name, space) for name, space in spaces.items() if bucket_of_namespace(name) == number)
            made[number] = dict(sorted(kept.items()))
        keys = {number: key for number, key in self.keys.items() if number not in numbers}
        foreign = (*(found for found in self.foreign if found[0] not in names), *foreign_of(spaces))
        texts = dict(self.parts)  # a copy in C, the few rendered put in
        texts.update(parts)
        return Layout(texts, keys, foreign, self._read, made)

    def plain(self, keep: Callable[[bytes], str]) -> tuple[dict[str, str], dict[int, str], Foreign]:
        """What the run entry holds: the made buckets kept by ``keep`` (which gives each one's key)."""
        keys = dict(self.keys)
        for number, bucket in sorted(self.made.items()):
            if bucket:
                keys[number] = keep(marshal.dumps({name: tuple(space) for name, space in bucket.items()}))
        return self.parts, keys, self.foreign


def _unread(key: str) -> dict[str, Space] | None:
    return None  # a layout made by this run reads no bucket (every one is made)


def spaces_key(payload: bytes) -> str:
    return hashlib.sha256(b"run spaces\0" + payload).hexdigest()


def decode_spaces(key: str, payload: bytes | None) -> dict[str, Space] | None:
    """A bucket's spaces, checked whole; None unless they are what `Layout.plain` kept under ``key``."""
    if payload is None or spaces_key(payload) != key:
        return None
    try:
        found = marshal.loads(payload)
    except (ValueError, TypeError, EOFError):
        return None
    if not pairs(found, texts, identities):
        return None
    # Made as they are, by tuple's own constructor in C (`_make` is a Python call each).
    return dict(zip(found, map(tuple.__new__, itertools.repeat(Space), found.values()), strict=True))


def decode_layout(plain: Any, read: SpacesReader) -> Layout | None:
    """The layout `Layout.plain` gave, checked whole (no Python step per file); None for any
    other shape (then the render is not taken apart)."""
    if type(plain) is not tuple or len(plain) != 3:
        return None
    parts, keys, foreign = plain
    if type(parts) is not dict or set(map(type, parts)) - {str} or set(map(type, parts.values())) - {str}:
        return None
    if type(keys) is not dict or set(map(type, keys)) - {int} or set(map(type, keys.values())) - {str}:
        return None
    if set(map(len, keys.values())) - {64} or type(foreign) is not tuple or set(map(type, foreign)) - {tuple}:
        return None
    if set(map(len, foreign)) - {2} or not text(list(map(itemgetter(0), foreign))):
        return None
    if not identities([tuple(map(itemgetter(1), foreign))]):
        return None
    return Layout(parts, keys, foreign, read)


def pairs(found: object, first: Callable[[list[object]], bool], second: Callable[[list[object]], bool]) -> bool:
    """Whether ``found`` is a dict of text to pairs whose first items all pass ``first`` and
    second items ``second``: checked whole (one C loop per check), not entry by entry."""
    if type(found) is not dict or set(map(type, found)) - {str}:
        return False
    values = list(found.values())
    if set(map(type, values)) - {tuple} or set(map(len, values)) - {2}:
        return False
    return first(list(map(itemgetter(0), values))) and second(list(map(itemgetter(1), values)))


def text(found: list[object]) -> bool:
    return not set(map(type, found)) - {str}


def identities(found: list[object]) -> bool:
    """Whether every one of ``found`` is a tuple of objects' identities (four texts each)."""
    return not set(map(type, found)) - {tuple} and texts(_flat(found), width=4)


def texts(found: list[object], width: int | None = None) -> bool:
    """Whether every one of ``found`` is a tuple of text (each ``width`` long, if given)."""
    if set(map(type, found)) - {tuple} or (width is not None and set(map(len, found)) - {width}):  # type: ignore[arg-type]
        return False
    return not set(map(type, _flat(found))) - {str}


def _flat(found: list[object]) -> list[object]:
    return list(itertools.chain.from_iterable(found))  # type: ignore[arg-type]
