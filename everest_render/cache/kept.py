"""A render's out/ files as the run entry keeps them (cache/snapshot.py): every file's name and
SHA-256 known from the entry itself, its bytes read from its bucket entry only when asked for.

A run after no change compares out/ with the plan by digest alone (cache/outputs.py) and reads
no bucket (they are a whole fleet's out/: 26 MB at 10,000 clusters); a change reads the buckets
of the files it compares, writes or keeps anew. A bucket that cannot be read when asked for
(the cache deleted meanwhile, or damaged) is never trusted: the files come from ``recover``, the
same inputs rendered without the cache.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import operator
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet

BUCKETS = 256  # a change of one namespace rewrites a 256th of a fleet's out/ (and of its spaces)

# A bucket's files by its number, or None when it cannot be read (absent or corrupt).
BucketReader = Callable[[int], "dict[str, bytes] | None"]
# What a pure function made of a key, kept: the kept bytes, or the function's (then kept).
Memo = Callable[[str, Callable[[], bytes]], bytes]


def bucket_of(path: str) -> int:
    """The bucket an out/ file is kept in: by its namespace (its first folder), so a change that
    touches one namespace rewrites one bucket."""
    return bucket_of_namespace(path.partition("/")[0])


def buckets_of(paths: Iterable[str]) -> Iterator[int]:
    """`bucket_of` each of ``paths``, in C loops (a fleet's out/ has 10,000 files)."""
    return map(bucket_of_namespace, map(operator.itemgetter(0), map(str.partition, paths, itertools.repeat("/"))))


@functools.cache
def bucket_of_namespace(namespace: str) -> int:
    """The bucket of a namespace's out/ files (and of its space in the run entry, cache/snapshot.py)."""
    return zlib.crc32(namespace.encode()) % BUCKETS


def digest_of(content: bytes) -> bytes:
    return hashlib.sha256(content).digest()


class KeptFilesLost(Exception):
    """A bucket could not be read when asked for, and the render could not be made again as it
    was (the repository changed meanwhile too): the command stops, writing nothing."""


class KeptFiles(Mapping[str, bytes]):
    """out/ files in path order: ``digests`` names each and its SHA-256; ``known`` holds the bytes
    at hand (rendered this run, or from a bucket read), ``read`` reads a bucket, ``recover``
    gives every file of the render when a bucket cannot be read."""

    def __init__(
        self,
        digests: dict[str, bytes],
        known: dict[str, bytes],
        read: BucketReader,
        recover: Callable[[], Mapping[str, bytes]],
        memo: Memo | None = None,
    ) -> None:
        self.digests = digests
        self.known = known
        self._read = read
        self._recover = recover
        self._memo = memo
        self._numbers: list[int] | None = None  # each file's bucket, in the order of ``digests``
        # The SHA-256 of a file's bytes, unread: the dict's own lookup, so that a look at a
        # fleet's out/ (cache/outputs.py) takes its 10,000 digests in one C loop.
        self.digest: Callable[[str], bytes] = digests.__getitem__

    def merged(self, extra: Mapping[str, bytes], keep: AbstractSet[str] | None = None) -> KeptFiles:
        """These files (those named in ``keep``) with ``extra`` added or replacing, in path
        order, the kept ones still unread."""
        fresh = dict(zip(extra, map(digest_of, extra.values()), strict=True))
        if keep is None or (len(keep) + len(fresh) == len(self.digests) and fresh.keys() == self.digests.keys() - keep):
            # Every name kept or put in place (a namespace rendered again): a copy in C, the
            # fresh digests put in place.
            digests = dict(self.digests)
        else:  # C loops over a fleet's 10,000 files, not a Python step each, in the order they are
            digests = dict(itertools.compress(self.digests.items(), map(keep.__contains__, self.digests)))
        digests.update(fresh)
        # In path order: the kept ones are, so a sort, when one is needed, merges two runs in
        # one pass (a set's order made it a sort of 10,000 names); the same names need none.
        names = list(digests)
        if names != sorted(names):
            digests = dict(sorted(digests.items()))
        known = {path: content for path, content in self.known.items() if path in digests}
        return KeptFiles(digests, {**known, **extra}, self._read, self._recover, self._memo)

    def with_listing(self, path: str, listing: Callable[[Iterable[str]], bytes]) -> KeptFiles:
        """These files and ``path``, holding the ``listing`` of their names: taken from the
        memo by the names' digest (``listing`` is a pure function of them, of this renderer)."""
        names = [name for name in self.digests if name != path]
        if self._memo is None:
            return self.merged({path: listing(names)})
        key = hashlib.sha256(("\0".join(["listing", path, *names])).encode()).hexdigest()
        return self.merged({path: self._memo(key, lambda: listing(names))})

    def __getitem__(self, path: str) -> bytes:
        found = self.known.get(path)
        if found is not None:
            return found
        if path not in self.digests:
            raise KeyError(path)
        if self._numbers is None:
            self._numbers = list(buckets_of(self.digests))  # C loops, once: a fleet has 10,000 files
        number = bucket_of(path)
        wanted = [p for p in itertools.compress(self.digests, map(number.__eq__, self._numbers)) if p not in self.known]
        bucket = self._read(number)
        if bucket is not None and all(p in bucket and digest_of(bucket[p]) == self.digests[p] for p in wanted):
            self.known.update((p, bucket[p]) for p in wanted)
        else:
            recovered = self._recover()
            if any(p not in recovered or digest_of(recovered[p]) != d for p, d in self.digests.items() if p not in self.known):
                raise KeptFilesLost("the render cache does not hold what its entry says: delete it and run again")
            self.known.update((p, recovered[p]) for p in self.digests if p not in self.known)
        return self.known[path]

    def __contains__(self, path: object) -> bool:
        return path in self.digests

    def __iter__(self) -> Iterator[str]:
        return iter(self.digests)

    def __len__(self) -> int:
        return len(self.digests)
