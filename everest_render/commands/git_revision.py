"""Read the repository as it was at a git revision (for `diff --against`)."""

from __future__ import annotations

import copy
import dataclasses
import io
import marshal
import os
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from everest_render.cache.store import Store, renderer_identity
from everest_render.diagnostics import Diagnostic
from everest_render.incremental import CLUSTERS, declared_namespaces
from everest_render.load.files import IGNORE_FILE, INPUT_FOLDERS, SETTINGS_FILE, SETTINGS_FILE_MISSPELT, RepositoryFiles
from everest_render.model import DatabaseCluster, ResolvedCluster
from everest_render.parallel import PARALLEL_FROM
from everest_render.pipeline import (
    LoadedFiles,
    RenderedSlice,
    read_repository,
    render_repository,
    render_resolved,
    resolve_repository,
    start_keyed_rendering,
)
from everest_render.results import ParsedInputs, RenderResult, ResolveResult

# What a render reads at the repository's root: only these are unpacked (not out/, not docs).
INPUTS = (*INPUT_FOLDERS, SETTINGS_FILE, SETTINGS_FILE_MISSPELT, IGNORE_FILE)


class RevisionError(Exception):
    """The revision could not be read (not a git repository, unknown revision, ...)."""


@dataclass(frozen=True)
class EarlierRender:
    """What `diff --against` needs of the revision's render: its files and its diagnostics."""

    files: Mapping[str, bytes]
    diagnostics: tuple[Diagnostic, ...]


def render_with_revision(
    repo: Path, out_dir: Path, revision: str, jobs: int = 1, cache: Store | None = None
) -> tuple[RenderResult, Callable[[], EarlierRender]]:
    """Today's render of ``repo`` and the render of ``revision`` it is compared with (the
    function returned gives it, raising RevisionError when the revision cannot be read or
    rendered). The two sides share almost every cluster: one whose inputs are the same on both
    (its cache key: its document's bytes, definition, provider, the BackupStorages and
    MonitoringConfigs it uses, the settings, the renderer) is rendered once, today's slice
    serving the revision too, with or without the persistent cache. Today's clusters render on
    up to ``jobs`` processes while the revision is resolved here (read beforehand on a process of
    its own while today's side resolves, `_ReadApart`, with more than one job); the revision's
    own clusters then render on up to ``jobs`` processes too."""
    forked = jobs > 1 and hasattr(os, "fork")
    archiving = None if forked else _Archiving(repo, revision)
    today = read_repository(repo, out_dir)
    reading = _ReadApart(repo, out_dir, revision, today) if forked else None
    loaded = LoadedFiles()
    held = _SavesLater(cache) if cache is not None and cache.enabled else None
    resolved = resolve_repository(today, held or cache, loaded)
    if archiving is not None:
        archiving.wait()
    if resolved.failed:
        if reading is not None:
            reading.close()
        if held is not None:
            held.flush(cache)
        # Nothing is compared (the command stops on today's errors): the revision alone, if asked.
        return render_resolved(resolved), lambda: _earlier(repo, revision, cache)

    # Today's clusters render (and are keyed) on the workers; meanwhile, the files loaded are
    # stored, and the revision is read and resolved here. Its copy of the store keeps its own
    # warnings, which are not printed (today's side says whether the cache works).
    # Without a cache, today's clusters need no key on the workers (_begun keys the few it
    # compares).
    cached = cache is not None and cache.enabled
    unkeyed = None if cached else [None] * len(resolved.clusters)
    pending = start_keyed_rendering(resolved.clusters, jobs, cache, resolved.sensitive, keys=unkeyed)
    if held is not None:
        held.flush(cache)
    earlier_cache = copy.copy(cache)
    def inputs() -> tuple[dict[str, str] | None, bytes]:
        if reading is not None:
            return reading.result()
        assert archiving is not None
        return _read_beside(archiving.archive(), repo, out_dir, today)

    read = _attempt(revision, lambda: _resolve_at_revision(inputs(), out_dir, today, resolved, earlier_cache, loaded))
    part = read.part if isinstance(read, _Read) else None
    whole = read.whole if isinstance(read, _Read) else None
    started = _started(revision, read, resolved, earlier_cache)
    del read  # the revision's own clusters may go once today's serve it (_with_todays)
    if jobs > 1 and len(resolved.clusters) >= PARALLEL_FROM:
        # Here, rather than after the workers are done: the comparison's library (~0.1 s to
        # import) would be the first thing the command pays for once both sides are rendered.
        from everest_render.commands.diff import import_deepdiff

        import_deepdiff()
    keyed = pending()
    slices = [part for part, _ in keyed]
    result = render_resolved(resolved, renderer=lambda _: slices)
    if isinstance(started, str):
        return result, _raising(started)
    rendered = {key: part for part, key in keyed if key is not None}
    if part is not None and whole is not None:
        before, begun = started
        found = _attempt(revision, lambda: _in_part(result, slices, before, begun, part, rendered, jobs, earlier_cache))
        if isinstance(found, str):
            return result, _raising(found)
        if found is not None:
            return result, lambda: found
        # Today's render or the part's had something to say: the revision is resolved whole.
        started = _started(revision, _attempt(revision, whole), resolved, earlier_cache)
        if isinstance(started, str):
            return result, _raising(started)
    before, begun = started
    renderer = partial(_shared_or_rendered, rendered, slices, begun, jobs, earlier_cache, before.sensitive)
    earlier = _attempt(revision, lambda: render_resolved(before, renderer=renderer))
    if isinstance(earlier, str):
        return result, _raising(earlier)
    done = EarlierRender(earlier.plan.files, earlier.diagnostics)
    return result, lambda: done


@dataclass(frozen=True)
class _Read:
    """The revision resolved: whole, or (``part``: the namespaces its changes touch) only the
    world and those namespaces (commands/revision_part.py), ``whole`` resolving it all when
    the part turns out not to stand for it. ``touched``: of a whole, the namespaces its changes
    touch, when known (`_touched_namespaces`)."""

    resolved: ResolveResult
    touched: frozenset[str] | None
    part: frozenset[str] | None = None
    whole: Callable[[], _Read] | None = None


def _started(revision: str, read: _Read | str, today: ResolveResult, cache: Store | None) -> tuple[ResolveResult, _Begun] | str:
    """The revision's resolve and what is done of its render while today's renders (`_begun`),
    or why it could not be read or rendered."""
    if isinstance(read, str):
        return read
    begun = _attempt(revision, lambda: _begun(read.resolved, today, cache, read.touched))
    if isinstance(begun, str):
        return begun
    return (read.resolved if read.part is not None else _with_todays(read.resolved, today, begun)), begun


def _in_part(
    today: RenderResult,
    slices: Sequence[RenderedSlice],
    part: ResolveResult,
    begun: _Begun,
    touched: frozenset[str],
    rendered: Mapping[str, RenderedSlice],
    jobs: int,
    cache: Store | None,
) -> EarlierRender | None:
    """The revision's render from its part (its clusters served by today's as a whole
    revision's are, `_shared_or_rendered`) and today's render elsewhere; None when the part
    cannot stand for the whole (revision_part.spliced)."""
    from everest_render.commands.revision_part import spliced

    renderer = partial(_shared_or_rendered, rendered, slices, begun, jobs, cache, part.sensitive)
    earlier = render_resolved(part, renderer=renderer)
    files = spliced(today, slices, earlier, touched)
    return EarlierRender(files, earlier.diagnostics) if files is not None else None


def _raising(message: str) -> Callable[[], EarlierRender]:
    def failed() -> EarlierRender:
        raise RevisionError(message)

    return failed


@dataclass(frozen=True)
class _Begun:
    """What is done of the revision's render while today's renders: the clusters that render
    as today's cluster at the same place does (by index there), each other cluster's key, and
    the clusters whose file changed since, which no cluster of today's can serve, rendered."""

    todays: dict[int, int]
    keys: dict[int, str | None]
    rendered: dict[int, RenderedSlice]


def _with_todays(before: ResolveResult, today: ResolveResult, begun: _Begun) -> ResolveResult:
    """The revision's resolve with today's very cluster in place of each that renders as
    today's does: equal (their keys, or their namespace, say so), so the revision's own copy,
    all of its resolved parts, is let go (most of a fleet's worth of memory)."""
    if not begun.todays:
        return before
    clusters = tuple(today.clusters[begun.todays[index]] if index in begun.todays else c for index, c in enumerate(before.clusters))
    return dataclasses.replace(before, clusters=clusters)


def _begun(before: ResolveResult, today: ResolveResult, cache: Store | None, touched: frozenset[str] | None) -> _Begun:
    if before.failed:
        return _Begun({}, {}, {})
    from everest_render.cache.entries import KeyMaker

    # A file the same on both sides is today's very SourceFile (revision_files.py; and loaded
    # once, pipeline.LoadedFiles). A cluster of it whose namespace no change touched renders as
    # today's at that place does (_touched_namespaces): no key is needed to know it. The others
    # are keyed. A key covers the cluster's file (its name and text) and its place there, so
    # the one cluster of today's that can have a cluster's key is today's at the same place:
    # without a cache, today's are not keyed on the workers, but those few here. With one,
    # today's keys come from the workers, and a cluster of an unchanged file is most likely
    # today's too (a document translated from another kind, an Instance, is a new object each
    # parse, but of the same file and place). The rest render here now, unless they are many
    # (then on every CPU, once today's are done).
    ours = {_place(cluster): index for index, cluster in enumerate(today.clusters)}
    named = {_named_place(cluster): index for index, cluster in enumerate(today.clusters)}
    cached = cache is not None and cache.enabled
    maker = KeyMaker(renderer_identity())
    todays: dict[int, int] = {}
    keys: dict[int, str | None] = {}
    for index, cluster in enumerate(before.clusters):
        at = ours.get(_place(cluster))
        if touched is not None and at is not None and cluster.ref.namespace not in touched and today.clusters[at].ref == cluster.ref:
            todays[index] = at
            continue
        keys[index] = key = maker.cluster_key(cluster)
        at = named.get(_named_place(cluster))
        if not cached and at is not None and key is not None and maker.cluster_key(today.clusters[at]) == key:
            todays[index] = at
    if cached:
        changed = [index for index in keys if _place(before.clusters[index]) not in ours]
    else:
        changed = [index for index in keys if index not in todays]
    if len(changed) >= PARALLEL_FROM:
        return _Begun(todays, keys, {})
    clusters = [before.clusters[index] for index in changed]
    parts = start_keyed_rendering(clusters, 1, cache, before.sensitive, keys=[keys[index] for index in changed])()
    return _Begun(todays, keys, {index: part for index, (part, _) in zip(changed, parts, strict=True)})


def _touched_namespaces(
    today_files: RepositoryFiles, files: RepositoryFiles, today: ResolveResult, before: ParsedInputs
) -> frozenset[str] | None:
    """The namespaces whose documents differ between the two sides, when nothing else does;
    else None. What a cluster renders to depends on the world (every input outside clusters/:
    definitions, providers, settings, extensions, the built-ins) and on the documents of its
    own namespace, nothing else (docs/design.md, "Only what changed": the incremental render
    stands on the same ground). So with the world the same, a cluster of an untouched namespace
    resolves and renders on both sides alike. ``files``: the revision's inputs as read in memory
    beside today's; ``before``: what they parsed to."""
    from everest_render.commands.revision_part import same_world

    if today.failed or not same_world(today_files, files):
        return None
    ours = {source.path: source for source in today_files.own.sources}
    changed = {source.path: source for source in files.own.sources if ours.get(source.path) is not source}
    if any(not path.startswith(CLUSTERS) for path in changed) or today.inputs.broken != before.broken:
        return None
    touched: set[str] = set()
    for inputs, sources in ((today.inputs, [ours[path] for path in changed if path in ours]), (before, list(changed.values()))):
        catalogue = [d.document.source.path for d in inputs.definitions] + [p.document.source.path for p in inputs.providers]
        if any(path in changed for path in catalogue):
            return None  # a catalogue document under clusters/ is the world's
        touched.update(
            namespace
            for path, namespace in (
                *((c.document.source.path, c.ref.namespace) for c in inputs.clusters),
                *((b.document.source.path, b.ref.namespace) for b in inputs.backup_storages),
                *((m.document.source.path, m.ref.namespace) for m in inputs.monitoring_configs),
                *((p.document.source.path, p.namespace) for p in inputs.passthrough),
            )
            if path in changed
        )
        # And what the documents name, parsed or not (a document that parsed to nothing).
        touched.update(namespace for source in sources for namespace in declared_namespaces(source))
    return frozenset(touched)


def _place(cluster: ResolvedCluster) -> tuple[int, int]:
    """Where a cluster is written: its file (the very object) and its document's place there."""
    document = cluster.cluster.document
    return id(document.source), document.index


def _named_place(cluster: ResolvedCluster) -> tuple[str, int]:
    """Where a cluster is written: its file's name and its document's place there."""
    document = cluster.cluster.document
    return document.source.path, document.index


def _shared_or_rendered(
    rendered: Mapping[str, RenderedSlice],
    slices: Sequence[RenderedSlice],
    begun: _Begun,
    jobs: int,
    cache: Store | None,
    sensitive: frozenset[str],
    clusters: Sequence[ResolvedCluster],
) -> list[RenderedSlice]:
    """The revision's slices of ``clusters``: those rendered already, today's (``slices``, one
    a cluster of today's) where a cluster renders as today's at its place does or its key is
    today's too, the others rendered (through ``cache``, on up to ``jobs`` processes)."""
    keys = begun.keys
    found: list[RenderedSlice | None] = []
    for index in range(len(clusters)):
        at, key = begun.todays.get(index), keys.get(index)
        part = slices[at] if at is not None else begun.rendered.get(index) or (rendered.get(key) if key is not None else None)
        found.append(part)
    missing = [index for index, part in enumerate(found) if part is None]
    fresh = start_keyed_rendering([clusters[i] for i in missing], jobs, cache, sensitive, keys=[keys[i] for i in missing])()
    for index, (part, _) in zip(missing, fresh, strict=True):
        found[index] = part
    return [part for part in found if part is not None]


class _SavesLater(Store):
    """A store whose saves wait for `flush`: today's loaded files are stored while the workers
    render, not before they start (a cold cache writes a file per group of inputs)."""

    def __init__(self, store: Store) -> None:
        super().__init__(store.root)
        self.enabled, self.warning = store.enabled, store.warning
        self._held: list[tuple[str, bytes]] = []

    def save(self, key: str, payload: bytes) -> None:
        if self.enabled:
            self._held.append((key, payload))

    def flush(self, store: Store | None) -> None:
        """Save what was held into ``store`` (which says, as ever, if it could not)."""
        held, self._held = self._held, []
        for key, payload in held:
            if store is not None:
                store.save(key, payload)


Outcome = TypeVar("Outcome")


def _attempt(revision: str, work: Callable[[], Outcome]) -> Outcome | str:
    """What ``work`` gives, or the message saying why the revision could not be read or
    rendered (the command reports it, never as a traceback)."""
    try:
        return work()
    except RevisionError as error:
        return str(error)
    except Exception as error:
        return f"cannot render {revision}: {type(error).__name__}: {error}"


def _read_beside(archive: bytes, repo: Path, out_dir: Path, today: RepositoryFiles) -> tuple[dict[str, str] | None, bytes]:
    """The revision's texts that differ from today's (revision_files.changed_texts), and the
    archive when there are none such because its tree is shaped otherwise (it is unpacked)."""
    from everest_render.commands.revision_files import changed_texts

    texts = changed_texts(archive, repo, out_dir, today)
    return texts, archive if texts is None else b""


def _resolve_at_revision(
    inputs: tuple[dict[str, str] | None, bytes],
    out_dir: Path,
    today_files: RepositoryFiles,
    today: ResolveResult,
    cache: Store | None,
    loaded: LoadedFiles,
) -> _Read:
    """The revision's inputs resolved. They are read from its archive in memory beside today's
    (``inputs``, `_read_beside`: revision_files.py); then, when only files of clusters/ changed
    and neither side has anything to say, only the namespaces the changes touch are resolved
    (revision_part.py); else the whole, where a cluster of an untouched namespace that today's
    side resolved without a problem in its file is today's very cluster, not resolved again.
    When its tree is not shaped as the working tree is, it is unpacked and resolved whole."""
    from everest_render.commands.revision_files import with_texts
    from everest_render.commands.revision_part import part_stands, touched_part

    texts, archive = inputs
    del inputs
    if texts is None:
        with tempfile.TemporaryDirectory(prefix="everest-render-") as scratch:
            root = Path(scratch)
            _extract(archive, root)
            return _Read(resolve_repository(read_repository(root, root / "out"), cache, loaded), None)
    files = with_texts(today_files, texts)
    revision_files = files

    def whole() -> _Read:
        touched: list[frozenset[str] | None] = [None]

        def known(inputs: ParsedInputs) -> Callable[[DatabaseCluster], ResolvedCluster | None] | None:
            touched[0] = _touched_namespaces(today_files, revision_files, today, inputs)
            return _todays_clusters(today, touched[0])

        before = resolve_repository(revision_files, cache, loaded, known)
        return _Read(before, None if before.failed else touched[0])

    found = touched_part(today_files, files, today)
    if found is not None:
        namespaces, part_files = found
        part = resolve_repository(part_files, cache, loaded)
        if part_stands(part, namespaces):
            return _Read(part, None, namespaces, whole)
    return whole()


def _todays_clusters(today: ResolveResult, touched: frozenset[str] | None) -> Callable[[DatabaseCluster], ResolvedCluster | None] | None:
    """Today's resolved cluster of the very document (a file the same on both sides is loaded
    once: pipeline.LoadedFiles) in a namespace no change touched: it resolves on the revision's
    side from the same inputs to the same value. Not one whose file today's side has anything
    to say about (resolve's problems are said at the cluster's document): those resolve again,
    and say it again."""
    if touched is None:
        return None
    said = {diagnostic.file for diagnostic in today.diagnostics}
    todays = {
        id(cluster.cluster.document): cluster
        for cluster in today.clusters
        if cluster.ref.namespace not in touched and cluster.cluster.document.source.path not in said
    }

    def known(cluster: DatabaseCluster) -> ResolvedCluster | None:
        found = todays.get(id(cluster.document))
        return found if found is not None and found.cluster.document is cluster.document and found.ref == cluster.ref else None

    return known


class _ReadApart:
    """`_read_beside` (git's archive of the revision, its ~17,000 headers read and the working
    tree walked at 10,000 clusters: ~0.5 s of CPU) on a forked process of its own, begun once
    today's inputs are read: it runs while they are resolved here, when the other CPU has
    nothing to do, not beside today's clusters rendering on every CPU. What it finds comes back
    through a pipe as plain data (the texts that differ, or the archive to unpack, or why the
    revision cannot be read, worded as `_attempt` words it); should nothing come back, it is
    read here, as without the fork."""

    def __init__(self, repo: Path, out_dir: Path, revision: str, today: RepositoryFiles) -> None:
        self._asked = (repo, out_dir, revision, today)
        reading, writing = os.pipe()
        self._pid = os.fork()
        if self._pid == 0:  # the child: its answer, then gone without running anything of the parent's
            try:
                os.close(reading)
                with os.fdopen(writing, "wb") as pipe:
                    pipe.write(marshal.dumps(_answer(repo, out_dir, revision, today)))
            finally:
                os._exit(0)
        os.close(writing)
        self._pipe: int | None = reading

    def result(self) -> tuple[dict[str, str] | None, bytes]:
        """What `_read_beside` gives (raising RevisionError when the revision cannot be read)."""
        answer = self._collect()
        if answer is None:
            repo, out_dir, revision, today = self._asked
            answer = _answer(repo, out_dir, revision, today)
        if answer[0] == "failed":
            raise RevisionError(answer[1])
        return answer[1], answer[2]

    def close(self) -> None:
        """Wait for the process, its answer unread (today's side failed: nothing is compared)."""
        self._collect()

    def _collect(self) -> tuple[Any, ...] | None:
        if self._pipe is None:
            return None
        with os.fdopen(self._pipe, "rb") as pipe:
            data = pipe.read()
        self._pipe = None
        os.waitpid(self._pid, 0)
        try:
            answer = marshal.loads(data)
        except (EOFError, ValueError, TypeError):
            return None
        return answer if isinstance(answer, tuple) and answer and answer[0] in ("read", "failed") else None


def _answer(repo: Path, out_dir: Path, revision: str, today: RepositoryFiles) -> tuple[Any, ...]:
    """`_read_beside` of the revision as plain data: ("read", texts, archive), or ("failed",
    why), in `_attempt`'s words."""
    found = _attempt(revision, lambda: _read_beside(_archive(repo, revision), repo, out_dir, today))
    return ("failed", found) if isinstance(found, str) else ("read", *found)


class _Archiving:
    """`_archive`, begun on a thread: git works on a CPU of its own while today's inputs are
    read and resolved here, when the other CPU has nothing to do yet. Waited for before the
    workers fork (a fork copies only the thread that forks), so it only overlaps that read."""

    def __init__(self, repo: Path, revision: str) -> None:
        self._archive: bytes | None = None
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, args=(repo, revision), name="git archive")
        self._thread.start()

    def _run(self, repo: Path, revision: str) -> None:
        try:
            self._archive = _archive(repo, revision)
        except Exception as error:  # raised where the archive is asked for, as when it was read there
            self._error = error

    def wait(self) -> None:
        self._thread.join()

    def archive(self) -> bytes:
        """The archive (handed over: this keeps no reference to it, it is as large as the
        inputs), or what reading it raised."""
        self.wait()
        if self._error is not None:
            raise self._error
        archive, self._archive = self._archive, None
        assert archive is not None
        return archive


def _earlier(repo: Path, revision: str, cache: Store | None) -> EarlierRender:
    earlier = render_at_revision(repo, revision, cache=cache)
    return EarlierRender(earlier.plan.files, earlier.diagnostics)


def render_at_revision(repo: Path, revision: str, jobs: int = 1, cache: Store | None = None) -> RenderResult:
    """Render the repository's files as they were at ``revision`` (with today's built-ins), on
    up to ``jobs`` processes, through ``cache``."""
    with tempfile.TemporaryDirectory(prefix="everest-render-") as scratch:
        root = Path(scratch)
        _unpack(repo, revision, root)
        return render_repository(read_repository(root, root / "out"), jobs=jobs, cache=cache)


def _unpack(repo: Path, revision: str, scratch: Path) -> None:
    """The inputs of ``repo`` as they were at ``revision``, written under ``scratch`` (the
    archive is let go before the render: it is as large as the inputs)."""
    _extract(_archive(repo, revision), scratch)


def _extract(archive: bytes, scratch: Path) -> None:
    if archive:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(scratch, filter="data")  # "data": no links or paths outside scratch


def _archive(repo: Path, revision: str) -> bytes:
    """The inputs of ``repo`` as they were at ``revision``: a tar of the names in INPUTS."""
    prefix = _git(repo, "rev-parse", "--show-prefix").decode().strip()
    # From the top level: below it, git filters listings and paths by the working directory.
    top = Path(_git(repo, "rev-parse", "--show-toplevel").decode().strip())
    tree = f"{revision}:{prefix}"
    try:
        present = set(_git(top, "ls-tree", "--name-only", "-z", tree).decode().split("\0"))
        inputs = [name for name in INPUTS if name in present]
        return _git(top, "archive", "--format=tar", tree, "--", *inputs) if inputs else b""
    except RevisionError as error:
        if _is_shallow(repo):
            # CI checkouts are shallow by default (actions/checkout fetches one commit, GitLab
            # 20): the revision is usually there upstream, only not fetched. Say how to get it.
            raise RevisionError(
                f"cannot read {revision}: this clone is shallow, so its history may not reach it ({error}); "
                "fetch the history (actions/checkout: `fetch-depth: 0`; GitLab CI: `GIT_DEPTH: 0`; locally: `git fetch --unshallow`)"
            ) from error
        raise


def _is_shallow(repo: Path) -> bool:
    try:
        return _git(repo, "rev-parse", "--is-shallow-repository").strip() == b"true"
    except RevisionError:
        return False


def _git(repo: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=True)
    except FileNotFoundError as error:
        raise RevisionError("git is not installed") from error
    except subprocess.CalledProcessError as error:
        raise RevisionError(error.stderr.decode(errors="replace").strip() or f"git {args[0]} failed") from error
    return done.stdout
