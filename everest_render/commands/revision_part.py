"""The revision of `diff --against` rendered in part: only the namespaces its changes touch.

What a cluster renders to depends on the world (every input outside clusters/) and on the
documents of its own namespace, nothing else (docs/design.md, "Only what changed"; the
incremental render stands on the same ground, incremental.py). So when the revision and the
working tree share the world and differ only in some files of clusters/, the revision's
render is today's in every namespace those files do not touch; only the touched namespaces
(those of the changed files' documents on either side, and of every file sharing a namespace
with them, to a fixed point) need its own files read, parsed, resolved and rendered. Its other
10,000 files of a fleet are then not even parsed.

That holds as checked here, or the revision renders whole (commands/git_revision.py): neither
side may have anything to say (a problem, a warning: diagnostics are then exactly none on both,
so none of the whole's is missed), hold a value that may be secret, or leave a cluster
unresolved; the part must stay within the touched namespaces (its documents, its files in
out/; an extension's objects are of their cluster's namespace, shared ones too), and
no cluster or object may be named twice over the whole.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from everest_render.check.core import identity
from everest_render.emit.output import plan_from_files
from everest_render.incremental import CLUSTERS, declared_namespaces, namespace_folder
from everest_render.load.files import RepositoryFiles
from everest_render.model import PassthroughObject
from everest_render.pipeline import RenderedSlice
from everest_render.results import ParsedInputs, RenderResult, ResolveResult


def same_world(today_files: RepositoryFiles, files: RepositoryFiles) -> bool:
    """Whether the revision's inputs (read beside today's, commands/revision_files.py) have
    today's very world: built-ins, settings, extensions, provider assets, and every file
    outside clusters/ (a file the same on both sides is today's very SourceFile)."""
    if files.builtin is not today_files.builtin or files.settings is not today_files.settings:
        return False
    if files.extensions is not today_files.extensions:
        return False
    if files.own.assets.keys() != today_files.own.assets.keys() or any(
        files.own.assets[folder] is not assets for folder, assets in today_files.own.assets.items()
    ):
        return False
    ours = {source.path: source for source in today_files.own.sources}
    return all(ours.get(source.path) is source or source.path.startswith(CLUSTERS) for source in files.own.sources)


def touched_part(
    today_files: RepositoryFiles, files: RepositoryFiles, today: ResolveResult
) -> tuple[frozenset[str], RepositoryFiles] | None:
    """The namespaces the revision's changes touch and its inputs reduced to the world and the
    files with a document there; None when the part could not stand for the whole (above)."""
    inputs = today.inputs
    if today.diagnostics or today.sensitive or len(today.clusters) != len(inputs.clusters) or inputs.broken:
        return None
    if _catalogue_in_clusters(inputs) or not same_world(today_files, files):
        return None
    ours = {source.path: source for source in today_files.own.sources}
    if ours.keys() != {source.path for source in files.own.sources}:
        return None
    changed = [source for source in files.own.sources if ours[source.path] is not source]
    # Each file of clusters/ by the namespaces its documents are in: today's parse says it of
    # the files that did not change (the revision's parse of the same text is the same), the
    # documents of a changed file say it on either side (a guess, checked on the part's parse).
    spans = _namespaces_by_file(inputs)
    for source in changed:
        spans[source.path] = {*spans.get(source.path, ()), *declared_namespaces(ours[source.path]), *declared_namespaces(source)}
    chosen = {source.path for source in changed}
    touched = {namespace for path in chosen for namespace in spans[path]}
    grown = True
    while grown:  # a file in a touched namespace touches every namespace it has documents in
        grown = False
        for path, namespaces in spans.items():
            if path not in chosen and not touched.isdisjoint(namespaces):
                chosen.add(path)
                touched |= namespaces
                grown = True
    sources = [source for source in files.own.sources if source.path in chosen or not source.path.startswith(CLUSTERS)]
    return frozenset(touched), dataclasses.replace(files, own=dataclasses.replace(files.own, sources=sources))


def part_stands(part: ResolveResult, touched: frozenset[str]) -> bool:
    """Whether the revision's part, resolved, has nothing to say and stays in ``touched``."""
    inputs = part.inputs
    if part.diagnostics or part.sensitive or len(part.clusters) != len(inputs.clusters) or inputs.broken:
        return False
    if _catalogue_in_clusters(inputs):
        return False
    return all(namespaces <= touched for namespaces in _namespaces_by_file(inputs).values())


def spliced(
    today: RenderResult, today_slices: Sequence[RenderedSlice], part: RenderResult, touched: frozenset[str]
) -> Mapping[str, bytes] | None:
    """The revision's out/: today's files outside ``touched``, the part's inside; None when
    either render had something to say, a file is outside its cluster's namespace, or a cluster
    or object would be named twice over the whole."""
    if today.diagnostics or part.diagnostics:
        return None
    todays = today.resolved.clusters
    written = [part.plan.files, *(s.files for s, c in zip(today_slices, todays, strict=True) if c.ref.namespace in touched)]
    if not all(namespace_folder(path) in touched for files in written for path in files):
        return None
    refs = [c.ref for c in todays if c.ref.namespace not in touched] + [c.ref for c in part.resolved.clusters]
    identities = [
        *(e.identity for e in today.emitted if e.cluster.namespace not in touched),
        *_passthrough_identities(p for p in today.resolved.inputs.passthrough if p.namespace not in touched),
        *(e.identity for e in part.emitted),
        *_passthrough_identities(part.resolved.inputs.passthrough),
    ]
    if len(set(refs)) != len(refs) or len(set(identities)) != len(identities):
        return None
    kept = {path: data for path, data in today.plan.files.items() if namespace_folder(path) not in touched}
    return plan_from_files({**kept, **part.plan.files}).files


def _namespaces_by_file(inputs: ParsedInputs) -> dict[str, set[str]]:
    """Each file (of those parsed) by the namespaces its parsed documents are in."""
    found: dict[str, set[str]] = defaultdict(set)
    for path, namespace in (
        *((c.document.source.path, c.ref.namespace) for c in inputs.clusters),
        *((b.document.source.path, b.ref.namespace) for b in inputs.backup_storages),
        *((m.document.source.path, m.ref.namespace) for m in inputs.monitoring_configs),
        *((p.document.source.path, p.namespace) for p in inputs.passthrough),
    ):
        found[path].add(namespace)
    return found


def _catalogue_in_clusters(inputs: ParsedInputs) -> bool:
    """A definition or provider under clusters/: part of the world, read where clusters are."""
    documents = [*(d.document for d in inputs.definitions), *(p.document for p in inputs.providers)]
    return any(document.source.path.startswith(CLUSTERS) for document in documents)


def _passthrough_identities(items: Iterable[PassthroughObject]) -> list[tuple[str, str, str, str]]:
    return [identity(item.document.data) for item in items if isinstance(item.document.data, Mapping)]
