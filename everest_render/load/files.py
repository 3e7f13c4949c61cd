"""Stage 1, read: the only code that reads input files. Everything after it is pure.

A repository is its ``definitions/``, ``providers/*/provider.yaml`` and ``clusters/`` YAML
files, read as text, plus each provider folder's assets (templates and schemas), read here so
rendering never opens a file. The built-ins are the same folders shipped in the package.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from everest_render.diagnostics import Diagnostic
from everest_render.load.documents import BUILTIN_PREFIX, SourceFile
from everest_render.model import ProviderAssets

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


@dataclass(frozen=True)
class SourceSet:
    """One root's input: its texts, its provider folders' assets, the files it could not read."""

    sources: list[SourceFile]
    assets: dict[str, ProviderAssets]
    builtin: bool
    unreadable: list[Diagnostic] = field(default_factory=list)


@dataclass(frozen=True)
class RepositoryFiles:
    builtin: SourceSet
    own: SourceSet
    settings: SourceFile | None = None  # the repository's everest-render.yaml, when it has one
    settings_unreadable: tuple[Diagnostic, ...] = ()


def builtin_root() -> Path:
    """Where the built-in definitions/ and providers/ are: package data in a wheel, else the
    top level of the source checkout (one copy, not two)."""
    package = Path(__file__).parent.parent
    packaged = package / "_builtin"
    return packaged if packaged.is_dir() else package.parent


def read_repository_files(root: Path, out_dir: Path | None = None) -> RepositoryFiles:
    """The built-ins and the repository at ``root`` (the built-ins once, when ``root`` is the checkout)."""
    base = builtin_root()
    out_dir = out_dir if out_dir is not None else root / "out"
    settings, unreadable = read_settings_file(root)
    if root.resolve() == base.resolve():
        return RepositoryFiles(SourceSet([], {}, True), read_source_set(root, out_dir, "", builtin=True), settings, unreadable)
    return RepositoryFiles(read_builtins(), read_source_set(root, out_dir, "", builtin=False), settings, unreadable)


def read_settings_file(root: Path) -> tuple[SourceFile | None, tuple[Diagnostic, ...]]:
    """The repository settings file at ``root``, if there is one (under either spelling)."""
    for name in (SETTINGS_FILE, SETTINGS_FILE_MISSPELT):
        if (root / name).is_file():
            sources, problems = read_sources(root, [root / name])
            return (sources[0] if sources else None), tuple(problems)
    return None, ()


def read_builtins() -> SourceSet:
    """The built-in definitions and providers."""
    return read_source_set(builtin_root(), None, BUILTIN_PREFIX, builtin=True, folders=("definitions", "providers"))


def read_source_set(root: Path, out_dir: Path | None, prefix: str, *, builtin: bool, folders: tuple[str, ...] | None = None) -> SourceSet:
    paths = discover_input_files(root, out_dir)
    if folders is not None:
        paths = [p for p in paths if p.relative_to(root).parts[0] in folders]
    assets = {
        prefix + path.relative_to(root).parent.as_posix(): read_provider_assets(path.parent)
        for path in paths
        if path.relative_to(root).parts[0] == "providers" and path.name in PROVIDER_FILES
    }
    sources, unreadable = read_sources(root, paths, prefix)
    return SourceSet(sources, assets, builtin, unreadable)


def read_provider_assets(folder: Path) -> ProviderAssets:
    """A provider folder's templates and schemas, by path inside it (no link leads out of it)."""
    inside = folder.resolve()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in ASSET_SUFFIXES and p.resolve().is_relative_to(inside))
    read = {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8") for p in files}
    return ProviderAssets({k: v for k, v in read.items() if k.endswith(".j2")}, {k: v for k, v in read.items() if k.endswith(".json")})


# --- discovery -------------------------------------------------------------------------


def discover_input_files(root: Path, out_dir: Path | None) -> list[Path]:
    """The YAML files of ``definitions/``, ``providers/*/provider.yaml`` (and ``definition.yaml``)
    and ``clusters/``, sorted.

    Hidden folders and files, the output folder and what ``.everestignore`` names are skipped.
    """
    ignore = _ignore_spec(root)
    skip = out_dir.resolve() if out_dir is not None else None
    found: list[Path] = []
    for folder in INPUT_FOLDERS:
        base = root / folder
        if not base.is_dir():
            continue
        for path in _walk(base, skip):
            relative = path.relative_to(root).as_posix()
            if folder == "providers" and not _is_provider_file(relative):
                continue
            if ignore is not None and ignore.match_file(relative):
                continue
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _is_provider_file(relative: str) -> bool:
    parts = relative.split("/")
    return len(parts) == 3 and parts[2] in (*PROVIDER_FILES, *DEFINITION_FILES)


def _walk(base: Path, skip: Path | None) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(base):
        current = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and (skip is None or (current / d).resolve() != skip))
        for name in sorted(filenames):
            # kustomization.yaml files belong to the GitOps tool around us, not to the renderer.
            if not name.startswith(".") and name.endswith(YAML_SUFFIXES) and name not in KUSTOMIZATION_FILES:
                yield current / name


def _ignore_spec(root: Path) -> Any:
    ignore_file = root / IGNORE_FILE
    if not ignore_file.is_file():
        return None
    import pathspec  # only repositories that have an ignore file pay for it

    return pathspec.GitIgnoreSpec.from_lines(ignore_file.read_text(encoding="utf-8").splitlines())


def read_sources(root: Path, paths: list[Path], prefix: str = "") -> tuple[list[SourceFile], list[Diagnostic]]:
    """Read files as UTF-8 text, named relative to ``root`` (with ``prefix`` for built-ins)."""
    sources: list[SourceFile] = []
    problems: list[Diagnostic] = []
    inside = root.resolve()
    for path in paths:
        name = prefix + path.relative_to(root).as_posix()
        if not path.resolve().is_relative_to(inside):
            # Like kustomize's root-only loading: a link must not pull in files from elsewhere.
            problems.append(Diagnostic(name, 1, 1, "a symbolic link that leads outside the repository is not read"))
            continue
        try:
            sources.append(SourceFile(name, path.read_bytes().decode("utf-8")))
        except UnicodeDecodeError as error:
            problems.append(Diagnostic(name, 1, 1, f"not UTF-8 text (byte {error.start})"))
    return sources, problems
