"""Stage 5, check (the core's part): what every object written to out/ must be, whatever the
provider's schema allows. Run on rendered objects and on pass-through objects alike.

- ``metadata.name`` a DNS subdomain (RFC 1123), ``metadata.namespace`` a DNS label;
- no ``status`` and no metadata the API server owns (``uid``, ``resourceVersion``,
  ``ownerReferences``, ``managedFields``, ...): applied from git they conflict or lie;
- labels and annotations valid as the API server validates them, and no tracking metadata of
  Argo CD or Flux (the tool that applies an object owns it);
- no Secret with ``data``/``stringData``, no list (``kind: List``, whose items would pass
  unchecked), and no URL carrying credentials (``user:pass@``);
- no two objects with one identity (group, kind, namespace, name): the second would
  silently replace the first when applied.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from everest_render.diagnostics import Diagnostic, ObjectPath, format_path
from everest_render.model import EmittedObject, ObjectRef, PassthroughObject, RenderedObject, ResolvedCluster, TextMarks
from everest_render.resolve.gitops import TRACKING_ANNOTATIONS, TRACKING_LABELS

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_LABEL = re.compile(_LABEL)
DNS_SUBDOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_NAME_PART = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
MAX_ANNOTATIONS_BYTES = 256 * 1024  # the API server's limit on all annotations of an object

# Written by the API server or its controllers; an object in git must not carry them.
SERVER_FIELDS = {
    "uid": "set by the API server",
    "resourceVersion": "set by the API server",
    "generation": "set by the API server",
    "creationTimestamp": "set by the API server",
    "deletionTimestamp": "set by the API server",
    "deletionGracePeriodSeconds": "set by the API server",
    "selfLink": "set by the API server",
    "managedFields": "written by server-side apply",
    "ownerReferences": "set by the controller that owns the object; in git it would be adopted or collected",
    "generateName": "names a new object on every apply; give metadata.name",
}
TRACKING = {
    "labels": {**TRACKING_LABELS},
    "annotations": {**TRACKING_ANNOTATIONS, "kubectl.kubernetes.io/last-applied-configuration": "kubectl's apply record"},
}
# scheme://user:password@host, or scheme://token@host (any scheme but ssh, whose user is not a secret)
URL_CREDENTIALS = re.compile(r"\b(?!ssh://|git\+ssh://)([A-Za-z][A-Za-z0-9+.-]*)://([^/\s@'\"]+)@")


def object_problems(
    obj: Mapping[str, Any], *, urls: bool = True, encrypted: bool = False, marks: TextMarks | None = None
) -> list[tuple[ObjectPath, str]]:
    """What is wrong with ``obj`` as an object in out/: (path in the object, message) pairs.
    ``urls``: also search every string for credentials (input documents are searched when
    loaded); ``encrypted``: a SOPS file, whose Secret values parse checked are ciphertext;
    ``marks``: of ``obj``'s text, when known (model.TextMarks)."""
    problems: list[tuple[ObjectPath, str]] = []
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return [(("metadata",), "an object needs metadata with a name")]
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        problems.append((("metadata", "name"), "an object needs metadata.name"))
    elif len(name) > 253 or not DNS_SUBDOMAIN.fullmatch(name):
        message = f"{name!r} is not a valid name (RFC 1123 subdomain: lower case letters, digits, '-' and '.')"
        problems.append((("metadata", "name"), message))
    namespace = metadata.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or not DNS_LABEL.fullmatch(namespace) or len(namespace) > 63):
        problems.append((("metadata", "namespace"), f"{namespace!r} is not a valid namespace (RFC 1123 label)"))
    if "status" in obj:
        problems.append((("status",), "an object in git must not carry status (the operator writes it)"))
    server = SERVER_FIELDS.keys() & metadata.keys()
    for field in sorted(server) if server else ():
        problems.append((("metadata", field), f"metadata.{field} must not be written: {SERVER_FIELDS[field]}"))
    for field in ("labels", "annotations"):
        value = metadata.get(field)
        if value is not None and not _plainly_valid(value, field):
            problems.extend(_metadata_map_problems(value, field))
    kind = obj.get("kind")
    if isinstance(kind, str) and (kind == "List" or (kind.endswith("List") and isinstance(obj.get("items"), list))):
        # kubectl and the GitOps tools apply each item of a list: its items (a Secret with
        # data among them) would pass every check here unseen.
        problems.append((("kind",), f"a {kind} is never written: write each item as its own object"))
    if kind == "Secret" and str(obj.get("apiVersion")) == "v1" and not encrypted:
        for field in ("data", "stringData"):
            if obj.get(field):
                problems.append(((field,), "a Secret with data is never written (use SOPS, a SealedSecret or an ExternalSecret)"))
    for path, text in strings(obj) if urls and holds_url_credentials(obj, marks) else ():
        if URL_CREDENTIALS.search(text):
            problems.append((path, "a URL must not carry credentials (user:password@host); keep them in a Secret"))
    return problems


def _metadata_map_problems(value: Any, field: str) -> Iterator[tuple[ObjectPath, str]]:
    if value is None:
        return
    if not isinstance(value, Mapping):
        yield ("metadata", field), f"metadata.{field} must be a mapping of strings"
        return
    total = 0
    for key, item in value.items():
        path: ObjectPath = ("metadata", field, key)
        if not _qualified_name(key):
            rule = "an optional DNS prefix and '/', then up to 63 letters, digits, '-', '_', '.'"
            yield path, f"{key!r} is not a valid {field[:-1]} key ({rule})"
        if not isinstance(item, str):
            yield path, f"a {field[:-1]} value must be a string, not {type(item).__name__}"
            continue
        total += len(key) + len(item.encode())
        if field == "labels" and (len(item) > 63 or not _LABEL_VALUE.fullmatch(item)):
            yield path, "a label value has at most 63 letters, digits, '-', '_' or '.', starting and ending alphanumeric"
        why = TRACKING[field].get(key)
        if why is not None:
            yield path, f"{key} is {why}: the GitOps tool sets it, the renderer never writes it"
        elif type(key) is str and _qualified_name(key):
            good = _GOOD_KEYS[field]
            if len(good) >= 10_000:
                good.clear()
            good.add(key)
    if field == "annotations" and total > MAX_ANNOTATIONS_BYTES:
        yield ("metadata", field), f"annotations total {total} bytes, more than the API server's {MAX_ANNOTATIONS_BYTES}"


def _plainly_valid(value: Any, field: str) -> bool:
    """Whether labels or annotations ``value`` are valid by a quick look, which
    `_metadata_map_problems` would pass without a word: a dict of strings whose keys are
    known good (`_GOOD_KEYS`), label values that pass the rule, and annotations that cannot
    reach the API server's limit (UTF-8 writes a character in 4 bytes at most). Every object
    carries the same few keys; anything else (False) is looked at in full."""
    if type(value) is not dict:
        return False
    good = _GOOD_KEYS[field]
    if field == "labels":
        for key, item in value.items():
            if type(item) is not str or key not in good or len(item) > 63 or not _LABEL_VALUE.fullmatch(item):
                return False
        return True
    size = 0
    for key, item in value.items():
        if type(item) is not str or key not in good:
            return False
        size += len(key) + 4 * len(item)
    return size <= MAX_ANNOTATIONS_BYTES


def _qualified_name(key: str) -> bool:
    known = _QUALIFIED.get(key)
    if known is None:
        prefix, _, name = key.rpartition("/")
        known = not (prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.fullmatch(prefix)))
        known = known and 0 < len(name) <= 63 and bool(_NAME_PART.fullmatch(name))
        if type(key) is str:
            if len(_QUALIFIED) >= 10_000:
                _QUALIFIED.clear()
            _QUALIFIED[key] = known
    return known


# Label and annotation keys checked, by text: every object of a fleet carries the same few.
_QUALIFIED: dict[str, bool] = {}
# The keys `_metadata_map_problems` found valid and not tracking metadata, by field (a key's
# verdict is the same in every object): what `_plainly_valid` passes at a glance.
_GOOD_KEYS: dict[str, set[str]] = {"labels": set(), "annotations": set()}


def strings(value: Any, path: ObjectPath = ()) -> Iterator[tuple[ObjectPath, str]]:
    """Every string in ``value`` (keys are not searched), with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from strings(item, (*path, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from strings(item, (*path, index))


def holds_url_credentials(value: Any, marks: TextMarks | None = None) -> bool:
    """Whether some string in ``value`` holds a URL with credentials: one search over all of
    them, a line each (a match cannot span lines), before any is located by its path. Most
    objects hold no ``://``, or no ``@``, at all, which the marks of their text say first."""
    if not (marks or TextMarks.of(value)).url:
        return False
    texts: list[str] = []
    _collect_strings(value, texts)
    return URL_CREDENTIALS.search("\n".join(texts)) is not None


def _collect_strings(value: Any, texts: list[str]) -> None:
    kind = type(value)
    if kind is str:
        texts.append(value)
    elif kind is dict:
        for item in value.values():
            _collect_strings(item, texts)
    elif kind is list:
        for item in value:
            _collect_strings(item, texts)
    elif isinstance(value, str):
        texts.append(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect_strings(item, texts)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect_strings(item, texts)


def scalars(value: Any, path: ObjectPath = ()) -> Iterator[tuple[ObjectPath, Any]]:
    """Every string, number and boolean in ``value``, with its path."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from scalars(item, (*path, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from scalars(item, (*path, index))
    elif value is not None:
        yield path, value


def identity(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(group, kind, namespace, name): what the API server keys an object by (the version is not part of it)."""
    api_version = str(obj.get("apiVersion", ""))
    # One copy of each group: an identity is kept to the end for each object (EmittedObject).
    group = sys.intern(api_version.rpartition("/")[0])
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    return group, str(obj.get("kind", "")), str(metadata.get("namespace") or ""), str(metadata.get("name") or "")




def rendered_problems(objects: Iterable[RenderedObject], clusters: Mapping[ObjectRef, ResolvedCluster]) -> list[Diagnostic]:
    """`object_problems` of every rendered object, at the cluster it was rendered for."""
    problems = []
    for rendered in objects:
        found = object_problems(rendered.obj, marks=rendered.marks)
        if not found:
            continue
        anchor = clusters[rendered.cluster].cluster.document.at(("metadata",), "")
        what = _describe(rendered.obj)
        for path, message in found:
            text = f"rendered {what}: {message} (at {format_path(path)} of the object; template {rendered.template})"
            problems.append(Diagnostic(anchor.file, anchor.line, anchor.column, text))
    return problems


def duplicate_problems(
    objects: Sequence[EmittedObject], clusters: Mapping[ObjectRef, ResolvedCluster], passthrough: Iterable[PassthroughObject]
) -> list[Diagnostic]:
    """Each object whose identity an earlier one has (pass-through objects first, in file order).
    Positions are looked up only for identities that repeat: a fleet has thousands of objects
    and, usually, no duplicate. Only their identities are counted first (at the end of a render,
    whose peak this is: a way to find each object's position, made for every object, was 7 MB
    at 10,000 clusters)."""
    items = [(identity(item.document.data), item) for item in passthrough if isinstance(item.document.data, Mapping)]
    counted = collections.Counter(key for key, _ in items)
    counted.update(rendered.identity for rendered in objects)
    repeated = {key for key, count in counted.items() if count > 1}
    del counted
    if not repeated:
        return []
    entries: list[tuple[tuple[str, str, str, str], Callable[[], tuple[Diagnostic, str]]]] = [
        (key, functools.partial(_passthrough_at, item)) for key, item in items if key in repeated
    ]
    for rendered in objects:
        if rendered.identity in repeated:
            entries.append((rendered.identity, functools.partial(_rendered_at, rendered, clusters[rendered.cluster])))
    problems = []
    seen: dict[tuple[str, str, str, str], str] = {}
    for key, located in entries:
        if key not in repeated:
            continue
        where, label = located()
        if key in seen:
            group, kind, namespace, name = key
            what = f"{kind}{' (' + group + ')' if group else ''} {namespace + '/' if namespace else ''}{name}"
            message = f"duplicate object {what} (first at {seen[key]}): applying both, one would replace the other"
            problems.append(dataclasses.replace(where, message=message))
        else:
            seen[key] = label
    return problems


def _passthrough_at(item: PassthroughObject) -> tuple[Diagnostic, str]:
    where = item.document.at(("metadata", "name"), "")
    return where, f"{where.file}:{where.line}"


def _rendered_at(rendered: EmittedObject, cluster: ResolvedCluster) -> tuple[Diagnostic, str]:
    where = cluster.cluster.document.at(("metadata",), "")
    return where, f"{where.file}:{where.line}, template {rendered.template}"


def _describe(obj: Mapping[str, Any]) -> str:
    _, kind, namespace, name = identity(obj)
    return f"{kind} {namespace + '/' if namespace else ''}{name}"
