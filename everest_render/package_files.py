"""The package's own files and their digests: what identifies this renderer's code and data.

Two things need them in one run: the render cache's renderer identity (cache/store.py: an
entry written by any other renderer is never found) and the built-ins prepared at build time
(prepared_builtins.py: used only by the code that made them). The package is walked and
hashed once per process, with `os.scandir` rather than `Path.rglob` (pathlib's per-path work
was most of the walk's cost).

What the prepare step writes (`_prepared/`) is not among them: those files are made from the
others, each is checked on its own before use, and they change nothing but the time.
"""

from __future__ import annotations

import functools
import hashlib
import os

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
    found: list[tuple[tuple[str, ...], str]] = []
    pending: list[tuple[str, tuple[str, ...]]] = [(root, ())]
    while pending:
        folder, parts = pending.pop()
        try:
            with os.scandir(folder) as entries:
                listed = list(entries)
        except OSError:
            continue
        for entry in listed:
            if entry.name == "__pycache__" or (not parts and (entry.name == PREPARED_FOLDER or (entry.name == BUILTIN_FOLDER) != builtin)):
                continue
            here = (*parts, entry.name)
            if entry.is_dir(follow_symlinks=False):
                pending.append((entry.path, here))
            elif _suffix(entry.name) not in _BYTECODE and entry.is_file():
                found.append((here, entry.path))
    found.sort()
    result = []
    for parts, path in found:
        with open(path, "rb") as file:
            result.append(("/".join(parts), hashlib.sha256(file.read()).digest()))
    return tuple(result)


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
