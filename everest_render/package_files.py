"""The package's own files and their digests: what identifies this renderer's code and data.

Two things need them in one run: the render cache's renderer identity (cache/store.py: an
entry written by any other renderer is never found) and the built-ins prepared at build time
(prepared_builtins.py: used only by the code that made them). The package is walked and
hashed once per process, with `os.scandir` rather than `Path.rglob` (pathlib's per-path work
was most of the walk's cost).

What the prepare step writes (`_prepared/`) is not among them: those files are made from the
others, each is checked on its own before use, and they change nothing but the time.

In a package installed from a wheel (the Argo CD image), the installer's RECORD already holds
the SHA-256 and size of every file it wrote, so a file whose size is the recorded one and that
was not modified after RECORD was written (its mtime is not later) takes the recorded digest
unread: reading and hashing the package was a twentieth of a cold `argocd generate`. Any other
file (edited or added after the install, or a checkout's, which has no RECORD) is read and
hashed as before. Like make or git's stat check, this trusts mtimes: an edit that keeps a file's
size and sets its mtime back before the install goes unnoticed (in the image, whose bytecode is
checked by hash only, an edited module would not even be run).

A checkout has no RECORD; `make prepare` writes a stat record instead (below), as git's index
does. And the built-in tree (definitions, providers, extensions, as the wheel ships them) has a
digest of its own, the same in a checkout and in the wheel built from it: the prepare step
stores it beside the built-ins it read, so a run whose tree has that digest needs not read them.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import marshal
import os
from collections.abc import Callable

from everest_render import prepared_file

PACKAGE = os.path.dirname(os.path.abspath(__file__))
PREPARED_FOLDER = "_prepared"
# Where a wheel carries the built-in providers and extensions (load/files.py builtin_root); a
# checkout has them beside the package.
BUILTIN_FOLDER = "_builtin"
_BYTECODE = (".pyc", ".pyo")


@functools.cache
def file_digests(root: str = PACKAGE) -> tuple[tuple[str, bytes], ...]:
    """(path relative to ``root`` with forward slashes, SHA-256 of its bytes) of every file under
    it but bytecode, ``__pycache__`` and the top-level `_prepared/`, in the order of the paths'
    parts. Links to files count as files; links to folders are not followed (as `Path.rglob`)."""
    return tuple(sorted((*_digests(root, builtin=False), *_digests(root, builtin=True)), key=lambda found: found[0].split("/")))


@functools.cache
def _digests(root: str, *, builtin: bool) -> tuple[tuple[str, bytes], ...]:
    """`file_digests` of the files in the top-level `_builtin/` (``builtin``) or of the others:
    the prepared files' identity needs only the others, which in a wheel are a third of the
    bytes (the built-ins, checked against their texts, are most of them)."""

    def skipped(parts: tuple[str, ...], name: str) -> bool:
        return not parts and (name == PREPARED_FOLDER or (name == BUILTIN_FOLDER) != builtin)

    return _digested(root, _files(root, (), skipped))


def _files(folder: str, parts: tuple[str, ...], skipped: Callable[[tuple[str, ...], str], bool]) -> list[tuple[tuple[str, ...], str]]:
    """(path parts below the walk's root, path) of every file under ``folder`` but bytecode,
    ``__pycache__`` and what ``skipped`` names (by the parts of its folder and its name), sorted.
    Links to files count as files; links to folders are not followed (as `Path.rglob`)."""
    found: list[tuple[tuple[str, ...], str]] = []
    pending: list[tuple[str, tuple[str, ...]]] = [(folder, parts)]
    while pending:
        folder, parts = pending.pop()
        try:
            with os.scandir(folder) as entries:
                listed = list(entries)
        except OSError:
            continue
        for entry in listed:
            if entry.name == "__pycache__" or skipped(parts, entry.name):
                continue
            here = (*parts, entry.name)
            if entry.is_dir(follow_symlinks=False):
                pending.append((entry.path, here))
            elif _suffix(entry.name) not in _BYTECODE and entry.is_file():
                found.append((here, entry.path))
    found.sort()
    return found


def _digested(root: str, found: list[tuple[tuple[str, ...], str]]) -> tuple[tuple[str, bytes], ...]:
    """(name, SHA-256) of each found file, named relative to the package ``root``: as the
    installer's RECORD or the checkout's stat record vouch for it, else read and hashed."""
    recorded, installed = _installed_record(root) or ({}, 0)
    result = []
    for parts, path in found:
        name = "/".join(parts)
        known = recorded.get(name)
        if known is not None:
            try:
                stat = os.stat(path)
            except OSError:
                stat = None
            if stat is not None and stat.st_size == known[1] and stat.st_mtime_ns <= installed:
                result.append((name, known[0]))
                continue
        result.append((name, _checkout_digest(path)))
    return tuple(result)


def _checkout_digest(path: str) -> bytes:
    """A file's SHA-256: from the stat record when its stat is the recorded one, else read."""
    records = _stat_records()
    known = records.get(path)
    if known is not None:
        try:
            if stat_signature(os.stat(path)) == known[0]:
                return known[1]
        except OSError:
            pass
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).digest()


@functools.cache
def _installed_record(root: str) -> tuple[dict[str, tuple[bytes, int]], int] | None:
    """For a package installed from a wheel: (SHA-256 and size of each file by its path relative
    to ``root``, as the installer's RECORD lists them; when RECORD was written, in ns). None where
    there is no single ``<package>-*.dist-info/RECORD`` beside ``root`` (a checkout)."""
    parent, package = os.path.split(root)
    try:
        infos = [n for n in os.listdir(parent) if n.startswith(package + "-") and n.endswith(".dist-info")]
        if len(infos) != 1:
            return None
        path = os.path.join(parent, infos[0], "RECORD")
        installed = os.stat(path).st_mtime_ns
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    prefix = package + "/"
    recorded = {}
    for line in lines:
        # CSV: a path holding a comma or quote is quoted; such a file is simply read and hashed.
        name, _, rest = line.partition(",")
        algorithm, _, size = rest.partition(",")
        if not name.startswith(prefix) or not algorithm.startswith("sha256=") or not size.isdigit():
            continue
        encoded = algorithm[len("sha256="):]
        try:
            digest = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except ValueError:
            continue
        if len(digest) == hashlib.sha256().digest_size:
            recorded[name[len(prefix):]] = (digest, int(size))
    return recorded, installed


def _suffix(name: str) -> str:
    # What `PurePath.suffix` says: ".pyc" of "a.pyc", nothing of ".pyc" or "a.".
    dot = name.rfind(".")
    return name[dot:] if 0 < dot < len(name) - 1 else ""


@functools.cache
def code_identity(root: str = PACKAGE) -> bytes:
    """The digest of `file_digests` but `_builtin/`: the code and data that made the package's
    prepared files, the same in a checkout and in the wheel built from it (what is prepared from
    the built-ins is checked against their very texts, wherever they are)."""
    digest = hashlib.sha256()
    for name, file_digest in _digests(root, builtin=False):
        digest.update(name.encode() + b"\0" + file_digest)
    return digest.digest()


# --- the built-in tree -----------------------------------------------------------------------

# What the wheel's build rule ships of the built-ins (pyproject.toml): the top-level folders a
# run reads built-ins from, but the vendored CRDs of each provider and extension folder.
BUILTIN_FOLDERS = ("definitions", "providers", "extensions")
_LEFT_OUT = "crds"


def builtin_root(package: str = PACKAGE) -> str:
    """Where the built-in definitions/, providers/ and extensions/ are: package data in a wheel,
    else the top level of the source checkout (one copy, not two)."""
    packaged = os.path.join(package, BUILTIN_FOLDER)
    return packaged if os.path.isdir(packaged) else os.path.dirname(package)


@functools.cache
def builtin_tree_digest(package: str = PACKAGE) -> bytes:
    """The digest of every built-in file as the wheel built from this tree holds it: under
    `BUILTIN_FOLDERS` of `builtin_root`, but each provider's and extension's ``crds/``, named
    as in the wheel (``_builtin/providers/...``). The same in a checkout and in the wheel built
    from it, so the built-ins `prepare` read are known to be these files without reading them
    (prepared_builtins.py): each file's digest comes from the installer's RECORD or the
    checkout's stat record where they vouch for it, else from its bytes."""
    digest = hashlib.sha256()
    for name, file_digest in _digested(package, _builtin_files(package)):
        digest.update(name.encode() + b"\0" + file_digest)
    return digest.digest()


def _builtin_files(package: str) -> list[tuple[tuple[str, ...], str]]:
    root = builtin_root(package)

    def skipped(parts: tuple[str, ...], name: str) -> bool:
        return len(parts) == 3 and name == _LEFT_OUT  # _builtin/providers/<folder>/crds

    return sorted(file for top in BUILTIN_FOLDERS for file in _files(os.path.join(root, top), (BUILTIN_FOLDER, top), skipped))


# --- the checkout's stat record --------------------------------------------------------------
#
# A checkout has no RECORD: `make prepare` (prepare.py) writes, beside what it prepares, each
# package and built-in file's stat signature and digest, as git's index does; a run takes the
# digest of a file whose stat is the recorded one, unread. Only a file last changed well before
# the record was made is recorded (the racy rule, cache/snapshot.py `settled`); an edit changes
# ctime, which user space cannot set back, so an edited file is always read again.

STAT_RECORD = os.path.join(PACKAGE, PREPARED_FOLDER, "file-stats.marshal")
_STAT_FORMAT = 1

Signature = tuple[int, int, int, int, int]  # dev, ino, size, mtime_ns, ctime_ns


def stat_signature(found: os.stat_result) -> Signature:
    """What a file's stat says of its identity: an unchanged signature means unchanged bytes."""
    return (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)


def write_stat_record(settled: Callable[[os.stat_result], bool], package: str = PACKAGE, path: str = STAT_RECORD) -> int:
    """Record the package's files and the built-in tree, each read and hashed afresh, if
    ``settled``; how many were recorded."""
    def every(parts: tuple[str, ...], name: str) -> bool:
        return not parts and name == PREPARED_FOLDER

    found = [*_files(package, (), every), *_builtin_files(package)]
    records: dict[str, tuple[Signature, bytes]] = {}
    for _, file in found:
        try:
            before = os.stat(file)
            with open(file, "rb") as opened:
                digest = hashlib.sha256(opened.read()).digest()
        except OSError:
            continue
        if settled(before):
            records[file] = (stat_signature(before), digest)
    prepared_file.write(path, marshal.dumps(records), {"format": _STAT_FORMAT})
    return len(records)


@functools.cache
def _stat_records() -> dict[str, tuple[Signature, bytes]]:
    """The checkout's stat record (`STAT_RECORD`), by absolute path; empty if there is none (a
    wheel's files are vouched for by RECORD), or it is damaged or of another Python."""
    found = prepared_file.read_value(STAT_RECORD, lambda: {"format": _STAT_FORMAT})
    if not isinstance(found, dict):
        return {}
    return {
        file: record
        for file, record in found.items()
        if isinstance(file, str) and isinstance(record, tuple) and len(record) == 2 and isinstance(record[1], bytes)
        and isinstance(record[0], tuple) and len(record[0]) == 5
    }
