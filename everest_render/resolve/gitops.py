"""GitOps controls of one cluster: the annotations its rendered objects carry, and its
deletion protection (docs/gitops.md). Part of resolve: pure, diagnostics as values.

A DatabaseCluster's annotations are copied onto every object rendered for it, after the
repository's defaults (the settings file's ``gitops`` section: repository-wide, then per
namespace), so a cluster overrides a default key by key. Three kinds of key are not copied:
tracking metadata of Argo CD and Flux (an error: the tool that applies the object owns it),
``kubectl.kubernetes.io/last-applied-configuration`` (dropped, with a warning: kubectl
writes it), and the renderer's own ``everest-render/`` keys, which are settings read here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from everest_render.diagnostics import Diagnostic, ObjectPath, Severity, candidates
from everest_render.model import DatabaseCluster, GitopsControls, GitopsDefaults

# Written by Argo CD or Flux on the objects they apply; set in git, they would make the tool
# adopt (or refuse) objects it does not own.
TRACKING_ANNOTATIONS = {
    "argocd.argoproj.io/tracking-id": "Argo CD's annotation tracking",
    "argocd.argoproj.io/installation-id": "Argo CD's installation tracking",
    "kustomize.toolkit.fluxcd.io/name": "Flux's Kustomization tracking",
    "kustomize.toolkit.fluxcd.io/namespace": "Flux's Kustomization tracking",
    "kustomize.toolkit.fluxcd.io/checksum": "Flux's Kustomization tracking",
    "helm.toolkit.fluxcd.io/name": "Flux's HelmRelease tracking",
    "helm.toolkit.fluxcd.io/namespace": "Flux's HelmRelease tracking",
}
TRACKING_LABELS = {
    "app.kubernetes.io/instance": "Argo CD's label tracking",
    "argocd.argoproj.io/instance": "Argo CD's label tracking",
    "kustomize.toolkit.fluxcd.io/name": "Flux's Kustomization tracking",
    "kustomize.toolkit.fluxcd.io/namespace": "Flux's Kustomization tracking",
    "helm.toolkit.fluxcd.io/name": "Flux's HelmRelease tracking",
    "helm.toolkit.fluxcd.io/namespace": "Flux's HelmRelease tracking",
}
DROPPED_ANNOTATIONS = {
    "kubectl.kubernetes.io/last-applied-configuration": "kubectl writes it on apply; copied, it would describe another object",
}

SETTINGS_PREFIX = "everest-render/"
PROTECTION_KEY = "everest-render/deletion-protection"
KEEP_VOLUMES_KEY = "everest-render/keep-volumes"
SKIP_EXTENSIONS_KEY = "everest-render/skip-extensions"  # read by extend/select.py
SETTING_KEYS = (PROTECTION_KEY, KEEP_VOLUMES_KEY, SKIP_EXTENSIONS_KEY)

ARGOCD_SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
FLUX_PRUNE = "kustomize.toolkit.fluxcd.io/prune"
FLUX_SUBSTITUTE = "kustomize.toolkit.fluxcd.io/substitute"
FLUX_DISABLED = "disabled"

# What each protection level writes: Argo CD sync options and Flux's prune annotation.
PROTECTION_LEVELS: Mapping[str, tuple[tuple[str, ...], str | None]] = {
    "none": ((), None),
    "confirm": (("Prune=confirm", "Delete=confirm"), FLUX_DISABLED),
    "strict": (("Prune=false", "Delete=false"), FLUX_DISABLED),
}
BOOLEANS = {"true": True, "false": False}


def resolve_controls(
    cluster: DatabaseCluster, defaults: GitopsDefaults | None = None
) -> tuple[GitopsControls, list[Diagnostic]]:
    """The cluster's GitOps controls, its labels' and annotations' problems."""
    problems: list[Diagnostic] = []
    doc = cluster.document
    path: ObjectPath = ("metadata", "annotations")

    def error(key: str, message: str, *, where: ObjectPath = path) -> None:
        problems.append(doc.at((*where, key), message, key=True))

    def warn(key: str, message: str) -> None:
        found = doc.at((*path, key), message, key=True)
        problems.append(Diagnostic(found.file, found.line, found.column, found.message, found.path, Severity.WARNING))

    for key in cluster.labels:
        if key in TRACKING_LABELS:
            why = TRACKING_LABELS[key]
            error(key, f"label {key!r} is tracking metadata ({why}): the GitOps tool sets it; remove it", where=("metadata", "labels"))

    layers = _layers(cluster.ref.namespace, defaults)
    written = dict(cluster.annotations)
    copied: dict[str, str] = {}
    for _, layer in layers:
        copied.update(layer.annotations)
    for key, value in written.items():
        if key in TRACKING_ANNOTATIONS:
            error(key, f"annotation {key!r} is tracking metadata ({TRACKING_ANNOTATIONS[key]}): the GitOps tool sets it; remove it")
        elif key in DROPPED_ANNOTATIONS:
            warn(key, f"annotation {key!r} is not copied onto the rendered objects: {DROPPED_ANNOTATIONS[key]}")
        elif key.startswith(SETTINGS_PREFIX):
            if key not in SETTING_KEYS:
                error(key, f"unknown setting {key!r}; known: {candidates(SETTING_KEYS)}")
        else:
            copied[key] = value

    protection, protection_origin = "none", "default"
    keep_volumes, keep_origin = False, "default"
    for origin, layer in layers:
        if layer.deletion_protection is not None:
            protection, protection_origin = layer.deletion_protection, origin
        if layer.keep_volumes is not None:
            keep_volumes, keep_origin = layer.keep_volumes, origin
    where = f"{doc.source.path}, metadata.annotations"
    if PROTECTION_KEY in written:
        value = written[PROTECTION_KEY]
        if value in PROTECTION_LEVELS:
            protection, protection_origin = value, where
        else:
            known = candidates(PROTECTION_LEVELS)
            problems.append(doc.at((*path, PROTECTION_KEY), f"{value!r} is not a deletion protection; known: {known}"))
    if KEEP_VOLUMES_KEY in written:
        value = written[KEEP_VOLUMES_KEY]
        if value in BOOLEANS:
            keep_volumes, keep_origin = BOOLEANS[value], where
        else:
            problems.append(doc.at((*path, KEEP_VOLUMES_KEY), f"{value!r} is not \"true\" or \"false\""))

    sync_options, flux_prune = PROTECTION_LEVELS.get(protection, ((), None))
    if sync_options:
        merged, conflicts = merge_sync_options(copied.get(ARGOCD_SYNC_OPTIONS, ""), sync_options)
        for conflict in conflicts:
            wanted = ", ".join(sync_options)
            _conflict(doc, written, ARGOCD_SYNC_OPTIONS, f"sync option {conflict} {_contradicts(protection, wanted)}", problems)
        copied[ARGOCD_SYNC_OPTIONS] = merged
    if flux_prune is not None:
        current = copied.get(FLUX_PRUNE)
        if current is not None and current != flux_prune:
            wanted = f"{FLUX_PRUNE}: {flux_prune}"
            _conflict(doc, written, FLUX_PRUNE, f"{FLUX_PRUNE}: {current} {_contradicts(protection, wanted)}", problems)
        copied[FLUX_PRUNE] = flux_prune
    controls = GitopsControls(
        dict(sorted(copied.items())),
        protection,
        keep_volumes,
        {"deletionProtection": protection_origin, "keepVolumes": keep_origin},
        FLUX_SUBSTITUTE in copied,
    )
    return controls, problems


def _layers(namespace: str, defaults: GitopsDefaults | None) -> list[tuple[str, GitopsDefaults]]:
    """The defaults that apply to a cluster in ``namespace``, weakest first, with their origin."""
    if defaults is None:
        return []
    layers = [(f"{defaults.source} (gitops)", defaults)]
    if namespace in defaults.namespaces:
        layers.append((f"{defaults.source} (gitops.namespaces.{namespace})", defaults.namespaces[namespace]))
    return layers


def _contradicts(protection: str, wanted: str) -> str:
    return f"contradicts deletion protection {protection!r} ({wanted}): remove it, or choose another protection"


def _conflict(doc: Any, written: Mapping[str, str], key: str, message: str, problems: list[Diagnostic]) -> None:
    # On the cluster's own annotation when it wrote one; else the settings file's default is
    # what contradicts, and the cluster's annotations (or metadata) are where to fix it.
    path: ObjectPath = ("metadata", "annotations", key) if key in written else ("metadata",)
    problems.append(doc.at(path, message))


def merge_sync_options(written: str, required: tuple[str, ...]) -> tuple[str, list[str]]:
    """Argo CD sync options (comma separated ``Name=value``) with ``required`` added after the
    ones written, which keep their order; a written option naming a required one with another
    value is a conflict (returned, and left out)."""
    options = [option.strip() for option in written.split(",") if option.strip()]
    wanted = {option.split("=", 1)[0]: option for option in required}
    kept, conflicts = [], []
    for option in options:
        name = option.split("=", 1)[0]
        if name in wanted and option != wanted[name]:
            conflicts.append(option)
            continue
        kept.append(option)
    kept.extend(option for option in required if option not in kept)
    return ",".join(kept), conflicts
