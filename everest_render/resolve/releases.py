"""The operator release each provider targets in a repository, and the catalogue of that release.

A provider may support several operator releases (``spec.operator`` and
``spec.operator.releases``), each with its own crVersion and strict schemas; its definition
may give a release its own catalogue (``spec.releases``). In effect is the release the
repository's settings file pins (``spec.operatorReleases``), else the newest release that is
not a preview. Selecting it here, while the catalogue is built, gives every later stage one
Provider and one Definition as before: resolve, render and check never see the others.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from everest_render.diagnostics import Diagnostic, candidates
from everest_render.model import Definition, ObjectSchema, OperatorRelease, Provider
from everest_render.results import RepositorySettings

_NUMBERED = re.compile(r"(\d+(?:\.\d+)*)(.*)")


def release_order(version: str) -> tuple[tuple[int, ...], bool, str]:
    """Sort key of a release version: its dotted numbers, then a release after its own
    pre-releases (``1.20.0-rc1`` < ``1.20.0``); a version without numbers sorts first."""
    match = _NUMBERED.fullmatch(version)
    if match is None:
        return (), False, version
    numbers = tuple(int(part) for part in match.group(1).split("."))
    return numbers, not match.group(2), match.group(2)


def default_release(provider: Provider) -> OperatorRelease:
    """The newest release that is not a preview (the provider's own release never is one)."""
    return max((r for r in provider.releases if not r.preview), key=lambda r: release_order(r.version))


def select_releases(
    providers: Mapping[str, Provider],
    definitions: Mapping[str, Definition],
    settings: RepositorySettings,
    broken: frozenset[str],
    problems: list[Diagnostic],
) -> tuple[dict[str, Provider], dict[str, Definition]]:
    """Every provider at the release in effect, and every definition with that release's catalogue."""
    pins = {pin.provider: pin for pin in settings.operator_releases}
    document = settings.document
    selected: dict[str, Provider] = {}
    for name, provider in providers.items():
        release = default_release(provider)
        origin = "default: its newest operator release that is not a preview"
        if len(provider.releases) == 1:
            origin = "its only operator release"
        pin = pins.get(name)
        if pin is not None and document is not None:
            pinned = next((r for r in provider.releases if r.version == pin.version), None)
            if pinned is None:
                known = candidates((r.version for r in provider.releases), pin.version)
                problems.append(document.at(pin.at, f"provider {name} supports no operator release {pin.version!r}; known: {known}"))
            else:
                position = document.positions.value(pin.at)
                release, origin = pinned, f"pinned in {document.source.path}:{position.line}:{position.column} (spec.operatorReleases)"
        selected[name] = _at_release(provider, release, origin)
    if document is not None:
        for name, pin in pins.items():
            if name not in providers and name not in broken:
                message = f"unknown provider {name!r}; known: {candidates(providers, name)}"
                problems.append(document.at(pin.at, message, key=True))
    return selected, _with_release_catalogues(selected, definitions, problems)


def _at_release(provider: Provider, release: OperatorRelease, origin: str) -> Provider:
    if not provider.releases:
        return provider
    objects = tuple(ObjectSchema(o.api_version, o.kind, release.schemas[o.kind]) for o in provider.objects)
    return dataclasses.replace(provider, operator_version=release.version, objects=objects, release_origin=origin)


def _with_release_catalogues(
    providers: Mapping[str, Provider], definitions: Mapping[str, Definition], problems: list[Diagnostic]
) -> dict[str, Definition]:
    """Each definition with the catalogue of the release its providers target. A release the
    definition names must be one its providers support; providers sharing a definition whose
    catalogue differs between the releases they target cannot both be served by it."""
    users: dict[str, list[Provider]] = {}
    for provider in providers.values():
        users.setdefault(provider.definition, []).append(provider)
    result = dict(definitions)
    for name, definition in definitions.items():
        if not (definition.releases or definition.release_bundles) or name not in users:
            continue
        supported = {r.version for p in users[name] for r in p.releases}
        for release in {**definition.releases, **definition.release_bundles}:
            if release not in supported:
                message = f"no provider of this definition supports operator release {release!r}; known: {candidates(supported, release)}"
                problems.append(definition.document.at(("spec", "releases", release), message, key=True))
        targeted = {p.operator_version for p in users[name]}
        overlays = {version in definition.releases or version in definition.release_bundles for version in targeted}
        if len(targeted) > 1 and True in overlays:
            listing = ", ".join(f"{p.name} ({p.operator_version})" for p in sorted(users[name], key=lambda p: p.name))
            message = f"providers {listing} target different operator releases, whose catalogues differ here: give each its own definition"
            problems.append(definition.document.at(("spec", "releases"), message, key=True))
            continue
        (version,) = targeted
        overlay = definition.releases.get(version)
        if overlay is not None:
            result[name] = dataclasses.replace(result[name], component_types={**definition.component_types, **overlay})
        if version in definition.release_bundles:  # that release's bundles, checked against its catalogue
            result[name] = dataclasses.replace(result[name], bundles=definition.release_bundles[version])
    return result
