"""Resolving what a cluster references: the BackupStorages its backups use and the
MonitoringConfig it reports to, each looked up in the cluster's own namespace."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from everest_render.diagnostics import Diagnostic, candidates
from everest_render.model import (
    BackupStorage,
    DatabaseCluster,
    MonitoringConfig,
    ObjectRef,
    Provider,
    ResolvedBackup,
    ResolvedComponent,
    ResolvedMonitoring,
    ResolvedPitr,
    ResolvedSchedule,
)
from everest_render.resolve.catalog import unique_by
from everest_render.resolve.cron import cron_problem

Path = tuple[str | int, ...]


class Reporter(Protocol):
    """Where resolution records problems and applied defaults (see resolve.cluster._Findings)."""

    def error(self, path: Path, message: str, *, key: bool = False) -> None: ...
    def missing(self, path: Path, message: str) -> None: ...
    def default(self, path: str, value: Any, origin: str) -> Any: ...


@dataclass(frozen=True)
class References:
    """The objects clusters may reference, by namespace and name."""

    backup_storages: Mapping[ObjectRef, BackupStorage]
    monitoring_configs: Mapping[ObjectRef, MonitoringConfig]

    def kind_of(self, ref: ObjectRef) -> str | None:
        if ref in self.backup_storages:
            return "BackupStorage"
        if ref in self.monitoring_configs:
            return "MonitoringConfig"
        return None


def index_references(storages: Iterable[BackupStorage], configs: Iterable[MonitoringConfig]) -> tuple[References, list[Diagnostic]]:
    problems: list[Diagnostic] = []
    storage_index = unique_by(storages, lambda s: s.ref, "BackupStorage", problems)
    config_index = unique_by(configs, lambda c: c.ref, "MonitoringConfig", problems)
    return References(storage_index, config_index), problems


def _reference(
    report: Reporter, cluster: DatabaseCluster, references: References, path: Path, name: str, kind: str, index: Mapping[ObjectRef, Any]
) -> Any:
    """The ``kind`` named ``name`` in the cluster's namespace, or an error at ``path``."""
    ref = ObjectRef(cluster.ref.namespace, name)
    if ref in index:
        return index[ref]
    other = references.kind_of(ref)
    if other is not None:
        report.error(path, f"{ref} is a {other}, not a {kind}")
    else:
        known = candidates((r.name for r in index if r.namespace == ref.namespace), name)
        report.error(path, f"no {kind} {name!r} in namespace {ref.namespace} (under clusters/); known: {known}")
    return None


def resolve_backup(
    report: Reporter, cluster: DatabaseCluster, components: Mapping[str, ResolvedComponent], provider: Provider, references: References
) -> ResolvedBackup:
    """Schedules, PITR and the BackupStorages they use; disabled schedules are checked, not kept."""
    written = cluster.spec.get("backup", {})
    base = ("spec", "backup")
    prefix = written.get("pathPrefix") or report.default(
        "spec.backup.pathPrefix", f"{cluster.ref.namespace}/{cluster.ref.name}", "API default <namespace>/<name>"
    )
    storages: dict[str, BackupStorage] = {}
    used_at: dict[str, tuple[str | int, ...]] = {}

    def use(path: tuple[str | int, ...], name: str, wanted: bool) -> None:
        storage = _reference(report, cluster, references, path, name, "BackupStorage", references.backup_storages)
        if storage is not None and wanted and name not in storages:
            storages[name] = storage
            used_at[name] = path

    schedules: list[ResolvedSchedule] = []
    disabled: list[ResolvedSchedule] = []
    seen_names: dict[str, int] = {}
    for index, entry in enumerate(written.get("schedules", [])):
        path = (*base, "schedules", index)
        if entry["name"] in seen_names:
            report.error((*path, "name"), f"duplicate schedule name {entry['name']!r} (first at schedules[{seen_names[entry['name']]}])")
        seen_names.setdefault(entry["name"], index)
        problem = cron_problem(entry["schedule"])
        if problem:
            report.error((*path, "schedule"), problem)
        enabled = entry.get("enabled", True)
        use((*path, "backupStorage"), entry["backupStorage"], enabled)
        # Disabled schedules are checked, not rendered.
        (schedules if enabled else disabled).append(
            ResolvedSchedule(entry["name"], entry["schedule"], entry.get("retentionCopies"), entry["backupStorage"])
        )
    pitr = None
    if "pitr" in written:
        entry = written["pitr"]
        storage = entry.get("backupStorage")
        if entry["enabled"] and storage is None:
            report.missing((*base, "pitr"), "PITR needs backupStorage: the storage its logs upload to")
        if storage is not None:
            use((*base, "pitr", "backupStorage"), storage, entry["enabled"])
        pitr = ResolvedPitr(entry["enabled"], storage, entry.get("uploadIntervalSec"))
    for index, name in enumerate(written.get("storages", [])):
        use((*base, "storages", index), name, True)  # on-demand backups: registered after the scheduled ones
    if (schedules or (pitr and pitr.enabled) or written.get("storages")) and "backupAgent" not in components:
        report.error(base, "backup schedules and PITR need the backupAgent component: list it under spec.instances", key=True)
    limit = provider.max_backup_storages
    if limit is not None and len(storages) > limit:
        for name in list(storages)[limit:]:  # in order of use: the reference that went over
            report.error(
                used_at[name],
                f"provider {provider.name} allows {limit} backup storage(s) per cluster;"
                f" this makes {len(storages)}: {candidates(storages)}",
            )
    # In order of first use, enabled schedules then PITR: everest's addNewSchedules numbers a
    # new cluster's PostgreSQL repositories in this order.
    return ResolvedBackup(prefix, storages, tuple(schedules), pitr, tuple(disabled))


def resolve_monitoring(
    report: Reporter, cluster: DatabaseCluster, components: Mapping[str, ResolvedComponent], references: References
) -> ResolvedMonitoring | None:
    """The MonitoringConfig the monitoring component names, and the client image to run."""
    component = components.get("monitoring")
    if component is None:
        return None
    path = ("spec", "instances", "monitoring")
    name = component.settings.get("monitoringConfig")
    if name is None:
        report.missing(path, "the monitoring component needs monitoringConfig: the MonitoringConfig to report to")
        return None
    config = _reference(report, cluster, references, (*path, "monitoringConfig"), name, "MonitoringConfig", references.monitoring_configs)
    if config is None:
        return None
    pinned = component.type in cluster.spec.get("components", {}).get("versions", {})
    if pinned or config.image is None:
        image = component.image
    else:
        image = report.default("spec.instances.monitoring.image", config.image, f"MonitoringConfig {config.ref} pmm.image")
    return ResolvedMonitoring(config, image)
