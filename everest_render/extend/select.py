"""Which of the extensions in effect apply to each cluster, and why the others do not.

An extension applies to a cluster its ``spec.select`` selects (namespaces, providers, a label
selector over the cluster's own labels), unless the cluster opts out with the annotation
``everest-render/skip-extensions`` (a comma-separated list of extension names, or ``all``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from everest_render.diagnostics import Diagnostic, candidates
from everest_render.model import AppliedExtension, ResolvedCluster
from everest_render.resolve.gitops import SKIP_EXTENSIONS_KEY

SKIP_ALL = "all"


def select_extensions(
    clusters: Sequence[ResolvedCluster], applied: Sequence[AppliedExtension], known: Sequence[str]
) -> tuple[list[ResolvedCluster], list[Diagnostic]]:
    """Each cluster with the extensions that apply to it; ``known``: every extension's name
    (an opt-out may name one the repository has not enabled)."""
    problems: list[Diagnostic] = []
    selected = []
    for cluster in clusters:
        skipped, found = _opt_out(cluster, known)
        problems.extend(found)
        applies: list[AppliedExtension] = []
        not_applied: dict[str, str] = {}
        for entry in applied:
            extension = entry.extension
            why = extension.selection.why_not(cluster.ref.namespace, cluster.provider.name, cluster.cluster.labels)
            if extension.name in skipped or SKIP_ALL in skipped:
                not_applied[extension.name] = f"the cluster opts out ({SKIP_EXTENSIONS_KEY})"
            elif why is not None:
                not_applied[extension.name] = f"not selected: {why}"
            else:
                applies.append(entry)
        if applies or not_applied or cluster.extensions or cluster.extensions_skipped:
            cluster = dataclasses.replace(cluster, extensions=tuple(applies), extensions_skipped=not_applied)
        # else it is already what the replace would make: no copy (a repository without
        # extensions would copy every one of its clusters, field by field).
        selected.append(cluster)
    return selected, problems


def _opt_out(cluster: ResolvedCluster, known: Sequence[str]) -> tuple[set[str], list[Diagnostic]]:
    written = cluster.cluster.annotations.get(SKIP_EXTENSIONS_KEY)
    if written is None:
        return set(), []
    names = {part.strip() for part in written.split(",") if part.strip()}
    where = ("metadata", "annotations", SKIP_EXTENSIONS_KEY)
    if not names:
        return set(), [cluster.cluster.document.at(where, f"{SKIP_EXTENSIONS_KEY} names no extension: list some, or write {SKIP_ALL}")]
    problems = []
    for name in sorted(names - {*known, SKIP_ALL}):
        message = f"unknown extension {name!r} in {SKIP_EXTENSIONS_KEY}; known: {candidates([*known, SKIP_ALL], name)}"
        problems.append(cluster.cluster.document.at(where, message))
    return names, problems
