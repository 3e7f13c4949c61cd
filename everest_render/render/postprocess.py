"""Post-render steps: small pure functions over rendered objects, run in one visible list."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from everest_render.diagnostics import Diagnostic
from everest_render.model import MANAGED_BY, RENDERER_LABELS, RenderedObject, ResolvedCluster, TextMarks
from everest_render.parse.inputs import CLUSTER_SCOPED_KINDS
from everest_render.resolve.gitops import FLUX_DISABLED, FLUX_SUBSTITUTE

Step = Callable[[RenderedObject, ResolvedCluster], RenderedObject]


def apply_labels(rendered: RenderedObject, cluster: ResolvedCluster) -> RenderedObject:
    """The renderer's labels and the cluster's own go on every object; the renderer's win."""
    obj = dict(rendered.obj)
    metadata = dict(obj.get("metadata") or {})
    metadata["labels"] = {**(metadata.get("labels") or {}), **cluster.labels}
    obj["metadata"] = metadata
    return rendered.with_obj(obj)


def set_namespace(rendered: RenderedObject, cluster: ResolvedCluster) -> RenderedObject:
    """Objects live in the cluster's namespace; a template may omit it."""
    metadata = rendered.obj.get("metadata")
    if type(metadata) is dict and "namespace" in metadata:
        return rendered  # as the template wrote it (most do): nothing to set
    obj = dict(rendered.obj)
    metadata = dict(obj.get("metadata") or {})
    metadata.setdefault("namespace", cluster.ref.namespace)
    obj["metadata"] = metadata
    return rendered.with_obj(obj)


def apply_annotations(rendered: RenderedObject, cluster: ResolvedCluster) -> RenderedObject:
    """The cluster's GitOps annotations (its own, the repository's defaults, its deletion
    protection: resolve/gitops.py) go on every object rendered for it."""
    annotations = cluster.gitops.annotations
    if not annotations:
        return rendered
    metadata = dict(rendered.obj["metadata"])
    metadata["annotations"] = {**(metadata.get("annotations") or {}), **annotations}
    return rendered.with_obj({**rendered.obj, "metadata": metadata})


def keep_volumes(rendered: RenderedObject, cluster: ResolvedCluster) -> RenderedObject:
    """``everest-render/keep-volumes``: without the finalizers on which the operator deletes
    the volumes (the provider's ``gitops.volumeFinalizers``), a deleted cluster leaves its PVCs."""
    finalizers = rendered.obj["metadata"].get("finalizers")
    dropped = cluster.provider.gitops.volume_finalizers
    if not cluster.gitops.keep_volumes or not finalizers or not dropped:
        return rendered
    metadata = dict(rendered.obj["metadata"])
    kept = [f for f in finalizers if f not in dropped]
    if kept:
        metadata["finalizers"] = kept
    else:
        del metadata["finalizers"]
    return rendered.with_obj({**rendered.obj, "metadata": metadata})


def guard_flux_substitution(rendered: RenderedObject, cluster: ResolvedCluster) -> RenderedObject:
    """Flux's post-build substitution rewrites ``${var}`` (undefined: empty) and ``$$`` (to
    ``$``) in the text of every object it applies, configuration text included. An object
    holding either gets Flux's per-object opt-out, unless the cluster wrote
    ``kustomize.toolkit.fluxcd.io/substitute`` itself (substitution meant). Runs last: the
    annotations just added are text too."""
    if cluster.gitops.substitution_opt_in or not flux_would_rewrite(rendered.obj, rendered.marks):
        return rendered
    metadata = dict(rendered.obj["metadata"])
    metadata["annotations"] = {**(metadata.get("annotations") or {}), FLUX_SUBSTITUTE: FLUX_DISABLED}
    return rendered.with_obj({**rendered.obj, "metadata": metadata})


def flux_would_rewrite(value: Any, marks: TextMarks | None = None) -> bool:
    """Whether any key or string in ``value`` holds ``${`` or ``$$`` (what Flux's envsubst reads).
    One search over them all, a line each: neither can span the newline between two. Most
    objects hold no ``$`` at all, which the marks of their text say first."""
    if not (marks or TextMarks.of(value)).dollar:
        return False
    texts: list[str] = []
    _texts(value, texts)
    text = "\n".join(texts)
    return "${" in text or "$$" in text


def _texts(value: Any, texts: list[str]) -> None:
    """Every key and string in ``value``, appended to ``texts``."""
    kind = type(value)
    if kind is dict or (kind is not str and isinstance(value, Mapping)):
        for key, item in value.items():
            if type(key) is str or isinstance(key, str):
                texts.append(key)
            if type(item) is str:
                texts.append(item)
            elif item is not None:
                _texts(item, texts)
    elif kind is list:
        for item in value:
            _texts(item, texts)
    elif isinstance(value, str):
        texts.append(value)
    elif isinstance(value, list):
        for item in value:
            _texts(item, texts)


STEPS: tuple[Step, ...] = (set_namespace, apply_labels, apply_annotations, keep_volumes, guard_flux_substitution)

EXTENSION_LABEL = "everest-render/extension"  # which extension rendered an object (docs/extensions.md)


def label_extension(rendered: RenderedObject, cluster: ResolvedCluster) -> RenderedObject:
    """An extension's objects say which extension rendered them. A shared object (one for the
    namespace) carries the renderer's label but not a cluster's, nor a cluster's labels."""
    metadata = dict(rendered.obj["metadata"])
    own = {**(metadata.get("labels") or {})}
    if rendered.shared:
        own[RENDERER_LABELS[0]] = MANAGED_BY
    metadata["labels"] = {**own, EXTENSION_LABEL: str(rendered.extension)}
    return rendered.with_obj({**rendered.obj, "metadata": metadata})


def apply_annotations_under_own(rendered: RenderedObject, cluster: ResolvedCluster) -> RenderedObject:
    """The cluster's GitOps annotations, under the extension's own: an extension places its
    objects relative to the database (a sync wave before the cluster's), so its own key wins."""
    annotations = cluster.gitops.annotations
    if not annotations:
        return rendered
    metadata = dict(rendered.obj["metadata"])
    metadata["annotations"] = {**annotations, **(metadata.get("annotations") or {})}
    return rendered.with_obj({**rendered.obj, "metadata": metadata})


def guard_flux_substitution_always(rendered: RenderedObject, cluster: ResolvedCluster) -> RenderedObject:
    """A shared object belongs to no cluster, so no cluster's opt-in to substitution holds."""
    if not flux_would_rewrite(rendered.obj, rendered.marks):
        return rendered
    metadata = dict(rendered.obj["metadata"])
    metadata["annotations"] = {**(metadata.get("annotations") or {}), FLUX_SUBSTITUTE: FLUX_DISABLED}
    return rendered.with_obj({**rendered.obj, "metadata": metadata})


# An extension's object around one cluster, and a shared one around the namespace.
EXTENSION_STEPS: tuple[Step, ...] = (set_namespace, apply_labels, label_extension, apply_annotations_under_own, guard_flux_substitution)
SHARED_STEPS: tuple[Step, ...] = (set_namespace, label_extension, guard_flux_substitution_always)


def postprocess(objects: list[RenderedObject], clusters: Mapping[Any, ResolvedCluster]) -> tuple[list[RenderedObject], list[Diagnostic]]:
    processed: list[RenderedObject] = []
    problems: list[Diagnostic] = []
    for rendered in objects:
        cluster = clusters[rendered.cluster]
        steps = STEPS if rendered.extension is None else SHARED_STEPS if rendered.shared else EXTENSION_STEPS
        for step in steps:
            rendered = step(rendered, cluster)
        namespace = rendered.obj["metadata"].get("namespace")
        if rendered.obj.get("kind") in CLUSTER_SCOPED_KINDS:
            # It would be written with the cluster's namespace, which the API server ignores for
            # it, so two namespaces' clusters would own one object: pruning one deletes the other's.
            name = rendered.obj["metadata"].get("name")
            problems.append(
                Diagnostic(
                    rendered.template,
                    1,
                    1,
                    f"rendering {cluster.ref} produced {rendered.obj['kind']} {name}, which is cluster-scoped: a template renders only "
                    "objects of the cluster's namespace (put a cluster-scoped object under clusters/, where it is passed through)",
                )
            )
            continue
        if namespace != cluster.ref.namespace:
            # Output paths derive from the cluster's namespace: an object may not leave it.
            problems.append(Diagnostic(rendered.template, 1, 1, f"rendering {cluster.ref} produced an object in namespace {namespace!r}"))
            continue
        processed.append(rendered)
    return processed, problems
