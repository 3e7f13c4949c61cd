"""`render` through the run entry: no change replays the last render; a change under clusters/
renders only the namespaces it touches (docs/design.md, "Only what changed").

What a cluster renders to depends on the **world** (every input outside clusters/: definitions,
providers, settings, extensions, the built-ins) and on the documents of its own namespace (the
BackupStorages and MonitoringConfigs it references, the ConfigMaps an Instance names), and
nothing else; out/ is laid out by namespace (``out/<namespace>/...``, cluster-scoped objects in
``out/_cluster/``). So a render without problems records, per clusters/ file, its digest and
the namespaces its documents belong to, and per namespace its clusters and the identities of
its objects. When the world's fingerprint is unchanged, the namespaces a change touches (those
of the changed, added and removed files, old and new, and of every file sharing a namespace
with them, to a fixed point) are rendered from the world and their files alone; every other
namespace's out/ files come from the run entry, its files neither read, parsed nor resolved.
Names and objects are then checked for repeats over the whole. Anything else (a problem, a value
that may be secret, ``--only``, a changed world, a file whose namespaces were guessed wrong)
renders the whole repository, so every diagnostic is what a full render says.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import TYPE_CHECKING

from everest_render.cache.kept import KeptFiles, KeptFilesLost
from everest_render.cache.layout import Layout, Part, Space, part_of, part_text
from everest_render.cache.snapshot import Replay, Snapshot, fingerprint, token_digest, token_digests, with_texts
from everest_render.cache.store import Store, renderer_identity
from everest_render.cache.tree import Tree, load_tree, quick_read, record_tree, save_tree, tree_key
from everest_render.emit.output import OutputPlan
from everest_render.load.files import RepositoryFiles, read_repository_files
from everest_render.load.text import SourceFile
from everest_render.results import ParsedInputs, RenderResult, RepositorySettings, ResolveResult

if TYPE_CHECKING:
    from everest_render.pipeline import Selection

# The stages (pipeline.py; load and parse for a changed file's namespaces; check) are imported
# by the functions that render: a run that replays the last render (no input changed) loads
# none of them, nor the model's classes, PyYAML or the schema library (a sixth of that run
# at 10,000 clusters).

CLUSTERS = "clusters/"
Identity = tuple[str, str, str, str]


def render_incremental(
    root: Path,
    out_dir: Path,
    only: Selection | None,
    jobs: int,
    cache: Store | None,
    *,
    replay: bool | Callable[[RenderResult], bool] = True,
    rendering: Callable[[], None] = lambda: None,
) -> RenderResult:
    """`pipeline.render_incremental` (which says what it gives)."""
    if cache is None or not cache.enabled:
        from everest_render.pipeline import read_repository, render_repository

        rendering()
        return render_repository(read_repository(root, out_dir), only, jobs, cache)
    snapshot = Snapshot(cache, renderer_identity(), root, out_dir, repr(only))
    key = tree_key(renderer_identity(), root, out_dir)
    walked = load_tree(cache, key)
    # The walk by stat (cache/tree.py): no folder changed, so only the files are asked about.
    tree = quick_read(walked, snapshot.reader) if walked is not None else None
    quick = tree  # the record's files asked about, none walked
    walk: RepositoryFiles | None = None
    if tree is None:
        walk = read_repository_files(root, out_dir, snapshot.reader)
        tree = record_tree(walk, root, out_dir, snapshot.reader)
        inputs = fingerprint(walk, token_digest) if tree is None else tree.inputs
    else:
        inputs = tree.inputs  # no file changed: the record's own, its shape not even made
    read = tree

    def shape_of() -> RepositoryFiles:
        nonlocal walk, tree, read, inputs
        if read is not None:
            if read.where_or_none() is not None:
                return read.shape
            read = None  # the record's files and shape are gone (the cache pruned): walked again
        if walk is None:
            walk = read_repository_files(root, out_dir, snapshot.reader)
            tree = record_tree(walk, root, out_dir, snapshot.reader)
            inputs = fingerprint(walk, token_digest) if tree is None else tree.inputs
        return walk

    def world_of() -> RepositoryFiles:
        """`shape_of`, the repository's own files outside clusters/ alone (or all, walked)."""
        if read is not None and read.where_or_none() is not None:
            return read.world_shape
        return shape_of()

    last = snapshot.last(lambda: _recovered(shape_of(), snapshot, inputs, jobs))
    if replay and last is not None and last[0] == inputs:
        replayed = _replayed(last[1])
        if replay is True or replay(replayed):
            _save(snapshot, tree, walked, key, cache)
            return replayed
    from everest_render.pipeline import read_repository, render_repository  # rendering: see above

    # The world's shape (a walk record's, without its fleet of clusters/ files), or the walk's:
    # a record whose files are gone is walked again first (the inputs are the walk's then).
    world = world_of()
    layout = None
    if last is not None and last[0] == inputs and last[1].world and only is None:
        # The entry's own inputs (its replay refused by the caller, who needs the catalogue):
        # nothing changed since it was made, so nothing is rendered again, and its parts (a
        # fleet's 14,000 files) are not even decoded to find so.
        result = _with_catalogue(world, last[1], snapshot, cache)
    elif last is not None and only is None and (layout := last[1].layout()) is not None:
        few = _changed_since(quick if read is quick else None, last[0], layout)
        if few is not None and quick is not None:
            result = _render_few(world, last[1], layout, few, quick.where, snapshot, inputs, jobs, cache, rendering)
        else:
            result = _render_changed(shape_of(), last[1], snapshot, inputs, jobs, cache, rendering)
    else:
        result = None
    if result is None:
        shape = shape_of()
        texts = with_texts(shape, snapshot.reader.text)
        files = texts or read_repository(root, out_dir)
        rendering()
        result = render_repository(files, only, jobs, cache)
        if not result.resolved.sensitive:
            parts = _parts(result, files) if only is None else None
            render = Replay(len(result.resolved.clusters), dict(result.plan.files), result.diagnostics)
            if parts is not None:
                render = dataclasses.replace(render, world=_world(files), parts=parts, spaces=_spaces(result))
            # Keyed by the texts rendered: the inputs' fingerprint, unless a file changed since its
            # stat (then keyed as it was read).
            snapshot.keep(inputs if texts is not None and not snapshot.reader.moved else fingerprint(files, token_digest), render)
    _save(snapshot, tree, walked, key, cache)
    return result


def _save(snapshot: Snapshot, tree: Tree | None, walked: Tree | None, key: str, cache: Store) -> None:
    snapshot.save_manifest()
    if tree is not None:
        save_tree(cache, key, tree, walked, snapshot.reader.seen_all())


def _replayed(render: Replay) -> RenderResult:
    empty = ParsedInputs((), (), (), (), (), frozenset(), (), ())
    resolved = ResolveResult(None, (), empty, render.diagnostics, RepositorySettings())
    return RenderResult(resolved, (), OutputPlan(render.files), render.diagnostics, replayed_clusters=render.clusters)


def _render_changed(
    shape: RepositoryFiles, last: Replay, snapshot: Snapshot, inputs: str, jobs: int, cache: Store, rendering: Callable[[], None]
) -> RenderResult | None:
    """The render with every namespace the changes do not touch taken from ``last``; None when
    it cannot be taken apart so (then the whole repository renders). ``rendering``: called
    before any cluster is rendered (not for ``last`` with the catalogue alone)."""
    if _world(shape) != last.world:
        return None
    own = shape.own.sources
    own_paths = list(map(_PATH, own))
    in_clusters = list(map(str.startswith, own_paths, itertools.repeat(CLUSTERS)))
    # Set operations and C loops over the fleet's files: a Python step per file of 10,000 was
    # much of a one-change run.
    sources = dict(zip(itertools.compress(own_paths, in_clusters), itertools.compress(own, in_clusters), strict=True))
    digests = dict(zip(sources, token_digests(list(map(_TEXT, sources.values()))), strict=True))
    recorded = dict(zip(last.parts.keys(), map(itemgetter(0), last.parts.values()), strict=True))
    changed = {path for path, _ in digests.items() - recorded.items()}
    removed = last.parts.keys() - sources.keys()
    # Each file's namespaces: recorded, or (changed) as recorded and as its documents now say.
    declared: dict[str, set[str]] = {}
    for path in changed:
        text = snapshot.reader.text(sources[path].text)
        if text is None:
            return None
        declared[path] = {*_recorded(last, path), *declared_namespaces(SourceFile(path, text))}
    namespaces: dict[str, Collection[str]] = dict(zip(last.parts.keys(), map(itemgetter(1), last.parts.values()), strict=True))
    namespaces.update(declared)  # every file of ``sources`` now: a new one is changed
    touched = {n for path in (*changed, *removed) for n in (*declared.get(path, ()), *_recorded(last, path))}
    # A file in a touched namespace touches every namespace it has documents in: to a fixed
    # point, each pass one C loop over the files (two passes, unless a file spans namespaces).
    paths = list(sources)
    spanned = list(map(namespaces.__getitem__, paths))
    rendered: set[str] = set()
    while True:
        found = set(itertools.compress(paths, map(operator.not_, map(touched.isdisjoint, spanned)))) - rendered
        if not found:
            break
        rendered |= found
        touched.update(itertools.chain.from_iterable(map(namespaces.__getitem__, found)))
    if not touched:
        return _with_catalogue(shape, last, snapshot, cache)
    chosen = itertools.compress(own, map(operator.or_, map(operator.not_, in_clusters), map(rendered.__contains__, own_paths)))
    done = _render_touched(shape, chosen, touched, snapshot, jobs, cache, rendering)
    if done is None:
        return None
    result, parts, spaces = done
    kept_names = list(itertools.compress(last.spaces, map(operator.not_, map(touched.__contains__, last.spaces))))
    kept_spaces = dict(zip(kept_names, map(last.spaces.__getitem__, kept_names), strict=True))
    kept = set(itertools.compress(last.files, map(operator.not_, map(touched.__contains__, _namespace_folders(last.files)))))
    every = {**kept_spaces, **spaces}
    refs = list(itertools.chain.from_iterable(map(zip, map(itertools.repeat, every), map(_CLUSTERS_OF, every.values()))))
    objects = list(itertools.chain.from_iterable(map(_IDENTITIES_OF, every.values())))
    if _repeats(refs) or _repeats(objects) or kept & result.plan.files.keys() or not isinstance(last.files, KeptFiles):
        return None
    # The files kept stay unread (their digests are known): only what out/ lacks is read.
    plan = OutputPlan(last.files.merged(result.plan.files, keep=kept))
    clusters = len(result.resolved.clusters) + sum(len(space.clusters) for space in kept_spaces.values())
    still = map(operator.and_, map(sources.__contains__, last.parts), map(operator.not_, map(rendered.__contains__, last.parts)))
    all_parts = dict(itertools.compress(last.parts.items(), still))
    render = Replay(clusters, plan.files, (), last.world, {**all_parts, **parts}, {**kept_spaces, **spaces})
    snapshot.keep(inputs, render)  # no file changed since its stat: the texts rendered are those it names
    return dataclasses.replace(result, plan=plan, replayed_clusters=clusters)


def _changed_since(tree: Tree | None, inputs: str, layout: Layout) -> list[str] | None:
    """The clusters/ files changed since the render of ``inputs`` (a run entry's, whose
    ``layout`` it is), when ``tree`` tells: it was read by the walk record of those very inputs
    (same files, same names) and only clusters/ files the render saw changed since (then the
    world is the render's). None: not known so (then every file's digest is compared)."""
    if tree is None or tree.since is None or tree.since[0] != inputs:
        return None
    changed = list(tree.since[1])
    if not all(map(str.startswith, changed, itertools.repeat(CLUSTERS))) or not all(map(layout.parts.__contains__, changed)):
        return None
    return changed


def _render_few(
    shape: RepositoryFiles,
    last: Replay,
    layout: Layout,
    changed: list[str],
    where: Mapping[str, tuple[str, str]],
    snapshot: Snapshot,
    inputs: str,
    jobs: int,
    cache: Store,
    rendering: Callable[[], None],
) -> RenderResult | None:
    """`_render_changed` when the files changed since ``last`` are known (``changed``, by
    `_changed_since`; ``where``: each file's token now; ``shape``: the read's, its clusters/
    files not needed): only the parts and spaces of the
    namespaces they touch are looked at (cache/layout.py), and the objects that can repeat one
    of another namespace. None: as `_render_changed`'s (the whole repository renders)."""
    # Each file's namespaces, recorded (one text a file: spans, a NUL between two), or (changed)
    # as recorded and as its documents now say.
    declared: dict[str, set[str]] = {}
    for path in changed:
        text = snapshot.reader.text(where[path][1])
        if text is None:
            return None
        declared[path] = {*part_of(layout.parts[path]).namespaces, *declared_namespaces(SourceFile(path, text))}
    touched = set(itertools.chain.from_iterable(declared.values()))
    if not touched:
        return _with_catalogue(shape, last, snapshot, cache)
    # A file in a touched namespace touches every namespace it has documents in: to a fixed
    # point, each pass one C loop over the fleet's spans.
    paths = list(layout.parts)
    spans = list(map(itemgetter(2), map(str.partition, layout.parts.values(), itertools.repeat("\0"))))
    apart = itertools.compress(range(len(spans)), map(operator.contains, spans, itertools.repeat("\0")))
    several = {paths[at]: set(spans[at].split("\0")) for at in apart}
    rendered: set[str] = set()
    while True:
        found = set(itertools.compress(paths, map(touched.__contains__, spans)))
        found.update(path for path, names in (*several.items(), *declared.items()) if not names.isdisjoint(touched))
        found -= rendered
        if not found:
            break
        rendered |= found
        touched.update(itertools.chain.from_iterable(declared.get(path) or part_of(layout.parts[path]).namespaces for path in found))
    chosen = [*_world_sources(shape), *(SourceFile(path, where[path][1]) for path in rendered)]
    done = _render_touched(shape, chosen, touched, snapshot, jobs, cache, rendering)
    if done is None:
        return None
    result, parts, spaces = done
    before = layout.spaces(touched)
    if before is None:
        return None  # a bucket of the layout cannot be read
    # Names repeat only within a space (each is its namespace's); an object only within a space
    # or where one is named in another namespace than its space's (``foreign``): those, with
    # the spaces they name, are all the objects the rendered ones can repeat.
    refs = [(name, cluster) for name, space in spaces.items() for cluster in space.clusters]
    objects = list(itertools.chain.from_iterable(map(_IDENTITIES_OF, spaces.values())))
    objects += [found for space, found in layout.foreign if space not in touched]
    named = layout.spaces({found[2] for found in objects} - touched)
    if named is None:
        return None
    objects += itertools.chain.from_iterable(map(_IDENTITIES_OF, named.values()))
    kept = set(itertools.compress(last.files, map(operator.not_, map(touched.__contains__, _namespace_folders(last.files)))))
    if _repeats(refs) or _repeats(objects) or kept & result.plan.files.keys() or not isinstance(last.files, KeptFiles):
        return None
    changed_layout = layout.replaced({path: part_text(part) for path, part in parts.items()}, spaces, touched)
    if changed_layout is None:
        return None
    # The files kept stay unread (their digests are known): only what out/ lacks is read.
    plan = OutputPlan(last.files.merged(result.plan.files, keep=kept))
    clusters = len(result.resolved.clusters) + last.clusters - sum(len(space.clusters) for space in before.values())
    snapshot.keep(inputs, Replay(clusters, plan.files, (), last.world, kept=lambda: changed_layout))
    return dataclasses.replace(result, plan=plan, replayed_clusters=clusters)


def _render_touched(
    shape: RepositoryFiles,
    chosen: Iterable[SourceFile],
    touched: set[str],
    snapshot: Snapshot,
    jobs: int,
    cache: Store,
    rendering: Callable[[], None],
) -> tuple[RenderResult, dict[str, Part], dict[str, Space]] | None:
    """The render of the world with the clusters/ files ``chosen`` (those of the ``touched``
    namespaces), its parts and spaces; None when it cannot stand in for those namespaces (a
    file changed since its stat, a value that may be secret, or output outside them)."""
    rest = with_texts(_only_sources(shape, chosen), snapshot.reader.text)
    if rest is None or snapshot.reader.moved:
        return None  # a file changed since its stat: the world may not be the recorded one
    from everest_render.pipeline import render_repository  # rendering: see above

    rendering()
    result = render_repository(rest, None, jobs, cache)
    parts = _parts(result, rest)
    if parts is None or result.resolved.sensitive:
        return None
    spaces = _spaces(result)
    if not all(set(part.namespaces) <= touched for part in parts.values()) or not spaces.keys() <= touched:
        return None  # a namespace guessed wrong: the render would be partial there
    if not all(namespace_folder(path) in touched for path in result.plan.files):
        return None
    return result, parts, spaces


def _with_catalogue(shape: RepositoryFiles, last: Replay, snapshot: Snapshot, cache: Store) -> RenderResult | None:
    """``last`` as it is, with the catalogue (the world resolved alone), for a caller that
    judges destructive changes: nothing under clusters/ changed (``shape``: the read's, its
    clusters/ files not needed)."""
    from everest_render.pipeline import resolve_repository  # resolving: see above

    world = with_texts(_only_sources(shape, _world_sources(shape)), snapshot.reader.text)
    resolved = resolve_repository(world, cache) if world is not None else None
    if resolved is None or resolved.catalog is None:
        return None
    resolved = dataclasses.replace(resolved, clusters=(), diagnostics=last.diagnostics)
    return RenderResult(resolved, (), OutputPlan(last.files), last.diagnostics, replayed_clusters=last.clusters)


def _recovered(shape: RepositoryFiles, snapshot: Snapshot, inputs: str, jobs: int) -> Mapping[str, bytes]:
    """The files of the render of ``shape`` made afresh, without the cache: for a run entry's
    bucket that could not be read when its files were asked for (cache/kept.py). The inputs
    must be those the run began with (``inputs``, their fingerprint), or the render would mix
    two states of the repository."""
    files = with_texts(shape, snapshot.reader.text)
    if files is None or fingerprint(files, token_digest) != inputs:
        raise KeptFilesLost("the render cache and the repository both changed during the run: run it again")
    from everest_render.pipeline import render_repository  # rendering: see above

    return render_repository(files, None, jobs, None).plan.files


_PATH, _TEXT = attrgetter("path"), attrgetter("text")
_CLUSTERS_OF, _IDENTITIES_OF = attrgetter("clusters"), attrgetter("identities")


def namespace_folder(path: str) -> str:
    """The out/ folder (a namespace's) an out/ file is in."""
    return path.partition("/")[0]


def _namespace_folders(paths: Iterable[str]) -> Iterator[str]:
    """`namespace_folder` of each, in C (a fleet's out/ has 10,000 files)."""
    return map(itemgetter(0), map(str.partition, paths, itertools.repeat("/")))


def _recorded(last: Replay, path: str) -> tuple[str, ...]:
    part = last.parts.get(path)
    return part.namespaces if part is not None else ()


def declared_namespaces(source: SourceFile) -> set[str]:
    """The namespaces a file's documents name, a Namespace its own (a guess checked after
    rendering: parse decides); the cluster-scoped folder for a document that names none."""
    from everest_render.load.documents import parse_yaml  # a file changed: see above
    from everest_render.parse.inputs import CLUSTER_SCOPED_FOLDER

    documents, _ = parse_yaml(source)
    found = set()
    for document in documents:
        data = document.data
        metadata = data.get("metadata") if isinstance(data, dict) else None
        metadata = metadata if isinstance(metadata, dict) else {}
        namespace = metadata.get("name") if isinstance(data, dict) and data.get("kind") == "Namespace" else metadata.get("namespace")
        found.add(namespace if isinstance(namespace, str) and namespace else CLUSTER_SCOPED_FOLDER)
    return found


def _repeats(items: Sequence[tuple[str, ...]]) -> bool:
    return len(set(items)) != len(items)


def _parts(result: RenderResult, files: RepositoryFiles) -> dict[str, Part] | None:
    """Each clusters/ file's digest and namespaces, or None when the render cannot be taken
    apart: a problem, a value that may be secret, a cluster not resolved, a definition or
    provider under clusters/. Extensions in effect take nothing away: what one renders for a
    cluster depends on the world (its files, the settings) and that cluster, its shared objects
    on its namespace's clusters, and every object is of its cluster's namespace (postprocess)."""
    resolved = result.resolved
    own = resolved.inputs
    if result.diagnostics or resolved.sensitive or len(resolved.clusters) != len(own.clusters):
        return None
    catalogue = [d.document.source.path for d in own.definitions] + [p.document.source.path for p in own.providers]
    if any(path.startswith(CLUSTERS) for path in catalogue):
        return None
    found: dict[str, set[str]] = defaultdict(set)
    for path, namespace in (
        *((c.document.source.path, c.ref.namespace) for c in own.clusters),
        *((b.document.source.path, b.ref.namespace) for b in own.backup_storages),
        *((m.document.source.path, m.ref.namespace) for m in own.monitoring_configs),
        *((p.document.source.path, p.namespace) for p in own.passthrough),
    ):
        found[path].add(namespace)
    return {
        s.path: Part(token_digest(s.text), tuple(sorted(found.get(s.path, ())))) for s in files.own.sources if s.path.startswith(CLUSTERS)
    }


def _spaces(result: RenderResult) -> dict[str, Space]:
    """Each namespace's clusters and object identities (pass-through objects included)."""
    from everest_render.check.core import identity  # after a render: see above

    clusters: dict[str, list[str]] = defaultdict(list)
    identities: dict[str, list[Identity]] = defaultdict(list)
    for cluster in result.resolved.clusters:
        clusters[cluster.ref.namespace].append(cluster.ref.name)
    for rendered in result.emitted:
        identities[rendered.cluster.namespace].append(rendered.identity)
    for item in result.resolved.inputs.passthrough:
        if isinstance(item.document.data, Mapping):
            identities[item.namespace].append(identity(item.document.data))
    return {name: Space(tuple(clusters[name]), tuple(identities[name])) for name in clusters.keys() | identities.keys()}


def _world(files: RepositoryFiles) -> str:
    """The fingerprint of every input outside clusters/ (problems reading clusters/ included)."""
    return fingerprint(_only_sources(files, _world_sources(files)), token_digest)


def _world_sources(files: RepositoryFiles) -> list[SourceFile]:
    """The repository's own files outside clusters/ (C loops over a fleet's 10,000 there)."""
    own = files.own.sources
    return list(itertools.compress(own, map(operator.not_, map(str.startswith, map(_PATH, own), itertools.repeat(CLUSTERS)))))


def _only_sources(files: RepositoryFiles, sources: Iterable[SourceFile]) -> RepositoryFiles:
    return dataclasses.replace(files, own=dataclasses.replace(files.own, sources=sorted(sources, key=lambda s: s.path)))
