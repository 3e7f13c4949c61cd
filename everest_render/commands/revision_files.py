"""A git revision's inputs read from its archive in memory, as today's read with what differs.

Unpacking a revision (commands/git_revision.py) writes every input file to a scratch folder
and reads it back: on some disks creating the files costs more than rendering them. But a
revision compared with the working tree is nearly always the same tree with a few files
changed. When it is exactly the same shape (the same names, every one a regular file, nothing
else that the read stage looks at differing), reading the unpacked folder would find the very
files today's read found, so the revision's inputs are today's with the texts of the files
whose bytes differ replaced. Anything else (a link, a file only on one side, a changed ignore
file, an unreadable file, a text the read would refuse) gives None, and the revision is
unpacked and read as before: this is a shortcut, never a second reading of the rules.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import zlib
from pathlib import Path

from everest_render.load.files import (
    EXTENSIONS_FOLDER,
    IGNORE_FILE,
    INPUT_FOLDERS,
    MAX_FILE_BYTES,
    SETTINGS_FILE,
    SETTINGS_FILE_MISSPELT,
    RepositoryFiles,
    builtin_root,
)
from everest_render.load.text import SourceFile, text_problems

ROOT_FILES = (SETTINGS_FILE, SETTINGS_FILE_MISSPELT, IGNORE_FILE)


def files_at_revision(archive: bytes, root: Path, out_dir: Path, today: RepositoryFiles) -> RepositoryFiles | None:
    """The inputs ``archive`` (git archive of the revision's inputs) holds, read as reading it
    unpacked would, from ``today`` (what was read at ``root``, with ``out_dir``); None when the
    revision's tree is not shaped as the working tree is."""
    texts = changed_texts(archive, root, out_dir, today)
    return with_texts(today, texts) if texts is not None else None


def with_texts(today: RepositoryFiles, texts: dict[str, str]) -> RepositoryFiles:
    """``today`` with the texts of the files ``changed_texts`` found different replaced."""
    return _replaced(today, texts)


def changed_texts(archive: bytes, root: Path, out_dir: Path, today: RepositoryFiles) -> dict[str, str] | None:
    """`files_at_revision`'s verdict: the revision's texts of the files whose bytes differ from
    today's, by name (plain data: a forked process can hand it back); None when the
    revision's tree is not shaped as the working tree is."""
    if not _plain_today(root, out_dir, today):
        return None
    revision = _regular_files(archive)
    working = _working_files(root)
    if revision is None or working is None or revision.keys() != working:
        return None
    if IGNORE_FILE in revision and revision[IGNORE_FILE] != _bytes(root / IGNORE_FILE):
        return None  # what the walk skips would differ
    read = _texts_read(today)
    changed = {name: data for name, data in revision.items() if name in read and read[name].encode() != data}
    texts = {}
    for name, data in changed.items():
        text = _text(name, data)
        if text is None:
            return None
        texts[name] = text
    return texts


def _plain_today(root: Path, out_dir: Path, today: RepositoryFiles) -> bool:
    """Today's read found nothing unreadable, read no extension of the repository (the
    revision's are not unpacked), and skipped no output folder among the inputs."""
    if today.own.unreadable or today.settings_unreadable or today.extensions_unreadable:
        return False
    if any(not folder.builtin for folder in today.extensions) or os.path.lexists(root / EXTENSIONS_FOLDER):
        return False
    if root.resolve() == builtin_root().resolve():
        return False  # the checkout itself: read as the built-ins are
    out = out_dir.resolve()
    return not any(out.is_relative_to((root / folder).resolve()) for folder in INPUT_FOLDERS)


def _regular_files(archive: bytes) -> dict[str, bytes] | None:
    """Every file of the archive by name; None when it holds anything but files and folders, or
    anything but what `git archive` writes (ustar headers, a pax header naming a long path,
    the global one naming the commit). Read here rather than by tarfile, whose objects for
    each member cost as much as the rest of reading the revision (~0.1 s at 1,000 clusters)."""
    found: dict[str, bytes] = {}
    if not archive:
        return found
    path: bytes | None = None  # a long name, from the pax header before its member
    offset = 0
    while True:
        header = archive[offset : offset + _BLOCK]
        if len(header) < _BLOCK:
            return None  # cut short: no end
        if header == _EMPTY_BLOCK:
            return found  # the end
        size = _octal(header[124:136])
        if size is None or header[257:263] != b"ustar\0" or _octal(header[148:156]) != _checksum(header):
            return None
        start = offset + _BLOCK
        data = archive[start : start + size]
        offset = start + -(-size // _BLOCK) * _BLOCK
        kind = header[156:157]
        if kind in (b"g", b"x"):
            records = _pax_records(data)
            if records is None or not records.keys() <= ({"comment"} if kind == b"g" else {"path"}):
                return None
            path = records.get("path", path)
            continue
        name = path if path is not None else _joined(header[345:500], header[0:100])
        path = None
        if kind == b"5" or (kind == b"\0" and name.endswith(b"/")):
            continue
        if kind not in (b"0", b"\0") or len(data) != size:
            return None
        found[name.decode("utf-8", "surrogateescape").rstrip("/")] = data


_BLOCK = 512
_EMPTY_BLOCK = bytes(_BLOCK)


def _checksum(header: bytes) -> int:
    """A ustar header's checksum: the sum of its bytes, its checksum field counted as spaces.
    Summed by zlib's Adler-32, whose first half is one plus the sum of the bytes modulo 65,521,
    exact for 256 bytes (at most 65,280): a Python sum of 512 bytes was most of reading a
    fleet's archive (~0.1 s of 17,000 headers at 10,000 clusters)."""
    first, second = zlib.adler32(header[:256]) & 0xFFFF, zlib.adler32(header[256:]) & 0xFFFF
    return first + second - 2 - sum(header[148:156]) + 8 * ord(" ")


def _octal(field: bytes) -> int | None:
    digits = field.split(b"\0", 1)[0].strip()
    try:
        return int(digits, 8) if digits else 0
    except ValueError:
        return None


def _joined(prefix: bytes, name: bytes) -> bytes:
    """A ustar member's name: its prefix field, a slash, its name field."""
    prefix, name = prefix.split(b"\0", 1)[0], name.split(b"\0", 1)[0]
    return prefix + b"/" + name if prefix else name


def _pax_records(data: bytes) -> dict[str, bytes] | None:
    """A pax header's records (``<length> <key>=<value>\\n``), or None if it is not that."""
    records = {}
    at = 0
    while at < len(data):
        space = data.find(b" ", at)
        try:
            length = int(data[at:space])
        except ValueError:
            return None
        record = data[space + 1 : at + length]
        if length <= 0 or not record.endswith(b"\n") or b"=" not in record:
            return None
        key, _, value = record[:-1].partition(b"=")
        records[key.decode("utf-8", "surrogateescape")] = value
        at += length
    return records


def _working_files(root: Path) -> set[str] | None:
    """Every file of the working tree under the inputs' names (hidden ones too: the walk
    decides what it skips, on both sides alike); None when any is not a regular file."""
    found = {name for name in ROOT_FILES if os.path.lexists(root / name)}
    if not all(stat.S_ISREG(os.lstat(root / name).st_mode) for name in found):
        return None
    pending = [folder for folder in INPUT_FOLDERS if os.path.lexists(root / folder)]
    top = str(root)  # joined as strings: pathlib's joins were a third of the walk (~3,000 folders at 10,000 clusters)
    while pending:
        folder = pending.pop()
        path = f"{top}/{folder}"
        try:
            entries = list(os.scandir(path))
        except OSError:
            return None
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            return None
        for entry in entries:
            name = f"{folder}/{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                pending.append(name)
            elif entry.is_file(follow_symlinks=False):
                found.add(name)
            else:
                return None
    return found


def _texts_read(today: RepositoryFiles) -> dict[str, str]:
    """Every text today's read took from the repository, by its name there."""
    texts = {source.path: source.text for source in today.own.sources}
    for folder, assets in today.own.assets.items():
        texts.update((f"{folder}/{name}", text) for name, text in (*assets.templates.items(), *assets.schemas.items()))
    if today.settings is not None:
        texts[today.settings.path] = today.settings.text
    return texts


def _asset_of(today: RepositoryFiles, name: str) -> tuple[str | None, str]:
    """The provider folder whose asset ``name`` is, and its path inside it."""
    for folder in today.own.assets:
        if name.startswith(folder + "/"):
            return folder, name[len(folder) + 1 :]
    return None, ""


def _text(name: str, data: bytes) -> str | None:
    """The text the read stage would take from ``data``; None when it would refuse it."""
    if len(data) > MAX_FILE_BYTES:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if text_problems(text, name) else text


def _replaced(today: RepositoryFiles, texts: dict[str, str]) -> RepositoryFiles:
    if not texts:
        return today
    sources = [SourceFile(s.path, texts[s.path]) if s.path in texts else s for s in today.own.sources]
    assets = dict(today.own.assets)
    for name, text in texts.items():
        folder, asset = _asset_of(today, name)
        if folder is not None and asset in assets[folder].templates:
            assets[folder] = dataclasses.replace(assets[folder], templates={**assets[folder].templates, asset: text})
        elif folder is not None and asset in assets[folder].schemas:
            assets[folder] = dataclasses.replace(assets[folder], schemas={**assets[folder].schemas, asset: text})
    settings = today.settings
    if settings is not None and settings.path in texts:
        settings = SourceFile(settings.path, texts[settings.path])
    own = dataclasses.replace(today.own, sources=sources, assets=assets)
    return dataclasses.replace(today, own=own, settings=settings)


def _bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None
