"""`render` through the run entry: no change replays the last render; a change to cluster files
alone renders only the files that changed (docs/design.md, "Reading by stat").

A repository's files are its **leaves** and its **world**. A leaf is a file of clusters/ whose
every document is a DatabaseCluster of the native API (nothing another file can refer to, no
translation) and that gave no problem; every other file (definitions, providers, settings,
extensions, BackupStorages, MonitoringConfigs, pass-through objects, Instances, the built-ins,
any file with a problem) is the world. A leaf's clusters are resolved from the leaf and the
world alone, so when the world's fingerprint is the one the last render kept, an unchanged
leaf's clusters render as they did: their out/ files and object identities are taken from the
run entry, and the file is not read, parsed or resolved. The changed files and the world are
rendered as a repository of their own; then what spans files is checked over the whole: a
cluster named twice, an object rendered twice, an out/ file written twice. Anything else
(a problem anywhere, a value that may be secret, extensions, a selection, a changed world)
renders the whole repository, as without the cache.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from everest_render.cache.snapshot import Leaf, Replay, Snapshot, fingerprint, token_digest, with_texts
from everest_render.cache.store import Store, renderer_identity
from everest_render.check.core import identity
from everest_render.emit.output import OutputPlan, plan_from_files
from everest_render.load.documents import SourceFile
from everest_render.load.files import RepositoryFiles, read_repository_files
from everest_render.model import RepositorySettings
from everest_render.parse.inputs import ParsedInputs
from everest_render.pipeline import RenderResult, ResolveResult, Selection, read_repository, render_repository

LEAF_KIND = ("everest.percona.com/v2alpha1", "DatabaseCluster")


def render_incremental(root: Path, out_dir: Path, only: Selection | None, jobs: int, cache: Store, *, replay: bool = True) -> RenderResult:
    snapshot = Snapshot(cache, renderer_identity(), root, out_dir, repr(only))
    shape = read_repository_files(root, out_dir, snapshot.reader)
    inputs = fingerprint(shape, token_digest)
    last = snapshot.last()
    if replay and last is not None and last[0] == inputs:
        snapshot.save_manifest()
        return _replayed(last[1])
    result = _render_changed(shape, last[1], snapshot, jobs, cache) if last is not None and last[1].leaves and only is None else None
    if result is None:
        files = with_texts(shape, snapshot.reader.text) or read_repository(root, out_dir)
        result = render_repository(files, only, jobs, cache)
        if not result.resolved.sensitive:
            leaves = leaves_of(result, files) if only is None else None
            world = fingerprint(without(files, leaves), token_digest) if leaves else ""
            render = Replay(len(result.resolved.clusters), dict(result.plan.files), result.diagnostics, world, leaves or {})
            # Keyed by the texts rendered (a file changed since its stat is keyed as it was read).
            snapshot.keep(fingerprint(files, token_digest), render)
    snapshot.save_manifest()
    return result


def _replayed(render: Replay) -> RenderResult:
    empty = ParsedInputs((), (), (), (), (), frozenset(), (), ())
    resolved = ResolveResult(None, (), empty, render.diagnostics, RepositorySettings())
    return RenderResult(resolved, (), OutputPlan(render.files), render.diagnostics, replayed_clusters=render.clusters)


def _render_changed(shape: RepositoryFiles, last: Replay, snapshot: Snapshot, jobs: int, cache: Store) -> RenderResult | None:
    """The render with every unchanged leaf taken from ``last``; None when it cannot be taken
    apart so (then the whole repository renders)."""
    digests = {source.path: token_digest(source.text) for source in shape.own.sources}
    unchanged = {name: leaf for name, leaf in last.leaves.items() if digests.get(name) == leaf.digest}
    if not unchanged:
        return None
    rest = with_texts(_only_sources(shape, [s for s in shape.own.sources if s.path not in unchanged]), snapshot.reader.text)
    if rest is None:
        return None
    result = render_repository(rest, None, jobs, cache)
    fresh = leaves_of(result, rest)
    if fresh is None or result.resolved.sensitive or fingerprint(without(rest, fresh), token_digest) != last.world:
        return None
    # What spans files, over the whole repository: with any of these, the whole renders (and
    # reports it, located as a full render locates it).
    refs = [*(ref for leaf in unchanged.values() for ref in leaf.clusters)]
    refs += [(c.ref.namespace, c.ref.name) for c in result.resolved.clusters]
    passing = [identity(p.document.data) for p in result.resolved.inputs.passthrough if isinstance(p.document.data, Mapping)]
    objects = [*(i for leaf in unchanged.values() for i in leaf.identities), *(identity(o.obj) for o in result.objects), *passing]
    kept = {path: last.files[path] for leaf in unchanged.values() for path in leaf.files}
    if _repeats(refs) or _repeats(objects) or kept.keys() & result.plan.files.keys():
        return None
    plan = plan_from_files({**result.plan.files, **kept})
    clusters = len(result.resolved.clusters) + sum(len(leaf.clusters) for leaf in unchanged.values())
    merged = dataclasses.replace(result, plan=plan, replayed_clusters=clusters)
    files = _only_sources(rest, [*rest.own.sources, *(s for s in shape.own.sources if s.path in unchanged)])
    render = Replay(clusters, dict(plan.files), (), last.world, {**unchanged, **fresh})
    snapshot.keep(fingerprint(files, token_digest), render)
    return merged


def _repeats(items: Sequence[tuple[str, ...]]) -> bool:
    return len(set(items)) != len(items)


def leaves_of(result: RenderResult, files: RepositoryFiles) -> dict[str, Leaf] | None:
    """The leaf files of a render, or None when the render cannot be taken apart (a problem, a
    value that may be secret, an extension in effect, a cluster not resolved)."""
    resolved = result.resolved
    own = resolved.inputs
    if result.diagnostics or resolved.sensitive or resolved.extensions or len(resolved.clusters) != len(own.clusters):
        return None
    world = {item.document.source.path for item in own.passthrough}
    world |= {item.document.source.path for item in own.backup_storages}
    world |= {item.document.source.path for item in own.monitoring_configs}
    world |= {item.document.source.path for item in own.definitions}
    world |= {item.document.source.path for item in own.providers}
    by_file: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for cluster in resolved.clusters:
        document = cluster.cluster.document
        data = document.data
        path = document.source.path
        if document.positions.origins or (data.get("apiVersion"), data.get("kind")) != LEAF_KIND or not path.startswith("clusters/"):
            world.add(path)
        by_file[path].append((cluster.ref.namespace, cluster.ref.name))
    identities: dict[tuple[str, str], list[tuple[str, str, str, str]]] = defaultdict(list)
    for rendered in result.objects:
        if rendered.shared or rendered.extension is not None:
            return None
        identities[(rendered.cluster.namespace, rendered.cluster.name)].append(identity(rendered.obj))
    digests = {source.path: token_digest(source.text) for source in files.own.sources}
    leaves = {}
    for path, refs in by_file.items():
        if path in world or path not in digests:
            continue
        out = tuple(f"{ns}/{name}.yaml" for ns, name in refs if f"{ns}/{name}.yaml" in result.plan.files)
        leaves[path] = Leaf(digests[path], tuple(refs), out, tuple(i for ref in refs for i in identities[ref]))
    return leaves


def without(files: RepositoryFiles, leaves: Mapping[str, Leaf] | None) -> RepositoryFiles:
    """``files`` without its leaves: the world."""
    return _only_sources(files, [s for s in files.own.sources if not leaves or s.path not in leaves])


def _only_sources(files: RepositoryFiles, sources: list[SourceFile]) -> RepositoryFiles:
    return dataclasses.replace(files, own=dataclasses.replace(files.own, sources=sorted(sources, key=lambda s: s.path)))
