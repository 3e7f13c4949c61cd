"""Stage 4, render (extensions): the objects each applied extension adds around a cluster.

An extension's templates run in the providers' sandbox (the same step budget, limits and
helpers) and read the cluster's documented context (render/context.py) plus four names of
their own (docs/extensions.md): ``settings`` (the repository's, validated, defaults filled),
``extension`` (``{name}``), ``secrets`` (the Secrets the cluster needs, as ``explain`` lists
them) and ``gitops`` (``{annotations}``, what every object of the cluster carries). Output is
read back like a provider's: only the kinds the manifest lists, each with a metadata mapping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict

import jinja2

from everest_render.check.core import identity
from everest_render.diagnostics import Diagnostic
from everest_render.model import AppliedExtension, Extension, ObjectRef, RenderedObject, ResolvedCluster, SharedObject
from everest_render.render.context import TemplateContext, template_context
from everest_render.render.templates import ProviderRenderer, TemplateRenderer


class ExtensionInfo(TypedDict):
    name: str


class SecretNeeded(TypedDict):
    name: str
    keys: list[str]
    operatorGenerates: list[str]
    operatorWrites: list[str]
    createdBy: str
    description: str


class ExtensionGitops(TypedDict):
    annotations: dict[str, str]


class ExtensionContext(TemplateContext):
    """What an extension's template reads: the cluster's context and these (docs/extensions.md)."""

    settings: dict[str, Any]
    extension: ExtensionInfo
    secrets: list[SecretNeeded]
    gitops: ExtensionGitops


class ExtensionRenderer(TemplateRenderer):
    """One extension's compiled templates; build once per run, render many clusters."""

    def __init__(self, extension: Extension) -> None:
        super().__init__(extension, f"extension {extension.name}", {(o.api_version, o.kind) for o in extension.objects})
        self.extension = extension
        self.templates: dict[str, tuple[jinja2.Template, bool]] = {}
        for entry in extension.template_files:
            # Syntax errors were reported when the folder loaded (extend/manifest.py).
            self.templates[entry.file] = (self.env.get_template(entry.file), entry.shared)

    def render(self, resolved: ResolvedCluster, context: Mapping[str, Any]) -> tuple[list[RenderedObject], list[Diagnostic]]:
        objects: list[RenderedObject] = []
        problems: list[Diagnostic] = []
        extension = self.extension.name
        for name, (template, shared) in self.templates.items():
            text, problem = self._render_text(resolved, name, template, context)
            if text is None:
                problems.extend([problem] if problem is not None else [])
                continue
            found, parse_problems = self._parse_output(resolved, name, text)
            # Built directly: `dataclasses.replace` looks every field up anew, for each object.
            objects.extend(RenderedObject(o.obj, o.cluster, o.template, extension, shared) for o in found)
            problems.extend(parse_problems)
        return objects, problems


def extension_context(
    resolved: ResolvedCluster, applied: AppliedExtension, base: TemplateContext, secrets: list[SecretNeeded]
) -> ExtensionContext:
    """What ``applied``'s templates read for ``resolved``: its template context ``base`` and the
    `secrets_needed` of its provider, both made once for every extension the cluster applies."""
    return {
        **base,
        "settings": dict(applied.settings),
        "extension": {"name": applied.extension.name},
        "secrets": secrets,
        "gitops": {"annotations": dict(resolved.gitops.annotations)},
    }


def secrets_needed(secrets: list[dict[str, Any]]) -> list[SecretNeeded]:
    """The ``secrets`` an extension's template reads, of a provider's required Secrets."""
    return [
        {
            "name": s["name"],
            "keys": list(s["keys"]),
            "operatorGenerates": list(s.get("operatorGenerates", [])),
            "operatorWrites": list(s.get("operatorWrites", [])),
            "createdBy": s["createdBy"],
            "description": s["description"],
        }
        for s in secrets
    ]


def render_extensions(
    clusters: Iterable[ResolvedCluster],
    *,
    shared_only: bool = False,
    renderers: dict[int, ExtensionRenderer] | None = None,
    secrets_of: dict[int, ProviderRenderer] | None = None,
    contexts: dict[ObjectRef, TemplateContext] | None = None,
) -> tuple[list[RenderedObject], list[Diagnostic]]:
    """Every applied extension's objects for every cluster, extensions in their order.
    ``shared_only``: only the shared templates (clusters outside a selection whose namespace's
    shared objects are selected). ``renderers`` (by extension) and ``secrets_of`` (by provider):
    what earlier calls compiled, reused and added to; a render calls this once a cluster, and
    compiling an extension's templates costs more than rendering them. ``contexts``: the
    clusters' template contexts their providers' render made (`render_clusters`), each taken
    out once read."""
    renderers = renderers if renderers is not None else {}
    secrets_of = secrets_of if secrets_of is not None else {}
    objects: list[RenderedObject] = []
    problems: list[Diagnostic] = []
    for resolved in clusters:
        if not resolved.extensions:
            continue
        key = id(resolved.provider)
        if key not in secrets_of:
            secrets_of[key] = ProviderRenderer(resolved.provider)
        # The same for every extension the cluster applies; a template cannot change them (the
        # sandbox is immutable).
        base = contexts.pop(resolved.ref, None) if contexts is not None else None
        base = template_context(resolved) if base is None else base
        secrets = secrets_needed(secrets_of[key].required_secrets(resolved, base))
        for applied in resolved.extensions:
            renderer = renderers.get(id(applied.extension))
            if renderer is None:
                renderer = renderers[id(applied.extension)] = ExtensionRenderer(applied.extension)
            found, found_problems = renderer.render(resolved, extension_context(resolved, applied, base, secrets))
            objects.extend(o for o in found if o.shared or not shared_only)
            problems.extend(found_problems)
    return objects, problems


def overwrite_problems(
    objects: Sequence[RenderedObject], clusters: Mapping[Any, ResolvedCluster]
) -> tuple[list[RenderedObject], list[Diagnostic]]:
    """An extension may not render an object its cluster's provider renders, nor one an
    extension applied before it rendered for the cluster: refused at the template, naming the
    cluster and the owner. The objects that stay, and the refusals."""
    owners: dict[tuple[Any, tuple[str, str, str, str]], RenderedObject] = {}
    kept: list[RenderedObject] = []
    problems: list[Diagnostic] = []
    for rendered in objects:  # provider objects first, then extensions in their order (render_slice)
        key = (rendered.cluster, identity(rendered.obj))
        first = owners.get(key)
        if first is None or rendered.extension is None:
            owners.setdefault(key, rendered)
            kept.append(rendered)
            continue
        if rendered.shared and first.shared and first.extension == rendered.extension:
            kept.append(rendered)  # one template renders it for the namespace; deduplicated later
            continue
        cluster = clusters[rendered.cluster].cluster.document.at((), "")
        by = f"provider {clusters[rendered.cluster].provider.name}" if first.extension is None else f"extension {first.extension}"
        _, kind, namespace, name = key[1]
        message = (
            f"extension {rendered.extension} may not overwrite {kind} {namespace}/{name}, which {by} renders "
            f"for {rendered.cluster} ({first.template}); cluster at {cluster.file}:{cluster.line}"
        )
        problems.append(Diagnostic(rendered.template, 1, 1, message))
    return kept, problems


def shared_once(objects: Iterable[SharedObject]) -> tuple[list[SharedObject], list[Diagnostic]]:
    """Shared objects rendered for several clusters, kept once (the first cluster's, by name);
    two clusters rendering different objects of one identity (their texts differ: what each
    would apply) is an error naming both."""
    first: dict[tuple[str, str, str, str], SharedObject] = {}
    problems: list[Diagnostic] = []
    for rendered in sorted(objects, key=lambda o: o.cluster):
        key = rendered.identity
        seen = first.get(key)
        if seen is None:
            first[key] = rendered
        elif seen.text != rendered.text:
            _, kind, namespace, name = key
            message = (
                f"extension {rendered.extension} renders {kind} {namespace}/{name} differently for {seen.cluster} and "
                f"{rendered.cluster}: a shared object must be the same for every cluster that needs it"
            )
            problems.append(Diagnostic(rendered.template, 1, 1, message))
    return list(first.values()), problems
