"""The definitions and providers in effect for a repository: built-ins, added to or replaced by name."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from everest_render.diagnostics import Diagnostic, candidates
from everest_render.load.documents import Document
from everest_render.model import DEFAULT_SETTINGS, AddedVersion, CatalogueVersion, ComponentType, Definition, Provider
from everest_render.resolve.releases import select_releases
from everest_render.results import RepositorySettings

_Named = TypeVar("_Named", Definition, Provider)


@dataclass(frozen=True)
class Catalog:
    """The definitions and providers in effect, by name: the built-ins and the repository's own."""

    definitions: dict[str, Definition]
    providers: dict[str, Provider]
    replaced: tuple[str, ...] = field(default=())  # names of built-ins the repository replaces
    broken: frozenset[str] = frozenset()  # names that failed to parse: already reported


def build_catalog(
    builtin_definitions: Sequence[Definition],
    builtin_providers: Sequence[Provider],
    definitions: Sequence[Definition],
    providers: Sequence[Provider],
    broken: frozenset[str] = frozenset(),
    settings: RepositorySettings = DEFAULT_SETTINGS,
) -> tuple[Catalog, list[Diagnostic]]:
    problems: list[Diagnostic] = []
    merged_definitions, replaced = _merge(builtin_definitions, definitions, "DatabaseClusterDefinition", problems)
    merged_providers, replaced_providers = _merge(builtin_providers, providers, "Provider", problems)
    # The release in effect first: the settings file's added versions add to its catalogue.
    merged_providers, merged_definitions = select_releases(merged_providers, merged_definitions, settings, broken, problems)
    merged_definitions = _add_versions(merged_definitions, settings, broken, problems)
    for provider in merged_providers.values():
        if provider.definition not in broken:
            problems.extend(_check_provider(provider, merged_definitions))
    names = tuple(sorted(replaced | replaced_providers))
    return Catalog(merged_definitions, merged_providers, names, broken), problems


class _Located(Protocol):
    @property
    def document(self) -> Document: ...


_Item = TypeVar("_Item", bound=_Located)
_Key = TypeVar("_Key", bound=Hashable)


def unique_by(items: Iterable[_Item], key: Callable[[_Item], _Key], kind: str, problems: list[Diagnostic]) -> dict[_Key, _Item]:
    """Items by key; a second item with the same key is an error at it that names the first."""
    seen: dict[_Key, _Item] = {}
    for item in items:
        name = key(item)
        if name in seen:
            first = seen[name].document
            where = f"{first.source.path}:{first.positions.value(()).line}"
            problems.append(item.document.at(("metadata", "name"), f"duplicate {kind} {name} (first at {where})"))
            continue
        seen[name] = item
    return seen


def _merge(builtins: Sequence[_Named], own: Sequence[_Named], kind: str, problems: list[Diagnostic]) -> tuple[dict[str, _Named], set[str]]:
    merged: dict[str, _Named] = {}
    for group in (builtins, own):
        merged.update(unique_by(group, lambda item: item.name, kind, problems))
    replaced = {item.name for item in own} & {item.name for item in builtins}
    return merged, {f"{kind}/{name}" for name in replaced}


def _add_versions(
    definitions: dict[str, Definition], settings: RepositorySettings, broken: frozenset[str], problems: list[Diagnostic]
) -> dict[str, Definition]:
    """The definitions with the versions the settings file's spec.catalogue adds. An entry
    the definition already lists is accepted only when identical (same image), and then only
    its ``default`` counts; an added ``default: true`` takes the default from the definition's."""
    document = settings.document
    if document is None or not settings.catalogue:
        return definitions
    by_type: dict[tuple[str, str], list[AddedVersion]] = {}
    for added in settings.catalogue:
        definition = definitions.get(added.definition)
        if definition is None:
            if added.definition not in broken:
                known = candidates(definitions, added.definition)
                message = f"unknown DatabaseClusterDefinition {added.definition!r}; known: {known}"
                problems.append(document.at(added.at[:3], message, key=True))
            continue
        if added.component_type not in definition.component_types:
            known = candidates(definition.component_types, added.component_type)
            message = f"definition {added.definition} has no component type {added.component_type!r}; known: {known}"
            problems.append(document.at(added.at[:4], message, key=True))
            continue
        listed = definition.component_types[added.component_type].find(added.version.version)
        if listed is not None and listed.image != added.version.image:
            where = "built-in" if definition.builtin else definition.document.source.path
            message = f"version {added.version.version} is already in definition {added.definition} ({where}) with image {listed.image}"
            problems.append(document.at((*added.at, "image"), message))
            continue
        by_type.setdefault((added.definition, added.component_type), []).append(added)
    result = dict(definitions)
    for (name, type_name), entries in sorted(by_type.items()):
        definition = result[name]
        result[name] = dataclasses.replace(
            definition,
            component_types={**definition.component_types, type_name: _with_added(definition.component_types[type_name], entries)},
        )
    return result


def _with_added(component_type: ComponentType, entries: Sequence[AddedVersion]) -> ComponentType:
    new_default = next((e.version.version for e in entries if e.version.default), None)

    def keep(version: CatalogueVersion) -> CatalogueVersion:
        if new_default is None:
            return version
        return dataclasses.replace(version, default=version.version == new_default)

    kept = [keep(v) for v in component_type.versions]
    added = [keep(e.version) for e in entries if component_type.find(e.version.version) is None]
    return ComponentType(component_type.name, (*kept, *added))


def _check_provider(provider: Provider, definitions: dict[str, Definition]) -> list[Diagnostic]:
    document = provider.document
    definition = definitions.get(provider.definition)
    if definition is None:
        return [
            document.at(
                ("spec", "databaseClusterDefinition"),
                f"unknown DatabaseClusterDefinition {provider.definition!r}; known: {candidates(definitions, provider.definition)}",
            )
        ]
    problems = []
    for topology, components in provider.expose.items():
        where = ("spec", "expose", topology)
        if topology not in definition.topologies:
            known = candidates(definition.topologies, topology)
            problems.append(document.at(where, f"unknown topology {topology!r}; known: {known}", key=True))
            continue
        for component in components:
            if component not in definition.topologies[topology].components:
                known = candidates(definition.topologies[topology].components, component)
                problems.append(document.at(where, f"topology {topology!r} has no component {component!r}; known: {known}"))
    return problems
