"""The built-in definitions, providers and extensions, and the input schemas, prepared at build time.

Every run loads and parses the same built-ins before it reads a line of the repository: some
thirty YAML files (definitions, providers, extension manifests), each checked against its
input schema, which is itself built from YAML (schemas/*.yaml, common definitions inlined):
a fifth of a one-cluster `argocd generate`. `python -m everest_render.prepare` does that once
and stores what it gave: the parsed built-ins with the very inputs they were parsed from, and
each input kind's schema. A run uses them only when

- the file was made by this Python (bytecode magic and version), by this package's code and
  data (the digest of every file of the package but `_prepared/`, package_files.py: the
  schema files are among them) and with the same versions of the libraries parsing depends
  on (the ``*.dist-info`` folders beside the modules Python imports), and is undamaged, and
- for the built-ins, the built-in files the run has just read (their texts, provider assets
  and unreadable files) are equal to the ones they were parsed from, and so are the built-in
  extension folders,

and otherwise loads and parses them as always. Reading the built-ins (a hundred files, each
checked as any input is) cost as much again, so the file also holds the digest of the built-in
tree they were read from (package_files.py `builtin_tree_digest`: every file the wheel ships
of them, named as in the wheel): when the tree's digest now is that one, the read stage takes
the stored inputs instead of reading them (`unchanged_inputs`). In an installed wheel the
digest comes from the installer's RECORD (a file's recorded size, not modified since the
install), in a checkout from the stat record `make prepare` writes (a file's unchanged stat);
any file edited, added or removed since is read and hashed, the digest differs, and the
built-ins are read as always. The results are equal either way (tested), so
the render is byte-identical. Like the other prepared files these are read only from the
package folder, written when the package is built (the same trust as its `.pyc` files: the
built-ins are a pickle).
"""

from __future__ import annotations

import marshal
import os
import pickle
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from everest_render import package_files, prepared_file
from everest_render.load.files import ExtensionFolder, SourceSet

PREPARED_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_prepared", "builtins.marshal")
SCHEMAS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_prepared", "input-schemas.marshal")
# One file per object schema (a run checks a few kinds, and reads only their files), named
# ``object-schema-<digest of its name>.marshal`` after this.
OBJECT_SCHEMAS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_prepared", "object-schema")
FORMAT = 4  # 3: the built-in tree's digest stored beside the inputs; 4: each input schema marshalled alone
# The libraries whose behaviour parsing the built-ins depends on: (module, distribution).
LIBRARIES = (("yaml", "pyyaml"), ("jsonschema_rs", "jsonschema_rs"), ("jinja2", "jinja2"), ("markupsafe", "markupsafe"))

Inputs = tuple[SourceSet, tuple[ExtensionFolder, ...]]


def write(inputs: Inputs, outputs: Any, path: str = PREPARED_FILE, *, tree: bytes | None = None) -> None:
    """Store what parsing ``inputs`` gave (``outputs``), for `load`; ``tree``: the digest of the
    built-in files ``inputs`` were read from (package_files.py `builtin_tree_digest`), when
    reading them found no problem, for `unchanged_inputs`."""
    # One pickle: the outputs hold the inputs' texts and assets, stored once.
    _write(path, pickle.dumps((tree, inputs, outputs), protocol=pickle.HIGHEST_PROTOCOL))


def load(inputs: Inputs, path: str = PREPARED_FILE) -> Any | None:
    """What parsing ``inputs`` gives, if the file was made from exactly these inputs by this
    very code; else None (the caller parses them)."""
    known = _unpickled_from.get(path)
    if known is not None and _the_very(known[1][1], inputs):
        return known[1][2]  # the inputs `unchanged_inputs` took from this file, in this run
    found = _unpickled(path)
    if found is None:
        return None
    _, made_from, outputs = found
    return outputs if made_from == inputs else None


def _the_very(stored: Inputs, inputs: Inputs) -> bool:
    """Whether ``inputs`` hold the very objects ``stored`` holds (the read stage took them from
    the file: no need to compare them with themselves, text by text)."""
    return stored[0] is inputs[0] and len(stored[1]) == len(inputs[1]) and all(a is b for a, b in zip(stored[1], inputs[1], strict=True))


def unchanged_inputs(path: str = PREPARED_FILE, package: str = package_files.PACKAGE) -> Inputs | None:
    """The built-in files as the prepare step read them, when the built-in tree is still the
    one they were read from (its digest, from the installer's RECORD in a wheel or the stat
    record in a checkout, unread where those vouch for a file); else None, and the caller
    reads them. An edited, added or removed built-in file changes the digest."""
    found = _unpickled(path)
    if found is None or found[0] is None or found[0] != package_files.builtin_tree_digest(package):
        return None
    return found[1]


Prepared = tuple[bytes | None, Inputs, Any]  # the tree's digest, the inputs, the outputs
_unpickled_from: dict[str, tuple[memoryview, Prepared]] = {}


def _unpickled(path: str) -> Prepared | None:
    """The prepared built-ins, checked at every call (`_read`) but unpickled once per run for
    one payload: the read stage and the parse stage both ask."""
    payload = _read(path)
    if payload is None:
        return None
    known = _unpickled_from.get(path)
    # The very file read again, header and payload (views of the bytes read: a memoryview's own
    # == compares item by item, ten times slower than bytes' memcmp).
    if known is not None and known[0].obj == payload.obj:
        return known[1]
    try:
        found = pickle.loads(payload)
    except Exception:  # a damaged file is no file: whatever unpickling it raises
        return None
    if not isinstance(found, tuple) or len(found) != 3:
        return None
    _unpickled_from[path] = (payload, found)
    return found


def write_input_schemas(schemas: Mapping[str, dict[str, Any]], path: str = SCHEMAS_FILE) -> None:
    """Store each input kind's schema as parse/inputs.py builds it from schemas/*.yaml, each
    marshalled on its own (`input_schema` gives a fresh copy of one, unmarshalling only it)."""
    _write(path, marshal.dumps({kind: marshal.dumps(schema) for kind, schema in schemas.items()}))


def input_schema(kind: str, path: str = SCHEMAS_FILE) -> dict[str, Any] | None:
    """The schema of one input kind as prepared by this very code (the schema files are the
    package's, so the code digest covers them), or None."""
    schemas = _table(path)
    found = schemas.get(kind) if isinstance(schemas, dict) else None
    try:
        schema = marshal.loads(found) if isinstance(found, bytes) else None
    except (EOFError, ValueError, TypeError):
        return None
    return schema if isinstance(schema, dict) else None


def write_object_schemas(texts: Mapping[str, str], path: str = OBJECT_SCHEMAS_FILE) -> None:
    """Store the built-in providers' and extensions' object schemas (JSON text, by folder and
    file name) parsed, each with its text, in a file of its own: whole, and `deferred`
    (schema_check.py), so that narrowing one for a cluster's objects unmarshals only what
    they reach. Files of schemas no longer there are removed."""
    import glob
    import json

    from everest_render.schema_check import deferred

    written = set()
    for name, text in texts.items():
        schema = json.loads(text)
        written.add(_schema_file(name, path))
        _write(_schema_file(name, path), marshal.dumps((name, text, marshal.dumps(schema), marshal.dumps(deferred(schema)))))
    for stale in set(glob.glob(glob.escape(path) + "-*.marshal")) - written:
        os.remove(stale)


def object_schema(name: str, text: str, path: str = OBJECT_SCHEMAS_FILE, *, narrowed: bool = False) -> Any | None:
    """``json.loads(text)`` for the built-in schema file ``name`` (the largest is 400 KB), if
    it was prepared from this very text; else None. ``narrowed``: the caller gives it only to
    schema_check.schema_for, which takes it `deferred`."""
    entry = _table(_schema_file(name, path))
    if not isinstance(entry, tuple) or len(entry) != 4 or entry[0] != name or entry[1] != text:
        return None
    try:
        return marshal.loads(entry[3] if narrowed else entry[2])
    except (EOFError, ValueError, TypeError):
        return None


def _schema_file(name: str, path: str) -> str:
    import hashlib

    return f"{path}-{hashlib.sha256(name.encode()).hexdigest()[:16]}.marshal"


_tables: dict[str, Any] = {}


def _table(path: str) -> Any | None:
    """A prepared file's value (the input schemas, an object schema), read once per run."""
    if path not in _tables:
        _tables[path] = prepared_file.read_value(path, _identity)
    return _tables[path]


def _identity() -> dict[str, Any]:
    return {"format": FORMAT, "code": package_files.code_identity(), "libraries": library_versions()}


def _write(path: str, payload: bytes) -> None:
    prepared_file.write(path, payload, _identity())


def _read(path: str) -> memoryview | None:
    """The payload of a file `_write` wrote, if this very Python, code and libraries wrote it."""
    return prepared_file.read(path, _identity)


_this_environment: list[tuple[str, ...] | None] = []


def library_versions(path: Sequence[str] | None = None) -> tuple[str, ...] | None:
    """The ``*.dist-info`` folder of each of `LIBRARIES`, found beside the module in the first
    folder of ``sys.path`` (or ``path``) that holds it (where Python imports it from); None if
    one is missing. Looked up once per run for ``sys.path``."""
    if path is None:
        if not _this_environment:
            _this_environment.append(_library_versions(sys.path))
        return _this_environment[0]
    return _library_versions(path)


def _library_versions(path: Sequence[str]) -> tuple[str, ...] | None:
    found = []
    listings: dict[str, list[str]] = {}
    for module, distribution in LIBRARIES:
        prefix = distribution.lower() + "-"
        for folder in path:
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
