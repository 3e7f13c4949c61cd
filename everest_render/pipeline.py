"""The facade: one function per use, each the list of stages top to bottom.

    files = read_repository(Path("."))
    result = render_repository(files)
    if not result.failed:
        write_output(result.plan, Path("out"))

`read_repository` is the only part that reads files; everything after it is pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from everest_render.diagnostics import Diagnostic, has_errors, sorted_diagnostics
from everest_render.emit.output import OutputPlan, passthrough_files, plan_from_files
from everest_render.load.documents import (
    BUILTIN_PREFIX,
    SourceFile,
    discover_input_files,
    load_documents,
    read_sources,
)
from everest_render.model import ProviderAssets, RenderedObject, ResolvedCluster
from everest_render.parallel import render_fleet
from everest_render.parse.inputs import ParsedInputs, parse_documents
from everest_render.resolve.catalog import Catalog, build_catalog
from everest_render.resolve.cluster import resolve_clusters
from everest_render.resolve.references import index_references


def builtin_root() -> Path:
    """Where the built-in definitions/ and providers/ are: package data in a wheel, else the
    top level of the source checkout (one copy, not two)."""
    packaged = Path(__file__).parent / "_builtin"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent


@dataclass(frozen=True)
class SourceSet:
    sources: list[SourceFile]
    assets: dict[str, ProviderAssets]
    builtin: bool
    unreadable: list[Diagnostic] = field(default_factory=list)


@dataclass(frozen=True)
class RepositoryFiles:
    builtin: SourceSet
    own: SourceSet


def read_repository(root: Path, out_dir: Path | None = None) -> RepositoryFiles:
    """Read the built-ins and the repository at ``root`` (the one stage that touches disk)."""
    base = builtin_root()
    out_dir = out_dir if out_dir is not None else root / "out"
    if root.resolve() == base.resolve():
        own = _read_set(root, out_dir, "", builtin=True)
        return RepositoryFiles(SourceSet([], {}, True), own)
    return RepositoryFiles(read_builtins(), _read_set(root, out_dir, "", builtin=False))


def read_builtins() -> SourceSet:
    """The built-in definitions and providers."""
    return _read_set(builtin_root(), None, BUILTIN_PREFIX, builtin=True, folders=("definitions", "providers"))


def _read_set(root: Path, out_dir: Path | None, prefix: str, *, builtin: bool, folders: tuple[str, ...] | None = None) -> SourceSet:
    paths = discover_input_files(root, out_dir)
    if folders is not None:
        paths = [p for p in paths if p.relative_to(root).parts[0] in folders]
    assets: dict[str, ProviderAssets] = {}
    for path in paths:
        relative = path.relative_to(root)
        if relative.parts[0] == "providers":
            folder = path.parent
            inside = folder.resolve()
            files = sorted(
                p for p in folder.rglob("*") if p.is_file() and p.suffix in (".j2", ".json") and p.resolve().is_relative_to(inside)
            )
            read = {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8") for p in files}
            assets[prefix + relative.parent.as_posix()] = ProviderAssets(
                {k: v for k, v in read.items() if k.endswith(".j2")}, {k: v for k, v in read.items() if k.endswith(".json")}
            )
    sources, unreadable = read_sources(root, paths, prefix)
    return SourceSet(sources, assets, builtin, unreadable)


# --- pure from here on -----------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which clusters to render: ``NAMESPACE`` (all of it, with its pass-through objects) or
    ``NAMESPACE/NAME`` entries, e.g. one Argo CD application's share of a monorepo."""

    entries: tuple[str, ...]

    def selects(self, namespace: str, name: str | None) -> bool:
        return any(entry == namespace or (name is not None and entry == f"{namespace}/{name}") for entry in self.entries)


@dataclass
class ResolveResult:
    catalog: Catalog | None
    clusters: list[ResolvedCluster]
    inputs: ParsedInputs
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return has_errors(self.diagnostics)


@dataclass
class RenderResult:
    resolved: ResolveResult
    objects: list[RenderedObject]
    plan: OutputPlan
    diagnostics: list[Diagnostic]

    @property
    def failed(self) -> bool:
        return has_errors(self.diagnostics)


def _parse_set(source_set: SourceSet) -> ParsedInputs:
    documents, problems = load_documents(source_set.sources)
    parsed = parse_documents(documents, source_set.assets, builtin=source_set.builtin)
    parsed.diagnostics[:0] = [*source_set.unreadable, *problems]
    return parsed


def resolve_repository(files: RepositoryFiles) -> ResolveResult:
    builtin, own = _parse_set(files.builtin), _parse_set(files.own)
    catalog, catalog_problems = build_catalog(
        builtin.definitions, builtin.providers, own.definitions, own.providers, frozenset(builtin.broken | own.broken)
    )
    references, reference_problems = index_references(own.backup_storages, own.monitoring_configs)
    clusters, problems = resolve_clusters(own.clusters, catalog, references)
    problems[:0] = reference_problems
    if not own.clusters and not own.diagnostics and not files.own.unreadable:
        problems.append(Diagnostic("clusters", 1, 1, "no DatabaseCluster found: refusing an empty render (it would prune every database)"))
    diagnostics = [*builtin.diagnostics, *own.diagnostics, *catalog_problems, *problems]
    return ResolveResult(catalog, clusters, own, sorted_diagnostics(diagnostics))


def render_repository(files: RepositoryFiles, only: Selection | None = None, jobs: int = 1) -> RenderResult:
    """Render every cluster, or those ``only`` selects (the whole repository is still
    validated), on up to ``jobs`` processes (the result does not depend on it)."""
    resolved = resolve_repository(files)
    if resolved.failed:
        return RenderResult(resolved, [], OutputPlan({}), resolved.diagnostics)
    clusters = [c for c in resolved.clusters if only is None or only.selects(c.ref.namespace, c.ref.name)]
    passthrough = [p for p in resolved.inputs.passthrough if only is None or only.selects(p.namespace, None)]
    fleet = render_fleet(clusters, jobs)
    plan = plan_from_files({**fleet.files, **passthrough_files(passthrough)})
    diagnostics = sorted_diagnostics([*resolved.diagnostics, *fleet.problems])
    if has_errors(diagnostics):
        return RenderResult(resolved, [], OutputPlan({}), diagnostics)
    return RenderResult(resolved, fleet.objects, plan, diagnostics)
