"""What a run's stages give one another as a whole: the parsed inputs, the repository's
settings, a resolve's and a render's result.

Apart from model.py's values of single objects (clusters, providers, definitions, rendered
objects: some fifty classes, which take a run ~9 ms to define) so that a render replayed from
the cache (incremental.py: no input changed) builds its result without defining them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from everest_render.diagnostics import Diagnostic, has_errors

if TYPE_CHECKING:  # only named in annotations
    from everest_render.emit.output import OutputPlan
    from everest_render.load.documents import Document
    from everest_render.model import (
        AddedVersion,
        AppliedExtension,
        BackupStorage,
        DatabaseCluster,
        Definition,
        EmittedObject,
        ExtensionChoice,
        GitopsDefaults,
        MonitoringConfig,
        PassthroughObject,
        Provider,
        ReleasePin,
        RenderedObject,
        ResolvedCluster,
    )
    from everest_render.resolve.catalog import Catalog


@dataclass(frozen=True)
class RepositorySettings:
    """The repository's ``everest-render.yaml`` (kind RepositorySettings), schema-validated.

    Optional: without the file every section takes its default. One field per top-level
    section of ``spec``, named as the section in snake_case (``parse/settings.py`` fills each
    from its section, as written unless a parser is registered there for it). ``document`` is
    None without the file, and locates every value of it otherwise.
    """

    document: Document | None = None
    # spec.catalogue: versions added to definitions in effect, without copying them.
    catalogue: tuple[AddedVersion, ...] = ()
    gitops: GitopsDefaults | None = None
    # spec.extensions: which extensions the repository enables, and their settings as written.
    extensions: Mapping[str, ExtensionChoice] = field(default_factory=dict)
    # spec.operatorReleases: per provider, the operator release it targets (resolve/releases.py).
    operator_releases: tuple[ReleasePin, ...] = ()

    @property
    def file(self) -> str | None:
        return self.document.source.path if self.document is not None else None


@dataclass(frozen=True)
class ParsedInputs:
    """One root's documents, sorted into kinds and parsed."""

    definitions: tuple[Definition, ...]
    providers: tuple[Provider, ...]
    clusters: tuple[DatabaseCluster, ...]
    backup_storages: tuple[BackupStorage, ...]
    monitoring_configs: tuple[MonitoringConfig, ...]
    broken: frozenset[str]  # names of definitions/providers that failed to parse
    passthrough: tuple[PassthroughObject, ...]
    diagnostics: tuple[Diagnostic, ...]


@dataclass(frozen=True)
class ResolveResult:
    """What load, parse and resolve gave: the catalogue, the resolved clusters and the diagnostics."""

    catalog: Catalog | None
    clusters: tuple[ResolvedCluster, ...]
    inputs: ParsedInputs
    diagnostics: tuple[Diagnostic, ...]
    settings: RepositorySettings
    # What may be secret in the repository's documents: masked in every message (check/secrets.py).
    sensitive: frozenset[str] = frozenset()
    extensions: tuple[AppliedExtension, ...] = ()  # enabled, in the order they apply

    @property
    def failed(self) -> bool:
        return has_errors(self.diagnostics)


@dataclass(frozen=True)
class RenderResult:
    """What a render gave: the objects, the output plan and every diagnostic."""

    resolved: ResolveResult
    objects: tuple[RenderedObject, ...]  # only when asked for (render_repository's keep_objects)
    plan: OutputPlan
    diagnostics: tuple[Diagnostic, ...]
    # A render taken whole or in part from the cache (`render_incremental`): how many clusters
    # it rendered. ``resolved``, ``objects`` and ``emitted`` then hold only what was rendered
    # afresh (nothing, and no catalogue, for a whole replay); the plan and diagnostics are whole.
    replayed_clusters: int | None = None
    emitted: tuple[EmittedObject, ...] = ()  # every object rendered, in the plan's files

    @property
    def failed(self) -> bool:
        return has_errors(self.diagnostics)

    @property
    def replayed(self) -> bool:
        """Taken whole from the cache: no catalogue, no objects (only its plan and diagnostics)."""
        return self.replayed_clusters is not None and self.resolved.catalog is None

    @property
    def cluster_count(self) -> int:
        return self.replayed_clusters if self.replayed_clusters is not None else len(self.resolved.clusters)
