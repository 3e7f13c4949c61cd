"""Cache keys and entries, pure: no file is read here (cache/store.py reads and writes).

A cluster's key is the SHA-256 of the renderer's identity and of what its resolved form is
made of (`resolved_from`): the cluster itself (its document: its file's bytes and its place in
the file; its data), the provider in effect (its provider.yaml, every template and schema of
its folder, its operator release), the definition (with the settings file's catalogue
additions), the BackupStorages and MonitoringConfig it uses, the repository settings (GitOps
defaults and whatever sections the settings file gains), and the extensions that apply and
those that do not, with why. Rendering is a pure function of the resolved cluster
(pipeline.render_slice), and resolving one of those (resolve/cluster.py `resolve_cluster`,
then extend/select.py) reads nothing else: the catalogue only for the provider the cluster
names and its definition, the references only in the cluster's namespace, and on success only
those it keeps; a cluster that fails to resolve is never rendered. The rest of the resolved
form (topology, components, versions, defaults...) is derived from those, so it is not
serialised again: it was most of a cold cache's cost (~0.1 s of CPU per 1,000 clusters).
`RESOLVED_FROM` and `RESOLVED_BY` name every field of ResolvedCluster (a test fails on a field
that is in neither). Shared parts (a provider, a settings file) are hashed once per run and
named by their digest.

A cluster's entry is its objects, files and diagnostics in `marshal` format (plain data only:
anything else is not cached). A payload that does not decode to that shape is a miss.

Entries are stored by groups of neighbours (`neighbours`: about GROUP_SPREAD files in path
order), the clusters of some files or the loaded documents of some files, each group one file
of the cache keyed by its members' keys. Creating a file is kernel work that dwarfs writing its
few KB (on a file system with much churn, ext4 looks long for an inode not recently freed):
one file a cluster and one an input file was most of what a cold cache added to a run (~2,400
files at 1,000 clusters). A change misses its own group only, whose other members are loaded or
rendered again with it (a few milliseconds).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import marshal
import pickle
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from everest_render.diagnostics import Diagnostic, Severity
from everest_render.load.documents import Document, ReloadedPositions
from everest_render.load.text import SourceFile
from everest_render.model import (
    BackupStorage,
    Definition,
    Extension,
    MonitoringConfig,
    ObjectRef,
    Provider,
    RenderedObject,
    ResolvedCluster,
)
from everest_render.results import RepositorySettings

ENTRY_FORMAT = 2  # 2: an object's extension and whether it is shared (extensions)
# Values many clusters share: hashed once, then named by digest inside each cluster's key.
_SHARED = (Provider, Definition, RepositorySettings, BackupStorage, MonitoringConfig, Extension)
_SHARED_TYPES = frozenset(_SHARED)
_ERRORS = (pickle.PicklingError, TypeError, AttributeError, RecursionError, ValueError)


class KeyMaker:
    """The keys of one run's clusters (the digest of each shared part is computed once per object)."""

    def __init__(self, identity: bytes) -> None:
        self.identity = identity
        self._digests: dict[int, tuple[object, bytes]] = {}

    def cluster_key(self, cluster: ResolvedCluster) -> str | None:
        """The key of ``cluster``'s render, or None when some part of it cannot be serialised."""
        try:
            return hashlib.sha256(self.identity + b"cluster\0" + self.pickled(resolved_from(cluster))).hexdigest()
        except _ERRORS:
            return None

    def pickled(self, value: object) -> bytes:
        buffer = io.BytesIO()
        _KeyPickler(buffer, self).dump(value)
        return buffer.getvalue()

    def shared(self, value: object) -> bytes:
        """A shared part's digest: its class and fields, pickled (shared parts inside by digest)."""
        return self._digest(value, lambda: self.pickled((type(value).__qualname__, *_field_values(value))))

    def document(self, document: Document) -> bytes:
        """A document's digest: its file's name and bytes, its place there, and its data. Its
        positions follow from the bytes (or, translated from another kind, from the bytes and the
        translation, which the renderer's identity covers), so they are not hashed again."""
        source = self._digest(document.source, lambda: f"{document.source.path}\0{document.source.text}".encode())
        return self._digest(
            document, lambda: source + self.pickled((document.index, document.refused, document.data, bool(document.positions.origins)))
        )

    def _digest(self, value: object, serialised: Callable[[], bytes]) -> bytes:
        remembered = self._digests.get(id(value))
        if remembered is not None and remembered[0] is value:
            return remembered[1]
        digest = hashlib.sha256(serialised()).digest()
        self._digests[id(value)] = (value, digest)
        return digest


# The fields of ResolvedCluster that its resolve starts from, in the key as they are...
RESOLVED_FROM = ("cluster", "provider", "definition", "settings", "extensions", "extensions_skipped")
# ...and those resolve derives from them and from the references it keeps (``backup``'s
# BackupStorages and ``monitoring``'s MonitoringConfig, which are in the key).
RESOLVED_BY = (
    "topology",
    "topology_config",
    "components",
    "versions",
    "pinned",
    "secrets_name",
    "paused",
    "allow_unsafe_configuration",
    "cr_version",
    "labels",
    "backup",
    "monitoring",
    "defaults",
    "gitops",
    "bundle",
)


def resolved_from(cluster: ResolvedCluster) -> tuple[Any, ...]:
    """What ``cluster``'s resolved form is a function of (this module's docstring): its
    `RESOLVED_FROM` fields, and the BackupStorages (by the names it uses them by) and the
    MonitoringConfig it resolved to."""
    monitoring = cluster.monitoring
    return (
        *(getattr(cluster, name) for name in RESOLVED_FROM),
        tuple(cluster.backup.storages.items()),
        monitoring.config if monitoring is not None else None,
    )


def _field_values(value: object) -> tuple[Any, ...]:
    return tuple(getattr(value, f.name) for f in dataclasses.fields(value))  # type: ignore[arg-type]


def _shared(digest: bytes) -> None:
    """Stands for a shared part in a key's pickle (never called: keys are only hashed)."""


def _document(digest: bytes) -> None:
    """Stands for a document in a key's pickle (never called)."""


class _KeyPickler(pickle.Pickler):
    """Pickles by content, shared parts and documents by digest. pickle consults
    `reducer_override` only for instances of classes (never for str, int, dict, list...), so
    the plain data of a cluster is serialised at C speed. No memo: equal values, equal bytes."""

    def __init__(self, buffer: io.BytesIO, keys: KeyMaker) -> None:
        super().__init__(buffer, protocol=5)
        self.fast = True
        self.keys = keys

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind in _SHARED_TYPES:
            return _shared, (self.keys.shared(obj),)
        if kind is Document:
            return _document, (self.keys.document(obj),)
        return NotImplemented


# --- entries ---------------------------------------------------------------------------


def encode_entry(objects: Sequence[RenderedObject], files: Mapping[str, bytes], diagnostics: Sequence[Diagnostic]) -> bytes | None:
    """One cluster's render as bytes, or None when it holds something not plain data."""
    try:
        return marshal.dumps(
            (
                ENTRY_FORMAT,
                [(o.obj, o.template, o.extension, o.shared) for o in objects],
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
        rendered = tuple(RenderedObject(obj, ref, template, extension, shared) for obj, template, extension, shared in objects)
        found = tuple(Diagnostic(f, line, col, text, tuple(at), Severity(level)) for f, line, col, text, at, level in diagnostics)
    except (ValueError, TypeError, EOFError):
        return None
    if not all(isinstance(o.obj, dict) and isinstance(o.template, str) and isinstance(o.shared, bool) for o in rendered):
        return None
    if not all(isinstance(k, str) and isinstance(v, bytes) for k, v in files.items()):
        return None
    return rendered, files, found


# --- loaded files ------------------------------------------------------------------------


def loaded_group_key(identity: bytes, sources: Sequence[SourceFile]) -> str:
    """The key of some files' loaded documents: the renderer, and each file's name and bytes."""
    digest = hashlib.sha256(identity + b"load group\0")
    for source in sources:
        path, data = source.path.encode(), source.text.encode()
        digest.update(b"%d:%s%d:" % (len(path), path, len(data)))
        digest.update(data)
    return digest.hexdigest()


def encode_loaded(documents: Sequence[Document]) -> bytes | None:
    """One file's documents as `load.documents.parse_yaml` made them, or None when some value
    is not plain data. Positions are not kept: they are found again from the file's text, as
    for a file loaded afresh, when first asked for."""
    try:
        return marshal.dumps((ENTRY_FORMAT, [(d.index, d.data, d.refused) for d in documents]))
    except ValueError:
        return None


def decode_loaded(payload: bytes, source: SourceFile) -> list[Document] | None:
    """What `encode_loaded` stored for ``source``, or None if it is not that."""
    try:
        version, documents = marshal.loads(payload)
        if version != ENTRY_FORMAT:
            return None
        return [Document(source, index, data, ReloadedPositions(source, index), refused) for index, data, refused in documents]
    except (ValueError, TypeError, EOFError):
        return None


# --- groups ----------------------------------------------------------------------------

# A group ends after a file whose name's CRC-32 is a multiple of this: about this many files a
# group, and a file added or removed changes only its own group (where groups end does not
# depend on what comes before).
GROUP_SPREAD = 16


def neighbours(paths: Sequence[str]) -> list[range]:
    """``paths`` (in order, one per member: a file holding two clusters is named twice) cut into
    groups of neighbours, after some file names (GROUP_SPREAD); a file's members are never cut
    apart."""
    groups = []
    start = 0
    for index in range(1, len(paths) + 1):
        if index < len(paths):
            before = paths[index - 1]
            if before == paths[index] or zlib.crc32(before.encode()) % GROUP_SPREAD:
                continue
        groups.append(range(start, index))
        start = index
    return groups


def cluster_group_key(keys: Sequence[str]) -> str:
    """The key of some clusters' entries stored as one: their own keys (each covers the renderer)."""
    return hashlib.sha256(b"cluster group\0" + "".join(keys).encode()).hexdigest()


def encode_group(members: Sequence[bytes | None]) -> bytes:
    """Some members' entries as one (None: a member that is not stored, found again each run)."""
    return marshal.dumps((ENTRY_FORMAT, list(members)))


def decode_group(payload: bytes, count: int) -> list[bytes | None] | None:
    """The ``count`` members' entries `encode_group` stored, or None if the payload is not that."""
    try:
        version, members = marshal.loads(payload)
    except (ValueError, TypeError, EOFError):
        return None
    if version != ENTRY_FORMAT or not isinstance(members, list) or len(members) != count:
        return None
    if not all(member is None or isinstance(member, bytes) for member in members):
        return None
    return members
