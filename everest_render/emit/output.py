"""Stage 6, emit: ordered objects -> the bytes of out/ (or of one stream), and writing them.

out/ is owned by the renderer: an index file beside the manifests (not YAML, so Argo CD
and Flux do not read it) lists what it wrote, and pruning removes only those files. All
content is built in memory first and nothing is written when any error exists; the write
itself is journalled and locked (see "the file system side" below).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import stat
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from everest_render.emit.order import object_sort_key
from everest_render.emit.yaml_text import dump_document

if TYPE_CHECKING:  # only named in annotations: a replayed render defines no model class
    from everest_render.model import ObjectRef, PassthroughObject, RenderedObject, SharedObject

INDEX_FILE = ".everest-render-index"
INDEX_HEADER = "# Files under this folder written by everest-render; `render` prunes only these.\n"
PASSTHROUGH_FILE = "_passthrough.yaml"  # "_" cannot start a cluster name, so no collision
EXTENSIONS_FILE = "_extensions.yaml"  # extensions' shared objects of a namespace (docs/extensions.md)
KUSTOMIZATION_FILE = "kustomization.yaml"  # only when asked for: it makes Argo CD switch to kustomize


@dataclass(frozen=True)
class OutputPlan:
    """What out/ must hold: relative path -> bytes, in path order."""

    files: Mapping[str, bytes]

    def stream(self) -> bytes:
        """Every file's documents as one YAML stream, for --stdout (files in path order).

        A file copied byte for byte (SOPS) may lack a leading ``---`` or a final newline;
        both are added so it cannot run into its neighbours."""
        parts = []
        for path in sorted(self.files):
            if path == KUSTOMIZATION_FILE:
                continue  # a build instruction, not an object
            content = self.files[path]
            if not content.startswith(b"---"):
                content = b"---\n" + content
            parts.append(content if content.endswith(b"\n") else content + b"\n")
        return b"".join(parts)


def is_sops_file(path: str) -> bool:
    return "/_sops/" in f"/{path}"


def without_sops(plan: OutputPlan) -> OutputPlan:
    """The plan minus its SOPS files (``render --stdout --sops omit``)."""
    return OutputPlan({path: text for path, text in plan.files.items() if not is_sops_file(path)})


def cluster_files(objects: Iterable[RenderedObject], kind_orders: Mapping[ObjectRef, Sequence[str]]) -> dict[str, bytes]:
    """``<namespace>/<cluster>.yaml`` for each cluster: its objects in the canonical order
    (``kind_orders``: each cluster's provider's ``kindOrder``)."""
    by_cluster: dict[ObjectRef, list[RenderedObject]] = defaultdict(list)
    for rendered in objects:
        if not rendered.shared:  # an extension's namespace objects: pipeline.shared_object
            by_cluster[rendered.cluster].append(rendered)
    files: dict[str, bytes] = {}
    for ref in sorted(by_cluster):
        kind_order = kind_orders.get(ref, ())
        ordered = sorted(by_cluster[ref], key=lambda o: object_sort_key(ref.namespace, ref.name, o.obj, kind_order))
        files[f"{ref.namespace}/{ref.name}.yaml"] = "".join(written_text(o) for o in ordered).encode()
    return files


def written_text(rendered: RenderedObject) -> str:
    """The object's document, as written for its marks (model.RenderedObject.text) or now; the
    object forgets it then: it is held on (and sent between processes) for what it is."""
    text = rendered.text
    vars(rendered).pop("text", None)
    return text


def extension_files(shared: Iterable[SharedObject]) -> dict[str, bytes]:
    """``<namespace>/_extensions.yaml``: the extensions' shared objects of each namespace, in
    the canonical order (one BackupStorage's credentials, whichever clusters need them)."""
    by_namespace: dict[str, list[SharedObject]] = defaultdict(list)
    for kept in shared:
        by_namespace[kept.cluster.namespace].append(kept)
    files: dict[str, bytes] = {}
    for namespace in sorted(by_namespace):
        ordered = sorted(by_namespace[namespace], key=attrgetter("order"))
        files[f"{namespace}/{EXTENSIONS_FILE}"] = "".join(kept.text for kept in ordered).encode()
    return files


def passthrough_files(passthrough: Iterable[PassthroughObject]) -> dict[str, bytes]:
    """``<namespace>/_passthrough.yaml`` per namespace, and SOPS files as they are."""
    files: dict[str, bytes] = {}
    plain: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for item in passthrough:
        if item.encrypted:
            # SOPS: re-serialising would break the MAC, so the whole file is copied as it is.
            files[f"{item.namespace}/_sops/{item.document.source.path}"] = item.document.source.text.encode()
        else:
            plain[item.namespace].append(item.document.data)
    for namespace in sorted(plain):
        ordered = sorted(plain[namespace], key=lambda o: object_sort_key(namespace, "", o))
        files[f"{namespace}/{PASSTHROUGH_FILE}"] = "".join(dump_document(o) for o in ordered).encode()
    return files


def plan_from_files(files: Mapping[str, bytes]) -> OutputPlan:
    for path in files:
        # Defence in depth: namespaces and names were validated as RFC 1123 labels upstream.
        if path.startswith("/") or ".." in path.split("/"):
            raise ValueError(f"refusing to write outside out/: {path}")
    return OutputPlan(dict(sorted(files.items())))


def with_kustomization(plan: OutputPlan) -> OutputPlan:
    """The plan plus an out/kustomization.yaml that lists every file as a resource, for
    `kustomize build out/` and Flux setups that want the file present rather than generated."""
    if isinstance(plan.files, KeptElsewhere):
        # The files kept elsewhere stay unread; the listing, a function of their names alone,
        # is made once for those names (a fleet's lists 10,000 files).
        return OutputPlan(plan.files.with_listing(KUSTOMIZATION_FILE, _kustomization))
    return OutputPlan(dict(sorted({**plan.files, KUSTOMIZATION_FILE: _kustomization(plan.files)}.items())))


def _kustomization(paths: Iterable[str]) -> bytes:
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": sorted(path for path in paths if path != KUSTOMIZATION_FILE),
    }
    return dump_document(kustomization).encode()


# --- the file system side ---------------------------------------------------------------
# A write is journalled, so that a render killed at any moment (SIGKILL included) leaves out/
# either as it was or recoverable to exactly the new plan:
#   1. every changed file and the new index are staged under out/.everest-render-staging/
#      (the files of a folder out/ lacks, as that folder's tree);
#   2. the journal (what goes where, what is removed) is written and renamed into place: the
#      commit point;
#   3. staged files are renamed over their targets and staged folders to where out/ lacks
#      them, removed files unlinked, the index put in place, then the staging folder and the
#      journal are removed.
# The next render finishes a committed write (step 3 is idempotent) or discards an uncommitted
# one (out/ was not touched yet) before it does anything else; `render --check` reports either
# as a difference. A lock on out/ keeps two renders from writing it at once.

JOURNAL_FILE = ".everest-render-journal"
STAGING_FOLDER = ".everest-render-staging"
LOCK_WAIT_SECONDS = 10.0  # a second render waits this long for the first, then refuses
_LEGACY_TEMPORARY = re.compile(r"^\..+\.tmp-\d+$")  # what writers before the journal left behind
_MODE = attrgetter("st_mode")


class Trust(Protocol):
    """What out/ is known to hold by its files' stat (cache/outputs.py): a file `holds` the
    bytes of a SHA-256 ``digest`` unread; a file read and found holding its planned bytes is
    told (`saw`, with their digest), for next time."""

    def holds(self, path: str, found: os.stat_result, digest: bytes) -> bool: ...

    def saw(self, path: str, found: os.stat_result, digest: bytes) -> None: ...


@runtime_checkable
class BatchTrust(Trust, Protocol):
    """A `Trust` that also answers for many files at once (``held``: the regular files, no
    links, known to hold their planned bytes), and knows out/'s folders that hold no old
    writer's temporary file (``clean_folder``: their folders' names; told by ``scanned``;
    ``clean_everywhere``: every folder of out/ so, known at once)."""

    def held(self, out_dir: Path, paths: Sequence[str], digest: Callable[[str], bytes]) -> set[str]: ...

    def clean_folder(self, folder: str, found: os.stat_result) -> tuple[str, ...] | None: ...

    def scanned(self, folder: str, found: os.stat_result, folders: Sequence[str]) -> None: ...

    def clean_everywhere(self, out_dir: str, looked: Mapping[str, os.stat_result | None]) -> bool: ...


def held_files(plan: OutputPlan, out_dir: Path, trust: Trust | None) -> set[str]:
    """The planned files out/ is known by ``trust`` to hold, each a regular file (no link): what
    a run looks at once and hands on (`changed_output`, `differences`, `write_output`)."""
    return _held(trust, out_dir, plan.files, _digests(plan.files))


def _held(trust: Trust | None, out_dir: Path, files: Mapping[str, bytes], digest: Callable[[str], bytes]) -> set[str]:
    """The planned files ``trust`` knows at once to hold their bytes (each other is looked at
    one by one): one look at the whole of a fleet's out/, not a Python step per file."""
    return trust.held(out_dir, list(files), digest) if isinstance(trust, BatchTrust) else set()


@runtime_checkable
class KeptElsewhere(Protocol):
    """A plan's files whose bytes are kept elsewhere and read only when asked for, each one's
    SHA-256 known unread (cache/kept.py: a render taken from the cache, whose out/ usually
    holds it already)."""

    def digest(self, path: str) -> bytes: ...

    def with_listing(self, path: str, listing: Callable[[Iterable[str]], bytes]) -> Mapping[str, bytes]:
        """These files and ``path``, holding the ``listing`` of their names (made once for
        the same names)."""
        ...


def _digests(files: Mapping[str, bytes]) -> Callable[[str], bytes]:
    """Each planned file's SHA-256, for a `Trust`: unread for files kept elsewhere."""
    if isinstance(files, KeptElsewhere):
        return files.digest
    return lambda path: hashlib.sha256(files[path]).digest()


def owned_files(out_dir: Path, planned: Mapping[str, bytes] | None = None) -> set[str]:
    """The files the index lists that stay inside out/; ``planned``: names every caller takes
    anyway (the plan's, each checked when written), listed without looking at their links."""
    lines = _index_lines(out_dir)
    names = _names(planned or {})
    listed = lines.intersection(names)  # a fleet's 10,000 names in C, not a Python step each
    comments = set(itertools.compress(listed, map(str.startswith, listed, itertools.repeat("#"))))
    return (listed - comments) | _owned_beyond(out_dir, lines, names)


def owned_beyond(out_dir: Path, planned: Mapping[str, bytes]) -> set[str]:
    """``owned_files(out_dir, planned)`` but the plan's files: what out/ holds that the plan
    does not (its names only looked at, not the plan's)."""
    return _owned_beyond(out_dir, _index_lines(out_dir), _names(planned))


def _owned_beyond(out_dir: Path, lines: set[str], names: AbstractSet[str]) -> set[str]:
    beyond = lines.difference(names)
    if not beyond:
        return set()
    inside = _Inside(out_dir)
    return {line for line in beyond if line and not line.startswith("#") and inside(line)}


def _index_lines(out_dir: Path) -> set[str]:
    index = out_dir / INDEX_FILE
    if not index.is_file():
        return set()
    return set(index.read_text(encoding="utf-8", errors="replace").splitlines())


def _names(files: Mapping[str, bytes]) -> AbstractSet[str]:
    """The names of ``files``, for `in` and set operations in C: a plan kept elsewhere would
    answer each by a Python call (a fleet's out/ lists 10,000 names)."""
    return files.keys() if isinstance(files, dict) else set(files)


def _inside(out_dir: Path, relative: str, real: Path | None = None) -> bool:
    """Whether out/<relative> stays under out/ once links are followed (names never escape it);
    ``real``: out/ itself resolved, when the caller checks many names at once."""
    target = (out_dir / relative).resolve()
    return target.is_relative_to(real or out_dir.resolve()) and ".." not in Path(relative).parts


class _Inside:
    """`_inside` for many names of one out/, each folder's links looked at once (a resolve of
    every name was most of a large fleet's write): a plain name (no ``..``, ``.`` or empty
    part) whose folders and file are no links is inside; any other is resolved."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.real = out_dir.resolve()
        self.plain_folders: dict[str, bool] = {"": True}
        # Each folder's lstat as looked at (None: none there), for `_legacy_temporaries` to
        # take under the same lock rather than look at every folder again.
        self.looked: dict[str, os.stat_result | None] = {}

    def __call__(self, relative: str, *, file_looked_at: bool = False) -> bool:
        """``file_looked_at``: the caller looks at the file itself for a link (`_write`)."""
        folder = relative.rpartition("/")[0]
        if relative.startswith("/") or any(part in ("", ".", "..") for part in relative.split("/")):
            return _inside(self.out_dir, relative, self.real)
        if self._plain(folder) and (file_looked_at or not _is_link(f"{self.out_dir}/{relative}")):
            return True
        return _inside(self.out_dir, relative, self.real)

    def escaping(self, paths: Iterable[str]) -> list[str]:
        """Of ``paths``, those not inside out/, each file looked at for a link by the caller
        (`__call__` with ``file_looked_at``): a fleet's names checked for odd parts in one
        pass over their text, and their folders once each, not a Python step per name."""
        paths = list(paths)
        joined = "\n" + "\n".join(paths) + "\n"
        if not any(part in joined for part in _ODD_PARTS):
            folders = set(map(itemgetter(0), map(str.rpartition, paths, itertools.repeat("/"))))
            self._look_at_once(folders)
            if all(self._plain(folder) for folder in folders):
                return []
        return [path for path in paths if not self(path, file_looked_at=True)]

    def _look_at_once(self, folders: AbstractSet[str]) -> None:
        """`_plain` of ``folders`` and of the folders they are in, known at once when every one
        is there and none is a link: their lstats taken in one C loop, not a Python step each
        (a fleet's out/ has thousands of folders). Else each is looked at by `_plain`."""
        wanted = set(folders)
        parents = wanted
        while parents:
            parents = set(map(itemgetter(0), map(str.rpartition, parents, itertools.repeat("/")))) - wanted
            wanted |= parents
        wanted -= self.plain_folders.keys()  # out/ itself ("") and what is known already
        names = list(wanted)
        try:
            found = list(map(os.lstat, map(f"{self.out_dir}/".__add__, names)))
        except OSError:
            return
        if any(map(stat.S_ISLNK, map(_MODE, found))):
            return
        self.looked.update(zip(names, found, strict=True))
        self.plain_folders.update(dict.fromkeys(names, True))

    def _plain(self, folder: str) -> bool:
        known = self.plain_folders.get(folder)
        if known is None:
            parent = folder.rpartition("/")[0]
            known = self._plain(parent) and not self._is_link(folder)
            self.plain_folders[folder] = known
        return known

    def _is_link(self, folder: str) -> bool:
        try:
            found: os.stat_result | None = os.lstat(f"{self.out_dir}/{folder}")
        except OSError:
            found = None
        self.looked[folder] = found
        return found is not None and stat.S_ISLNK(found.st_mode)


class _Absent:
    """out/'s folders found not there, each looked at once (when a planned file in it was not
    found): every other file planned in one is new, neither opened nor looked at (a fresh out/
    holds none of a fleet's 10,000 files), and a write stages each such folder whole and
    renames it into place, one rename for its files (`_write`)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.there: dict[str, bool] = {"": True}  # out/ itself: a write made it; before, its folders say
        self.below: dict[str, str] = {}  # a folder found not there -> the topmost of it and its parents not there

    def look(self, folder: str) -> str | None:
        """The topmost of ``folder`` and its parents that out/ lacks (None: each is there, or
        something else stands in the way, left to the write to meet), noted in ``below``."""
        top = self.below.get(folder)
        if top is not None:
            return top
        prefix = ""
        for part in folder.split("/") if folder else ():
            prefix = f"{prefix}/{part}" if prefix else part
            there = self.there.get(prefix)
            if there is None:
                there = self.there[prefix] = _there(f"{self.out_dir}/{prefix}")
            if not there:
                self.below[folder] = prefix
                return prefix
        return None


def _there(path: str) -> bool:
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # a file where a folder should be, no permission: as before, the write meets it
    return True


# What a name with an empty, ``.`` or ``..`` part (a leading ``/`` too) holds, once names are
# joined by newlines with one before and after: each looked for in C over a fleet's names.
_ODD_PARTS = tuple(f"{before}{part}{after}" for part in ("", ".", "..") for before in "\n/" for after in "\n/")


def _is_link(path: str) -> bool:
    # What does not exist is no link: nothing below it exists either, and resolve keeps it as named.
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False


def read_output(plan: OutputPlan, out_dir: Path, trust: Trust | None = None) -> dict[str, bytes]:
    """What out/ holds now of the files the plan writes or the renderer owns (``trust``: a
    file known to hold its planned bytes is not read)."""
    changed, _ = changed_output(plan, out_dir, trust)
    held = {path: plan.files[path] for path in plan.files if path not in changed}
    return dict(sorted({**held, **{path: data for path, data in changed.items() if data is not None}}.items()))


def changed_output(
    plan: OutputPlan,
    out_dir: Path,
    trust: Trust | None = None,
    held: set[str] | None = None,
    holding: set[str] | None = None,
) -> tuple[dict[str, bytes | None], bool]:
    """`read_output` but for the files that hold their planned bytes: what out/ holds of each
    other planned file (None: no regular file) and of each file the renderer owns beyond the
    plan; and whether out/ holds exactly the plan's files (``read_output(...) == plan.files``).
    A plan kept elsewhere is read only for the files out/ does not hold.

    ``holding`` (without a ``trust``): filled with the planned files found holding their
    planned bytes, each a regular file itself (no link), as `held_files` would know them: a
    write under out/'s lock, taken before this look, need not read them again."""
    digest = _digests(plan.files)
    held = _held(trust, out_dir, plan.files, digest) if held is None else held
    changed: dict[str, bytes | None] = {}
    absent = _Absent(out_dir)
    unlinked = holding is not None and trust is None and _NO_FOLLOW is not None
    for path in itertools.filterfalse(held.__contains__, plan.files):  # in C over a fleet's files
        folder = path.rpartition("/")[0]
        if absent.below and folder in absent.below:
            changed[path] = None  # its folder is not there: nothing to open (a fresh out/'s every file)
        elif unlinked:
            content = plan.files[path]
            data, itself = _own_bytes(f"{out_dir}/{path}", len(content))
            if data == content:
                if itself and holding is not None:
                    holding.add(path)
                continue
            changed[path] = data = _read_regular(f"{out_dir}/{path}")[0]
            if data is None:
                absent.look(folder)
        elif not _holds(out_dir, path, plan.files, digest, trust):
            changed[path] = data = _read_regular(f"{out_dir}/{path}")[0]
            if data is None:
                absent.look(folder)
    extra = False
    for path in sorted(owned_beyond(out_dir, plan.files)):
        data = _read_regular(f"{out_dir}/{path}")[0]
        if data is not None:
            changed[path] = data
            extra = True
    return changed, not extra and not changed


def _holds(out_dir: Path, path: str, files: Mapping[str, bytes], digest: Callable[[str], bytes], trust: Trust | None) -> bool:
    """Whether out/``path`` holds exactly ``files[path]``: known by ``trust`` from its stat and
    planned ``digest``, unread; else read (a file of another size is not); a file read and
    found holding it is told to ``trust``."""
    found = None
    if trust is not None:
        try:
            found = os.stat(f"{out_dir}/{path}")
        except OSError:
            pass
    return _holds_as(out_dir, path, files, digest, trust, found)


def _holds_as(
    out_dir: Path, path: str, files: Mapping[str, bytes], digest: Callable[[str], bytes], trust: Trust | None, found: os.stat_result | None
) -> bool:
    """`_holds`, with the file's stat taken by the caller (None: not to be known by it)."""
    target = f"{out_dir}/{path}"
    if trust is not None and found is not None and trust.holds(path, found, digest(path)):
        return True
    if isinstance(files, KeptElsewhere):
        # Compared by SHA-256, as the record compares: the planned bytes stay unread (asking
        # for one file reads and checks its whole bucket, a 256th of a fleet's out/: after a
        # render that wrote out/ within the racy window, a replay is told thousands of files).
        data, found = _read_regular(target)
        if data is None or hashlib.sha256(data).digest() != digest(path):
            return False
    else:
        content = files[path]
        data, found = _read_regular(target, len(content))
        if data != content:
            return False
    if trust is not None and found is not None:
        trust.saw(path, found, digest(path))
    return True


# Opens a file but not a link (its open fails): not on every system.
_NO_FOLLOW: int | None = getattr(os, "O_NOFOLLOW", None)


def _own_bytes(target: str, expected: int) -> tuple[bytes | None, bool]:
    """`_read_regular` of ``target`` with ``expected``, and whether what was read is a regular
    file itself rather than one a link leads to (known from the open, which refuses a link
    with O_NOFOLLOW: no look besides it). A link, or what fails to open so, is read as before."""
    try:
        return _read_regular(target, expected, _NO_FOLLOW or 0)[0], True
    except OSError:
        return _read_regular(target, expected)[0], False


def _read_regular(target: str, expected: int | None = None, unfollowed: int = 0) -> tuple[bytes | None, os.stat_result | None]:
    """A regular file's bytes (links followed), None when there is none, as ``is_file()`` then
    ``read_bytes()`` but in one open and without pathlib (a fleet's out/ has thousands of files,
    read on every render); with ``expected`` (a size), also None, unread, when the size differs.
    And the file's stat taken before it was read (None when not read). ``unfollowed``: O_NOFOLLOW,
    for the open to fail on a link (that failure is raised)."""
    try:
        descriptor = os.open(target, os.O_RDONLY | os.O_NONBLOCK | unfollowed)
    except FileNotFoundError:
        return None, None  # nothing there, links followed: no file, and no second look to say so
    except OSError:
        if unfollowed:
            raise
        if not os.path.isfile(target):
            return None, None
        raise
    try:
        found = os.fstat(descriptor)
        if not stat.S_ISREG(found.st_mode):
            return None, None
        if expected is not None and found.st_size != expected:
            return None, None
        chunks = []
        wanted = max(found.st_size + 1, 1 << 16)
        while chunk := os.read(descriptor, wanted):
            chunks.append(chunk)
            if len(chunk) < wanted:
                break  # a regular file reads short only at its end: no read to be told so
        return b"".join(chunks), found
    finally:
        os.close(descriptor)


def leftovers(out_dir: Path, trust: Trust | None = None, looked: Mapping[str, os.stat_result | None] | None = None) -> list[str]:
    """What an interrupted write left in out/: its journal, its staging folder, old temporaries
    (``trust``: out/'s folders known to hold none are not listed; ``looked``: out/'s folders'
    lstats as taken since out/ was locked, by folder, not looked at again)."""
    found = [name for name in (JOURNAL_FILE, STAGING_FOLDER) if (out_dir / name).exists()]
    if out_dir.is_dir():
        found += _legacy_temporaries(out_dir, trust if isinstance(trust, BatchTrust) else None, looked or {})
    return found


def _legacy_temporaries(
    out_dir: Path, known: BatchTrust | None = None, looked_at: Mapping[str, os.stat_result | None] | None = None
) -> list[str]:
    """What `rglob(".*.tmp-*")` finds of them (links to folders not followed), sorted, by plain
    scandir: pathlib's glob was a tenth of a second per look at a fleet's out/. A folder that
    ``known`` knows by its stat to hold none is not listed (its folders are as it recorded:
    an entry made, removed or renamed changes the folder's stat); one listed and holding
    none is told to it. ``looked_at``: folders' lstats already taken (out/ itself is always
    looked at: this run may have changed it)."""
    taken = looked_at or {}
    if known is not None and known.clean_everywhere(os.fspath(out_dir), taken):
        return []  # every folder as `known` recorded it, all looked at once
    found = []
    pending = [("", os.fspath(out_dir))]
    while pending:
        relative, folder = pending.pop()
        looked = None
        if known is not None:
            if relative[:-1] in taken:
                looked = taken[relative[:-1]]
                if looked is None:
                    continue
            else:
                try:
                    looked = os.lstat(folder)
                except OSError:
                    continue
            folders = known.clean_folder(relative, looked)
            if folders is not None:
                pending += [(f"{relative}{name}/", f"{folder}/{name}") for name in folders]
                continue
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError:
            continue
        here = []
        inside = []
        whole = True  # every entry's kind known: the folders listed are all of them
        for entry in entries:
            if entry.name.startswith(".") and _LEGACY_TEMPORARY.match(entry.name):
                here.append(relative + entry.name)
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append((f"{relative}{entry.name}/", entry.path))
                    inside.append(entry.name)
            except OSError:
                whole = False
                continue
        found += here
        if known is not None and looked is not None and not here and whole:
            known.scanned(relative, looked, inside)
    return sorted(found)


def differences(plan: OutputPlan, out_dir: Path, trust: Trust | None = None, held: set[str] | None = None) -> list[str]:
    """What `render` would change in out/: one line per file, sorted (for --check; ``trust``:
    a file known to hold its planned bytes is not read; ``held``: `held_files` as the caller
    found them this run)."""
    changes: list[str] = [f"interrupted: {name}" for name in leftovers(out_dir, trust)]
    digest = _digests(plan.files)
    held = _held(trust, out_dir, plan.files, digest) if held is None else held
    for path in itertools.filterfalse(held.__contains__, plan.files):  # in C over a fleet's files
        if not _holds(out_dir, path, plan.files, digest, trust):
            changes.append(f"{'stale' if (out_dir / path).is_file() else 'missing'}: {path}")
    for path in sorted(owned_beyond(out_dir, plan.files)):
        if (out_dir / path).exists():
            changes.append(f"extra: {path}")
    index = _read(out_dir / INDEX_FILE)
    if plan.files and _index_text(plan) != index:
        changes.append(f"{'missing' if index is None else 'stale'}: {INDEX_FILE}")
    return changes


class OutputError(Exception):
    """out/ cannot be written as planned (a link leading out of it, a full disk, no permission,
    another render holding it); out/ is left as it was, or journalled for the next render."""


@dataclass(frozen=True)
class WriteCounts:
    """What a write did to the plan's files (the index is not counted), for the summary line."""

    written: int
    unchanged: int
    removed: int


def write_output(
    plan: OutputPlan, out_dir: Path, trust: Trust | None = None, *, lock: OutputLock | None = None, held: set[str] | None = None
) -> WriteCounts:
    """Bring out/ to exactly ``plan``: changed files replaced, owned leftovers pruned, journalled
    (``trust``: a file known to hold its planned bytes is not read to compare). ``lock``: out/'s
    lock, when the caller took it before looking at out/, and ``held``: `held_files` as found
    under it (out/ cannot have changed since: each is counted unchanged without a second look).

    Every target is checked before anything is written: a symbolic link under out/ that leads
    outside it stops the whole write."""
    inside = _Inside(out_dir)
    # Each planned file itself is looked at for a link by `_write`, with the look that compares
    # it (one lstat per file, not two); its folders and name here.
    escaping = inside.escaping(plan.files) + [p for p in [INDEX_FILE] if not inside(p)]
    if escaping:
        raise _refused(out_dir, escaping)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create {out_dir}: {error.strerror or error}") from None
    taken = lock is not None and lock.taken
    with contextlib.nullcontext() if taken else _locked(out_dir):
        try:
            # The folders looked at above, under the lock already taken, are not looked at again.
            finished = recover(out_dir, trust, inside.looked if taken else None)
        except OSError as error:
            raise OutputError(f"cannot finish the interrupted write of {out_dir}: {error.strerror or error}") from None
        # A journal finished just now moved files: what was found before is looked at again.
        return _write(plan, out_dir, trust, inside.real, held if taken and not finished else None)


def _refused(out_dir: Path, escaping: Iterable[str]) -> OutputError:
    return OutputError(f"refusing to write outside {out_dir}: {', '.join(sorted(escaping))} (a symbolic link?)")


def _remove_tree(folder: Path) -> None:
    import shutil  # only when writing out/: `--stdout` and the Argo CD plugin do not load it

    shutil.rmtree(folder, ignore_errors=True)


def recover(out_dir: Path, trust: Trust | None = None, looked: Mapping[str, os.stat_result | None] | None = None) -> bool:
    """Finish a committed write an interrupted render left, or discard an uncommitted one
    (``trust``: out/'s folders known to hold no temporary file are not listed; ``looked``:
    their lstats as taken under out/'s lock, unless a journal moves files); whether a
    journal was found (then files may have moved)."""
    journal = out_dir / JOURNAL_FILE
    finished = journal.is_file()
    looked = None if finished else looked
    if finished:
        try:
            entries = json.loads(journal.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            entries = None  # cannot happen with the rename below; treated as never committed
        if isinstance(entries, dict):
            _apply(out_dir, entries)
        journal.unlink(missing_ok=True)
    staging = out_dir / STAGING_FOLDER
    if staging.exists():
        _remove_tree(staging)
    for name in leftovers(out_dir, trust, looked):
        target = out_dir / name
        if target.is_file():
            target.unlink(missing_ok=True)
    return finished


def _write(plan: OutputPlan, out_dir: Path, trust: Trust | None, real: Path, held: set[str] | None = None) -> WriteCounts:
    beyond = owned_beyond(out_dir, plan.files)
    changed = {}
    escaping = []
    digest = _digests(plan.files)
    held = _held(trust, out_dir, plan.files, digest) if held is None else held  # regular files, no links: nothing to refuse
    unchanged = len(held)
    absent = _Absent(out_dir)  # looked at under out/'s lock, unlike the caller's looks
    for path in itertools.filterfalse(held.__contains__, plan.files):  # in C over a fleet's files
        if absent.below and path.rpartition("/")[0] in absent.below:
            changed[path] = plan.files[path]  # its folder is not there: nor is it
            continue
        try:
            found: os.stat_result | None = os.lstat(f"{out_dir}/{path}")
        except FileNotFoundError:
            # Nothing there (a new cluster, a fresh out/): nothing to read or compare, which
            # would only fail to open it and ask again whether it is a file.
            changed[path] = plan.files[path]
            absent.look(path.rpartition("/")[0])
            continue
        except OSError:
            found = None
        if found is not None and stat.S_ISLNK(found.st_mode):
            if not _inside(out_dir, path, real):
                escaping.append(path)
                continue
            found = None  # a link inside out/: compared by what it leads to, never known by stat
        if _holds_as(out_dir, path, plan.files, digest, trust, found):
            unchanged += 1
        else:
            changed[path] = plan.files[path]
    if escaping:  # before anything is written
        raise _refused(out_dir, escaping)
    removed = [path for path in sorted(beyond) if (out_dir / path).is_file()]
    index = _index_text(plan).encode()
    if not changed and not removed and _read(out_dir / INDEX_FILE) == index.decode():
        return WriteCounts(0, unchanged, 0)
    staging = out_dir / STAGING_FOLDER
    try:
        staging.mkdir()
        replace = []
        # A folder out/ lacks is staged whole, as it will stand, and renamed into place: one
        # rename for its files, and none of its folders made in out/ one by one (a fresh
        # out/'s thousands of namespaces).
        move: list[list[str]] = []
        trees: dict[str, str] = {}
        made = {os.fspath(staging)}
        for number, (path, content) in enumerate(changed.items()):
            top = absent.below.get(path.rpartition("/")[0])
            if top is None:
                _write_synced(f"{staging}/{number}", content)  # a str: no Path made per file
                replace.append([str(number), path])
                continue
            tree = trees.get(top)
            if tree is None:
                tree = trees[top] = f"tree-{len(trees)}"
                move.append([tree, top])
            staged = f"{staging}/{tree}{path[len(top) :]}"
            _make_folder(os.path.dirname(staged), made)
            _write_synced(staged, content)
        _write_synced(staging / "index", index)
        entries = {"replace": replace, "move": move, "remove": removed}
        _write_synced(staging / "journal", json.dumps(entries).encode())
    except OSError as error:
        _remove_tree(staging)
        raise OutputError(f"cannot write {out_dir}: {error.strerror or error}; out/ is as it was") from None
    try:
        os.replace(staging / "journal", out_dir / JOURNAL_FILE)  # the commit point
        _apply(out_dir, entries)
        (out_dir / JOURNAL_FILE).unlink()
    except OSError as error:
        raise OutputError(f"writing {out_dir} was interrupted: {error.strerror or error}; the next render finishes it") from None
    return WriteCounts(len(changed), unchanged, len(removed))


def _apply(out_dir: Path, entries: dict[str, Any]) -> None:
    """Step 3 of a write; safe to repeat (a killed render's successor runs it again)."""
    staging = out_dir / STAGING_FOLDER
    # One link check per folder and one makedirs per folder, not per file: a resolve and a
    # mkdir of every name were a sixth of a 1,000-cluster fleet's render.
    inside = _Inside(out_dir)
    made: set[str] = set()
    for number, path in entries.get("replace", []):
        staged = f"{staging}/{number}"
        if os.path.isfile(staged) and inside(path):
            folder = os.path.dirname(f"{out_dir}/{path}")
            if folder not in made:
                os.makedirs(folder, exist_ok=True)
                made.add(folder)
            os.replace(staged, f"{out_dir}/{path}")
    for tree, folder in entries.get("move", []):
        staged = f"{staging}/{tree}"
        if os.path.isdir(staged) and inside(folder):
            target = f"{out_dir}/{folder}"
            parent = os.path.dirname(target)
            if parent not in made:
                os.makedirs(parent, exist_ok=True)
                made.add(parent)
            try:
                os.rename(staged, target)
            except OSError:
                # Something stands there now (a folder made since it was found missing): its
                # files are put in one by one, as any other.
                _merge(staged, out_dir, folder, inside)
    for path in entries.get("remove", []):
        target = out_dir / path
        if inside(path) and target.is_file():
            target.unlink()
            _remove_empty_parents(target.parent, out_dir)
    if (staging / "index").is_file():
        os.replace(staging / "index", out_dir / INDEX_FILE)
    _remove_tree(staging)


def _merge(staged: str, out_dir: Path, folder: str, inside: _Inside) -> None:
    """A staged folder's files put into out/``folder`` one by one (a rename of the whole failed)."""
    for root, _, names in os.walk(staged):
        below = root[len(staged) :]
        for name in names:
            path = f"{folder}{below}/{name}"
            if inside(path):
                os.makedirs(os.path.dirname(f"{out_dir}/{path}"), exist_ok=True)
                os.replace(f"{root}/{name}", f"{out_dir}/{path}")


def _make_folder(folder: str, made: set[str]) -> None:
    """``folder`` and those of its parents not yet ``made`` (each made once, parents first)."""
    if folder not in made:
        _make_folder(os.path.dirname(folder), made)
        os.mkdir(folder)
        made.add(folder)


class OutputLock:
    """out/'s lock (as `write_output` takes it), taken early by a caller that looks at out/ and
    then writes what it found missing: held from the look to the write, what it found cannot
    change in between, so it is not looked at again. Taken only if free at once (else the write
    takes it as always); released by `release` or when the process ends."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.taken = False
        self._descriptor: int | None = None

    def take(self) -> bool:
        if self.taken:
            return True
        try:
            import fcntl

            descriptor = os.open(self.out_dir, os.O_RDONLY | os.O_DIRECTORY)
        except (ImportError, OSError):  # no POSIX lock, or no out/ yet: the write locks
            return False
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(descriptor)
            return False
        self._descriptor, self.taken = descriptor, True
        return True

    def release(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)  # releases the lock
        self._descriptor, self.taken = None, False


@contextlib.contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    """An exclusive lock on out/ (flock on the folder itself: no lock file to leave behind)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    descriptor = os.open(out_dir, os.O_RDONLY)
    try:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise OutputError(
                        f"{out_dir} is being written by another everest-render run; waited {LOCK_WAIT_SECONDS:.0f} s, writing nothing"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _index_text(plan: OutputPlan) -> str:
    paths = sorted(plan.files)
    return INDEX_HEADER + "\n".join(paths) + "\n" if paths else INDEX_HEADER


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None


def _write_synced(target: Path | str, content: bytes) -> None:
    # Not fsynced, nor are out/'s folders: a killed process loses nothing the kernel has (the
    # journal is about kills, not power loss). A thousand fsyncs would dominate a fleet's
    # render, and the three of folders (each a commit of the file system's own journal) were
    # 10-60 ms of a one-change render at 10,000 clusters.
    # os.open, not open(): no buffered file object (and no fstat for its buffer) per file.
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o666)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(descriptor, view) :]
    finally:
        os.close(descriptor)


def _remove_empty_parents(folder: Path, out_dir: Path) -> None:
    root = out_dir.resolve()
    while folder.resolve() != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
