"""The envelope every file of the prepare step shares (prepare.py): who made it, and a checksum.

A prepared file saves work a run would otherwise do; it is used only by the Python that made
it (bytecode magic and version), when what else its content depends on (``identity``: its
format, the package's code, the libraries, `re`'s engine) is unchanged, and when its payload is
undamaged. Anything else reads as no file, and the caller does the work as if there were none.
"""

from __future__ import annotations

import marshal
import os
import sys
import zlib
from collections.abc import Callable, Mapping
from importlib._bootstrap_external import MAGIC_NUMBER
from typing import Any

_OWN = ("python", "version", "payload", "crc32")


def write(path: str, payload: bytes, identity: Mapping[str, Any]) -> None:
    """Store ``payload`` at ``path`` (atomically: a run never reads half a file)."""
    assert not set(identity) & set(_OWN), "identity keys are the envelope's own"
    content = {**identity, "python": MAGIC_NUMBER, "version": sys.version, "payload": payload, "crc32": zlib.crc32(payload)}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    scratch = path + ".tmp"
    with open(scratch, "wb") as file:
        file.write(marshal.dumps(content))
    os.replace(scratch, path)


def read(path: str, identity: Callable[[], Mapping[str, Any]]) -> bytes | None:
    """The payload `write` stored, if this very Python wrote it with this ``identity`` (asked
    for only once the Python matches: some identities cost a walk of the package); else None."""
    try:
        with open(path, "rb") as file:
            content = marshal.loads(file.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(content, dict) or content.get("python") != MAGIC_NUMBER or content.get("version") != sys.version:
        return None
    if any(content.get(key) != value for key, value in identity().items()):
        return None
    payload = content.get("payload")
    if not isinstance(payload, bytes) or zlib.crc32(payload) != content.get("crc32"):
        return None
    return payload


def read_value(path: str, identity: Callable[[], Mapping[str, Any]]) -> Any | None:
    """The marshalled value `read` gives, or None (no file, another maker, damage)."""
    payload = read(path, identity)
    try:
        return marshal.loads(payload) if payload is not None else None
    except (EOFError, ValueError, TypeError):
        return None
