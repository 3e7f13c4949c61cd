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
"""

from __future__ import annotations

import base64
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
        with open(path, "rb") as file:
            result.append((name, hashlib.sha256(file.read()).digest()))
    return tuple(result)


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
