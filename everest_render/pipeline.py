"""The compiler, one function per use; each function's body is the list of stages.

    files = read_repository(Path("."))      # read: the only stage that reads files
    result = render_repository(files)       # load, parse, resolve, render, check, emit (pure)
    if not result.failed:
        write_output(result.plan, Path("out"))

Every command goes through these functions: ``render``, ``validate`` and ``diff`` (and the
git revision it compares with) through `render_repository`, ``explain`` and ``providers``
through `resolve_repository`, the KRM function through `render_repository` over its
ResourceList. Each stage returns new frozen values and its diagnostics; nothing is spliced.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from everest_render.check.core import duplicate_problems, identity
from everest_render.check.secrets import redact, sensitive_in, sensitive_values, url_credential_problems
from everest_render.diagnostics import Diagnostic, Severity, has_errors, sorted_diagnostics
from everest_render.emit.order import object_sort_key
from everest_render.emit.output import OutputPlan, cluster_files, extension_files, passthrough_files, plan_from_files, written_text
from everest_render.extend.catalog import extensions_in_effect
from everest_render.extend.manifest import ParsedExtension, parse_extension, parse_extensions
from everest_render.extend.select import select_extensions
from everest_render.load.documents import Document, load_documents, parse_yaml
from everest_render.load.files import RepositoryFiles, SourceSet, read_repository_files
from everest_render.load.text import SourceFile
from everest_render.model import (
    DatabaseCluster,
    Definition,
    EmittedObject,
    ObjectRef,
    PassthroughObject,
    Provider,
    RenderedObject,
    ResolvedCluster,
    SharedObject,
)
from everest_render.parallel import start_slices
from everest_render.parse.inputs import parse_documents
from everest_render.parse.settings import parse_settings
from everest_render.resolve.catalog import build_catalog
from everest_render.resolve.cluster import resolve_clusters
from everest_render.resolve.references import index_references
from everest_render.resolve.suppliers import SHARED, ExtensionSupply, double_supply_problems, extension_supplies
from everest_render.results import ParsedInputs, RenderResult, ResolveResult

if TYPE_CHECKING:
    from everest_render.cache.entries import KeyMaker
    from everest_render.cache.store import Store
    from everest_render.check.crd import SchemaBook
    from everest_render.extend.render import ExtensionRenderer
    from everest_render.render.context import TemplateContext
    from everest_render.render.templates import ProviderRenderer

# The render stage's modules (Jinja, the CRD schemas and their rules) are imported by the
# functions that render: a run whose clusters all come from the cache does not load them (the
# Argo CD plugin's start-up, issue 12).

EMPTY_RENDER = "no DatabaseCluster found: refusing an empty render (it would prune every database)"


def read_repository(root: Path, out_dir: Path | None = None) -> RepositoryFiles:
    """Read the built-ins and the repository at ``root`` (the one stage that touches disk)."""
    return read_repository_files(root, out_dir)


@dataclass(frozen=True)
class Selection:
    """Which clusters to render: ``NAMESPACE`` (all of it, with its pass-through objects) or
    ``NAMESPACE/NAME`` entries, e.g. one Argo CD application's share of a monorepo."""

    entries: tuple[str, ...] = ()
    # Repository-relative folders: only what is written in files under them (an Argo CD
    # application whose path is one namespace folder of a monorepo). Both must hold when given.
    folders: tuple[str, ...] = ()

    def selects(self, namespace: str, name: str | None, file: str) -> bool:
        qualified = f"{namespace}/{name}" if name is not None else None
        by_entry = not self.entries or any(entry in (namespace, qualified) for entry in self.entries)
        by_folder = not self.folders or any(file.startswith(folder + "/") for folder in self.folders)
        return by_entry and by_folder


@dataclass(frozen=True)
class RenderedSlice:
    """Some clusters rendered, checked and emitted: the unit `parallel.start_slices` fans out.
    ``emitted``: each object but the extensions' shared ones, its bytes in ``files``;
    ``supplies``: the Secrets those of its clusters' extensions supply (checked across
    clusters); ``shared``: the extensions' shared objects, as text (kept once for the namespace,
    and their files written, by `render_resolved`); ``objects``: each object whole, or once
    `lean`, none."""

    objects: tuple[RenderedObject, ...]
    files: dict[str, bytes]
    diagnostics: tuple[Diagnostic, ...]
    emitted: tuple[EmittedObject, ...]
    supplies: tuple[ExtensionSupply, ...] = ()
    shared: tuple[SharedObject, ...] = ()

    @classmethod
    def of(
        cls,
        objects: Sequence[RenderedObject],
        files: dict[str, bytes],
        diagnostics: Sequence[Diagnostic],
        texts: dict[str, str] | None = None,
    ) -> RenderedSlice:
        """``texts``: the shared objects' texts of the slices before, one copy of each (`shared_object`)."""
        texts = texts if texts is not None else {}
        own = [o for o in objects if not o.shared]
        shared = tuple(shared_object(o, texts) for o in objects if o.shared)
        supplies = extension_supplies(o for o in own if o.extension is not None)
        return cls(tuple(objects), files, tuple(diagnostics), emitted_objects(own), supplies, shared)

    def lean(self) -> RenderedSlice:
        """The slice without the objects its files, ``emitted``, ``supplies`` and ``shared`` already say."""
        # Built directly: `dataclasses.replace` looks every field up again, once per cluster.
        return RenderedSlice((), self.files, self.diagnostics, self.emitted, self.supplies, self.shared)


def shared_object(rendered: RenderedObject, texts: dict[str, str]) -> SharedObject:
    """What is kept of an extension's shared object to the end: its text (the object forgets
    it, emit/output.py `written_text`), one copy of each text in ``texts`` (a namespace's
    clusters mostly render the same ones), its place in its namespace's file, and its supply."""
    text = written_text(rendered)
    text = texts.setdefault(text, text)
    order = object_sort_key(rendered.cluster.namespace, "", rendered.obj)
    supplies = extension_supplies((rendered,))
    return SharedObject(identity(rendered.obj), rendered.cluster, sys.intern(rendered.template), rendered.extension, text, order, supplies)


def emitted_objects(objects: Iterable[RenderedObject]) -> tuple[EmittedObject, ...]:
    # A template's name is made for each object it renders (render/templates.py): kept to the
    # end, one copy of each (5 MB at 10,000 clusters with the built-in extensions).
    return tuple(EmittedObject(identity(o.obj), o.cluster, sys.intern(o.template), o.shared) for o in objects)


# Given the repository's parsed inputs, what gives a cluster resolved before from the very same
# inputs (or None): `resolve_repository`'s ``known``.
KnownClusters = Callable[[ParsedInputs], Callable[[DatabaseCluster], ResolvedCluster | None] | None]


def resolve_repository(
    files: RepositoryFiles, cache: Store | None = None, loaded: LoadedFiles | None = None, known: KnownClusters | None = None
) -> ResolveResult:
    """load -> parse -> resolve, for the built-ins and the repository (and its settings file);
    files loaded before are taken from ``cache``, or from ``loaded``, which this run's resolves
    share and fill; clusters resolved before, from ``known`` (the result depends on none of them)."""
    settings, settings_problems = parse_settings(files.settings)
    builtin_loaded, builtin, builtin_extensions = parse_builtins(files, cache)
    own_loaded, own, sensitive = _load_and_parse(files.own, builtin.providers, builtin.definitions, cache, loaded)
    catalog, catalog_problems = build_catalog(
        builtin.definitions, builtin.providers, own.definitions, own.providers, builtin.broken | own.broken, settings
    )
    asset_problems = _provider_problems(own.providers)
    references, reference_problems = index_references(own.backup_storages, own.monitoring_configs)
    clusters, cluster_problems = resolve_clusters(own.clusters, catalog, references, settings, known(own) if known is not None else None)
    extensions, extension_problems = parse_extensions(files.extensions, builtin_extensions)
    broken = {f.folder.rsplit("/", 1)[-1] for f in files.extensions} - {e.name for e in extensions}
    applied, choice_problems = extensions_in_effect(extensions, settings, catalog.providers, broken)
    clusters, selection_problems = select_extensions(clusters, applied, sorted({e.name for e in extensions} | broken))
    # Warnings (a file that is not read, a value that is ignored) do not make an empty render one.
    own_errors = [d for d in (*own_loaded, *own.diagnostics) if d.severity is Severity.ERROR]
    nothing_to_render = not own.clusters and not own_errors
    diagnostics = [
        *files.settings_unreadable,
        *settings_problems,
        *builtin_loaded,
        *builtin.diagnostics,
        *own_loaded,
        *own.diagnostics,
        *catalog_problems,
        *asset_problems,
        *reference_problems,
        *cluster_problems,
        *files.extensions_unreadable,
        *extension_problems,
        *choice_problems,
        *selection_problems,
        *([Diagnostic("clusters", 1, 1, EMPTY_RENDER)] if nothing_to_render else []),
    ]
    # No message may echo what may be secret, whichever stage wrote it.
    masked = redact(sorted_diagnostics(diagnostics), sensitive)
    return ResolveResult(catalog, tuple(clusters), own, tuple(masked), settings, sensitive, applied)


def render_repository(
    files: RepositoryFiles, only: Selection | None = None, jobs: int = 1, cache: Store | None = None, *, keep_objects: bool = False
) -> RenderResult:
    """Render every cluster, or those ``only`` selects (the whole repository is still
    validated), on up to ``jobs`` processes, taking what ``cache`` holds of earlier renders
    (the result depends on neither). ``keep_objects``: the result holds every object whole;
    else each is dropped once emitted, but for what `EmittedObject` keeps of it."""
    return render_resolved(resolve_repository(files, cache), only, jobs, cache, keep_objects=keep_objects)


# What renders a resolved repository's selected clusters into their slices, one a cluster, in
# order (`render_resolved`'s ``renderer``: the diff against a revision serves both sides from one).
SliceRenderer = Callable[[Sequence[ResolvedCluster]], Sequence[RenderedSlice]]


def render_resolved(
    resolved: ResolveResult,
    only: Selection | None = None,
    jobs: int = 1,
    cache: Store | None = None,
    *,
    keep_objects: bool = False,
    renderer: SliceRenderer | None = None,
) -> RenderResult:
    """`render_repository` from its resolved repository on. ``renderer``: what renders the
    selected clusters, in place of rendering each here (on ``jobs`` processes, through ``cache``)."""
    if resolved.failed:
        return RenderResult(resolved, (), OutputPlan({}), resolved.diagnostics)
    clusters = [c for c in resolved.clusters if only is None or only.selects(c.ref.namespace, c.ref.name, c.cluster.document.source.path)]
    passthrough = _selected_passthrough(resolved, only)
    if renderer is not None:
        slices = list(renderer(clusters))
    elif cache is not None and cache.enabled:
        slices = _render_cached(clusters, jobs, cache, resolved.sensitive, keep_objects)
    else:
        slices = _rendered_on(clusters, jobs, keep_objects)
    if only is not None:
        # A namespace's shared extension objects are selected with it (or NAMESPACE/_shared),
        # whichever of its clusters the selection renders: render them for the others too.
        chosen = {cluster.ref for cluster in clusters}
        others = [c for c in resolved.clusters if c.ref not in chosen and c.extensions and _selects_shared(only, c)]
        slices = [*slices, render_slice(others, shared_only=True)] if others else slices
    by_ref = {cluster.ref: cluster for cluster in resolved.clusters}
    shared, shared_problems = _shared_once([kept for part in slices for kept in part.shared])
    shared = [kept for kept in shared if only is None or _selects_shared(only, by_ref[kept.cluster])]
    objects = _whole(slices, shared) if keep_objects else ()
    emitted = (*(e for part in slices for e in part.emitted), *(EmittedObject(s.identity, s.cluster, s.template, True) for s in shared))
    passing = resolved.inputs.passthrough
    supplies = (*(s for part in slices for s in part.supplies), *(s for kept in shared for s in kept.supplies))
    duplicated = [*duplicate_problems(emitted, by_ref, passing), *double_supply_problems(supplies, passing)]
    written = {path: text for part in slices for path, text in part.files.items()}
    plan = plan_from_files({**written, **extension_files(shared), **passthrough_files(passthrough)})
    found = [*(d for part in slices for d in part.diagnostics), *shared_problems, *duplicated]
    diagnostics = (*resolved.diagnostics, *sorted_diagnostics(redact(found, resolved.sensitive)))
    diagnostics = tuple(sorted_diagnostics(diagnostics))
    if has_errors(diagnostics):
        return RenderResult(resolved, (), OutputPlan({}), diagnostics)
    return RenderResult(resolved, objects, plan, diagnostics, emitted=emitted)


def _whole(slices: Sequence[RenderedSlice], shared: Sequence[SharedObject]) -> tuple[RenderedObject, ...]:
    """Every object of ``slices`` whole (none was `lean`), of their shared ones the ``shared`` kept."""
    whole = {id(kept): o for part in slices for kept, o in zip(part.shared, (o for o in part.objects if o.shared), strict=True)}
    return (*(o for part in slices for o in part.objects if not o.shared), *(whole[id(kept)] for kept in shared))


def render_incremental(
    root: Path,
    out_dir: Path,
    only: Selection | None = None,
    jobs: int = 1,
    cache: Store | None = None,
    *,
    replay: bool | Callable[[RenderResult], bool] = True,
    rendering: Callable[[], None] = lambda: None,
) -> RenderResult:
    """read -> `render_repository`, for ``render``: with ``cache``, the inputs are first known by
    their stat and recorded digests (cache/snapshot.py), and when none changed since the last
    render of this repository and out/, that render's plan and diagnostics are the result (a
    replay: no file is read, parsed or resolved); when only cluster files changed, only they
    are (incremental.py). ``replay``: False when the caller needs the catalogue, which a whole
    replay does not hold; or a test of the replayed result, whose False sends the render on
    from the files already read, as with False. The plan and diagnostics are the same either way.
    ``rendering``: called before any cluster is rendered (a caller's lock let go), so not when a
    replay refused by its test goes on with its own plan, only the catalogue resolved."""
    from everest_render import incremental  # with or without the cache

    return incremental.render_incremental(root, out_dir, only, jobs, cache, replay=replay, rendering=rendering)


def _provider_problems(providers: Sequence[Provider]) -> list[Diagnostic]:
    """The repository's own providers' assets checked (check/provider_assets.py), if it has any."""
    if not providers:
        return []
    from everest_render.check.provider_assets import provider_problems

    return provider_problems(providers)


def _render_extensions(
    clusters: Sequence[ResolvedCluster], shared_only: bool, compiled: Compiled, contexts: dict[ObjectRef, TemplateContext]
) -> tuple[list[RenderedObject], list[Diagnostic]]:
    """extend/render.py's `render_extensions`, when a cluster applies an extension at all
    (``contexts``: the template contexts the providers' render kept for them)."""
    if not any(cluster.extensions for cluster in clusters):
        return [], []
    from everest_render.extend.render import render_extensions

    return render_extensions(
        clusters, shared_only=shared_only, renderers=compiled.extensions, secrets_of=compiled.renderers, contexts=contexts
    )


def _overwrite_problems(
    objects: list[RenderedObject], by_ref: dict[ObjectRef, ResolvedCluster], added: list[RenderedObject]
) -> tuple[list[RenderedObject], list[Diagnostic]]:
    """extend/render.py's `overwrite_problems`, when extensions ``added`` objects at all (only
    theirs can overwrite another's)."""
    if not added:
        return objects, []
    from everest_render.extend.render import overwrite_problems

    return overwrite_problems(objects, by_ref)


def _shared_once(objects: Sequence[SharedObject]) -> tuple[list[SharedObject], list[Diagnostic]]:
    """extend/render.py's `shared_once`, when there are shared objects at all."""
    if not objects:
        return [], []
    from everest_render.extend.render import shared_once

    return shared_once(objects)


def _selected_passthrough(resolved: ResolveResult, only: Selection | None) -> list[PassthroughObject]:
    """The pass-through objects ``only`` selects. A ``NAMESPACE/NAME`` entry takes the objects
    that cluster owns, ``NAMESPACE/_shared`` the namespace's shared ones (resolve/suppliers.py)."""
    items = resolved.inputs.passthrough
    if only is None:
        return list(items)
    owner: dict[int, str] = {}
    if any("/" in entry for entry in only.entries):
        from everest_render.resolve.suppliers import owners

        owner = owners(resolved.clusters, items)
    return [p for p in items if only.selects(p.namespace, owner.get(id(p)), p.document.source.path)]


def _selects_shared(only: Selection, cluster: ResolvedCluster) -> bool:
    return only.selects(cluster.ref.namespace, SHARED, cluster.cluster.document.source.path)


def render_slice(
    clusters: Sequence[ResolvedCluster],
    compiled: Compiled | None = None,
    book: SchemaBook | None = None,
    shared_only: bool = False,
) -> RenderedSlice:
    """render -> post-process -> check -> emit, for some resolved clusters: their providers'
    objects, then their extensions' (``compiled`` and ``book``: compiled templates and schemas
    to reuse, filled on first use; ``shared_only``: only the extensions' shared objects)."""
    from everest_render.check.core import rendered_problems
    from everest_render.check.crd import check_objects
    from everest_render.render.postprocess import postprocess
    from everest_render.render.templates import render_clusters

    compiled = compiled if compiled is not None else Compiled()
    by_ref = {cluster.ref: cluster for cluster in clusters}
    contexts: dict[ObjectRef, TemplateContext] = {}  # made by the providers' render, read by the extensions'
    rendered, render_problems = render_clusters(clusters, compiled.renderers, contexts) if not shared_only else ([], [])
    added, extension_problems = _render_extensions(clusters, shared_only, compiled, contexts)
    objects, post_problems = postprocess([*rendered, *added], by_ref)
    objects, overwrites = _overwrite_problems(objects, by_ref, added)
    check_problems = [*rendered_problems(objects, by_ref), *check_objects(objects, by_ref, book)]
    files = cluster_files(objects, {ref: cluster.provider.kind_order for ref, cluster in by_ref.items()})
    problems: Sequence[Diagnostic] = (*render_problems, *extension_problems, *post_problems, *overwrites, *check_problems)
    if problems:
        # A template may write a credential too: its values are masked like the inputs' are
        # (looked for only when there is a message to mask: it walks every rendered value).
        problems = redact(problems, sensitive_in(o.obj for o in objects))
    return RenderedSlice.of(objects, files, problems, compiled.texts)


def _rendered_on(clusters: Sequence[ResolvedCluster], jobs: int, keep_objects: bool) -> list[RenderedSlice]:
    """`render_each` of ``clusters`` on up to ``jobs`` processes: in `parallel.SLICES_PER_JOB`
    even slices a job, each handed to the next free worker, which keeps what it compiled across
    its slices (`Compiled`, copied empty into each). Each slice's results come back alone: in
    one half a fleet a worker, the parent held a half's pickled results beside what it had
    unpickled (10,000 clusters with the built-in extensions: 292 MB at most, 262 after)."""

    def evenly(count: int) -> list[int]:
        return [len(clusters) * index // count for index in range(1, count)]

    compiled = Compiled()
    if jobs > 1:
        from everest_render.check.crd import NARROW_UP_TO, SchemaBook

        if len(clusters) > NARROW_UP_TO:
            compiled.book = SchemaBook()  # the whole schemas for all of them, compiled by each worker once
    rendering = start_slices(partial(render_each, keep_objects=keep_objects, compiled=compiled), clusters, jobs, cuts=evenly)
    return [part for parts in rendering() for part in parts]


def render_each(clusters: Sequence[ResolvedCluster], keep_objects: bool = True, compiled: Compiled | None = None) -> list[RenderedSlice]:
    """`render_slice` of each cluster alone (what the cache keeps), templates compiled once
    (or kept in ``compiled``); without ``keep_objects``, each `lean` once rendered, so only one
    cluster's objects are ever held at once."""
    return [part if keep_objects else part.lean() for part in rendered_each(clusters, compiled)]


class Compiled:
    """What rendering compiles on first use (each provider's and extension's templates, the
    whole schemas) and keys once (each shared part's digest), kept across the calls of one
    `start_keyed_rendering`, whose slices a worker renders one after the other. By the id of a
    provider, extension or part: it lives no longer than those calls' clusters, which hold them."""

    def __init__(self) -> None:
        self.renderers: dict[int, ProviderRenderer] = {}
        self.extensions: dict[int, ExtensionRenderer] = {}
        self.book: SchemaBook | None = None
        self.maker: KeyMaker | None = None
        self.texts: dict[str, str] = {}  # the shared objects' texts (`shared_object`)


def rendered_each(clusters: Sequence[ResolvedCluster], compiled: Compiled | None = None) -> Iterator[RenderedSlice]:
    """`render_slice` of each cluster alone, one after the other, as `render_each` does
    (with what ``compiled`` holds of earlier calls, and adding to it)."""
    if not clusters:
        return  # all from the cache: nothing of the render stage is even imported
    from everest_render.check.crd import NARROW_UP_TO, SchemaBook
    from everest_render.render import postprocess, templates  # noqa: F401  (imported before the freeze, below)

    compiled = compiled if compiled is not None else Compiled()
    # A few clusters: each is checked against the schemas narrowed to its own objects (a
    # one-cluster Argo CD refresh compiles a few KB, not PSMDB's 400); many: the whole
    # schemas, compiled once for all of them (check/crd.py), and for the few of a later call
    # with the same ``compiled`` (one slice of many: `_rendered_on`, `start_keyed_rendering`).
    if len(clusters) > NARROW_UP_TO and compiled.book is None:
        compiled.book = SchemaBook()
    book = compiled.book
    with _template_cycles_collected():
        for index, cluster in enumerate(clusters, 1):
            yield render_slice([cluster], compiled, book)
            if index % COLLECT_EVERY == 0:
                gc.collect(0)


# Jinja leaves reference cycles behind each render (an imported template's macros and their
# context: ~3 KB a cluster), which only the cyclic collector frees, and the commands turn it
# off (commands/cli.py). So render_each collects them itself, every few clusters, with what
# existed before out of the collector's sight (gc.freeze): each collection walks only what the
# last few clusters left, not the resolved fleet. The render stage's modules (Jinja's among them)
# are imported before that freeze: they live as long as the process, and a one-cluster run's
# only collection would otherwise walk every object they made.
COLLECT_EVERY = 8


@contextlib.contextmanager
def _template_cycles_collected() -> Iterator[None]:
    frozen = gc.get_freeze_count() == 0  # a caller's own freeze stays as it is
    if frozen:
        gc.freeze()
    try:
        yield
    finally:
        gc.collect(0)
        if frozen:
            gc.unfreeze()


def _render_cached(
    clusters: Sequence[ResolvedCluster], jobs: int, cache: Store, sensitive: frozenset[str], keep_objects: bool
) -> list[RenderedSlice]:
    """Each cluster's slice, through ``cache``, on up to ``jobs`` processes (each keys, looks
    up, renders and stores its own share of the clusters)."""
    return [part for part, _ in start_keyed_rendering(clusters, jobs, cache, sensitive, keep_objects=keep_objects)()]


def start_keyed_rendering(
    clusters: Sequence[ResolvedCluster],
    jobs: int,
    cache: Store | None,
    sensitive: frozenset[str],
    *,
    keys: Sequence[str | None] | None = None,
    keep_objects: bool = False,
) -> Callable[[], list[tuple[RenderedSlice, str | None]]]:
    """Each cluster's slice, as `render_resolved` renders them through ``cache``, with its
    cluster's cache key (None when it has none), begun on up to ``jobs`` processes
    (`parallel.start_slices`); the function returned waits for them. Keys are
    ``keys`` when the caller has them, else each worker keys its share of the clusters."""
    keyed = list(zip(clusters, keys if keys is not None else [_UNKEYED] * len(clusters), strict=True))
    cuts = partial(_group_ends, [cluster.cluster.document.source.path for cluster in clusters])
    pending = start_slices(partial(_keyed_slices, Compiled(), cache, sensitive, keep_objects), keyed, jobs, cuts=cuts)

    def wait() -> list[tuple[RenderedSlice, str | None]]:
        results = pending()
        if cache is not None:
            # A worker that could not write turned its copy of the store off: the run says so once.
            cache.warning = cache.warning or next((warning for _, warning in results if warning), None)
        return [part for parts, _ in results for part in parts]

    return wait


_UNKEYED = "unkeyed"  # stands for a key not computed yet (a key is hex, or None when there is none)


def _group_ends(paths: Sequence[str], count: int) -> list[int]:
    """Where ``count`` slices of clusters of these files would start, each evenly placed start
    moved on to the next end of a group of neighbours (cache/entries.py `neighbours`): each
    slice then stores and looks up the very groups one slice of them all would, whatever the
    number of slices and CPUs."""
    from everest_render.cache.entries import neighbours

    ends = [group.stop for group in neighbours(paths)]
    starts = []
    for wanted in (len(paths) * index // count for index in range(1, count)):
        at = bisect.bisect_left(ends, wanted)
        if at < len(ends):
            starts.append(ends[at])
    return starts


def _keyed_slices(
    compiled: Compiled,
    cache: Store | None,
    sensitive: frozenset[str],
    keep_objects: bool,
    keyed: Sequence[tuple[ResolvedCluster, str | None]],
) -> tuple[list[tuple[RenderedSlice, str | None]], str | None]:
    """Each cluster's slice and key: from ``cache`` when its key is there, else rendered (and
    stored, with a cache). A slice whose diagnostics would be masked (they hold a value that
    may be secret) is not stored: no secret is written, and masking stays exactly what a run
    without cache does."""
    from everest_render.cache.entries import KeyMaker, cluster_group_key, decode_entry, decode_group, encode_entry, encode_group, neighbours
    from everest_render.cache.store import renderer_identity

    if compiled.maker is None:
        compiled.maker = KeyMaker(renderer_identity())
    maker = compiled.maker
    clusters = [cluster for cluster, _ in keyed]
    keys = [maker.cluster_key(cluster) if known == _UNKEYED else known for cluster, known in keyed]
    if cache is None or not cache.enabled:
        return list(zip(render_each(clusters, keep_objects, compiled), keys, strict=True)), None
    # Stored by groups of clusters of neighbouring files (cache/entries.py); a cluster without
    # a key is in none, and rendered every time.
    keyed_at = [index for index, key in enumerate(keys) if key is not None]
    groups = [[keyed_at[i] for i in group] for group in neighbours([clusters[i].cluster.document.source.path for i in keyed_at])]
    found: dict[int, RenderedSlice] = {}
    missing = [index for index, key in enumerate(keys) if key is None]
    unsaved: dict[int, tuple[str, list[int]]] = {}  # each group not found, by its last cluster
    for group in groups:
        group_key = cluster_group_key([keys[index] or "" for index in group])
        payload = cache.load(group_key)
        held = decode_group(payload, len(group)) if payload is not None else None
        if held is None:
            missing += group
            unsaved[group[-1]] = (group_key, group)
            continue
        for index, kept in zip(group, held, strict=True):
            entry = decode_entry(kept, clusters[index].ref) if kept is not None else None
            if entry is None:
                missing.append(index)
                continue
            part = RenderedSlice.of(*entry)
            found[index] = part if keep_objects else part.lean()
    missing.sort()
    rendered = rendered_each([clusters[index] for index in missing], compiled)
    stored: dict[int, bytes | None] = {}
    for index, part in zip(missing, rendered, strict=True):
        key = keys[index]
        if key is not None and redact(part.diagnostics, sensitive) == list(part.diagnostics):
            stored[index] = encode_entry(part.objects, part.files, part.diagnostics)
        found[index] = part if keep_objects else part.lean()
        if index in unsaved:  # the group's last cluster: stored now, its payloads let go
            group_key, group = unsaved.pop(index)
            members = [stored.pop(member, None) for member in group]
            if any(member is not None for member in members):
                cache.save(group_key, encode_group(members))
    return [(found[index], keys[index]) for index in range(len(clusters))], cache.warning


def parse_builtins(
    files: RepositoryFiles, cache: Store | None = None, *, prepared: bool = True
) -> tuple[list[Diagnostic], ParsedInputs, dict[str, ParsedExtension]]:
    """load -> parse for the built-ins: their problems, definitions and providers, and each
    built-in extension folder parsed, by folder. Taken from what the build prepared
    (prepared_builtins.py) when it was made from these very files by this very code."""
    from everest_render import prepared_builtins

    folders = tuple(folder for folder in files.extensions if folder.builtin)
    inputs = (files.builtin, folders)
    if prepared and files.builtin.sources:
        found = prepared_builtins.load(inputs)
        if found is not None:
            return found  # type: ignore[no-any-return]
    loaded, parsed, _ = _load_and_parse(files.builtin, (), cache=cache)
    return loaded, parsed, {folder.folder: parse_extension(folder) for folder in folders}


def _load_and_parse(
    source_set: SourceSet,
    providers: Sequence[Provider],
    definitions: Sequence[Definition] = (),
    cache: Store | None = None,
    loaded: LoadedFiles | None = None,
) -> tuple[list[Diagnostic], ParsedInputs, frozenset[str]]:
    """load -> parse for one root (``providers``: those of the roots parsed before); the files
    it could not read or load come first; and what its documents hold that may be secret."""
    if loaded is None:
        documents, load_problems, sensitive = _load(source_set.sources, cache)
    else:
        documents, load_problems, sensitive = loaded.load(source_set.sources, cache)
    parsed = parse_documents(documents, source_set.assets, builtin=source_set.builtin, providers=providers, definitions=definitions)
    return [*source_set.unreadable, *load_problems], parsed, sensitive


class LoadedFiles:
    """Each file's documents, once loaded in this run, for the next resolve of the same text
    (the diff resolves a revision that shares most files with the working tree). Only a file
    that loaded without a problem and holds nothing that may be secret is kept, as the cache
    keeps it: its documents are then all there is to say about it. Documents are frozen, so
    both resolves may hold the same ones."""

    def __init__(self) -> None:
        self._documents: dict[SourceFile, tuple[Document, ...]] = {}

    def load(self, sources: Sequence[SourceFile], cache: Store | None) -> tuple[list[Document], list[Diagnostic], frozenset[str]]:
        """`_load`, the files kept here taken as they are, the others loaded and kept."""
        kept = [self._documents.get(source) for source in sources]
        fresh = [source for source, documents in zip(sources, kept, strict=True) if documents is None]
        documents, problems, sensitive = _load(fresh, cache)
        by_source: dict[int, list[Document]] = {id(source): [] for source in fresh}
        if not all(id(document.source) in by_source for document in documents):
            return _load(sources, cache)  # a document not of the file it came from: nothing is kept
        for document in documents:
            by_source[id(document.source)].append(document)
        named = {problem.file for problem in problems}
        for source in fresh:
            own = by_source[id(source)]
            if source.path not in named and not (sensitive and sensitive_values(own)):
                self._documents[source] = tuple(own)
        # A kept file may hold no document (an empty file): its empty tuple is still its documents.
        every = [
            document
            for source, held in zip(sources, kept, strict=True)
            for document in (held if held is not None else by_source[id(source)])
        ]
        return every, problems, sensitive


def _load(sources: Sequence[SourceFile], cache: Store | None) -> tuple[list[Document], list[Diagnostic], frozenset[str]]:
    """Every file's documents, its load problems (URL credentials included), and what its
    documents hold that may be secret; through ``cache``, which keeps only files that hold
    nothing secret and loaded without a problem (no secret is ever written to it)."""
    if cache is None or not cache.enabled:
        every, loaded_problems = load_documents(list(sources))
        return every, [*loaded_problems, *url_credential_problems(every)], sensitive_values(every)
    from everest_render.cache.entries import decode_group, decode_loaded, encode_group, encode_loaded, loaded_group_key, neighbours
    from everest_render.cache.store import renderer_identity

    identity = renderer_identity()
    documents: list[Document] = []
    problems: list[Diagnostic] = []
    sensitive: set[str] = set()
    # Stored by groups of neighbouring files (cache/entries.py), in order: the documents and
    # problems come out file by file, as without the cache.
    for group in neighbours([source.path for source in sources]):
        members = [sources[index] for index in group]
        key = loaded_group_key(identity, members)
        payload = cache.load(key)
        held = decode_group(payload, len(members)) if payload is not None else None
        stored: list[bytes | None] = []
        for position, source in enumerate(members):
            kept = held[position] if held is not None else None
            loaded = decode_loaded(kept, source) if kept is not None else None
            if loaded is not None:
                documents.extend(loaded)
                continue
            found, found_problems = parse_yaml(source)
            found_problems += url_credential_problems(found)
            found_sensitive = sensitive_values(found)
            documents.extend(found)
            problems.extend(found_problems)
            sensitive |= found_sensitive
            stored.append(encode_loaded(found) if not found_problems and not found_sensitive else None)
        if held is None and any(member is not None for member in stored):
            cache.save(key, encode_group(stored))
    return documents, problems, frozenset(sensitive)
