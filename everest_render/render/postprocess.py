"""Post-render steps: small pure functions over rendered objects, run in one visible list."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from everest_render.diagnostics import Diagnostic
from everest_render.model import RenderedObject, ResolvedCluster

Step = Callable[[RenderedObject, ResolvedCluster], RenderedObject]


def apply_labels(rendered: RenderedObject, cluster: ResolvedCluster) -> RenderedObject:
    """The renderer's labels and the cluster's own go on every object; the renderer's win."""
    obj = dict(rendered.obj)
    metadata = dict(obj.get("metadata") or {})
    metadata["labels"] = {**(metadata.get("labels") or {}), **cluster.labels}
    obj["metadata"] = metadata
    return RenderedObject(obj, rendered.cluster, rendered.template)


def set_namespace(rendered: RenderedObject, cluster: ResolvedCluster) -> RenderedObject:
    """Objects live in the cluster's namespace; a template may omit it."""
    obj = dict(rendered.obj)
    metadata = dict(obj.get("metadata") or {})
    metadata.setdefault("namespace", cluster.ref.namespace)
    obj["metadata"] = metadata
    return RenderedObject(obj, rendered.cluster, rendered.template)


STEPS: tuple[Step, ...] = (set_namespace, apply_labels)


def postprocess(objects: list[RenderedObject], clusters: Mapping[Any, ResolvedCluster]) -> tuple[list[RenderedObject], list[Diagnostic]]:
    processed: list[RenderedObject] = []
    problems: list[Diagnostic] = []
    for rendered in objects:
        cluster = clusters[rendered.cluster]
        for step in STEPS:
            rendered = step(rendered, cluster)
        namespace = rendered.obj["metadata"].get("namespace")
        if namespace != cluster.ref.namespace:
            # Output paths derive from the cluster's namespace: an object may not leave it.
            problems.append(Diagnostic(rendered.template, 1, 1, f"rendering {cluster.ref} produced an object in namespace {namespace!r}"))
            continue
        processed.append(rendered)
    return processed, problems
