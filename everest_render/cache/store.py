"""The cache folder: entries by key, written atomically, verified when read.

Where it is (docs/api.md, "Cache"): ``EVEREST_RENDER_CACHE`` when set, else
``$XDG_CACHE_HOME/everest-render``, else ``~/.cache/everest-render``. Never under out/: the
output folder holds exactly the render. Each entry is one file, ``v2/<64 hex>`` (one folder:
entries hold groups of clusters or files, cache/entries.py, so a large fleet makes thousands
of them, not hundreds of thousands; a folder per key prefix was most of a cold cache's
creations), holding a header, the SHA-256 of its key and payload, and the payload. An entry whose digest
does not match (a torn write, a disk error, an edit) is a miss, never an error. Writes go to
a temporary file renamed into place, so concurrent runs see an entry whole or not at all; two
runs writing one key write the same bytes. Deleting the folder at any time is safe.

A folder that cannot be created or written (a read-only container, a full disk) turns the
cache off for the run with one warning; the render goes on exactly as without it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path

CACHE_VARIABLE = "EVEREST_RENDER_CACHE"
LAYOUT = "v2"  # bumped when the entry format or layout changes; old folders are ignored, never read
_HEADER = b"everest-render cache entry\n"
_DIGEST_BYTES = 64  # hex SHA-256


def default_location(environ: Mapping[str, str]) -> Path | None:
    """``EVEREST_RENDER_CACHE``, else the XDG cache folder; None when there is no home to
    put it in (then the run has no cache)."""
    explicit = environ.get(CACHE_VARIABLE)
    if explicit:
        return Path(explicit)
    xdg = environ.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():  # the XDG spec: a relative value is ignored
        return Path(xdg) / "everest-render"
    try:
        return Path.home() / ".cache" / "everest-render"
    except (RuntimeError, KeyError):
        return None


class Store:
    """Entries by key under ``root``; ``warning`` says why the cache is off, if it turned off."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.warning: str | None = None
        self.enabled = root is not None
        if root is None:
            self.warning = "no cache folder (no home folder and no EVEREST_RENDER_CACHE): rendering without the cache"

    @classmethod
    def open(cls, root: Path | None) -> Store:
        """A store at ``root``, off (with a warning) when ``root`` cannot be written."""
        store = cls(root)
        if root is not None:
            try:
                (root / LAYOUT).mkdir(parents=True, exist_ok=True)
                if not os.access(root / LAYOUT, os.W_OK | os.X_OK):
                    raise PermissionError(13, "permission denied")
            except OSError as error:
                store._turn_off(error)
        return store

    def load(self, key: str) -> bytes | None:
        """The payload stored under ``key``, or None (absent, unreadable or corrupt)."""
        if not self.enabled:
            return None
        # The header and the payload read apart: a run entry holds a whole fleet's out/, which
        # a slice of the file's bytes would copy.
        start = len(_HEADER) + _DIGEST_BYTES + 1
        try:
            with open(self._file(key), "rb") as handle:
                head = handle.read(start)
                payload = handle.read() if len(head) == start else b""
        except OSError:
            return None
        if not head.startswith(_HEADER) or len(head) < start:
            return None
        if head[len(_HEADER) : start - 1] != _digest(key, payload):
            return None
        return payload

    def has(self, key: str) -> bool:
        """Whether an entry is stored under ``key`` (not whether it is sound: `load` says that)."""
        return self.enabled and os.path.isfile(self._file(key))

    def save(self, key: str, payload: bytes) -> None:
        """Store ``payload`` under ``key``: renamed into place whole, or not at all."""
        if not self.enabled:
            return
        folder = f"{self.root}/{LAYOUT}"
        temporary: str | None = None
        try:
            try:
                descriptor, temporary = _new_temporary(folder)
            except FileNotFoundError:
                # Deleted since the store was opened (the cache is safe to delete at any time;
                # another process of the run may make it again first).
                os.makedirs(folder, exist_ok=True)
                descriptor, temporary = _new_temporary(folder)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(_HEADER + _digest(key, payload) + b"\n")
                handle.write(payload)  # apart, not copied into one (a run entry is a whole out/)
            os.replace(temporary, self._file(key))
            temporary = None
        except OSError as error:
            self._turn_off(error)
        finally:
            if temporary is not None:
                try:
                    os.unlink(temporary)
                except OSError:
                    pass

    def _path(self, key: str) -> Path:
        return Path(self._file(key))

    def _file(self, key: str) -> str:
        # A plain string: a lookup per group of clusters and of files, where pathlib's joins would show.
        return f"{self.root}/{LAYOUT}/{key}"

    def _turn_off(self, error: OSError) -> None:
        self.enabled = False
        reason = (error.strerror or str(error)).lower()
        self.warning = f"cannot use the cache folder {self.root} ({reason}): rendering without the cache"


# What tempfile.mkstemp opens a new file with (os.open adds O_CLOEXEC, as for mkstemp's file).
_NEW_FILE = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


def _new_temporary(folder: str) -> tuple[int, str]:
    """A new file in ``folder``, open, and its name: what ``tempfile.mkstemp(prefix=".tmp-",
    dir=folder)`` makes (a random name, created exclusively, readable only by its owner),
    without importing tempfile, which loads shutil, random, bz2 and lzma (~10M instructions,
    a few milliseconds of every run that writes an entry: a one-change render or --check)."""
    for _ in range(100):  # as mkstemp: a name taken meanwhile is drawn again
        name = f"{folder}/.tmp-{os.urandom(8).hex()}"
        try:
            return os.open(name, _NEW_FILE, 0o600), name
        except FileExistsError:
            continue
    raise FileExistsError(17, "no usable temporary name", folder)


def _digest(key: str, payload: bytes) -> bytes:
    digest = hashlib.sha256(key.encode() + b"\0")
    digest.update(payload)
    return digest.hexdigest().encode()


@functools.cache
def renderer_identity() -> bytes:
    """What makes this renderer this renderer: its version, the Python running it, and the
    bytes of every file of the package (code, schemas, vendored data) but the prepared ones
    (package_files.py: made from the others, they change only the time). An entry written by
    any other renderer, a development checkout edited in between included, is never found."""
    from everest_render import __version__
    from everest_render.package_files import file_digests

    digest = hashlib.sha256(f"{__version__}\0{sys.version}\0{sys.implementation.cache_tag}\0".encode())
    for name, file_digest in file_digests():
        digest.update(name.encode() + b"\0")
        digest.update(file_digest)
    return digest.digest()
