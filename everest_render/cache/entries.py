"""Cache keys and entries, pure: no file is read here (cache/store.py reads and writes).

A cluster's key is the SHA-256 of the renderer's identity and of the resolved cluster itself,
serialised whole: the cluster's document (its file's bytes and its place in the file), the
provider (its provider.yaml and every template and schema of its folder), the definition,
the BackupStorages and MonitoringConfig it uses, the repository settings (catalogue
additions, GitOps defaults and whatever sections the settings file gains). Rendering is a
pure function of exactly that value (pipeline.render_slice), so equal keys mean equal
renders; nothing is left out by a list someone has to keep up to date. Shared parts (a
provider, a settings file) are hashed once per run and named by their digest.

An entry is the cluster's objects, files and diagnostics in `marshal` format (plain data only:
anything else is not cached). A payload that does not decode to that shape is a miss.
"""

from __future__ import annotations

import dataclasses
import hashlib
import marshal
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

from everest_render.diagnostics import Diagnostic, Severity
from everest_render.load.documents import Document
from everest_render.model import (
    BackupStorage,
    Definition,
    MonitoringConfig,
    ObjectRef,
    Provider,
    RenderedObject,
    RepositorySettings,
    ResolvedCluster,
)

ENTRY_FORMAT = 1
# Values many clusters share: hashed once, then named by digest inside each cluster's key.
_SHARED = (Provider, Definition, RepositorySettings, BackupStorage, MonitoringConfig)
# How deep the key looks for shared values (ResolvedCluster -> ResolvedBackup -> its storages
# mapping -> a BackupStorage). A shared value deeper down is serialised whole: slower, as exact.
_DEPTH = 4
# Values pickle serialises by content alone. Mappings and lists are looked into only when they
# hold dataclasses (components, storages): plain YAML data (a spec) is pickled whole.
_PLAIN = frozenset({str, int, float, bool, type(None), bytes})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_ERRORS = (pickle.PicklingError, TypeError, AttributeError, RecursionError, ValueError)


class KeyMaker:
    """The keys of one run's clusters (the digest of each shared part is computed once per object)."""

    def __init__(self, identity: bytes) -> None:
        self.identity = identity
        self._digests: dict[int, tuple[object, bytes]] = {}

    def cluster_key(self, cluster: ResolvedCluster) -> str | None:
        """The key of ``cluster``'s render, or None when some part of it cannot be serialised."""
        try:
            return hashlib.sha256(self.identity + b"cluster\0" + _pickled(self._named(cluster, _DEPTH))).hexdigest()
        except _ERRORS:
            return None

    def _named(self, value: Any, depth: int) -> Any:
        """``value`` with its shared parts (and documents) replaced by their digests: a
        dataclass becomes its class name and fields, a mapping or list of dataclasses its
        items. Plain data is left to pickle, which serialises it whole (exact, and fast)."""
        if isinstance(value, _SHARED):
            return ("shared", self._digest(value, lambda: _pickled(self._named_fields(value, _DEPTH))))
        if isinstance(value, Document):
            return ("document", self._digest(value, lambda: self._document(value)))
        if depth == 0 or type(value) in _PLAIN:
            return value
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return self._named_fields(value, depth)
        if isinstance(value, Mapping):
            if any(hasattr(type(v), "__dataclass_fields__") for v in value.values()):
                return ("mapping", tuple((k, self._named(v, depth - 1)) for k, v in value.items()))
            return value
        if isinstance(value, (tuple, list)):
            if any(hasattr(type(v), "__dataclass_fields__") for v in value):
                return (type(value).__name__, tuple(self._named(v, depth - 1) for v in value))
            return value
        if isinstance(value, (set, frozenset)):
            return ("set", tuple(sorted(repr(v) for v in value)))  # a set's pickle follows the hash seed
        return value

    def _named_fields(self, value: Any, depth: int) -> tuple[Any, ...]:
        names = _FIELD_NAMES.get(type(value))
        if names is None:
            names = _FIELD_NAMES[type(value)] = tuple(f.name for f in dataclasses.fields(value))
        return (type(value).__qualname__, *(self._named(getattr(value, name), depth - 1) for name in names))

    def _document(self, document: Document) -> bytes:
        """A document: its file's name and bytes, its place there, and its data. Its positions
        follow from the bytes (or, translated from another kind, from the bytes and the
        translation, which the renderer's identity covers), so they are not hashed again."""
        source = self._digest(document.source, lambda: f"{document.source.path}\0{document.source.text}".encode())
        return source + _pickled((document.index, document.refused, document.data, bool(document.positions.origins)))

    def _digest(self, value: object, serialised: Any) -> bytes:
        remembered = self._digests.get(id(value))
        if remembered is not None and remembered[0] is value:
            return remembered[1]
        digest = hashlib.sha256(serialised()).digest()
        self._digests[id(value)] = (value, digest)
        return digest


def _pickled(value: Any) -> bytes:
    return pickle.dumps(value, protocol=5)


# --- entries ---------------------------------------------------------------------------


def encode_entry(objects: Sequence[RenderedObject], files: Mapping[str, bytes], diagnostics: Sequence[Diagnostic]) -> bytes | None:
    """One cluster's render as bytes, or None when it holds something not plain data."""
    try:
        return marshal.dumps(
            (
                ENTRY_FORMAT,
                [(o.obj, o.template) for o in objects],
                dict(files),
                [(d.file, d.line, d.column, d.message, d.path, d.severity.value) for d in diagnostics],
            )
        )
    except ValueError:
        return None


def decode_entry(payload: bytes, ref: ObjectRef) -> tuple[tuple[RenderedObject, ...], dict[str, bytes], tuple[Diagnostic, ...]] | None:
    """The render ``encode_entry`` stored for the cluster ``ref``, or None if it is not one."""
    try:
        version, objects, files, diagnostics = marshal.loads(payload)
        if version != ENTRY_FORMAT or not isinstance(files, dict):
            return None
        rendered = tuple(RenderedObject(obj, ref, template) for obj, template in objects)
        found = tuple(Diagnostic(f, line, col, text, tuple(at), Severity(level)) for f, line, col, text, at, level in diagnostics)
    except (ValueError, TypeError, EOFError):
        return None
    if not all(isinstance(o.obj, dict) and isinstance(o.template, str) for o in rendered):
        return None
    if not all(isinstance(k, str) and isinstance(v, bytes) for k, v in files.items()):
        return None
    return rendered, files, found
