"""Stage 1, read: the only code that reads input files. Everything after it is pure.

A repository is its ``definitions/``, ``providers/*/provider.yaml`` and ``clusters/`` YAML
files, read as text, plus each provider folder's assets (templates and schemas), read here so
rendering never opens a file. The built-ins are the same folders shipped in the package.

Nothing under an input folder is skipped because it cannot be read: skipping a file prunes
the databases it holds. A folder that cannot be listed, a link that dangles, loops or leads
out of the repository, a FIFO, device or socket with a YAML name, a file larger than
`MAX_FILE_BYTES` or one that is not UTF-8 is an error naming it. Files are opened without
blocking and read up to the limit, so no input can hang a render or exhaust its memory.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from everest_render import package_files
from everest_render.diagnostics import Diagnostic, Severity
from everest_render.load.text import BUILTIN_PREFIX, SourceFile, text_problems

INPUT_FOLDERS = ("definitions", "providers", "clusters")
YAML_SUFFIXES = (".yaml", ".yml")
IGNORE_FILE = ".everestignore"
# The repository settings file, at the root. It changes what is rendered, so it is an input:
# read whatever .everestignore says. The .yml spelling is read only to be refused by name.
SETTINGS_FILE = "everest-render.yaml"
SETTINGS_FILE_MISSPELT = "everest-render.yml"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml")
ASSET_SUFFIXES = (".j2", ".json")  # what a provider folder holds besides its YAML inputs
PROVIDER_FILES = ("provider.yaml", "provider.yml")
DEFINITION_FILES = ("definition.yaml", "definition.yml")  # a provider folder may hold its definition
# A cluster file holds a few kilobytes, the largest vendored schema about one megabyte: a file
# beyond this is a mistake (or an attack), refused before it is read whole (docs/api.md).
MAX_FILE_BYTES = 8 * 1024 * 1024
# How a file becomes text: `read_text`, or (cache/snapshot.py) a reader that may answer from a
# file's recorded digest instead of its bytes. Whatever reads, the same files are asked for.
TextReader = Callable[[Path, str], tuple["str | None", "Diagnostic | None"]]


@dataclass(frozen=True)
class ProviderAssets:
    """The provider folder's files, read by the load stage so rendering stays pure."""

    templates: Mapping[str, str]  # every *.j2 file, by path relative to the folder
    schemas: Mapping[str, str]  # every *.json file, by path relative to the folder
    unreadable: frozenset[str] = frozenset()  # files that could not be read (load reported why)


@dataclass(frozen=True)
class SourceSet:
    """One root's input: its texts, its provider folders' assets, the files it could not read."""

    sources: list[SourceFile]
    assets: dict[str, ProviderAssets]
    builtin: bool
    unreadable: list[Diagnostic] = field(default_factory=list)


@dataclass(frozen=True)
class ExtensionFolder:
    """One ``extensions/<name>/`` folder: its manifest's text and its templates and schemas."""

    folder: str  # relative to its root, with the built-in prefix for a built-in
    manifest: SourceFile
    assets: ProviderAssets
    builtin: bool


@dataclass(frozen=True)
class RepositoryFiles:
    """Everything the read stage read: the built-ins, the repository, its settings and extensions."""

    builtin: SourceSet
    own: SourceSet
    settings: SourceFile | None = None  # the repository's everest-render.yaml, when it has one
    settings_unreadable: tuple[Diagnostic, ...] = ()
    # extensions/<name>/: the package's, then the repository's (which replace a built-in of that name)
    extensions: tuple[ExtensionFolder, ...] = ()
    extensions_unreadable: tuple[Diagnostic, ...] = ()


def builtin_root() -> Path:
    """Where the built-in definitions/ and providers/ are: package data in a wheel, else the
    top level of the source checkout (one copy, not two)."""
    return Path(package_files.builtin_root())


def read_repository_files(root: Path, out_dir: Path | None = None, reader: TextReader | None = None) -> RepositoryFiles:
    """The built-ins and the repository at ``root`` (the built-ins once, when ``root`` is the checkout).
    The built-ins are taken as the build read them when their files are those it read
    (prepared_builtins.py `unchanged_inputs`), but by a ``reader``, which must see every file."""
    prepared = reader is None
    reader = reader or read_text
    base = builtin_root()
    out_dir = out_dir if out_dir is not None else root / "out"
    settings, unreadable = read_settings_file(root, reader)
    problems: list[Diagnostic] = []
    if root.resolve() == base.resolve():
        extensions = read_extension_folders(root, "", builtin=True, problems=problems, reader=reader)
        own = read_source_set(root, out_dir, "", builtin=True, reader=reader)
        return RepositoryFiles(SourceSet([], {}, True), own, settings, unreadable, tuple(extensions), tuple(problems))
    from everest_render import prepared_builtins

    found = prepared_builtins.unchanged_inputs() if prepared else None
    extensions = [
        *(found[1] if found is not None else read_extension_folders(base, BUILTIN_PREFIX, builtin=True, problems=problems, reader=reader)),
        *read_extension_folders(root, "", builtin=False, problems=problems, reader=reader),
    ]
    own = read_source_set(root, out_dir, "", builtin=False, reader=reader)
    builtin = found[0] if found is not None else read_builtins(reader)
    return RepositoryFiles(builtin, own, settings, unreadable, tuple(extensions), tuple(problems))


EXTENSIONS_FOLDER = "extensions"
EXTENSION_FILE = "extension.yaml"


def read_extension_folders(
    root: Path, prefix: str, *, builtin: bool, problems: list[Diagnostic], reader: TextReader | None = None
) -> list[ExtensionFolder]:
    """Every ``extensions/<name>/`` under ``root``: the manifest and the folder's assets. A
    folder without a manifest is an error naming it (it would silently do nothing)."""
    base = root / EXTENSIONS_FOLDER
    if not base.is_dir():
        return []
    found = []
    for folder in sorted(base.iterdir(), key=lambda p: p.name):
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        relative = prefix + folder.relative_to(root).as_posix()
        manifest = folder / EXTENSION_FILE
        if not manifest.is_file():
            problems.append(Diagnostic(relative, 1, 1, f"an extension folder needs {EXTENSION_FILE} (its manifest)"))
            continue
        sources, unreadable = read_sources(root, [manifest], prefix, reader)
        problems.extend(unreadable)
        assets = read_provider_assets(folder, root, prefix, problems, reader)
        if sources:
            found.append(ExtensionFolder(relative, sources[0], assets, builtin))
    return found


def read_settings_file(root: Path, reader: TextReader | None = None) -> tuple[SourceFile | None, tuple[Diagnostic, ...]]:
    """The repository settings file at ``root``, if there is one (under either spelling)."""
    for name in (SETTINGS_FILE, SETTINGS_FILE_MISSPELT):
        if (root / name).exists() or (root / name).is_symlink():  # a FIFO or a dangling link is refused by name
            sources, problems = read_sources(root, [root / name], reader=reader)
            return (sources[0] if sources else None), tuple(problems)
    return None, ()


def read_builtins(reader: TextReader | None = None) -> SourceSet:
    """The built-in definitions and providers."""
    return read_source_set(builtin_root(), None, BUILTIN_PREFIX, builtin=True, folders=("definitions", "providers"), reader=reader)


def read_source_set(
    root: Path,
    out_dir: Path | None,
    prefix: str,
    *,
    builtin: bool,
    folders: tuple[str, ...] | None = None,
    reader: TextReader | None = None,
) -> SourceSet:
    """``folders``: only these input folders (the built-ins have no clusters/: in a checkout,
    whose root is also the built-ins' root, the example fleet is not theirs to walk)."""
    problems: list[Diagnostic] = []
    # The package's provider folders hold cases and vendored CRDs beside what a render reads,
    # which is all at their top level: the built-ins' walk does not go below it.
    found = _discover(root, out_dir, prefix, problems, folders or INPUT_FOLDERS, provider_depth=1 if builtin and prefix else None)
    assets = {}
    for path, relative in found:
        if relative.startswith("providers/") and path.name in PROVIDER_FILES:
            folder = relative.rsplit("/", 1)[0]
            assets[prefix + folder] = read_provider_assets(path.parent, root, prefix, problems, reader)
    # The walk followed every link and kept only what stays inside the repository.
    sources, unreadable = _read_named([(path, prefix + relative) for path, relative in found], reader or read_text)
    return SourceSet(sources, assets, builtin, [*problems, *unreadable])


def read_provider_assets(
    folder: Path, root: Path | None = None, prefix: str = "", problems: list[Diagnostic] | None = None, reader: TextReader | None = None
) -> ProviderAssets:
    """A provider folder's templates and schemas, by path inside it (no link leads out of it);
    one that cannot be read, or is not clean UTF-8 text, is a problem naming it."""
    root = root if root is not None else folder
    problems = problems if problems is not None else []
    reader = reader or read_text
    inside = folder.resolve()
    read: dict[str, str] = {}
    unreadable: set[str] = set()
    # Case files are tests, never assets. A built-in folder's vendored CRDs are the sources of
    # its schemas/, left out of the wheel (pyproject.toml): read in a checkout only, they would
    # make the built-ins differ between a checkout and an install (and the install's prepared
    # built-ins, made from the checkout, never match).
    skipped = ("cases", "crds") if prefix else ("cases",)
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.suffix not in ASSET_SUFFIXES or path.name.startswith(".") or any(p in skipped for p in relative.parts[:-1]):
            continue
        name = prefix + path.relative_to(root).as_posix()
        # rglob enters no linked folder, so only a link itself can lead outside (a resolve of
        # every asset was a third of reading the built-ins' assets, at every start).
        if path.is_symlink() and not path.resolve().is_relative_to(inside):
            problems.append(Diagnostic(name, 1, 1, "a symbolic link that leads outside the provider folder is not read"))
            unreadable.add(relative.as_posix())
            continue
        if path.is_dir():
            continue
        text, problem = reader(path, name)
        if problem is not None:
            problems.append(problem)
            unreadable.add(relative.as_posix())
        elif text is not None:
            read[relative.as_posix()] = text
    return ProviderAssets(
        {k: v for k, v in read.items() if k.endswith(".j2")}, {k: v for k, v in read.items() if k.endswith(".json")}, frozenset(unreadable)
    )


# --- discovery -------------------------------------------------------------------------


def discover_input_files(root: Path, out_dir: Path | None) -> list[Path]:
    """The YAML files of ``definitions/``, ``providers/*/provider.yaml`` (and ``definition.yaml``)
    and ``clusters/``, sorted.

    Hidden folders and files, the output folder and what ``.everestignore`` names are skipped."""
    return [path for path, _ in _discover(root, out_dir, "", [])]


def _discover(
    root: Path,
    out_dir: Path | None,
    prefix: str,
    problems: list[Diagnostic],
    folders: tuple[str, ...] = INPUT_FOLDERS,
    provider_depth: int | None = None,
) -> list[tuple[Path, str]]:
    """The input files as (path, name relative to ``root``), sorted by name."""
    ignore = _ignore_spec(root, prefix, problems)
    skip = out_dir.resolve() if out_dir is not None else None
    found: list[tuple[Path, str]] = []
    inside = root.resolve()
    for folder in folders:
        base = root / folder
        if not base.is_dir():
            if base.is_symlink() or (base.exists() and not base.is_dir()):
                problems.append(_problem(prefix, root, base, "is not a folder (a dangling link, or a file)"))
            continue
        depth = provider_depth if folder == "providers" else None
        for path, relative in _walk(base, folder, skip, root, inside, prefix, problems, ignore, depth):
            if folder == "providers" and not _is_provider_file(relative):
                continue
            found.append((path, relative))
    return sorted(found, key=lambda item: item[1])


def _is_provider_file(relative: str) -> bool:
    parts = relative.split("/")
    return len(parts) == 3 and parts[2] in (*PROVIDER_FILES, *DEFINITION_FILES)


def _problem(prefix: str, root: Path, path: Path, what: str) -> Diagnostic:
    name = prefix + path.relative_to(root).as_posix()
    return Diagnostic(name, 1, 1, f"cannot be read: {what}; refusing to skip it (it would prune what it holds)")


def _walk(
    base: Path,
    base_name: str,
    skip: Path | None,
    root: Path,
    inside: Path,
    prefix: str,
    problems: list[Diagnostic],
    ignore: Any,
    max_depth: int | None = None,
) -> Iterator[tuple[Path, str]]:
    """Every input-named file under ``base`` (named ``base_name`` relative to ``root``), with
    its relative name: folders (and links to folders inside the repository) are followed, each
    real folder once, and whatever cannot be read is reported. ``max_depth``: how many folders
    below ``base`` to enter (None: all)."""
    seen: set[Path] = set()
    # Each folder to read, with its real path and whether that is inside the repository, when
    # known without a resolve: a folder that is no link, in a real folder inside, is one too
    # (a resolve per folder was half of a large fleet's walk).
    pending: list[tuple[Path, str, int, Path | None]] = [(base, base_name, 0, None)]
    while pending:
        folder, folder_name, depth, known = pending.pop()
        real = known if known is not None else folder.resolve()
        if real in seen:
            continue  # a second link to a folder already read: its files are not read twice
        seen.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as error:
            problems.append(_problem(prefix, root, folder, _reason(error)))
            continue
        # What is not a link, in a folder that really is inside the repository, is inside too:
        # only links need following (a resolve per entry was most of a large fleet's walk).
        plain_inside = known is not None or real.is_relative_to(inside)
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            relative = f"{folder_name}/{entry.name}"
            if ignore is not None and ignore.match_file(relative + ("/" if _is_dir(entry) else "")):
                continue
            plain = _plain_kind(entry) if plain_inside else None
            kind = plain or _kind(path, inside)
            if kind == "link outside" and Path(entry.path).is_dir():
                named_as_input = True  # a folder: it may hold inputs, so it is never skipped
            elif kind == "folder":
                real_child = real / entry.name if plain else None
                if (skip is None or (real_child or path.resolve()) != skip) and (max_depth is None or depth < max_depth):
                    subfolders.append((path, relative, depth + 1, real_child))
                continue
            else:
                named_as_input = entry.name.endswith(YAML_SUFFIXES) and entry.name not in KUSTOMIZATION_FILES
            if kind == "file":
                # kustomization.yaml files belong to the GitOps tool around us, not to the renderer.
                if named_as_input:
                    yield path, relative
                elif base_name != "providers" and (unread := _unread(entry.name)) is not None:
                    message, severity = unread
                    problems.append(Diagnostic(prefix + relative, 1, 1, message, severity=severity))
            elif named_as_input or kind in ("dangling link", "looping link", "link outside"):
                if kind == "link outside" and not named_as_input:
                    continue
                problems.append(_problem(prefix, root, path, _KIND_MESSAGES.get(kind, kind)))
        pending.extend(reversed(subfolders))


def _unread(name: str) -> tuple[str, Severity] | None:
    """Why a file that may hold manifests is not read, for a name that is not an input's: a
    case variant of a YAML suffix is a near miss (an error, as a near-miss kind is); a JSON
    file is a manifest to kubectl but not an input here (a warning). Other files (a README,
    kustomization.yaml) are not inputs' near misses and are not named."""
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        return None
    if suffix != suffix.lower() and f".{suffix.lower()}" in YAML_SUFFIXES:
        rename = f"rename it to {stem}.{suffix.lower()} (or name it in .everestignore)"
        return f"is not read: only lower-case *.yaml and *.yml files are inputs; {rename}", Severity.ERROR
    if suffix == "json":
        why = "only *.yaml and *.yml files are inputs, and a DatabaseCluster in it would not be rendered"
        return f"is not read: {why} (write it as YAML, or name it in .everestignore)", Severity.WARNING
    return None


def _plain_kind(entry: os.DirEntry[str]) -> str | None:
    """"folder" or "file" for an entry that is no link (from the folder listing, no stat where
    the file system says the type); None for a link or anything else, which `_kind` names."""
    try:
        if entry.is_symlink():
            return None
        if entry.is_dir(follow_symlinks=False):
            return "folder"
        if entry.is_file(follow_symlinks=False):
            return "file"
    except OSError:
        return None
    return None


_KIND_MESSAGES = {
    "dangling link": "a symbolic link to nothing",
    "looping link": "a symbolic link that loops",
    "link outside": "a symbolic link that leads outside the repository",
}


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _kind(path: Path, inside: Path) -> str:
    """What ``path`` is once links are followed: folder, file, or why it cannot be read."""
    try:
        target = path.resolve(strict=True)
    except RuntimeError:
        return "looping link"
    except OSError as error:
        return "looping link" if error.errno == errno.ELOOP else "dangling link" if path.is_symlink() else _reason(error)
    if not target.is_relative_to(inside):
        return "link outside"
    try:
        mode = target.stat().st_mode
    except OSError as error:
        return _reason(error)
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISREG(mode):
        return "file"
    return _NON_REGULAR.get(stat.S_IFMT(mode), "not a regular file")


_NON_REGULAR = {
    stat.S_IFIFO: "a FIFO (named pipe), not a regular file",
    stat.S_IFCHR: "a character device, not a regular file",
    stat.S_IFBLK: "a block device, not a regular file",
    stat.S_IFSOCK: "a socket, not a regular file",
}


def _reason(error: OSError) -> str:
    if error.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return (error.strerror or str(error)).lower()


def _ignore_spec(root: Path, prefix: str, problems: list[Diagnostic]) -> Any:
    ignore_file = root / IGNORE_FILE
    if not ignore_file.exists() and not ignore_file.is_symlink():
        return None
    text, problem = read_text(ignore_file, prefix + IGNORE_FILE)
    if problem is not None:
        problems.append(problem)
        return None
    import pathspec  # only repositories that have an ignore file pay for it

    return pathspec.GitIgnoreSpec.from_lines((text or "").splitlines())


# --- reading ------------------------------------------------------------------------------


def read_bounded(path: Path) -> bytes:
    """A regular file's bytes, at most MAX_FILE_BYTES. Opened without blocking (a FIFO swapped
    in after discovery cannot hang us) and checked to be a regular file after opening.
    Raises OSError with a message for people."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, _NON_REGULAR.get(stat.S_IFMT(mode), "not a regular file"))
        chunks = []
        size = 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(descriptor, min(1 << 20, MAX_FILE_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_FILE_BYTES:
            raise OSError(errno.EFBIG, f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB, the limit for an input file")
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def read_text(path: Path, name: str) -> tuple[str | None, Diagnostic | None]:
    """The file as UTF-8 text, or the located problem that stops it being read."""
    try:
        data = read_bounded(path)
    except OSError as error:
        reason = error.strerror if error.errno in (errno.EINVAL, errno.EFBIG) and error.strerror else _reason(error)
        return None, Diagnostic(name, 1, 1, f"cannot be read: {reason}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        before = data[: error.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        return None, Diagnostic(name, line, column, f"not UTF-8 text (invalid byte 0x{data[error.start]:02x} at offset {error.start})")
    problems = text_problems(text, name)
    if problems:
        return None, problems[0]
    return text, None


def read_sources(
    root: Path, paths: list[Path], prefix: str = "", reader: TextReader | None = None
) -> tuple[list[SourceFile], list[Diagnostic]]:
    """Read files as UTF-8 text, named relative to ``root`` (with ``prefix`` for built-ins)."""
    problems: list[Diagnostic] = []
    inside = root.resolve()
    named = []
    for path in paths:
        name = prefix + path.relative_to(root).as_posix()
        if not path.resolve().is_relative_to(inside):
            # Like kustomize's root-only loading: a link must not pull in files from elsewhere.
            problems.append(Diagnostic(name, 1, 1, "a symbolic link that leads outside the repository is not read"))
            continue
        named.append((path, name))
    sources, unreadable = _read_named(named, reader or read_text)
    return sources, [*problems, *unreadable]


def _read_named(named: list[tuple[Path, str]], reader: TextReader) -> tuple[list[SourceFile], list[Diagnostic]]:
    """Read files known to be inside the repository, each under its name."""
    sources: list[SourceFile] = []
    problems: list[Diagnostic] = []
    for path, name in named:
        text, problem = reader(path, name)
        if problem is not None:
            problems.append(problem)
        elif text is not None:
            sources.append(SourceFile(name, text))
    return sources, problems
