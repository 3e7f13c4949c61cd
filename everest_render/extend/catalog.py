"""The extensions in effect: the built-ins and the repository's, and the settings file's choices.

A repository's extension replaces a built-in of the same name. An extension applies only when
``spec.extensions`` names it (and does not say ``enabled: false``); its settings must fit its
``settingsSchema``, whose defaults are then filled in. An extension may not render a kind a
provider renders: it adds objects around databases, never in their place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from typing import Any

from everest_render.diagnostics import Diagnostic, candidates
from everest_render.model import AppliedExtension, Extension, Provider
from everest_render.results import RepositorySettings
from everest_render.schema_check import compile_schema, schema_problems


def extensions_in_effect(
    extensions: Sequence[Extension], settings: RepositorySettings, providers: Mapping[str, Provider], broken: Set[str] = frozenset()
) -> tuple[tuple[AppliedExtension, ...], list[Diagnostic]]:
    """The enabled extensions, in the order they apply, with their validated settings
    (``broken``: folders that did not load, already reported)."""
    known: dict[str, Extension] = {}
    for extension in extensions:  # built-ins first: a repository's of the same name wins
        known[extension.name] = extension
    problems: list[Diagnostic] = []
    provider_kinds = {_group_kind(o.api_version, o.kind): p.name for p in providers.values() for o in p.objects}
    for extension in known.values():
        for index, entry in enumerate(extension.objects):
            owner = provider_kinds.get(_group_kind(entry.api_version, entry.kind))
            if owner is not None:
                message = f"{entry.kind} is a kind provider {owner} renders: an extension adds objects around a database, never its own"
                problems.append(extension.document.at(("spec", "objects", index, "kind"), message))
    applied = []
    document = settings.document
    for name, choice in settings.extensions.items():
        chosen = known.get(name)
        if chosen is None:
            if document is not None and name not in broken:
                problems.append(document.at(choice.at, f"unknown extension {name!r}; known: {candidates(known, name)}", key=True))
            continue
        if not choice.enabled:
            continue
        validator = compile_schema(dict(chosen.settings_schema))
        found = list(schema_problems(validator, dict(choice.settings)))
        for problem in found:
            if document is None:
                continue
            at = (*choice.at, "settings", *problem.path)
            message = f"extension {name}: {problem.message}"
            written = (document.data["spec"]["extensions"].get(name) or {}).get("settings") is not None
            if problem.missing:
                problems.append(document.missing(at, message) if written else document.at(choice.at, message, key=True))
            else:
                problems.append(document.at(at, message, key=problem.at_key))
        if not found:
            applied.append(AppliedExtension(chosen, with_defaults(chosen.settings_schema, choice.settings)))
    applied.sort(key=lambda a: (a.extension.order, a.extension.name))
    return tuple(applied), problems


def with_defaults(schema: Mapping[str, Any], value: Any) -> Any:
    """``value`` with the ``default`` of every absent property of ``schema`` filled in, in
    the objects that are present (the way the API server defaults a structural schema)."""
    if not isinstance(value, Mapping) or not isinstance(schema, Mapping):
        return value
    properties = schema.get("properties") or {}
    filled = dict(value)
    for key, sub in properties.items():
        if key not in filled and isinstance(sub, Mapping) and "default" in sub:
            filled[key] = sub["default"]
        if key in filled:
            filled[key] = with_defaults(sub, filled[key])
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        for key in filled.keys() - properties.keys():
            filled[key] = with_defaults(extra, filled[key])
    return filled


def _group_kind(api_version: str, kind: str) -> tuple[str, str]:
    return (api_version.rsplit("/", 1)[0] if "/" in api_version else "", kind)
