"""The built-in definitions, providers and extensions loaded and parsed at build time.

Every run loads and parses the same built-ins before it reads a line of the repository: some
thirty YAML files, each checked against its input schema, and each built-in extension's
templates and schemas compiled to be checked (a fifth of a one-cluster `argocd generate`,
with the Jinja and schema machinery it imports). `python -m everest_render.prepare` does that
once and stores what it gave, with the very inputs it was given; a run uses it only when

- the file was made by this Python (bytecode magic and version), by this package's code and
  data (the digest of every file of the package but `_prepared/`, package_files.py) and with
  the same versions of the libraries parsing depends on (the ``*.dist-info`` folders beside
  the modules Python imports), and
- the built-in files the run has just read (their texts, provider assets and unreadable
  files) are equal to the ones it was made from, and so are the built-in extension folders,

and otherwise loads and parses them as always. The results are equal either way (tested), so
the render is byte-identical. Like the other prepared files it is read only from the package
folder, written when the package is built (the same trust as its `.pyc` files: it is a pickle).
"""

from __future__ import annotations

import marshal
import os
import pickle
import sys
import zlib
from collections.abc import Sequence
from importlib._bootstrap_external import MAGIC_NUMBER
from typing import Any

from everest_render.load.files import ExtensionFolder, SourceSet

PREPARED_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_prepared", "builtins.marshal")
FORMAT = 1
# The libraries whose behaviour parsing the built-ins depends on: (module, distribution).
LIBRARIES = (("yaml", "pyyaml"), ("jsonschema_rs", "jsonschema_rs"), ("jinja2", "jinja2"), ("markupsafe", "markupsafe"))

Inputs = tuple[SourceSet, tuple[ExtensionFolder, ...]]


def write(inputs: Inputs, outputs: Any, path: str = PREPARED_FILE) -> None:
    """Store what parsing ``inputs`` gave (``outputs``), for `load`."""
    from everest_render.package_files import code_identity

    content: dict[str, Any] = {
        "format": FORMAT,
        "python": MAGIC_NUMBER,
        "version": sys.version,
        "code": code_identity(),
        "libraries": library_versions(),
    }
    # One pickle: the outputs hold the inputs' texts and assets, stored once.
    content["pickle"] = pickled = pickle.dumps((inputs, outputs), protocol=pickle.HIGHEST_PROTOCOL)
    content["crc32"] = zlib.crc32(pickled)  # a damaged file is not used
    os.makedirs(os.path.dirname(path), exist_ok=True)
    scratch = path + ".tmp"
    with open(scratch, "wb") as file:
        file.write(marshal.dumps(content))
    os.replace(scratch, path)


def load(inputs: Inputs, path: str = PREPARED_FILE) -> Any | None:
    """What parsing ``inputs`` gives, if the file was made from exactly these inputs by this
    very code; else None (the caller parses them)."""
    try:
        with open(path, "rb") as file:
            content = marshal.loads(file.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        return None
    if content.get("python") != MAGIC_NUMBER or content.get("version") != sys.version:
        return None
    from everest_render.package_files import code_identity

    if content.get("code") != code_identity() or content.get("libraries") != library_versions():
        return None
    pickled = content.get("pickle")
    if not isinstance(pickled, bytes) or zlib.crc32(pickled) != content.get("crc32"):
        return None
    try:
        made_from, outputs = pickle.loads(pickled)
    except Exception:  # a damaged file is no file: whatever unpickling it raises
        return None
    return outputs if made_from == inputs else None


def library_versions(path: Sequence[str] | None = None) -> tuple[str, ...] | None:
    """The ``*.dist-info`` folder of each of `LIBRARIES`, found beside the module in the first
    folder of ``sys.path`` that holds it (where Python imports it from); None if one is missing."""
    found = []
    listings: dict[str, list[str]] = {}
    for module, distribution in LIBRARIES:
        prefix = distribution.lower() + "-"
        for folder in sys.path if path is None else path:
            names = listings.get(folder)
            if names is None:
                try:
                    names = listings[folder] = sorted(os.listdir(folder or "."))
                except OSError:
                    names = listings[folder] = []
            if module in names or any(n.startswith(module + ".") and not n.endswith(".dist-info") for n in names):
                infos = [n for n in names if n.lower().startswith(prefix) and n.endswith(".dist-info")]
                if len(infos) != 1:
                    return None
                found.append(infos[0])
                break
        else:
            return None
    return tuple(found)
