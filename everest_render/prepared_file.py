"""The envelope every file of the prepare step shares (prepare.py): who made it, and a checksum.

A prepared file saves work a run would otherwise do; it is used only by the Python that made
it (bytecode magic and version), when what else its content depends on (``identity``: its
format, the package's code, the libraries, `re`'s engine) is unchanged, and when its payload is
undamaged. Anything else reads as no file, and the caller does the work as if there were none.

The file is the envelope's header (marshalled, after its length in four bytes) followed by the
payload as it is: reading hands out the payload as a view of the bytes read, not a copy (the
built-ins are 1.3 MB, the dataclass code 0.7 MB: a copy was a third of reading them).
"""

from __future__ import annotations

import marshal
import os
import sys
import zlib
from collections.abc import Callable, Mapping
from importlib._bootstrap_external import MAGIC_NUMBER
from typing import Any

_OWN = ("python", "version", "size", "crc32")
_LENGTH = 4  # bytes of the header's length, little-endian


def write(path: str, payload: bytes, identity: Mapping[str, Any]) -> None:
    """Store ``payload`` at ``path`` (atomically: a run never reads half a file)."""
    assert not set(identity) & set(_OWN), "identity keys are the envelope's own"
    header = marshal.dumps({**identity, "python": MAGIC_NUMBER, "version": sys.version, "size": len(payload), "crc32": zlib.crc32(payload)})
    os.makedirs(os.path.dirname(path), exist_ok=True)
    scratch = path + ".tmp"
    with open(scratch, "wb") as file:
        file.write(len(header).to_bytes(_LENGTH, "little"))
        file.write(header)
        file.write(payload)
    os.replace(scratch, path)


def read(path: str, identity: Callable[[], Mapping[str, Any]]) -> memoryview | None:
    """The payload `write` stored (a read-only view of it), if this very Python wrote it with
    this ``identity`` (asked for only once the Python matches: some identities cost a walk of
    the package); else None."""
    try:
        with open(path, "rb") as file:
            data = memoryview(file.read())
        end = _LENGTH + int.from_bytes(data[:_LENGTH], "little")
        content = marshal.loads(data[_LENGTH:end])
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(content, dict) or content.get("python") != MAGIC_NUMBER or content.get("version") != sys.version:
        return None
    if any(content.get(key) != value for key, value in identity().items()):
        return None
    payload = data[end:]
    if len(payload) != content.get("size") or zlib.crc32(payload) != content.get("crc32"):
        return None
    return payload


def read_value(path: str, identity: Callable[[], Mapping[str, Any]]) -> Any | None:
    """The marshalled value `read` gives, or None (no file, another maker, damage)."""
    payload = read(path, identity)
    try:
        return marshal.loads(payload) if payload is not None else None
    except (EOFError, ValueError, TypeError):
        return None
