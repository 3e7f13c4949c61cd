"""Stage 2, parse: the repository settings file (``everest-render.yaml``) -> RepositorySettings.

The file is optional; it is one document of kind RepositorySettings, checked against
schemas/RepositorySettings.yaml like every input (unknown keys refused with a suggestion).
Each top-level section of ``spec`` becomes the RepositorySettings field of the same name in
snake_case: a section is taken as written (already validated) unless ``SECTION_PARSERS``
names a function that turns it into a typed value and checks what a schema cannot.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from everest_render.diagnostics import Diagnostic
from everest_render.load.documents import Document, load_documents
from everest_render.load.files import SETTINGS_FILE
from everest_render.model import DEFAULT_SETTINGS, AddedVersion, CatalogueVersion, ExtensionChoice, GitopsDefaults, ReleasePin
from everest_render.parse.inputs import check_against_schema
from everest_render.results import RepositorySettings

API_VERSION = "everest-render/v1alpha1"
KIND = "RepositorySettings"

# section name -> (document, section as written) -> (field value, problems). A section not
# listed is kept as written.
SectionParser = Callable[[Document, Any], tuple[Any, list[Diagnostic]]]


# A container image reference as Docker's reference grammar reads it: [registry[:port]/]path,
# lower-case path components, then a tag and/or a digest. A catalogue entry must pin one: an
# untagged image is "latest", which changes under the cluster.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?P<tag>:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?P<digest>@sha256:[0-9a-f]{64})?"
)


def _parse_catalogue(document: Document, written: Any) -> tuple[tuple[AddedVersion, ...], list[Diagnostic]]:
    """spec.catalogue: what a schema cannot say about each entry. That the definition and the
    component type exist, and how an entry meets the definition's own, is checked where the
    definitions are known (resolve/catalog.py)."""
    added: list[AddedVersion] = []
    problems: list[Diagnostic] = []
    for definition, types in written.items():
        for type_name, entries in types.items():
            base = ("spec", "catalogue", definition, type_name)
            seen: dict[str, int] = {}
            defaults = [index for index, entry in enumerate(entries) if entry.get("default")]
            for index in defaults[1:]:
                message = f"at most one added {type_name} version may be default: true (first at [{defaults[0]}])"
                problems.append(document.at((*base, index, "default"), message))
            for index, entry in enumerate(entries):
                at = (*base, index)
                image, written_version = entry["image"], entry["version"]
                match = _IMAGE.fullmatch(image)
                if match is None:
                    message = f"{image!r} is not an image reference (e.g. registry.example.com/team/db:1.2.3)"
                    problems.append(document.at((*at, "image"), message))
                elif not match.group("tag") and not match.group("digest"):
                    message = f"{image!r} names no tag or digest: pin one, or the image changes under the cluster"
                    problems.append(document.at((*at, "image"), message))
                if written_version in seen:
                    message = f"version {written_version} is listed twice (first at [{seen[written_version]}])"
                    problems.append(document.at((*at, "version"), message))
                    continue
                seen[entry["version"]] = index
                pos = document.positions.value(at)
                version = CatalogueVersion(
                    entry["version"], entry["image"], bool(entry.get("default")), f"{document.source.path}:{pos.line}:{pos.column}", True
                )
                added.append(AddedVersion(definition, type_name, version, at))
    return tuple(added), problems


def _gitops_section(document: Document, written: Any) -> tuple[GitopsDefaults, list[Diagnostic]]:
    """``spec.gitops``: GitOps defaults. Annotations that a cluster may not carry (tracking
    metadata, the renderer's own settings, which have their own keys here) are refused."""
    from everest_render.resolve.gitops import DROPPED_ANNOTATIONS, SETTINGS_PREFIX, TRACKING_ANNOTATIONS

    problems: list[Diagnostic] = []

    def layer(section: Any, path: tuple[str, ...], namespaces: Any = None) -> GitopsDefaults:
        annotations = dict(section.get("annotations", {}))
        for key in annotations:
            where = (*path, "annotations", key)
            if key in TRACKING_ANNOTATIONS:
                why = f"is tracking metadata ({TRACKING_ANNOTATIONS[key]}): the GitOps tool sets it"
                problems.append(document.at(where, f"annotation {key!r} {why}", key=True))
            elif key in DROPPED_ANNOTATIONS or key.startswith(SETTINGS_PREFIX):
                why = "cannot be a default (deletionProtection and keepVolumes are keys of this section)"
                problems.append(document.at(where, f"annotation {key!r} {why}", key=True))
        return GitopsDefaults(
            annotations,
            section.get("deletionProtection"),
            section.get("keepVolumes"),
            {name: layer(inner, (*path, "namespaces", name)) for name, inner in (namespaces or {}).items()},
            document.source.path,
        )

    return layer(written, ("spec", "gitops"), written.get("namespaces")), problems


def _extensions_section(document: Document, written: Any) -> tuple[dict[str, ExtensionChoice], list[Diagnostic]]:
    """``spec.extensions``: each extension named, on unless ``enabled: false``. Whether it exists
    and whether its settings fit its schema is checked where extensions are known (extend/catalog.py)."""
    chosen = {}
    for name, entry in written.items():
        entry = entry or {}
        chosen[name] = ExtensionChoice(name, entry.get("enabled", True), dict(entry.get("settings") or {}), ("spec", "extensions", name))
    return chosen, []


def _operator_releases_section(document: Document, written: Any) -> tuple[tuple[ReleasePin, ...], list[Diagnostic]]:
    """``spec.operatorReleases``: provider -> release. Whether the provider exists and lists
    that release is checked where the providers are known (resolve/releases.py)."""
    pins = tuple(ReleasePin(provider, version, ("spec", "operatorReleases", provider)) for provider, version in written.items())
    return pins, []


SECTION_PARSERS: dict[str, SectionParser] = {
    "catalogue": _parse_catalogue,
    "gitops": _gitops_section,
    "operatorReleases": _operator_releases_section,
    "extensions": _extensions_section,
}


def parse_settings(source: Any) -> tuple[RepositorySettings, list[Diagnostic]]:
    """The settings of the file read by the read stage (a SourceFile, or None without one).

    Any problem gives the defaults beside the diagnostics: the run fails on them anyway, and
    the rest of the repository is still checked against the defaults."""
    if source is None:
        return DEFAULT_SETTINGS, []
    documents, problems = load_documents([source])
    if problems:
        return DEFAULT_SETTINGS, list(problems)
    if source.path != SETTINGS_FILE:
        return DEFAULT_SETTINGS, [Diagnostic(source.path, 1, 1, f"the repository settings file is named {SETTINGS_FILE}; rename this file")]
    if not documents:
        return DEFAULT_SETTINGS, []  # an empty file: every default
    first, *others = documents
    if others:
        return DEFAULT_SETTINGS, [others[0].at((), f"{SETTINGS_FILE} holds one document (RepositorySettings), not several")]
    if not isinstance(first.data, dict):
        return DEFAULT_SETTINGS, [first.at((), f"{SETTINGS_FILE} holds a mapping: apiVersion: {API_VERSION}, kind: {KIND}, spec")]
    schema_problems = check_against_schema(first, KIND)[0]
    if schema_problems:
        return DEFAULT_SETTINGS, schema_problems
    fields: dict[str, Any] = {}
    found: list[Diagnostic] = []
    for section, written in (first.data.get("spec") or {}).items():
        parser = SECTION_PARSERS.get(section)
        value, section_problems = parser(first, written) if parser is not None else (written, [])
        fields[_field_name(section)] = value
        found.extend(section_problems)
    if found:
        return DEFAULT_SETTINGS, found
    return dataclasses.replace(DEFAULT_SETTINGS, document=first, **fields), []


def _field_name(section: str) -> str:
    """``gitOps`` -> ``git_ops``: the model field a section fills."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", section).lower()
